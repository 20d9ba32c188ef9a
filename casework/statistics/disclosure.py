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
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

SHOWN, PRIMARY, SECONDARY = "shown", "primary", "secondary"
# A month's or a quarter's total left unpublished (nothing said about it, not even
# "<5"): the last resort where every count around a pinned one is small.
WITHHELD = "withheld"
WITHHELD_MARK = ".."
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
        if self.state == WITHHELD:
            return WITHHELD_MARK
        return str(self.value)

    def shown_value(self) -> int | None:
        return None if self.hidden else self.value


@dataclass
class Table:
    """A one-way breakdown of the measure ``total``: its rows add up to it.

    ``total`` names a cell of ``Publication.totals``. A row may be the very same
    :class:`Cell` as a total elsewhere: a year's quarters are the quarters' own
    totals (``linked``: such a table states a fact of the calendar and cannot be
    withheld — only cells can be hidden in it).
    """

    key: str
    total: str
    rows: dict[str, Cell]
    withheld: bool = False
    linked: bool = False


@dataclass
class Publication:
    """Everything published for one programme and period (and one selection), or for a
    calendar year jointly: the year, its quarters and months (see ``tables.year_publication``).

    The cells and the tables' sums must form a tree (no cell reached twice through
    different tables): then :func:`feasible_ranges` is exact.
    """

    totals: dict[str, Cell]
    tables: list[Table] = field(default_factory=list)
    threshold: int = DEFAULT_THRESHOLD

    def tables_of(self, total: str) -> list[Table]:
        return [t for t in self.tables if t.total == total and not t.withheld]

    def cells(self) -> Iterator[tuple[tuple[str, str], Cell]]:
        """Every published cell once (a cell shared by several tables under its first name)."""
        seen: set[int] = set()
        for key, cell in self.totals.items():
            if id(cell) not in seen:
                seen.add(id(cell))
                yield ("", key), cell
        for table in self.tables:
            if not table.withheld:
                for row, cell in table.rows.items():
                    if id(cell) not in seen:
                        seen.add(id(cell))
                        yield (table.key, row), cell


def _domain(cell: Cell, limit: int) -> tuple[float, float]:
    if cell.state == PRIMARY:
        return 1, limit - 1
    if cell.state == SECONDARY:
        return limit, INF
    if cell.state == WITHHELD:
        return 0, INF
    return cell.value, cell.value


def _equations(publication: Publication) -> list[tuple[Table, Cell, list[Cell]]]:
    return [
        (table, publication.totals[table.total], list(table.rows.values()))
        for table in publication.tables
        if not table.withheld
    ]


def _propagate(publication: Publication) -> dict[int, list[float]]:
    """Bounds of every cell (by ``id``), narrowed by every table's sum until nothing changes.

    On a tree of sums over integer intervals this is exact: every value left in a
    cell's range is taken by some assignment consistent with everything published.
    """
    limit = publication.threshold
    bounds: dict[int, list[float]] = {}
    for _ref, cell in publication.cells():
        bounds[id(cell)] = list(_domain(cell, limit))
    equations = _equations(publication)
    for _round in range(4 * len(equations) + 4):
        changed = False
        for _table, total, rows in equations:
            t = bounds[id(total)]
            parts = [bounds[id(c)] for c in rows]
            low = sum(b[0] for b in parts)
            high = sum(b[1] for b in parts)
            if low > t[0] or high < t[1]:
                new = [max(t[0], low), min(t[1], high)]
                if new != t:
                    t[:] = new
                    changed = True
            for part in parts:
                others_low = low - part[0]
                others_high = high - part[1] if part[1] != INF else _sum_without(parts, part)
                new = [max(part[0], t[0] - others_high), min(part[1], t[1] - others_low)]
                if new != part:
                    part[:] = new
                    changed = True
                    low = sum(b[0] for b in parts)
                    high = sum(b[1] for b in parts)
        if not changed:
            break
    return bounds


def _sum_without(parts: list[list[float]], skip: list[float]) -> float:
    return sum(b[1] for b in parts if b is not skip)


def feasible_ranges(publication: Publication) -> dict[tuple[str, str], tuple[float, float]]:
    """The exact range of values of every hidden cell, given all that is published."""
    bounds = _propagate(publication)
    return {
        ref: (bounds[id(cell)][0], bounds[id(cell)][1])
        for ref, cell in publication.cells()
        if cell.hidden
    }


