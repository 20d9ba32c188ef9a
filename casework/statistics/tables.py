"""A period's publication: the tables, medians and trends of one programme, suppressed.

``report(...)`` is what the dashboard, the CSV files, the printable report and
the PDF all show; every count in it has passed ``disclosure.protect``.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from casework.models import Person
from casework.statistics import disclosure, summary
from casework.statistics import periods as p
from casework.statistics.spec import Label, ProgrammeStatistics

AGE, GENDER, AREA, DETAIL = "age", "gender", "area", "detail"
DIMENSION_LABELS = {AGE: _("Age band"), GENDER: _("Gender"), AREA: _("Area")}
AREA_NOT_SHOWN = ""
NOT_SHOWN = "\u2013"  # en dash: a median over too few cases
TREND_LENGTH = {p.MONTH: 12, p.QUARTER: 8, p.YEAR: 5}


def _dimension_rows(spec: ProgrammeStatistics) -> dict[str, list[tuple[object, Label]]]:
    if spec.person is None:
        return {}
    return {
        AGE: list(enumerate(spec.age_band_labels())),
        GENDER: list(Person.Gender.choices),
        AREA: [*Person.Area.choices, (AREA_NOT_SHOWN, _("Area not shown"))],
    }


@dataclass(frozen=True)
class Measure:
    key: str
    label: Label
    detail_label: Label = ""
    detail_choices: tuple = ()


def measures(spec: ProgrammeStatistics) -> list[Measure]:
    found = [Measure(e.key, e.label, e.detail_label, tuple(e.detail_choices)) for e in spec.events]
    found += [Measure(s.key, s.label) for s in spec.stocks if s.published]
    return found


def _breakdowns(spec, raw: summary.PeriodCounts) -> dict[str, dict[tuple, int]]:
    """measure -> {(dimension, value): count} and measure -> {("", ""): total}."""
    by_measure: dict[str, dict[tuple, int]] = {m.key: {} for m in measures(spec)}
    stocks = {s.key for s in spec.stocks if s.published}
    sources = [(raw.events, False), (raw.stocks_end, True)]
    for source, is_stock in sources:
        for (measure, detail, band, gender, area), count in source.items():
            if measure not in by_measure or (measure in stocks) != is_stock:
                continue
            cells = by_measure[measure]
            for ref in (("", ""), (AGE, band), (GENDER, gender), (AREA, area), (DETAIL, detail)):
                cells[ref] = cells.get(ref, 0) + count
    return by_measure


def publication(spec: ProgrammeStatistics, raw: summary.PeriodCounts, limit: int):
    """The protected publication of one period (and the counts behind its rows)."""
    dims = _dimension_rows(spec)
    totals, tables = {}, []
    for measure, cells in zip(measures(spec), _breakdowns(spec, raw).values(), strict=True):
        totals[measure.key] = disclosure.Cell(cells.get(("", ""), 0))
        for dimension, rows in dims.items():
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
    return disclosure.protect(disclosure.Publication(totals, tables, threshold=limit))


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


def selection_choices(spec: ProgrammeStatistics) -> list[tuple[str, Label]]:
    """The selections offered: one area, one gender or one age band (never two at once)."""
    choices = []
    for dimension, rows in _dimension_rows(spec).items():
        for value, label in rows:
            if dimension == AREA and value == AREA_NOT_SHOWN:
                continue
            choices.append((f"{dimension}:{value}", f"{DIMENSION_LABELS[dimension]}: {label}"))
    return choices


def parse_selection(spec: ProgrammeStatistics, value: str) -> tuple[str, object] | None:
    if not value:
        return None
    if value not in dict(selection_choices(spec)):
        raise disclosure.SelectionRefused(_("Choose one of the selections offered."))
    dimension, raw = value.split(":", 1)
    return dimension, int(raw) if dimension == AGE else raw


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


def report(
    spec: ProgrammeStatistics,
    period: p.Period,
    *,
    selection: tuple[str, object] | None = None,
    trends: bool = True,
) -> ProgrammeReport:
    """The programme's publication for ``period`` (one selection, or all cases)."""
    limit = disclosure.threshold()
    wanted = period.previous(TREND_LENGTH[period.kind]) if trends else [period]
    raw = summary.counts(spec, wanted)
    published = {each: publication(spec, raw[each], limit) for each in wanted}
    current = published[period]
    labels = {m.key: m for m in measures(spec)}
    result = ProgrammeReport(spec=spec, period=period, threshold=limit, overview=[])
    if selection is not None:
        disclosure.check_selection(_population(spec, raw[period], selection), limit)
        dimension, value = selection
        result.selection = selection
        result.selection_label = dict(selection_choices(spec))[f"{dimension}:{value}"]
        tables = {t.key: t for t in current.tables}
        for key, measure in labels.items():
            table = tables[f"{key}.{dimension}"]
            cell = (
                table.rows[value]
                if not table.withheld
                else disclosure.Cell(0, disclosure.SECONDARY)
            )
            result.overview.append(_row(measure.label, cell, limit))
        return result
    for key, measure in labels.items():
        result.overview.append(_row(measure.label, current.totals[key], limit))
    dims = _dimension_rows(spec)
    for table in current.tables:
        measure_key, dimension = table.key.split(".")
        measure = labels[measure_key]
        if dimension == DETAIL:
            heading, row_labels = measure.detail_label, dict(measure.detail_choices)
            row_labels.setdefault("", _("Not stated"))
        else:
            heading, row_labels = DIMENSION_LABELS[dimension], dict(dims[dimension])
        result.tables.append(
            ShownTable(
                key=table.key,
                title=f"{measure.label}: {str(heading).lower()}",
                heading=heading,
                rows=[_row(row_labels[v], c, limit) for v, c in table.rows.items()],
                total=_row(_("Total"), current.totals[measure_key], limit),
                withheld=table.withheld,
            )
        )
    for duration in spec.durations:
        histogram = raw[period].durations.get(duration.key, {})
        result.medians.append(Median(duration.label, _median(histogram, limit)))
    if trends:
        for key in spec.chart_measures:
            points = [
                TrendPoint(each, _row(each.label, published[each].totals[key], limit))
                for each in wanted
            ]
            result.trends.append(Trend(key, labels[key].label, points))
    return result
