"""The suppression algorithm on its own: primary, secondary (against an integer program),
medians, selections and the threshold setting."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casework.statistics import disclosure
from casework.statistics.disclosure import Cell, Publication, Table

from .conftest import recoverable_cells


def _publication(measures: list[list[list[int]]], limit: int) -> Publication:
    """Each measure: a list of tables, each a list of row counts; the measure is their sum
    (every table of a measure sums to the same total: the first table's sum)."""
    totals, tables = {}, []
    for m, breakdowns in enumerate(measures):
        total = sum(breakdowns[0])
        totals[f"m{m}"] = Cell(total)
        for t, rows in enumerate(breakdowns):
            rows = list(rows)
            rows[-1] += total - sum(rows)  # make the table add up
            if rows[-1] < 0:
                rows = [*breakdowns[0]]
            tables.append(
                Table(f"m{m}.t{t}", f"m{m}", {f"r{i}": Cell(v) for i, v in enumerate(rows)})
            )
    return Publication(totals, tables, threshold=limit)


counts = st.integers(min_value=0, max_value=12)
table = st.lists(counts, min_size=2, max_size=5)
measure = st.lists(table, min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(measure, min_size=1, max_size=3), st.sampled_from([3, 5]))
def test_no_small_count_shown_and_no_hidden_cell_recoverable(measures, limit):
    publication = disclosure.protect(_publication(measures, limit))
    for _ref, cell in publication.cells():
        if not cell.hidden:
            assert not 0 < cell.value < limit
        assert cell.display(limit) not in {str(n) for n in range(1, limit)}
    assert recoverable_cells(publication) == []
    assert disclosure.pinned(publication) == []


def test_a_single_small_cell_gets_a_complement_in_its_row():
    publication = disclosure.protect(
        Publication(
            {"m": Cell(20)},
            [Table("m.area", "m", {"a": Cell(2), "b": Cell(8), "c": Cell(10)})],
            threshold=5,
        )
    )
    rows = publication.tables[0].rows
    assert [rows[k].state for k in "abc"] == ["primary", "secondary", "shown"]
    assert publication.totals["m"].state == "shown"
    assert recoverable_cells(publication) == []


def test_ones_that_add_up_to_the_rest_are_protected():
    """1 + 1 + 10 = 12: hiding only the two 1s would pin them (both must be 1)."""
    publication = disclosure.protect(
        Publication(
            {"m": Cell(12)},
            [Table("m.g", "m", {"a": Cell(1), "b": Cell(1), "c": Cell(10)})],
            threshold=5,
        )
    )
    assert publication.tables[0].rows["c"].hidden
    assert recoverable_cells(publication) == []


def test_a_hidden_measure_is_protected_in_every_table_of_it():
    """Suppressing the measure in one table must not let another table give it away."""
    publication = disclosure.protect(
        Publication(
            {"m": Cell(6)},
            [
                Table("m.a", "m", {"x": Cell(1), "y": Cell(5)}),
                Table("m.b", "m", {"x": Cell(6), "y": Cell(0)}),
            ],
            threshold=5,
        )
    )
    assert recoverable_cells(publication) == []
    assert all(not (0 < cell.value < 5) or cell.hidden for _ref, cell in publication.cells())


def test_medians_need_the_threshold():
    assert not disclosure.median_shown(4, 5)
    assert disclosure.median_shown(5, 5)


def test_a_selection_below_the_threshold_is_refused():
    with pytest.raises(disclosure.SelectionRefused, match="färre än 5"):
        disclosure.check_selection(4, 5)
    disclosure.check_selection(5, 5)


def test_threshold_below_three_is_refused(settings):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "STATS_THRESHOLD": 2}
    with pytest.raises(ImproperlyConfigured):
        disclosure.threshold()
    errors = [e for e in run_checks() if e.id == "statistics.E001"]
    assert len(errors) == 1
    settings.SAMVERKAN = {**settings.SAMVERKAN, "STATS_THRESHOLD": 3}
    assert disclosure.threshold() == 3
    assert not [e for e in run_checks() if e.id == "statistics.E001"]


def test_the_statistics_package_cannot_decrypt():
    """No module of the package imports the decrypting layers (or anything that opens values)."""
    import ast
    from pathlib import Path

    forbidden = ("casework.services", "casework.selectors", "casework.crypto", "casework.fields")
    root = Path(__file__).resolve().parents[2]
    modules = list((root / "casework" / "statistics").rglob("*.py"))
    assert len(modules) > 10
    # Each programme's description of its measures (``casework.programmes``).
    programme_specs = sorted((root / "workflows").glob("*/statistics.py"))
    assert len(programme_specs) == 4
    modules += programme_specs
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
                assert "open_sealed" not in name and "seal" not in name.split(".")[-1]


