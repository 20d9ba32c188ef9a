"""The log review reads a bounded part of the month: each rule shows its first rows and
counts its matches up to a limit ("more than N" beyond it); the random sample is the one
drawn one event at a time from the seed."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Max, Min

from audit import review
from audit.models import AccessEvent
from audit.services import Action, record_event

from .helpers import raw, triggers_disabled

STOCKHOLM = ZoneInfo("Europe/Stockholm")
START = dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM)
END = dt.datetime(2026, 4, 1, tzinfo=STOCKHOLM)
DAY = dt.datetime(2026, 3, 4, 10, 0, tzinfo=STOCKHOLM)


def _glass_events(user, count: int) -> list[int]:
    ids = [
        record_event(action=Action.BREAK_GLASS, user=user, person_id=uuid.uuid4()).pk
        for _ in range(count)
    ]
    with triggers_disabled("audit_accessevent"):
        raw("UPDATE audit_accessevent SET occurred_at = %s WHERE id = ANY(%s)", [DAY, ids])
    return ids


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(review, "ROW_LIMIT", 2)
    monkeypatch.setattr(review, "COUNT_LIMIT", 3)


@pytest.mark.parametrize(
    ("events", "total", "more", "truncated"),
    [(1, 1, False, False), (2, 2, False, False), (3, 3, False, True), (5, 3, True, True)],
)
def test_a_rule_shows_its_first_rows_and_counts_up_to_the_limit(
    demo, small_limits, events, total, more, truncated
):
    ids = _glass_events(demo["per.polis"], events)
    result = review.break_the_glass(START, END)
    assert [event.pk for event in result.events] == sorted(ids)[:2]
    assert (result.total, result.more, result.truncated) == (total, more, truncated)


def _break_glass_section(client, auditor) -> str:
    """The break-the-glass rule's section of the review of March 2026, in Swedish."""
    client.force_login(auditor)
    response = client.get(
        "/granskning/loggkontroll/",
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "seed": 1},
        HTTP_ACCEPT_LANGUAGE="sv",
    )
    assert response.status_code == 200
    page = response.content.decode()
    section = page[page.index('data-rule="break-the-glass"') :]
    return section[: section.index("</section>")]


def test_the_page_says_more_than_the_limit_in_swedish(demo, client, small_limits):
    _glass_events(demo["per.polis"], 5)
    section = _break_glass_section(client, demo["greta.granskare"])
    assert "(fler än 3)" in section
    assert "data-count-more" in section
    assert "Visar de första 2 av fler än 3 (räknas inte längre)" in section


def test_an_exact_count_below_the_limit_is_shown_as_is(demo, client, small_limits):
    _glass_events(demo["per.polis"], 3)
    section = _break_glass_section(client, demo["greta.granskare"])
    assert "(3)" in section and "fler än" not in section
    assert "Visar de första 2 av 3;" in section


def _sample_one_at_a_time(start, end, *, size: int, seed: int) -> list[int]:
    """The sample as drawn before: one statement per draw."""
    events = AccessEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, person_id__isnull=False
    )
    bounds = events.aggregate(low=Min("id"), high=Max("id"))
    generator = random.Random(seed)  # noqa: S311
    chosen: dict[int, None] = {}
    for _attempt in range(size * 4):
        if len(chosen) >= size:
            break
        event = events.filter(id__gte=generator.randint(bounds["low"], bounds["high"])).first()
        if event is not None:
            chosen.setdefault(event.pk, None)
    return sorted(chosen)


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_the_sample_is_the_one_drawn_one_event_at_a_time(demo, seed):
    user = demo["anna.social"]
    inside, outside = [], []
    for index in range(40):
        # Every third event outside the period and some without a person: gaps in the ids.
        event = record_event(
            action=Action.CONSULT, user=user, person_id=uuid.uuid4() if index % 4 else None
        )
        (outside if index % 3 == 0 else inside).append(event.pk)
    with triggers_disabled("audit_accessevent"):
        raw("UPDATE audit_accessevent SET occurred_at = %s WHERE id = ANY(%s)", [DAY, inside])
        raw(
            "UPDATE audit_accessevent SET occurred_at = %s WHERE id = ANY(%s)",
            [END + dt.timedelta(days=3), outside],
        )
    for size in (1, 5, 25):
        expected = _sample_one_at_a_time(START, END, size=size, seed=seed)
        drawn = [event.pk for event in review.random_sample(START, END, size=size, seed=seed)]
        assert drawn == expected
        assert drawn and len(drawn) <= size


def test_an_empty_period_has_an_empty_sample(demo):
    assert review.random_sample(START, END, size=5, seed=1) == []
