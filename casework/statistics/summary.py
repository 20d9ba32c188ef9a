"""Counting in the database: a programme's counts by month, kept for months that have ended.

The counts of a month that has ended do not change afterwards (every moment a
case records is "now" when recorded), so they are counted once, set-based,
into ``MonthlyCount`` the first time a period after them is asked for; the
running month is counted live from the case tables (indexed timestamp
columns). Published figures of past months therefore stay as first published
— later corrections of a person's area or gender do not rewrite them (and
``rebuild`` recounts everything, e.g. after a data migration).
"""

# The SQL is assembled from the programme modules' expressions (code, never user input);
# every value is a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from casework.statistics import periods as p
from casework.statistics.models import MonthlyCount, SummaryState
from casework.statistics.spec import ProgrammeStatistics

EARLIEST = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
NO_BAND = -1
# (measure, detail, age band, gender, area) -> count
Key = tuple[str, str, int, str, str]


def _local_month(expression: str) -> str:
    return f"date_trunc('month', {expression} AT TIME ZONE %(tz)s)::date"


def _dimensions(spec: ProgrammeStatistics) -> str:
    person = spec.person
    if person is None:
        return f"{NO_BAND} AS age_band, '' AS gender, '' AS area"
    age = f"(extract(year FROM {person.age_at} AT TIME ZONE %(tz)s)::int - {person.birth_year})"
    bands = " ".join(
        f"WHEN {age} {'<= ' + str(high) if high is not None else '>= ' + str(low)} THEN {index}"
        for index, (low, high) in enumerate(spec.age_bands)
    )
    band = f"CASE {bands} ELSE {NO_BAND} END" if spec.age_bands else str(NO_BAND)
    area = f"CASE WHEN {person.protected_identity} > 0 THEN '' ELSE {person.area} END"
    return f"{band} AS age_band, {person.gender} AS gender, {area} AS area"


def _select(spec: ProgrammeStatistics) -> str:
    """One SELECT of (month, measure, detail, age band, gender, area, count) for the
    moments in [%(since)s, %(until)s). Expressions come from the programme module."""
    columns = [_dimensions(spec)]
    for index, event in enumerate(spec.events):
        columns.append(f"{event.at} AS e{index}")
        detail = event.detail or "''"
        columns.append(f"{detail} AS d{index}")
    for index, stock in enumerate(spec.stocks):
        columns.append(f"{stock.start} AS s{index}, {stock.end} AS t{index}")
    for index, duration in enumerate(spec.durations):
        columns.append(f"{duration.start} AS u{index}, {duration.end} AS v{index}")
    base = f"SELECT {', '.join(columns)} FROM {spec.source} WHERE {spec.where}"
    dims = "age_band, gender, area"
    window = "{0} >= %(since)s AND {0} < %(until)s"
    parts = []
    for index, event in enumerate(spec.events):
        column = f"e{index}"
        parts.append(
            f"SELECT {_local_month(column)} AS month, '{event.key}' AS measure, d{index} AS detail,"
            f" {dims}, 1 AS n FROM base WHERE {window.format(column)}"
        )
    for index, stock in enumerate(spec.stocks):
        parts.append(
            f"SELECT {_local_month(f's{index}')}, '{stock.key}', '', {dims}, 1 FROM base"
            f" WHERE {window.format(f's{index}')}"
        )
        parts.append(
            f"SELECT {_local_month(f't{index}')}, '{stock.key}', '', {dims}, -1 FROM base"
            f" WHERE s{index} IS NOT NULL AND {window.format(f't{index}')}"
        )
    for index, duration in enumerate(spec.durations):
        days = f"floor(extract(epoch FROM v{index} - u{index}) / 86400)::int::text"
        parts.append(
            f"SELECT {_local_month(f'v{index}')}, '{duration.key}', {days}, {NO_BAND}, '', '', 1"
            f" FROM base WHERE u{index} IS NOT NULL AND {window.format(f'v{index}')}"
        )
    union = "\nUNION ALL\n".join(parts)
    return (
        f"WITH base AS NOT MATERIALIZED ({base})\n"
        f"SELECT month, measure, detail, {dims}, sum(n)::int FROM (\n{union}\n) AS x\n"
        f"GROUP BY month, measure, detail, {dims} HAVING sum(n) <> 0"
    )


