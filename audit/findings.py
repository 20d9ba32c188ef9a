"""The outcomes of the log review's findings: what the auditor decided about each one.

A *finding* is one row a rule of the log review shows (``audit.review``). It is
identified by its rule and a key that does not depend on when the review was run:

- a rule that selects access-log entries (and the random sample): ``event:<id>``;
- unusual volume: ``volume:<username>:<local day>``;
- a burst of failed sign-ins: ``account:<name>:<local hour>`` or
  ``address:<address>:<local hour>`` (the hour as ISO 8601 with its offset).

The review period is not part of the identity (docs/adr/0029): the same entry found by
the same rule in an overlapping period is the same finding, and its outcome — reviewed,
needs action, referred to the data protection officer — is given once, with the reviewer
and the time, and never changed (``FindingOutcome`` is append-only at the database).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from audit import review
from audit.models import AccessEvent, FindingOutcome
from audit.services import Action, record_event, record_refusal
from casework import policy

# The rules whose rows are access-log entries: (rule id, the report's attribute).
EVENT_RULES = (
    ("outside-own-cases", "outside_own_cases"),
    ("off-hours", "off_hours"),
    ("protected-identity", "protected_identity"),
    ("break-the-glass", "break_the_glass"),
    ("referrals-of-registered", "referrals_of_registered"),
)
RULES = frozenset(
    {rule for rule, _attribute in EVENT_RULES} | {"high-volume", "failed-login-bursts", "sample"}
)


@dataclass
class Finding:
    """One row of a rule, with the outcome given to it (``None``: none yet)."""

    rule: str
    key: str
    event_id: int | None = None
    outcome: FindingOutcome | None = None


def event_key(event_id: int) -> str:
    return f"event:{event_id}"


def volume_key(row: review.VolumeRow) -> str:
    return f"volume:{row.username}:{row.day.isoformat()}"


def burst_key(row: review.BurstRow) -> str:
    return f"{row.kind}:{row.name}:{row.hour.isoformat()}"


def report_findings(report: review.ReviewReport) -> list[tuple[object, Finding]]:
    """Every row the report shows, each with its :class:`Finding` (outcome not filled)."""
    rows: list[tuple[object, Finding]] = []
    for rule, attribute in EVENT_RULES:
        result = getattr(report, attribute)
        rows += [(event, Finding(rule, event_key(event.pk), event.pk)) for event in result.events]
    rows += [(row, Finding("high-volume", volume_key(row))) for row in report.high_volume]
    rows += [
        (row, Finding("failed-login-bursts", burst_key(row))) for row in report.failed_login_bursts
    ]
    rows += [(event, Finding("sample", event_key(event.pk), event.pk)) for event in report.sample]
    return rows


def attach_outcomes(report: review.ReviewReport) -> None:
    """Give every row of ``report`` its finding (``row.finding``) with the outcome given."""
    rows = report_findings(report)
    given = {
        (outcome.rule, outcome.key): outcome
        for outcome in FindingOutcome.objects.filter(
            key__in={finding.key for _row, finding in rows}
        ).select_related("reviewed_by")
    }
    for row, finding in rows:
        finding.outcome = given.get((finding.rule, finding.key))
        row.finding = finding


def record_outcome(
    *,
    user,
    rule: str,
    key: str,
    outcome: str,
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
) -> FindingOutcome:
    """Record the auditor's outcome of one finding of the review of ``start`` to ``end``
    (drawn with ``seed``): once, never changed. The finding must be one the review of
    that period shows. An access-log event names the finding (and its person)."""
    if not policy.can_view_access_log(user):
        record_refusal(
            user=user,
            object_type="audit.findingoutcome",
            purpose="log review",
            details={"rule": str(rule)[:40], "operation": "finding:outcome"},
        )
        raise PermissionDenied
    if outcome not in FindingOutcome.Outcome.values:
        raise ValidationError({"outcome": ValidationError(_("Select a valid choice."))})
    report = review.build_report(start=start, end=end, seed=seed)
    found = {(f.rule, f.key): f for _row, f in report_findings(report)}
    finding = found.get((rule, key))
    if finding is None:
        raise ValidationError(_("The review of this period shows no such finding."))
    person_id = None
    if finding.event_id is not None:
        person_id = (
            AccessEvent.objects.filter(pk=finding.event_id)
            .values_list("person_id", flat=True)
            .first()
        )
    with transaction.atomic():
        try:
            with transaction.atomic():
                saved = FindingOutcome.objects.create(
                    rule=rule,
                    key=key,
                    event_id=finding.event_id,
                    outcome=outcome,
                    period_start=start,
                    period_end=end,
                    seed=seed,
                    reviewed_by=user,
                )
        except IntegrityError:
            raise ValidationError(
                _("This finding already has an outcome; it cannot be changed.")
            ) from None
        record_event(
            action=Action.CREATE,
            user=user,
            object_type="audit.findingoutcome",
            object_id=str(saved.pk),
            person_id=person_id,
            fields=["outcome"],
            purpose="log review",
            details={"rule": rule, "finding": key, "outcome": outcome},
        )
    return saved
