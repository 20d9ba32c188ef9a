"""The log review's volume summary: person-data events by account name, organisation and
local day, counted once for each day that has ended (``DailyVolume``).

The review's "unusual volume" rule (``audit.review.high_volume``) counts, for every
user-day of its period, the person-data events; over a month of a national log that is a
``GROUP BY`` of millions of rows. An event's moment is the time it was appended, so a day
that has ended (``SUMMARY_MARGIN`` ago: its last events are committed) keeps its counts:
``summarise`` (``manage.py audit summarise``, on a timer) counts each such day once,
set-based, and the review reads the whole days its summary holds and counts the rest of
its period live (``ranges``). A day of an archived month is counted live again: the
summary counted events the log no longer holds. After an import of past events,
``rebuild`` forgets the summary (docs/adr/0037).
"""

# The SQL names the model's (quoted) table; every value is a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AccessEvent, ArchivedPartition, DailyVolume, VolumeSummaryState

# A day enters the summary once it ended this long ago (its last events are committed).
SUMMARY_MARGIN = dt.timedelta(hours=1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def ranges(
    start: dt.datetime, end: dt.datetime
) -> tuple[list[tuple[dt.date, dt.date]], list[tuple[dt.datetime, dt.datetime]]]:
    """[start, end) split into the runs of whole local days the summary holds (as
    ``[first day, day after the last)``) and the moments to count live (``[since, until)``)."""
    if start >= end:
        return [], []
    zone = ZoneInfo(settings.TIME_ZONE)
    first = start.astimezone(zone).date()
    if _midnight(first) < start:
        first += dt.timedelta(days=1)
    last = end.astimezone(zone).date()  # the summary may hold the days before it
    state = VolumeSummaryState.objects.filter(pk=1).values_list("filled_until", flat=True).first()
    last = min(last, state) if state else first
    # A day of an archived month (UTC months, detached from the log) is counted live: the
    # log no longer holds the events the summary counted.
    archived = set(
        ArchivedPartition.objects.filter(
            month__gte=(first - dt.timedelta(days=31)).replace(day=1), month__lt=last
        ).values_list("month", flat=True)
    )
    whole: list[tuple[dt.date, dt.date]] = []
    day = first
    while day < last:
        touched = {
            _midnight(day).astimezone(dt.UTC).date().replace(day=1),
            (_midnight(day + dt.timedelta(days=1)) - dt.timedelta(microseconds=1))
            .astimezone(dt.UTC)
            .date()
            .replace(day=1),
        }
        if not touched & archived:
            if whole and whole[-1][1] == day:
                whole[-1] = (whole[-1][0], day + dt.timedelta(days=1))
            else:
                whole.append((day, day + dt.timedelta(days=1)))
        day += dt.timedelta(days=1)
    live: list[tuple[dt.datetime, dt.datetime]] = []
    cursor = start
    for first_day, after in whole:
        if cursor < _midnight(first_day):
            live.append((cursor, _midnight(first_day)))
        cursor = _midnight(after)
    if cursor < end:
        live.append((cursor, end))
    return whole, live


def summarise(*, now: dt.datetime | None = None) -> int:
    """Count the person-data events of every local day that has ended (an hour ago at
    least: an event is committed moments after its time) and is not in the summary yet,
    by account name, organisation and day, into ``DailyVolume``; set-based, once per day.
    Return how many days were counted. ``manage.py audit summarise`` runs it on a timer."""
    now = now or timezone.now()
    target = (now - SUMMARY_MARGIN).astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    with transaction.atomic():
        VolumeSummaryState.objects.bulk_create([VolumeSummaryState(pk=1)], ignore_conflicts=True)
        state = VolumeSummaryState.objects.select_for_update().get(pk=1)
        if state.filled_until is not None and state.filled_until >= target:
            return 0
        with connection.cursor() as cursor:
            if state.filled_until is None:
                cursor.execute(f"SELECT min(occurred_at) FROM {table}")
                earliest = cursor.fetchone()[0]
                since = (
                    earliest.astimezone(ZoneInfo(settings.TIME_ZONE)).date() if earliest else target
                )
            else:
                since = state.filled_until
            cursor.execute(
                "INSERT INTO audit_dailyvolume (day, username, organisation_name, count)"
                " SELECT (occurred_at AT TIME ZONE %s)::date, username, organisation_name,"
                f" count(*) FROM {table} WHERE person_id IS NOT NULL"
                " AND occurred_at >= %s AND occurred_at < %s GROUP BY 1, 2, 3",
                [settings.TIME_ZONE, _midnight(since), _midnight(target)],
            )
        state.filled_until = target
        state.save(update_fields=["filled_until"])
    return max(0, (target - since).days)


def rebuild() -> None:
    """Forget the summary (after an import of past events): the next fill counts the whole
    log again."""
    with transaction.atomic():
        VolumeSummaryState.objects.all().delete()
        DailyVolume.objects.all().delete()
