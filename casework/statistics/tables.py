"""A period's publication: the tables, medians and trends of one programme, suppressed.

``report(...)`` is what the dashboard, the CSV files, the printable report and
the PDF all show; every count in it has passed ``disclosure.protect``.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from casework.models import Person
from casework.statistics import disclosure, registry, summary
from casework.statistics import periods as p
from casework.statistics.spec import AGE, AREA, GENDER, Label, ProgrammeStatistics, Stock

DETAIL = "detail"
DIMENSION_LABELS = {AGE: _("Age band"), GENDER: _("Gender"), AREA: _("Area")}
AREA_NOT_SHOWN = ""
NOT_SHOWN = "\u2013"  # en dash: a median over too few cases
TREND_LENGTH = {p.MONTH: 12, p.QUARTER: 8, p.YEAR: 5}


@dataclass(frozen=True)
class Measure:
    key: str
    label: Label
    detail_label: Label = ""
    detail_choices: tuple = ()
    dimensions: tuple[str, ...] = ()
    stock: bool = False


def measures(spec: ProgrammeStatistics) -> list[Measure]:
    return [
        Measure(
            item.key,
            item.label,
            item.detail.label,
            tuple(item.detail.choices),
            spec.dimensions_of(item),
            isinstance(item, Stock),
        )
        for item in [*spec.events, *(s for s in spec.stocks if s.published)]
    ]


def _dimension_rows(spec: ProgrammeStatistics, dimension: str) -> list[tuple[object, Label]]:
    """The rows of a breakdown (a value outside them is counted in the last row)."""
    if dimension == AGE:
        return [*enumerate(spec.age_band_labels()), (summary.NO_BAND, _("Age not stated"))]
    if dimension == GENDER:
        return list(Person.Gender.choices)
    return [*Person.Area.choices, (AREA_NOT_SHOWN, _("Area not shown"))]


_FALLBACK = {AGE: summary.NO_BAND, GENDER: Person.Gender.UNKNOWN.value, AREA: AREA_NOT_SHOWN}


def _breakdowns(spec, raw: summary.PeriodCounts) -> dict[str, dict[tuple, int]]:
    """measure -> {(dimension, value): count} and measure -> {("", ""): total}."""
    by_measure: dict[str, dict[tuple, int]] = {m.key: {} for m in measures(spec)}
    stocks = {s.key for s in spec.stocks if s.published}
    known = {d: {v for v, _l in _dimension_rows(spec, d)} for d in (AGE, GENDER, AREA)}

    def row(dimension, value):  # a value outside the rows is counted in the fallback row
        return value if value in known[dimension] else _FALLBACK[dimension]

    sources = [(raw.events, False), (raw.stocks_end, True)]
    for source, is_stock in sources:
        for (measure, detail, band, gender, area), count in source.items():
            if measure not in by_measure or (measure in stocks) != is_stock:
                continue
            cells = by_measure[measure]
            refs = (
                ("", ""),
                (AGE, row(AGE, band)),
                (GENDER, row(GENDER, gender)),
                (AREA, row(AREA, area)),
                (DETAIL, detail),
            )
            for ref in refs:
                cells[ref] = cells.get(ref, 0) + count
    return by_measure


def build(spec: ProgrammeStatistics, raw: summary.PeriodCounts, limit: int):
    """One period's measures and their breakdown tables, not yet protected."""
    totals, tables = {}, []
    for measure, cells in zip(measures(spec), _breakdowns(spec, raw).values(), strict=True):
        totals[measure.key] = disclosure.Cell(cells.get(("", ""), 0))
        for dimension in measure.dimensions:
            rows = _dimension_rows(spec, dimension)
            if dimension == AGE and not cells.get((AGE, summary.NO_BAND)):
                rows = rows[:-1]  # "age not stated" only where someone is in it
            tables.append(
                disclosure.Table(
                    key=f"{measure.key}.{dimension}",
                    total=measure.key,
                    rows={
                        value: disclosure.Cell(cells.get((dimension, value), 0))
                        for value, _l in rows
                    },
                )
            )
        if measure.detail_choices:
            rows = list(measure.detail_choices)
            known = {value for value, _l in rows}
            extra = {value for (dimension, value) in cells if dimension == DETAIL} - known
            if extra:  # e.g. no close reason recorded
                rows.append(("", _("Not stated")))
            table_rows = {
                value: disclosure.Cell(cells.get((DETAIL, value), 0)) for value, _l in rows
            }
            for value in extra - {""}:
                table_rows[""].value += cells[(DETAIL, value)]
            tables.append(disclosure.Table(f"{measure.key}.{DETAIL}", measure.key, table_rows))
    return disclosure.Publication(totals, tables, threshold=limit)


