"""The log review reads a period piece by piece of the log's months (docs/adr/0037, session
17): the same rows as the whole period's first rows by id, but a piece that starts late in
its month (the last hour of the UTC month before a local month) is read by its moments, not
by walking its partition's key from the month's first event; the sample's id bounds are the
period's; and the daily summary run summarises the partitions' BRIN ranges."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Max, Min
from django.test.utils import CaptureQueriesContext

from audit import review
from audit.integrity.partitions import create_partitions, summarise_period_index
from audit.models import AccessEvent
from audit.services import Action, record_event

from .helpers import raw, triggers_disabled

STOCKHOLM = ZoneInfo("Europe/Stockholm")
UTC = dt.UTC
# The local month of March 2026: from 23:00 UTC on 28 February to 22:00 UTC on 31 March.
START = dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM)
END = dt.datetime(2026, 4, 1, tzinfo=STOCKHOLM)
LATE = dt.datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # in the period, in February's partition
BEFORE = dt.datetime(2026, 2, 28, 22, 30, tzinfo=UTC)  # before the period
MARCH = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
AFTER = dt.datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # after the period, in March's partition


def test_a_local_month_is_cut_at_the_utc_month_start():
    assert review._pieces(START, END) == [
        review._Piece(START, dt.datetime(2026, 3, 1, tzinfo=UTC), late=True),
        review._Piece(dt.datetime(2026, 3, 1, tzinfo=UTC), END, late=False),
    ]
    # A period inside one month is one piece; one that starts at a month's start is not late.
    inside = dt.datetime(2026, 3, 10, tzinfo=UTC), dt.datetime(2026, 3, 12, tzinfo=UTC)
    assert review._pieces(*inside) == [review._Piece(*inside, late=True)]
    whole = dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert review._pieces(*whole) == [review._Piece(*whole, late=False)]


@pytest.fixture
def glass(demo):
    """Break-the-glass events on both sides of the UTC month start and outside the period,
    with ids out of time order: the late hour holds the lowest and the highest ids."""
    create_partitions(since=dt.date(2026, 2, 1))
    moments = [LATE, MARCH, BEFORE, MARCH, AFTER, LATE, MARCH, BEFORE, LATE]
    ids = [
        record_event(action=Action.BREAK_GLASS, user=demo["per.polis"], person_id=uuid.uuid4()).pk
        for _ in moments
    ]
    with triggers_disabled("audit_accessevent"):
        raw(
            "UPDATE audit_accessevent e SET occurred_at = v.at"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE e.id = v.id",
            [ids, moments],
        )
    return dict(zip(ids, moments, strict=True))


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 50])
def test_the_first_rows_are_the_periods_first_by_id(glass, monkeypatch, limit):
    monkeypatch.setattr(review, "ROW_LIMIT", limit)
    monkeypatch.setattr(review, "COUNT_LIMIT", limit + 1)
    in_period = sorted(pk for pk, at in glass.items() if START <= at < END)
    result = review.break_the_glass(START, END)
    assert [event.pk for event in result.events] == in_period[:limit]
    assert result.total == min(len(in_period), limit + 1)
    assert result.more == (len(in_period) > limit + 1)


def test_a_late_piece_is_not_read_in_its_partitions_key_order(glass):
    """With sequential scans priced out (an index path is then the planner's first
    choice), the piece of March is read in its key's order (its first events by id are at
    the key's start); the late hour of February is read and its rows sorted: February's key
    is never walked in order from the month's first event to its last hour."""
    events = review._person_events(START, END)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    lines = review._first_by_id(events, START, END).explain().splitlines()
    sorted_scans = [
        next(line for line in lines[index + 1 :] if " on audit_accessevent_" in line)
        for index, line in enumerate(lines)
        if "Sort Key: ((audit_accessevent.id + 0))" in line
    ]
    assert len(sorted_scans) == 1 and "on audit_accessevent_2026_02 " in sorted_scans[0], lines
    in_key_order = [line for line in lines if "_pkey on audit_accessevent_2026_03 " in line]
    assert in_key_order, lines


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (START, END),
        (BEFORE, AFTER + dt.timedelta(hours=1)),
        (LATE - dt.timedelta(minutes=1), LATE + dt.timedelta(minutes=1)),
        (MARCH, END),
        (dt.datetime(2026, 3, 10, tzinfo=UTC), END),  # no person event in it
    ],
)
def test_the_samples_id_bounds_are_the_periods(glass, start, end):
    expected = AccessEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, person_id__isnull=False
    ).aggregate(low=Min("id"), high=Max("id"))
    assert review._person_event_id_bounds(start, end) == (expected["low"], expected["high"])


def test_the_sample_reads_its_bounds_in_one_statement(glass):
    with CaptureQueriesContext(connection) as queries:
        review._person_event_id_bounds(START, END)
    assert len(queries) == 1


def test_the_daily_run_summarises_the_new_brin_ranges(glass):
    """A block range without a summary (a bulk load's ranges, or any that autovacuum did not
    summarise) is summarised by the run, once. (A partition's first range has a summary
    from the index's creation; ranges after it start without one.)"""
    summarise_period_index()
    for month in ("2026_02", "2026_03"):
        raw(
            "SELECT brin_desummarize_range(%s::regclass, 0)",
            [f"audit_accessevent_{month}_occurred_at_idx"],
        )
    assert summarise_period_index() == 2
    assert summarise_period_index() == 0
