"""Counting in the database: a programme's counts by month, kept for months that have ended.

The counts of a month that has ended do not change afterwards (every moment a
case records is "now" when recorded), so they are counted once, set-based,
into ``MonthlyCount``: by the ``refresh_statistics`` command on a timer, ahead of
any view (incrementally: only the months that ended since its last run), or by
the first view after a month ended if the timer has not run yet (ADR 0033); the
running month is counted live from the case tables (indexed timestamp
columns). Published figures of past months therefore stay as first published
— later corrections of a person's area or gender do not rewrite them (and
``rebuild`` recounts everything, e.g. after a data migration).

With the months, ``fill`` keeps two roll-ups of them (ADR 0037, session 18), so that
what a view reads grows with the breakdown's combinations, not with the history:
``YearlyCount``, a year's months added up by the same breakdown (a year's tables and
the stocks before a year), and ``MonthlyTotal``, each month without its breakdown (the
months and quarters of a year, the trends).
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
from casework.statistics.models import MonthlyCount, MonthlyTotal, SummaryState, YearlyCount
from casework.statistics.spec import Person, Plain, ProgrammeStatistics, Rows

EARLIEST = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
NO_BAND = -1
# (measure, detail, age band, gender, area) -> count
Key = tuple[str, str, int, str, str]


def _local_month(expression: str) -> str:
    return f"date_trunc('month', {expression} AT TIME ZONE %(tz)s)::date"


def _dimensions(spec: ProgrammeStatistics, person: Person | Plain | None) -> str:
    if person is None:
        return f"{NO_BAND} AS age_band, '' AS gender, '' AS area"
    if isinstance(person, Plain):
        return (
            f"({person.age_band}) AS age_band, ({person.gender}) AS gender, ({person.area}) AS area"
        )
    age = f"(extract(year FROM {person.age_at} AT TIME ZONE %(tz)s)::int - {person.birth_year})"
    bands = " ".join(
        f"WHEN {age} BETWEEN {low if low is not None else -1000} AND "
        f"{high if high is not None else 1000} THEN {index}"
        for index, (low, high) in enumerate(spec.age_bands)
    )
    band = f"CASE {bands} ELSE {NO_BAND} END" if spec.age_bands else str(NO_BAND)
    area = f"CASE WHEN {person.protected_identity} > 0 THEN '' ELSE {person.area} END"
    return f"{band} AS age_band, {person.gender} AS gender, {area} AS area"


_DIMS = "age_band, gender, area"


def _own_rows(spec: ProgrammeStatistics, name: str, item: Rows, columns: str) -> str:
    """The CTE ``name`` of the rows of an event or a stock with a ``source`` of its own:
    their breakdown columns, ``columns`` (the moments) and the detail ``d``."""
    return (
        f"{name} AS NOT MATERIALIZED (SELECT {_dimensions(spec, item.person)},"
        f" {columns}, {item.detail.expression} AS d FROM {item.source} WHERE {item.where})"
    )


_WINDOW = "{0} >= %(since)s AND {0} < %(until)s"


def _event_part(name: str, key: str, at: str, detail: str) -> str:
    return (
        f"SELECT {_local_month(at)} AS month, '{key}' AS measure, {detail} AS detail,"
        f" {_DIMS}, 1 AS n FROM {name} WHERE {_WINDOW.format(at)}"
    )


def _stock_parts(name: str, key: str, start: str, end: str, detail: str) -> list[str]:
    return [
        f"SELECT {_local_month(start)}, '{key}', {detail}, {_DIMS}, 1 FROM {name}"
        f" WHERE {_WINDOW.format(start)}",
        f"SELECT {_local_month(end)}, '{key}', {detail}, {_DIMS}, -1 FROM {name}"
        f" WHERE {start} IS NOT NULL AND {_WINDOW.format(end)}",
    ]


def _select(spec: ProgrammeStatistics) -> str:
    """One SELECT of (month, measure, detail, age band, gender, area, count) for the
    moments in [%(since)s, %(until)s). Expressions come from the programme module.

    The programme's rows (one per case) are the CTE ``base``; an event or stock
    with rows of its own (``source``) gets a CTE of its own."""
    columns = [_dimensions(spec, spec.person)]
    ctes, parts = [], []
    for index, event in enumerate(spec.events):
        if spec.own_rows(event):
            name = f"rows_e{index}"
            ctes.append(_own_rows(spec, name, event, f"{event.at} AS e"))
            parts.append(_event_part(name, event.key, "e", "d"))
            continue
        columns.append(f"{event.at} AS e{index}")
        columns.append(f"{event.detail.expression} AS d{index}")
        parts.append(_event_part("base", event.key, f"e{index}", f"d{index}"))
    for index, stock in enumerate(spec.stocks):
        if spec.own_rows(stock):
            name = f"rows_s{index}"
            ctes.append(_own_rows(spec, name, stock, f"{stock.start} AS s, {stock.end} AS t"))
            parts.extend(_stock_parts(name, stock.key, "s", "t", "d"))
            continue
        columns.append(f"{stock.start} AS s{index}, {stock.end} AS t{index}")
        columns.append(f"{stock.detail.expression} AS sd{index}")
        parts.extend(_stock_parts("base", stock.key, f"s{index}", f"t{index}", f"sd{index}"))
    for index, duration in enumerate(spec.durations):
        columns.append(f"{duration.start} AS u{index}, {duration.end} AS v{index}")
        days = f"floor(extract(epoch FROM v{index} - u{index}) / 86400)::int::text"
        parts.append(
            f"SELECT {_local_month(f'v{index}')}, '{duration.key}', {days}, {NO_BAND}, '', '', 1"
            f" FROM base WHERE u{index} IS NOT NULL AND {_WINDOW.format(f'v{index}')}"
        )
    base = f"SELECT {', '.join(columns)} FROM {spec.source} WHERE {spec.where}"
    ctes.insert(0, f"base AS NOT MATERIALIZED ({base})")
    union = "\nUNION ALL\n".join(parts)
    return (
        f"WITH {', '.join(ctes)}\n"
        f"SELECT month, measure, detail, {_DIMS}, sum(n)::int FROM (\n{union}\n) AS x\n"
        f"GROUP BY month, measure, detail, {_DIMS} HAVING sum(n) <> 0"
    )


def _aware(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _params(since: datetime.datetime, until: datetime.datetime) -> dict:
    return {"tz": settings.TIME_ZONE, "since": since, "until": until}


def fill(spec: ProgrammeStatistics, *, today: datetime.date | None = None) -> int | None:
    """Count every month that has ended and is not in the summary yet (set-based, once);
    return how many months were counted (0: it was up to date; ``None``: the whole
    history, the first time).

    The ``refresh_statistics`` command on a timer calls it ahead of any view; a view
    calls it too, so that figures are right even when the timer has not run since a
    month ended (then it counts that one month, not the history)."""
    target = p.month_start(p.month_index(today or timezone.localdate()))
    with transaction.atomic():
        SummaryState.objects.bulk_create([SummaryState(programme=spec.code)], ignore_conflicts=True)
        state = SummaryState.objects.select_for_update().get(programme=spec.code)
        if state.filled_until is not None and state.filled_until >= target:
            return 0
        since = _aware(state.filled_until) if state.filled_until else EARLIEST
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO statistics_monthlycount"
                " (month, measure, detail, age_band, gender, area, count, programme) "
                + _select(spec).replace("sum(n)::int FROM", "sum(n)::int, %(code)s FROM", 1),
                {**_params(since, _aware(target)), "code": spec.code},
            )
            _roll_up(cursor, spec.code, state.filled_until or EARLIEST.date())
        before = state.filled_until
        state.filled_until = target
        state.save(update_fields=["filled_until"])
    return p.month_index(target) - p.month_index(before) if before else None


def _roll_up(cursor, code: str, since: datetime.date) -> None:
    """Keep the roll-ups equal to the months after the months from ``since`` were counted:
    every year from ``since``'s counted again from its months (at most twelve; the whole
    history the first time), the new months' totals added."""
    year = datetime.date(since.year, 1, 1)
    cursor.execute(
        "DELETE FROM statistics_yearlycount WHERE programme = %s AND year >= %s", [code, year]
    )
    cursor.execute(
        "INSERT INTO statistics_yearlycount"
        " (programme, year, measure, detail, age_band, gender, area, count)"
        " SELECT programme, date_trunc('year', month)::date, measure, detail, age_band, gender,"
        " area, sum(count) FROM statistics_monthlycount WHERE programme = %s AND month >= %s"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(count) <> 0",
        [code, year],
    )
    cursor.execute(
        "DELETE FROM statistics_monthlytotal WHERE programme = %s AND month >= %s", [code, since]
    )
    cursor.execute(
        "INSERT INTO statistics_monthlytotal (programme, month, measure, count)"
        " SELECT programme, month, measure, sum(count) FROM statistics_monthlycount"
        " WHERE programme = %s AND month >= %s GROUP BY 1, 2, 3 HAVING sum(count) <> 0",
        [code, since],
    )