EXAMPLES = int(__import__("os").environ.get("STATS_YEAR_EXAMPLES", "60"))


def _year(months: list[int], split: list[int], limit: int) -> Publication:
    """One measure of a calendar year as it is published: the year with a breakdown
    table, the quarters adding up to the year and each quarter's months to the quarter
    (the same cells as the periods' own totals)."""
    month_cells = [Cell(v) for v in months]
    quarter_cells = [Cell(sum(months[3 * q : 3 * q + 3])) for q in range(4)]
    year = Cell(sum(months))
    rows = [*split[:-1], 0]
    rows[-1] = year.value - sum(rows[:-1])
    if rows[-1] < 0:
        rows = [year.value, 0, 0]
    totals = {"Y": year}
    totals.update({f"Q{q}": c for q, c in enumerate(quarter_cells)})
    totals.update({f"M{m}": c for m, c in enumerate(month_cells)})
    tables = [
        Table("Y.area", "Y", {f"r{i}": Cell(v) for i, v in enumerate(rows)}),
        Table("Y.quarters", "Y", {f"Q{q}": c for q, c in enumerate(quarter_cells)}, linked=True),
    ]
    for q in range(4):
        tables.append(
            Table(
                f"Q{q}.months",
                f"Q{q}",
                {f"M{3 * q + i}": month_cells[3 * q + i] for i in range(3)},
                linked=True,
            )
        )
    return Publication(totals, tables, threshold=limit)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(min_value=0, max_value=9), min_size=12, max_size=12),
    st.lists(st.integers(min_value=0, max_value=40), min_size=3, max_size=3),
    st.sampled_from([3, 5]),
)
def test_a_year_with_its_quarters_and_months_leaves_nothing_recoverable(months, split, limit):
    publication = disclosure.protect(_year(months, split, limit))
    for _ref, cell in publication.cells():
        assert not (not cell.hidden and 0 < cell.value < limit)
    # The calendar's own sums are never withheld: only cells are hidden in them.
    assert not [t for t in publication.tables if t.linked and t.withheld]
    assert recoverable_cells(publication) == []
    assert disclosure.pinned(publication) == []


def test_a_month_hidden_alone_would_be_the_year_minus_the_others():
    """Without the linked tables the year gives a hidden month away; with them it does not."""
    months = [6] * 12
    months[4] = 2
    publication = _year(months, [30, 20, 20], 5)
    alone = Publication(
        {k: c for k, c in publication.totals.items()},
        [t for t in publication.tables if not t.linked],
        threshold=5,
    )
    disclosure.protect(alone)
    assert alone.totals["M4"].state == disclosure.PRIMARY
    assert not alone.totals["M5"].hidden  # nothing else hidden: M4 = Y - the rest
    exposed = Publication(alone.totals, publication.tables, threshold=5)
    assert ("", "M4") in recoverable_cells(exposed)
    protected = disclosure.protect(_year(months, [30, 20, 20], 5))
    assert recoverable_cells(protected) == []


def test_a_year_of_two_cases_publishes_no_months():
    """Two cases in the year, one in each of its last two months: "<3" for both months
    would say "at least one each", and the year's "<3" then gives both away. Its months
    and quarters are left unpublished ("..") instead."""
    publication = disclosure.protect(_year([0] * 10 + [1, 1], [0, 0, 0], 3))
    assert publication.totals["Y"].display(3) == "<3"
    assert publication.totals["M10"].display(3) == disclosure.WITHHELD_MARK
    assert publication.totals["Q3"].state == disclosure.WITHHELD
    assert recoverable_cells(publication) == []


def test_a_pinned_cell_with_nothing_left_to_hide_leaves_its_measure_unpublished():
    """Every table around the pinned cell is the calendar's and already unpublished:
    rather than fail (a 500 on the statistics pages), the part's cells are withheld."""
    year = Cell(7)
    quarters = {f"Q{q}": Cell(v, disclosure.WITHHELD) for q, v in enumerate([2, 0, 5, 0])}
    publication = Publication(
        {"Y": year, **quarters}, [Table("Y.quarters", "Y", quarters, linked=True)], threshold=5
    )
    year.state = disclosure.PRIMARY
    disclosure._widen(publication, year)
    assert {cell.state for _ref, cell in publication.cells()} == {disclosure.WITHHELD}
    assert disclosure.pinned(publication) == []
    assert recoverable_cells(publication) == []