def publication(spec: ProgrammeStatistics, raw: summary.PeriodCounts, limit: int):
    """The protected publication of one period on its own, with every breakdown (what a
    year publishes; see :func:`year_publication` for how a year is protected with its
    quarters and months)."""
    return disclosure.protect(build(spec, raw, limit))


# --- A calendar year, protected jointly ------------------------------------------------------


@dataclass
class YearPublication:
    """A calendar year's publication: the year with its breakdowns, and the totals of
    its quarters and months, protected together (a month's count cannot be worked out
    from the year minus the other months)."""

    year: int
    joint: disclosure.Publication

    def totals(self, period: p.Period) -> dict[str, disclosure.Cell]:
        prefix = f"{period.key}|"
        return {
            key[len(prefix) :]: cell
            for key, cell in self.joint.totals.items()
            if key.startswith(prefix)
        }

    def tables(self, period: p.Period) -> list[disclosure.Table]:
        """The breakdown tables of ``period`` (a year only: quarters and months publish
        their totals)."""
        if period.kind != p.YEAR:
            return []
        prefix = f"{period.key}|"
        return [t for t in self.joint.tables if not t.linked and t.key.startswith(prefix)]


def year_publication(
    spec: ProgrammeStatistics,
    year: int,
    raw_year: summary.PeriodCounts,
    monthly: dict[int, dict[str, int]],
    limit: int,
) -> YearPublication:
    """Protect the year ``year`` jointly with its quarters and months.

    The year's measures and breakdown tables come from ``raw_year``; every quarter's
    and month's measure from ``monthly``. For an event, the quarters add up to the
    year and each quarter's months to the quarter (tables of the same publication,
    ``linked``); a stock at the end of a quarter is the same cell as at the end of
    its last month (and the year's as the fourth quarter's). The result is a tree of
    sums, protected exactly like a single period.
    """
    whole = p.Period(year * 12, p.YEAR)
    base = build(spec, raw_year, limit)
    totals: dict[str, disclosure.Cell] = {}
    tables: list[disclosure.Table] = []
    for measure in measures(spec):
        year_key = f"{whole.key}|{measure.key}"
        year_cell = base.totals[measure.key]
        month_cells = {}
        for index in range(year * 12, year * 12 + 12):
            month = p.Period(index, p.MONTH)
            value = monthly.get(index, {}).get(measure.key, 0)
            if measure.stock and index == year * 12 + 11:
                month_cells[month] = year_cell  # the year ends with its last month
            else:
                month_cells[month] = disclosure.Cell(value)
        totals[year_key] = year_cell
        quarter_rows = {}
        for q in range(4):
            quarter = p.Period(year * 12 + 3 * q, p.QUARTER)
            months = [p.Period(quarter.first + i, p.MONTH) for i in range(3)]
            if measure.stock:
                cell = month_cells[months[-1]]
            else:
                cell = disclosure.Cell(sum(month_cells[m].value for m in months))
                tables.append(
                    disclosure.Table(
                        key=f"{quarter.key}|{measure.key}.months",
                        total=f"{quarter.key}|{measure.key}",
                        rows={m.key: month_cells[m] for m in months},
                        linked=True,
                    )
                )
            totals[f"{quarter.key}|{measure.key}"] = cell
            quarter_rows[quarter.key] = cell
        for month, cell in month_cells.items():
            totals[f"{month.key}|{measure.key}"] = cell
        if not measure.stock:
            tables.append(
                disclosure.Table(
                    key=f"{whole.key}|{measure.key}.quarters",
                    total=year_key,
                    rows=quarter_rows,
                    linked=True,
                )
            )
    for table in base.tables:
        table.key = f"{whole.key}|{table.key}"
        table.total = f"{whole.key}|{table.total}"
        tables.append(table)
    joint = disclosure.Publication(totals, tables, threshold=limit)
    return YearPublication(year, disclosure.protect(joint))