def rebuild(spec: ProgrammeStatistics) -> None:
    """Forget the summary of ``spec`` (the next request recounts every month)."""
    with transaction.atomic():
        MonthlyCount.objects.filter(programme=spec.code).delete()
        YearlyCount.objects.filter(programme=spec.code).delete()
        MonthlyTotal.objects.filter(programme=spec.code).delete()
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
    """The raw counts of each period in ``wanted``: two statements whatever their number
    (and the running month's, live). A year is read from the year's roll-up, a quarter or
    a month from its months (``_events``, ``_stocks``)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    current = p.month_index(today)
    fill(spec, today=today)
    wanted = list(wanted)
    result = {period: PeriodCounts() for period in wanted}
    stock_keys = {s.key for s in spec.stocks}
    duration_keys = {d.key for d in spec.durations}
    stocks = list(stock_keys)
    with connection.cursor() as cursor:
        cursor.execute(*_events(spec, wanted, stocks))
        rows = cursor.fetchall()
        cursor.execute(*_stocks(spec, wanted, stocks))
        stock_rows = cursor.fetchall()
        live = []
        if any(period.last >= current for period in wanted):
            live = _running_month(spec, cursor, current, now)
    for idx, measure, detail, band, gender, area, count in rows:
        _add(result[wanted[idx]], "e", measure, detail, (band, gender, area), count, duration_keys)
    for measure, detail, band, gender, area, *sums in stock_rows:
        for idx, period in enumerate(wanted):
            for kind, count in (("z", sums[2 * idx]), ("a", sums[2 * idx + 1])):
                if count:
                    _add(result[period], kind, measure, detail, (band, gender, area), count, ())
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


def _events(spec: ProgrammeStatistics, wanted: list[p.Period], stocks: list[str]):
    """The statement of every period's events and durations (by the period's index in
    ``wanted``): a year's from its roll-up (``YearlyCount``: its rows grow with the
    breakdown's combinations, not with its months; one row a combination, nothing to add
    up), a quarter's or a month's from its months. Each part reads only the months of its
    periods (the bounds stated for the index)."""
    years = [(index, period) for index, period in enumerate(wanted) if period.kind == p.YEAR]
    others = [(index, period) for index, period in enumerate(wanted) if period.kind != p.YEAR]
    columns = "periods.idx, m.measure, m.detail, m.age_band, m.gender, m.area"
    parts, params = [], []
    for periods, column, sql in (
        (
            years,
            "year",
            f"SELECT {columns}, m.count FROM (VALUES {{values}}) AS periods(idx, first, last)"
            " JOIN statistics_yearlycount m ON m.year = periods.first",
        ),
        (
            others,
            "month",
            f"SELECT {columns}, sum(m.count) FROM (VALUES {{values}}) AS periods(idx, first, last)"
            " JOIN statistics_monthlycount m ON m.month BETWEEN periods.first AND periods.last",
        ),
    ):
        if not periods:
            continue
        values = ", ".join(["(%s, %s::date, %s::date)"] * len(periods))
        where = (
            f" WHERE m.programme = %s AND NOT m.measure = ANY(%s) AND m.{column} BETWEEN %s AND %s"
        )
        group = " GROUP BY 1, 2, 3, 4, 5, 6" if column == "month" else ""
        parts.append(sql.format(values=values) + where + group)
        for index, period in periods:
            params += [index, period.start, p.month_start(period.last)]
        params += [
            spec.code,
            stocks,
            min(period.start for _i, period in periods),
            p.month_start(max(period.last for _i, period in periods)),
        ]
    return "\nUNION ALL\n".join(parts), params


def _year_start(index: int) -> datetime.date:
    return p.month_start(index - index % 12)


def _stocks(spec: ProgrammeStatistics, wanted: list[p.Period], stocks: list[str]):
    """The statement of every stock at each period's end and start (two sums a period, in
    ``wanted``'s order), in one pass over the stocks' changes: the changes before a month
    are those of the years before its year (``YearlyCount``) and of the months of its
    year before it (none for January: a year's bounds read no month)."""
    befores = [k for period in wanted for k in (period.last + 1, period.first)]
    sums, params = [], []
    for before in befores:
        sums.append(
            "sum(m.count) FILTER (WHERE m.whole AND m.at < %s"
            " OR NOT m.whole AND m.at >= %s AND m.at < %s)"
        )
        params += [_year_start(before), _year_start(before), p.month_start(before)]
    columns = "measure, detail, age_band, gender, area, count"
    parts = [
        f"SELECT TRUE AS whole, year AS at, {columns} FROM statistics_yearlycount"
        " WHERE programme = %s AND measure = ANY(%s) AND year < %s"
    ]
    params += [spec.code, stocks, max(_year_start(before) for before in befores)]
    inside = [before for before in befores if before % 12]
    if inside:
        parts.append(
            f"SELECT FALSE, month, {columns} FROM statistics_monthlycount"
            " WHERE programme = %s AND measure = ANY(%s) AND month >= %s AND month < %s"
        )
        params += [
            spec.code,
            stocks,
            min(_year_start(before) for before in inside),
            p.month_start(max(inside)),
        ]
    union = " UNION ALL ".join(parts)
    sql = (
        f"SELECT m.measure, m.detail, m.age_band, m.gender, m.area, {', '.join(sums)}"
        f" FROM ({union}) AS m GROUP BY 1, 2, 3, 4, 5"
    )
    return sql, params


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


def monthly_totals(
    spec: ProgrammeStatistics,
    years: Iterable[int],
    *,
    now: datetime.datetime | None = None,
) -> dict[int, dict[str, int]]:
    """Each month of ``years`` (by month index): every event's count and every stock at
    the month's end, without breakdown (what a calendar year's months and quarters publish),
    read from ``MonthlyTotal``.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    current = p.month_index(today)
    fill(spec, today=today)
    years = sorted(set(years))
    first, last = years[0] * 12, years[-1] * 12 + 11
    stocks = [s.key for s in spec.stocks]
    durations = [d.key for d in spec.durations]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT month, measure, count FROM statistics_monthlytotal"
            " WHERE programme = %s AND month <= %s"
            " AND (measure = ANY(%s) OR (month >= %s AND NOT measure = ANY(%s)))",
            [spec.code, p.month_start(last), stocks, p.month_start(first), durations],
        )
        rows = [(p.month_index(month), measure, count) for month, measure, count in cursor]
        if first <= current <= last:
            rows += [
                (current, measure, count)
                for _m, measure, _d, _b, _g, _a, count in _running_month(spec, cursor, current, now)
                if measure not in durations
            ]
    changes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for index, measure, count in rows:
        changes[index][measure] += count
    result: dict[int, dict[str, int]] = {}
    running = defaultdict(int)
    for index in sorted(changes):
        if index >= first:
            break
        for key in stocks:
            running[key] += changes[index].get(key, 0)
    for index in range(first, last + 1):
        month = changes.get(index, {})
        for key in stocks:
            running[key] += month.get(key, 0)
        result[index] = {key: month.get(key, 0) for key in month if key not in stocks}
        result[index].update(running)
    return result
