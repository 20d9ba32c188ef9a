"""The log review's "unusual volume" read from the daily summary (``DailyVolume``) finds
exactly the user-days that counting the access log finds: for whole days, part days at
either end of the period, days after the summary, the change to summer time and days of
an archived month (counted live)."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from audit import review, volumes
from audit.models import ArchivedPartition, DailyVolume, VolumeSummaryState
from audit.services import Action, record_event

from .helpers import raw, triggers_disabled

STOCKHOLM = ZoneInfo("Europe/Stockholm")
MARCH = dt.datetime(2026, 3, 1, tzinfo=STOCKHOLM)
APRIL = dt.datetime(2026, 4, 1, tzinfo=STOCKHOLM)
THRESHOLD = 2


def _at(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=STOCKHOLM)


def _events(moments: list[tuple[str, dt.datetime]], *, person: bool = True) -> None:
    """One event of each (account name, moment); person-data events unless ``person`` is
    false (a sign-in names no person)."""
    ids, times = [], []
    for username, when in moments:
        event = record_event(
            action=Action.CONSULT if person else Action.LOGIN,
            username=username,
            person_id=uuid.uuid4() if person else None,
        )
        ids.append(event.pk)
        times.append(when)
    with triggers_disabled("audit_accessevent"):
        raw(
            "UPDATE audit_accessevent e SET occurred_at = v.at"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE e.id = v.id",
            [ids, times],
        )


@pytest.fixture
def month(db):
    """March 2026: user-days over, at and under the threshold; events a minute either side
    of local midnight; the night of the change to summer time (29 March); sign-ins, which
    are not person-data events; and April's first day."""
    moments = []
    for day, user, count in [(2, "ada", 3), (2, "bo", 2), (3, "ada", 5), (30, "bo", 4)]:
        moments += [(user, _at(day, 10, minute)) for minute in range(count)]
    # 23:59 and 00:01: two local days (1 + 2 for "cy"), one UTC day.
    moments += [("cy", _at(9, 23, 59)), ("cy", _at(10, 0, 1)), ("cy", _at(10, 0, 2))]
    moments += [("cy", _at(9, 12)), ("cy", _at(9, 13))]  # the 9th: 3 in all
    # 29 March has 23 hours: 00:30, 01:30, 03:30 and 23:30 local are one local day.
    moments += [("dag", _at(29, hour, 30)) for hour in (0, 1, 3, 23)]
    moments += [("ada", _at(1, 9, month=4)) for _ in range(3)]
    _events(moments)
    _events([("bo", _at(2, 11, minute)) for minute in range(5)], person=False)


def _rows(start: dt.datetime, end: dt.datetime) -> list[tuple]:
    return [(row.username, row.day, row.count) for row in review.high_volume(start, end, THRESHOLD)]


PERIODS = [
    (MARCH, APRIL),
    (MARCH, APRIL + dt.timedelta(days=1)),  # the bench's period: into the next month
    (_at(2, 10, 2), _at(30, 10, 3)),  # part days at either end
    (_at(10, 0), _at(29, 2)),  # from local midnight to inside the short day
    (_at(9, 23, 59), _at(10, 0, 2)),  # within one night
]


def test_the_rule_counts_the_log_when_there_is_no_summary(month):
    assert _rows(MARCH, APRIL) == [
        ("ada", dt.date(2026, 3, 3), 5),
        ("bo", dt.date(2026, 3, 30), 4),
        ("dag", dt.date(2026, 3, 29), 4),
        ("ada", dt.date(2026, 3, 2), 3),
        ("cy", dt.date(2026, 3, 9), 3),
    ]


@pytest.mark.parametrize(("start", "end"), PERIODS)
@pytest.mark.parametrize(
    "summarised_at",
    [
        _at(2, 12, month=4),  # every day of March and April's first
        _at(16, 0, 30),  # until the 14th (the 15th ended only half an hour ago)
        _at(10, 2),  # until the 9th: the night of the 9th/10th is split
    ],
)
def test_the_summary_finds_the_same_rows_as_the_log(month, start, end, summarised_at):
    counted = _rows(start, end)
    volumes.summarise(now=summarised_at)
    assert (
        VolumeSummaryState.objects.get().filled_until
        == (summarised_at - volumes.SUMMARY_MARGIN).astimezone(STOCKHOLM).date()
    )
    assert DailyVolume.objects.exists()
    assert _rows(start, end) == counted


def test_the_summary_holds_each_user_day_of_person_events_once(month):
    # From the first event (2 March) to 1 April.
    assert volumes.summarise(now=_at(2, 12, month=4)) == 31
    counted = {(v.username, v.day): v.count for v in DailyVolume.objects.all()}
    assert counted[("bo", dt.date(2026, 3, 2))] == 2  # the five sign-ins are not counted
    assert counted[("cy", dt.date(2026, 3, 9))] == 3
    assert counted[("cy", dt.date(2026, 3, 10))] == 2
    assert counted[("dag", dt.date(2026, 3, 29))] == 4
    assert volumes.summarise(now=_at(2, 12, month=4)) == 0  # nothing new: nothing counted
    assert volumes.summarise(now=_at(3, 12, month=4)) == 1  # the next day only
    assert DailyVolume.objects.filter(day=dt.date(2026, 4, 2)).count() == 0  # no events


def test_a_summarised_user_day_is_read_from_the_summary(month):
    volumes.summarise(now=_at(2, 12, month=4))
    DailyVolume.objects.filter(username="cy", day=dt.date(2026, 3, 9)).update(count=7)
    assert ("cy", dt.date(2026, 3, 9), 7) in _rows(MARCH, APRIL)


def test_the_days_of_an_archived_month_are_counted_live(month):
    volumes.summarise(now=_at(2, 12, month=4))
    DailyVolume.objects.filter(username="cy", day=dt.date(2026, 3, 9)).update(count=7)
    whole, live = volumes.ranges(MARCH, APRIL)
    assert (whole, live) == ([(dt.date(2026, 3, 1), dt.date(2026, 4, 1))], [])
    ArchivedPartition.objects.create(
        month=dt.date(2026, 2, 1),
        table_name="audit_accessevent_2026_02",
        entries=0,
        export_name="x",
        export_sha256="0" * 64,
        detached_at=dt.datetime(2026, 4, 2, tzinfo=dt.UTC),
        key_id="k",
        signature="s",
    )
    whole, live = volumes.ranges(MARCH, APRIL)
    # 1 March began (local) on 28 February (UTC): counted live, the rest from the summary.
    assert whole == [(dt.date(2026, 3, 2), dt.date(2026, 4, 1))]
    assert live == [(MARCH, _at(2, 0))]
    assert ("cy", dt.date(2026, 3, 9), 7) in _rows(MARCH, APRIL)


def test_a_rebuild_forgets_the_summary(month):
    volumes.summarise(now=_at(2, 12, month=4))
    volumes.rebuild()
    assert not DailyVolume.objects.exists()
    assert not VolumeSummaryState.objects.exists()
    assert volumes.summarise(now=_at(2, 12, month=4)) == 31