def _aware(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _params(since: datetime.datetime, until: datetime.datetime) -> dict:
    return {"tz": settings.TIME_ZONE, "since": since, "until": until}


def fill(spec: ProgrammeStatistics, *, today: datetime.date | None = None) -> None:
    """Count every month that has ended and is not in the summary yet (set-based, once)."""
    target = p.month_start(p.month_index(today or timezone.localdate()))
    with transaction.atomic():
        SummaryState.objects.bulk_create([SummaryState(programme=spec.code)], ignore_conflicts=True)
        state = SummaryState.objects.select_for_update().get(programme=spec.code)
        if state.filled_until is not None and state.filled_until >= target:
            return
        since = _aware(state.filled_until) if state.filled_until else EARLIEST
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO statistics_monthlycount"
                " (month, measure, detail, age_band, gender, area, count, programme) "
                + _select(spec).replace("sum(n)::int FROM", "sum(n)::int, %(code)s FROM", 1),
                {**_params(since, _aware(target)), "code": spec.code},
            )
        state.filled_until = target
        state.save(update_fields=["filled_until"])


def rebuild(spec: ProgrammeStatistics) -> None:
    """Forget the summary of ``spec`` (the next request recounts every month)."""
    with transaction.atomic():
        MonthlyCount.objects.filter(programme=spec.code).delete()
        SummaryState.objects.filter(programme=spec.code).delete()


@dataclass
class PeriodCounts:
    """Raw counts of one period (before any suppression: never shown as such)."""

    events: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    stocks_end: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    stocks_start: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    durations: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )


def counts(
    spec: ProgrammeStatistics,
    wanted: Iterable[p.Period],
    *,
    now: datetime.datetime | None = None,
) -> dict[p.Period, PeriodCounts]:
    """The raw counts of each period in ``wanted``: two queries whatever their number."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    current = p.month_index(today)
    fill(spec, today=today)
    wanted = list(wanted)
    result = {period: PeriodCounts() for period in wanted}
    stock_keys = {s.key for s in spec.stocks}
    duration_keys = {d.key for d in spec.durations}
    values = ", ".join(["(%s, %s::date, %s::date)"] * len(wanted))
    params: list = []
    for index, period in enumerate(wanted):
        params += [index, period.start, p.month_start(period.last)]
    sql = f"""
        WITH periods(idx, first, last) AS (VALUES {values})
        SELECT periods.idx, 'e', m.measure, m.detail, m.age_band, m.gender, m.area, sum(m.count)
        FROM statistics_monthlycount m
        JOIN periods ON m.month BETWEEN periods.first AND periods.last
        WHERE m.programme = %s AND NOT m.measure = ANY(%s)
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        UNION ALL
        SELECT periods.idx, 'z', m.measure, m.detail, m.age_band, m.gender, m.area, sum(m.count)
        FROM statistics_monthlycount m JOIN periods ON m.month <= periods.last
        WHERE m.programme = %s AND m.measure = ANY(%s)
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        UNION ALL
        SELECT periods.idx, 'a', m.measure, m.detail, m.age_band, m.gender, m.area, sum(m.count)
        FROM statistics_monthlycount m JOIN periods ON m.month < periods.first
        WHERE m.programme = %s AND m.measure = ANY(%s)
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    """
    stocks = list(stock_keys)
    params += [spec.code, stocks, spec.code, stocks, spec.code, stocks]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        live = []
        if any(period.last >= current for period in wanted):
            live = _running_month(spec, cursor, current, now)
    for idx, kind, measure, detail, band, gender, area, count in rows:
        _add(result[wanted[idx]], kind, measure, detail, (band, gender, area), count, duration_keys)
    for _month, measure, detail, band, gender, area, count in live:
        for period in wanted:
            if period.first <= current <= period.last:
                kind = "z" if measure in stock_keys else "e"
                _add(
                    result[period],
                    kind,
                    measure,
                    detail,
                    (band, gender, area),
                    count,
                    duration_keys,
                )
    return result


def _running_month(spec: ProgrammeStatistics, cursor, current: int, now) -> list:
    """The running month, counted live; kept for ``STATS_LIVE_SECONDS`` (default 300) so
    that a meeting browsing the dashboard does not recount it on every page."""
    seconds = settings.SAMVERKAN.get("STATS_LIVE_SECONDS", 300)
    key = f"statistics:live:{spec.code}:{current}"
    if seconds and (rows := cache.get(key)) is not None:
        return rows
    cursor.execute(_select(spec), _params(_aware(p.month_start(current)), now))
    rows = [tuple(row) for row in cursor.fetchall()]
    if seconds:
        cache.set(key, rows, seconds)
    return rows


def _add(target: PeriodCounts, kind, measure, detail, dims, count, duration_keys) -> None:
    if measure in duration_keys:
        target.durations[measure][int(detail)] += count
        return
    key = (measure, detail, *dims)
    {"e": target.events, "z": target.stocks_end, "a": target.stocks_start}[kind][key] += count
