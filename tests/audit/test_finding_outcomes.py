"""The log review's findings get an outcome, with the reviewer and the time, once and for good
(``audit.findings``; docs/adr/0029)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit import findings, review
from audit.forms import _start_of_day
from audit.models import AccessEvent, FindingOutcome
from audit.services import Action, record_event

PERSON = uuid.UUID("5d0c1f3e-7a4b-4c55-9f0e-2b7b8c1d9e11")
SEED = 12345


@pytest.fixture
def glass_event(demo):
    return record_event(
        action=Action.BREAK_GLASS,
        user=demo["alex.avhopp"],
        object_type="casework.case",
        object_id=str(uuid.uuid4()),
        person_id=PERSON,
        purpose="Akut läge",
    )


def _period():
    today = timezone.localdate()
    return _start_of_day(today), _start_of_day(today + dt.timedelta(days=1))


def _record(user, event, outcome="needs_action", rule="break-the-glass", key=None):
    start, end = _period()
    return findings.record_outcome(
        user=user,
        rule=rule,
        key=key or findings.event_key(event.pk),
        outcome=outcome,
        start=start,
        end=end,
        seed=SEED,
    )


def test_an_outcome_is_stored_with_the_reviewer_and_time_and_logged(demo, glass_event):
    greta = demo["greta.granskare"]
    before = timezone.now()
    saved = _record(greta, glass_event, outcome="referred_dpo")
    assert (saved.rule, saved.key, saved.event_id, saved.outcome, saved.reviewed_by) == (
        "break-the-glass",
        f"event:{glass_event.pk}",
        glass_event.pk,
        FindingOutcome.Outcome.REFERRED_DPO,
        greta,
    )
    assert saved.reviewed_at >= before and saved.seed == SEED
    logged = AccessEvent.objects.get(object_type="audit.findingoutcome", object_id=str(saved.pk))
    assert (logged.user, logged.person_id, logged.details["outcome"]) == (
        greta,
        PERSON,
        "referred_dpo",
    )
    # The report shows it on the finding's row.
    start, end = _period()
    report = review.build_report(start=start, end=end, seed=SEED)
    findings.attach_outcomes(report)
    (row,) = [e for e in report.break_the_glass.events if e.pk == glass_event.pk]
    assert row.finding.outcome == saved


def test_an_outcome_cannot_be_changed_or_removed(demo, glass_event):
    greta = demo["greta.granskare"]
    saved = _record(greta, glass_event)
    with pytest.raises(ValidationError) as refused:
        _record(greta, glass_event, outcome="reviewed")
    assert "cannot be changed" in str(refused.value) or "kan inte ändras" in str(refused.value)
    for attempt in (
        lambda: FindingOutcome.objects.filter(pk=saved.pk).update(outcome="reviewed"),
        lambda: FindingOutcome.objects.filter(pk=saved.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            attempt()
    assert FindingOutcome.objects.get().outcome == "needs_action"


def test_only_a_finding_of_the_period_and_a_valid_outcome(demo, glass_event):
    greta = demo["greta.granskare"]
    with pytest.raises(ValidationError):
        _record(greta, glass_event, rule="off-hours", key="event:999999999")
    with pytest.raises(ValidationError):
        _record(greta, glass_event, outcome="ignored")
    with pytest.raises(PermissionDenied):
        _record(demo["anna.social"], glass_event)
    assert not FindingOutcome.objects.exists()


def test_the_review_page_records_and_shows_the_outcome(demo, client, glass_event):
    client.force_login(demo["greta.granskare"])
    today = timezone.localdate().isoformat()
    period = {"date_from": today, "date_to": today, "seed": SEED}
    page = client.get("/granskning/loggkontroll/", period)
    assert page.status_code == 200
    assert f'data-finding="break-the-glass event:{glass_event.pk}"'.encode() in page.content
    posted = {**period, "rule": "break-the-glass", "key": f"event:{glass_event.pk}"}
    bad = client.post("/granskning/loggkontroll/utfall/", {**posted, "outcome": "x"})
    assert bad.status_code == 400
    assert "Välj ett giltigt alternativ" in bad.content.decode()
    saved = client.post("/granskning/loggkontroll/utfall/", {**posted, "outcome": "reviewed"})
    assert saved.status_code == 302
    assert "#break-the-glass" in saved["Location"]
    shown = client.get("/granskning/loggkontroll/", period)
    assert b'data-finding-outcome="reviewed"' in shown.content
    assert f'data-finding="break-the-glass event:{glass_event.pk}"'.encode() not in shown.content
    again = client.post("/granskning/loggkontroll/utfall/", {**posted, "outcome": "needs_action"})
    assert again.status_code == 400
    assert FindingOutcome.objects.get().outcome == "reviewed"
    client.force_login(demo["anna.social"])
    denied = client.post("/granskning/loggkontroll/utfall/", {**posted, "outcome": "reviewed"})
    assert denied.status_code == 403


def test_findings_of_volume_and_bursts_have_stable_keys():
    volume = review.VolumeRow("anna.social", "Kommunen", dt.date(2026, 3, 2), 400)
    assert findings.volume_key(volume) == "volume:anna.social:2026-03-02"
    hour = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    burst = review.BurstRow("address", "10.0.0.9", hour, 12, hour, hour)
    assert findings.burst_key(burst) == "address:10.0.0.9:2026-03-02T03:00:00+01:00"
