"""Disclosure control: the one place that decides which numbers may be shown.

Every table, chart, CSV file and report is built from a :class:`Publication`
that :func:`protect` has gone over; nothing shows a count that did not pass
through here.

* **Primary suppression**: a count from 1 to the threshold minus one (default 5,
  ``SAMVERKAN["STATS_THRESHOLD"]``, never below 3) is shown as "<5".
* **Secondary suppression**: a period's publication is a set of measures
  (totals) and one-way tables that break a measure down (by age band, gender,
  area, close reason …); every table's rows add up to its measure, and the
  measures are shared by all tables of the period. :func:`feasible_ranges`
  computes, exactly, the values each hidden cell can take given everything
  published — the shown counts, the tables' sums and what the marks say
  ("<5" is 1 to threshold - 1; "\u00d7", a cell hidden to protect another, is at
  least the threshold, since smaller counts are "<5" and zeros are never
  hidden). While a hidden cell is pinned to a single value, :func:`protect`
  hides one more cell of the table that pins it (the smallest count at or
  above the threshold), or, if none is left, the measure itself, or, last,
  withholds that table.
* **Medians** only over at least the threshold number of cases.
* **Selections** (one area, gender or age band) only of at least the threshold
  number of cases; persons with protected identity are never counted by area
  (the programme's area column puts them in a row of their own, "area not
  shown", which is protected like any other cell).

The structure (one-way tables whose sums are shared measures) is what makes
the ranges exact and cheap: given the measure, each table is one equation
with bounded unknowns. Tests check the result independently with an integer
program over the whole publication.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

SHOWN, PRIMARY, SECONDARY = "shown", "primary", "secondary"
MIN_THRESHOLD = 3
DEFAULT_THRESHOLD = 5
SECONDARY_MARK = "\u00d7"  # multiplication sign
INF = math.inf


def threshold() -> int:
    """The configured threshold; refuses (like the system check) one below 3."""
    value = settings.SAMVERKAN.get("STATS_THRESHOLD", DEFAULT_THRESHOLD)
    if not isinstance(value, int) or value < MIN_THRESHOLD:
        raise ImproperlyConfigured(
            f"SAMVERKAN['STATS_THRESHOLD'] must be an integer of at least {MIN_THRESHOLD}."
        )
    return value


@dataclass
class Cell:
    value: int
    state: str = SHOWN

    @property
    def hidden(self) -> bool:
        return self.state != SHOWN

    def display(self, limit: int) -> str:
        """What every output shows: the count, "<5" or the secondary mark."""
        if self.state == PRIMARY:
            return f"<{limit}"
        if self.state == SECONDARY:
            return SECONDARY_MARK
        return str(self.value)

    def shown_value(self) -> int | None:
        return None if self.hidden else self.value


@dataclass
class Table:
    """A one-way breakdown of the measure ``total``: its rows add up to it."""

    key: str
    total: str
    rows: dict[str, Cell]
    withheld: bool = False


@dataclass
class Publication:
    """Everything published for one programme and period (and one selection)."""

    totals: dict[str, Cell]
    tables: list[Table] = field(default_factory=list)
    threshold: int = DEFAULT_THRESHOLD

    def tables_of(self, total: str) -> list[Table]:
        return [t for t in self.tables if t.total == total and not t.withheld]

    def cells(self) -> Iterator[tuple[tuple[str, str], Cell]]:
        for key, cell in self.totals.items():
            yield ("", key), cell
        for table in self.tables:
            if not table.withheld:
                for row, cell in table.rows.items():
                    yield (table.key, row), cell


def _domain(cell: Cell, limit: int) -> tuple[float, float]:
    if cell.state == PRIMARY:
        return 1, limit - 1
    if cell.state == SECONDARY:
        return limit, INF
    return cell.value, cell.value


def _table_bounds(table: Table, limit: int) -> tuple[int, float, float]:
    """(sum of the shown rows, least and greatest sum of the hidden rows)."""
    shown = sum(c.value for c in table.rows.values() if not c.hidden)
    low = high = 0
    for cell in table.rows.values():
        if cell.hidden:
            lo, hi = _domain(cell, limit)
            low += lo
            high += hi
    return shown, low, high


def feasible_ranges(publication: Publication) -> dict[tuple[str, str], tuple[float, float]]:
    """The exact range of values of every hidden cell, given all that is published."""
    limit = publication.threshold
    ranges: dict[tuple[str, str], tuple[float, float]] = {}
    for key, total in publication.totals.items():
        tables = publication.tables_of(key)
        low, high = _domain(total, limit)
        bounds = {}
        for table in tables:
            shown, t_low, t_high = _table_bounds(table, limit)
            bounds[table.key] = shown
            low, high = max(low, shown + t_low), min(high, shown + t_high)
        if total.hidden:
            ranges[("", key)] = (low, high)
        for table in tables:
            shown = bounds[table.key]
            hidden = [(row, c) for row, c in table.rows.items() if c.hidden]
            for row, cell in hidden:
                others = [_domain(c, limit) for r, c in hidden if r != row]
                others_low = sum(lo for lo, _hi in others)
                others_high = sum(hi for _lo, hi in others)
                lo, hi = _domain(cell, limit)
                ranges[(table.key, row)] = (
                    max(lo, low - shown - others_high),
                    min(hi, high - shown - others_low),
                )
    return ranges


def pinned(publication: Publication) -> list[tuple[str, str]]:
    """The hidden cells whose value could be worked out (a single feasible value)."""
    return [ref for ref, (lo, hi) in feasible_ranges(publication).items() if lo >= hi]


def _smallest_complement(table: Table, limit: int) -> Cell | None:
    candidates = [c for c in table.rows.values() if not c.hidden and c.value >= limit]
    return min(candidates, key=lambda c: c.value) if candidates else None


def _protect_table_cell(publication: Publication, table: Table) -> None:
    limit = publication.threshold
    complement = _smallest_complement(table, limit)
    if complement is not None:
        complement.state = SECONDARY
        return
    total = publication.totals[table.total]
    if not total.hidden and total.value >= limit:
        total.state = SECONDARY
        return
    table.withheld = True


def _protect_total(publication: Publication, key: str) -> None:
    """A hidden measure pinned by its tables: widen the narrowest of them."""
    limit = publication.threshold
    tables = publication.tables_of(key)
    if not tables:  # pragma: no cover - a measure's own marks always leave room
        raise RuntimeError(f"measure {key} pinned by no table")

    def width(table: Table) -> float:
        _shown, low, high = _table_bounds(table, limit)
        return high - low

    table = min(tables, key=width)
    complement = _smallest_complement(table, limit)
    if complement is not None:
        complement.state = SECONDARY
    else:
        table.withheld = True


def protect(publication: Publication) -> Publication:
    """Apply primary and secondary suppression (in place) and return the publication."""
    limit = publication.threshold
    for _ref, cell in publication.cells():
        if 0 < cell.value < limit:
            cell.state = PRIMARY
    tables = {table.key: table for table in publication.tables}
    # Each round hides one more cell or withholds one table: it ends.
    while found := pinned(publication):
        table_key, key = found[0]
        if table_key:
            _protect_table_cell(publication, tables[table_key])
        else:
            _protect_total(publication, key)
    return publication


def median_shown(count: int, limit: int) -> bool:
    """A median is shown only over at least the threshold number of cases."""
    return count >= limit


class SelectionRefused(ValueError):
    """A selection (filter) that would narrow the statistics below the threshold."""


def check_selection(population: int, limit: int) -> None:
    if population < limit:
        raise SelectionRefused(
            _(
                "The selection covers fewer than %(threshold)d cases in this period and cannot "
                "be shown. Choose a longer period or a wider selection."
            )
            % {"threshold": limit}
        )