# --- What the pages show --------------------------------------------------------------------


@dataclass
class Row:
    label: Label
    display: str
    value: int | None  # None when hidden
    state: str


@dataclass
class ShownTable:
    key: str
    title: Label
    heading: Label
    rows: list[Row]
    total: Row
    withheld: bool = False


@dataclass
class Median:
    label: Label
    display: str  # days, or a dash with too few cases


@dataclass
class TrendPoint:
    period: p.Period
    row: Row


@dataclass
class Trend:
    key: str
    label: Label
    points: list[TrendPoint]


@dataclass
class ProgrammeReport:
    spec: ProgrammeStatistics
    period: p.Period
    threshold: int
    overview: list[Row]
    tables: list[ShownTable] = field(default_factory=list)
    medians: list[Median] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    selection: tuple[str, object] | None = None
    selection_label: str = ""
    refusal: str = ""  # the selection is refused for this programme


def refused(spec: ProgrammeStatistics, period: p.Period, message: str) -> ProgrammeReport:
    """A programme's place on the page when the selection is refused for it."""
    return ProgrammeReport(
        spec=spec, period=period, threshold=disclosure.threshold(), overview=[], refusal=message
    )


def _row(label, cell: disclosure.Cell, limit: int) -> Row:
    return Row(label, cell.display(limit), cell.shown_value(), cell.state)


def _median(histogram: dict[int, int], limit: int) -> str:
    count = sum(histogram.values())
    if not disclosure.median_shown(count, limit):
        return NOT_SHOWN
    values = []
    for days, n in sorted(histogram.items()):
        values.extend([days] * n)
    value = stats.median(values)
    return f"{value:g}"


def _age_key(band: tuple[int | None, int | None]) -> str:
    low, high = band
    return f"{'' if low is None else low}-{'' if high is None else high}"


def selection_choices(spec: ProgrammeStatistics) -> list[tuple[str, Label]]:
    """The selections offered: one area, one gender or one age band (never two at once).

    An age band is named by its ages (``age:15-17``), so that programmes with other
    bands do not offer it under the same name."""
    offered = {d for m in measures(spec) for d in m.dimensions}
    choices = []
    labels = spec.age_band_labels()
    for dimension in (AGE, GENDER, AREA):
        if dimension not in offered:
            continue
        if dimension == AGE:
            for band, label in zip(spec.age_bands, labels, strict=True):
                choices.append((f"age:{_age_key(band)}", f"{DIMENSION_LABELS[AGE]}: {label}"))
            continue
        for value, label in _dimension_rows(spec, dimension):
            if dimension == AREA and value == AREA_NOT_SHOWN:
                continue
            choices.append((f"{dimension}:{value}", f"{DIMENSION_LABELS[dimension]}: {label}"))
    return choices


class NotOffered(LookupError):
    """A selection another programme offers but this one does not (it is left out)."""


def parse_selection(spec: ProgrammeStatistics, value: str) -> tuple[str, object] | None:
    """``None`` for all cases; raises ``NotOffered`` for a selection of another programme."""
    if not value:
        return None
    if value not in dict(selection_choices(spec)):
        raise NotOffered(value)
    dimension, raw = value.split(":", 1)
    if dimension == AGE:
        keys = [_age_key(band) for band in spec.age_bands]
        return dimension, keys.index(raw)
    return dimension, raw


def _population(spec, raw: summary.PeriodCounts, selection) -> int:
    """Cases of the selection open at the period's start or entering during it."""
    dimension, wanted = selection
    position = {AGE: 2, GENDER: 3, AREA: 4}[dimension]
    total = 0
    for source, measure in ((raw.stocks_start, spec.open_stock), (raw.events, spec.entry)):
        for key, count in source.items():
            if key[0] == measure and key[position] == wanted:
                total += count
    return total