def pinned(publication: Publication) -> list[tuple[str, str]]:
    """The hidden cells whose value could be worked out (a single feasible value).

    An unpublished (``WITHHELD``) zero or count at or above the threshold is no
    secret of its own: working it out tells nothing the other cells' ranges do not
    already account for."""
    limit = publication.threshold
    cells = dict(publication.cells())
    return [
        ref
        for ref, (lo, hi) in feasible_ranges(publication).items()
        if lo >= hi and not (cells[ref].state == WITHHELD and not 0 < cells[ref].value < limit)
    ]


def _complement(cells: list[Cell], limit: int, skip: Cell) -> Cell | None:
    candidates = [c for c in cells if c is not skip and not c.hidden and c.value >= limit]
    return min(candidates, key=lambda c: c.value) if candidates else None


def _widen(publication: Publication, pinned_cell: Cell) -> None:
    """Hide one more cell (or withhold a table) so that ``pinned_cell`` is no longer pinned.

    In the tables the pinned cell is a row of, then those it is the total of (narrowest
    first): the smallest shown count at or above the threshold among the rows, else the
    total; else a breakdown table is withheld. A table of the calendar (``linked``: a
    year's quarters, a quarter's months) cannot be withheld, since its rows are the
    periods' own totals: when every count around is small, the measure's months and
    quarters are left unpublished instead (``WITHHELD``: not even "<5", which would
    still say "at least 1").
    """
    limit = publication.threshold
    equations = _equations(publication)

    def width(equation) -> float:
        _table, _total, rows = equation
        low = high = 0.0
        for c in rows:
            lo, hi = _domain(c, limit)
            low, high = low + lo, high + hi
        return high - low

    as_row = [e for e in equations if any(c is pinned_cell for c in e[2])]
    as_total = sorted((e for e in equations if e[1] is pinned_cell), key=width)
    candidates = as_row + as_total
    for _table, total, rows in candidates:
        found = _complement(rows, limit, pinned_cell) or _complement([total], limit, pinned_cell)
        if found is not None:
            found.state = SECONDARY
            return
    for table, _total, _rows in candidates:
        if not table.linked:
            table.withheld = True
            return
    # Every count around is small (a year of a handful of cases): its months and
    # quarters are not published at all; the year keeps its own (protected) cells.
    unpublished = [
        cell
        for table, _total, rows in equations
        if table.linked
        for cell in rows
        if cell.state != WITHHELD
    ]
    if not unpublished:
        # Nothing in the calendar is left to hide and no table may be withheld: the
        # measure's cells in this part are all left unpublished, so none can be worked
        # out (seen in a full suite run: a 500 on a statistics CSV where this raised).
        unpublished = [cell for _ref, cell in publication.cells() if cell.state != WITHHELD]
    for cell in unpublished:
        cell.state = WITHHELD


def protect(publication: Publication) -> Publication:
    """Apply primary and secondary suppression (in place) and return the publication."""
    limit = publication.threshold
    for _ref, cell in publication.cells():
        if 0 < cell.value < limit:
            cell.state = PRIMARY
    # Each round hides one more cell or withholds one table: it ends. The measures are
    # independent of each other, so each is protected on its own (much less to audit).
    for part in _components(publication):
        while found := pinned(part):
            _widen(part, dict(part.cells())[found[0]])
    return publication


def _components(publication: Publication) -> list[Publication]:
    """The publication split into parts that share no cell (a measure with its tables,
    and in a year publication also its quarters and months)."""
    parent = {key: key for key in publication.totals}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    total_of: dict[int, str] = {}
    for key, cell in publication.totals.items():  # one cell under several names: one part
        if id(cell) in total_of:
            parent[root(key)] = root(total_of[id(cell)])
        total_of.setdefault(id(cell), key)
    for table in publication.tables:
        for cell in table.rows.values():
            if id(cell) in total_of:
                parent[root(total_of[id(cell)])] = root(table.total)
    groups: dict[str, Publication] = {}
    for key, cell in publication.totals.items():
        part = groups.setdefault(root(key), Publication({}, [], publication.threshold))
        part.totals[key] = cell
    for table in publication.tables:
        groups[root(table.total)].tables.append(table)
    return list(groups.values())


def median_shown(count: int, limit: int) -> bool:
    """A median is shown only over at least the threshold number of cases."""
    return count >= limit


class SelectionRefused(ValueError):
    """A selection (filter) that would narrow the statistics below the threshold."""


_TOO_FEW = _(
    "The selection covers fewer than %(threshold)d cases in this period and cannot "
    "be shown. Choose a longer period or a wider selection."
)


def check_selection(population: int, limit: int) -> None:
    if population < limit:
        # Rendered when shown, in the language of the page (or of both, in the API).
        raise SelectionRefused(lazy(lambda: str(_TOO_FEW) % {"threshold": limit}, str)())