def _years(periods: list[p.Period]) -> list[int]:
    return sorted({each.first // 12 for each in periods})


def report(
    spec: ProgrammeStatistics,
    period: p.Period,
    *,
    selection: tuple[str, object] | None = None,
    trends: bool = True,
) -> ProgrammeReport:
    """The programme's publication for ``period`` (one selection, or all cases).

    Every count comes from the joint publication of its calendar year
    (:func:`year_publication`): the same cell shows the same mark in the year, in a
    quarter's or a month's overview and in every trend.
    """
    limit = disclosure.threshold()
    if selection is not None and period.kind != p.YEAR:
        raise disclosure.SelectionRefused(
            _(
                "A selection is shown for a whole year only: months and quarters publish "
                "their totals, not their breakdowns."
            )
        )
    wanted = period.previous(TREND_LENGTH[period.kind]) if trends else [period]
    years = _years(wanted)
    whole = [p.Period(year * 12, p.YEAR) for year in years]
    raw = summary.counts(spec, whole if period.kind == p.YEAR else [*whole, period])
    monthly = summary.monthly_totals(spec, years)
    joint = {
        year: year_publication(spec, year, raw[each], monthly, limit)
        for year, each in zip(years, whole, strict=True)
    }

    def published(each: p.Period) -> YearPublication:
        return joint[each.first // 12]

    labels = {m.key: m for m in measures(spec)}
    result = ProgrammeReport(spec=spec, period=period, threshold=limit, overview=[])
    totals = published(period).totals(period)
    if selection is not None:
        disclosure.check_selection(_population(spec, raw[period], selection), limit)
        dimension, value = selection
        result.selection = selection
        key = (
            f"age:{_age_key(spec.age_bands[value])}"
            if dimension == AGE
            else (f"{dimension}:{value}")
        )
        result.selection_label = dict(selection_choices(spec))[key]
        tables = {t.key.split("|", 1)[1]: t for t in published(period).tables(period)}
        for measure_key, measure in labels.items():
            table = tables.get(f"{measure_key}.{dimension}")
            if table is None:  # not broken down this way (e.g. anonymised discussions)
                result.overview.append(Row(measure.label, NOT_SHOWN, None, "none"))
                continue
            cell = (
                table.rows[value]
                if not table.withheld
                else disclosure.Cell(0, disclosure.SECONDARY)
            )
            result.overview.append(_row(measure.label, cell, limit))
        return result
    for key, measure in labels.items():
        result.overview.append(_row(measure.label, totals[key], limit))
    for table in published(period).tables(period):
        measure_key, dimension = table.key.split("|", 1)[1].split(".")
        measure = labels[measure_key]
        if dimension == DETAIL:
            heading, row_labels = measure.detail_label, dict(measure.detail_choices)
            row_labels.setdefault("", _("Not stated"))
        else:
            heading, row_labels = (
                DIMENSION_LABELS[dimension],
                dict(_dimension_rows(spec, dimension)),
            )
        result.tables.append(
            ShownTable(
                key=table.key.split("|", 1)[1],
                title=f"{measure.label}: {str(heading).lower()}",
                heading=heading,
                rows=[_row(row_labels[v], c, limit) for v, c in table.rows.items()],
                total=_row(_("Total"), totals[measure_key], limit),
                withheld=table.withheld,
            )
        )
    for duration in spec.durations:
        histogram = raw[period].durations.get(duration.key, {})
        result.medians.append(Median(duration.label, _median(histogram, limit)))
    if trends:
        for key in spec.chart_measures:
            points = [
                TrendPoint(each, _row(each.label, published(each).totals(each)[key], limit))
                for each in wanted
            ]
            result.trends.append(Trend(key, labels[key].label, points))
    return result


def reports(
    period: p.Period, selection: str = "", *, trends: bool = True, codes: frozenset | None = None
) -> list[ProgrammeReport]:
    """Every programme's publication for ``period`` and ``selection`` (a value of
    :func:`selection_choices`, ``""`` for all cases) — those of ``codes`` only, if given
    — in the order shown: what the dashboard shows. A programme that does not offer the
    selection is left out; one where it is refused shows the refusal instead. Raises
    ``SelectionRefused`` when it is refused in every programme."""
    found, refusals = [], []
    for spec in registry.programmes().values():
        if codes is not None and spec.code not in codes:
            continue
        try:
            chosen = parse_selection(spec, selection)
        except NotOffered:  # another programme's breakdown (its age bands)
            continue
        try:
            found.append(report(spec, period, selection=chosen, trends=trends))
        except disclosure.SelectionRefused as exc:
            refusals.append(exc.args[0])  # still lazy: rendered where it is shown
            found.append(refused(spec, period, str(exc)))
    if refusals and len(refusals) == len(found):
        raise disclosure.SelectionRefused(refusals[0])
    return found
