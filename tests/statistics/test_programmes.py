"""The defector programme's, SSPF's and GVI's statistics on known synthetic data sets:
the numbers, suppression in HTML, CSV and PDF, protected identity, and the attacker
over each calendar year's joint publication."""

from __future__ import annotations

import csv
import io
import re

import pytest
from pypdf import PdfReader

from casework.statistics import periods, summary, tables
from casework.statistics.registry import get

from .conftest import recoverable_cells
from .programme_data import defector_data, expected, gvi_data, sspf_data
from .test_statistics import _assert_no_small_count, counts_shown

DEFECTOR, SSPF, GVI = get("defector"), get("sspf"), get("gvi")
PERIODS = ["2024", "2023", "2024-Q2", "2023-11"]


@pytest.fixture
def data(db):
    return {
        "defector": defector_data(seed=7, count=90),
        "sspf": sspf_data(seed=8, count=90, discussions=40),
        "gvi": gvi_data(seed=9, groups=30),
    }


def _check(spec, facts, key):
    period = periods.parse(key)
    raw = summary.counts(spec, [period])[period]
    built = tables.build(spec, raw, 5)
    counted = expected(facts, period)
    checked = 0
    for measure in tables.measures(spec):
        counter = counted.get(measure.key, {})
        total = counter.get(("", ""), 0) if counter else 0
        assert built.totals[measure.key].value == total, (spec.code, key, measure.key)
        for table in built.tables_of(measure.key):
            dimension = table.key.split(".")[1]
            for value, cell in table.rows.items():
                want = counter.get((dimension, value), 0) if counter else 0
                if dimension == "detail" and value == "":
                    want = sum(
                        n for (d, v), n in (counter or {}).items() if d == "detail" and v == ""
                    )
                assert cell.value == want, (spec.code, key, table.key, value)
                checked += 1
    return checked


@pytest.mark.parametrize("key", PERIODS)
def test_counts_are_right(data, key):
    for spec in (DEFECTOR, SSPF, GVI):
        assert _check(spec, data[spec.code], key) > 10


def test_months_and_quarters_add_up_to_their_year(data):
    """The monthly totals (what months and quarters publish) agree with the counts."""
    for spec in (DEFECTOR, SSPF, GVI):
        monthly = summary.monthly_totals(spec, [2024])
        for month in range(2024 * 12, 2024 * 12 + 12):
            counted = expected(data[spec.code], periods.Period(month, periods.MONTH))
            for measure in tables.measures(spec):
                want = counted.get(measure.key, {}).get(("", ""), 0)
                assert monthly[month].get(measure.key, 0) == want, (spec.code, month, measure.key)


def test_what_is_not_counted(data):
    """Support cases are tagged defector but are not defector cases; the first routing is not
    a re-routing; an anonymised discussion is counted, with no gender."""
    from workflows.defector.models import DefectorSupportCase

    assert DefectorSupportCase.objects.exists()
    year = periods.parse("2024")
    raw = summary.counts(DEFECTOR, [year])[year]
    referred = tables.build(DEFECTOR, raw, 5).totals["referred"].value
    facts = [f for f in data["defector"] if f.measure == "referred" and f.at.year == 2024]
    assert referred == len(facts)
    sspf = tables.build(SSPF, summary.counts(SSPF, [year])[year], 5)
    assert "discussions.gender" not in {t.key for t in sspf.tables}
    assert {"discussions.age", "discussions.area", "discussions.detail"} <= {
        t.key for t in sspf.tables
    }
    gvi_tables = {t.key for t in tables.build(GVI, summary.counts(GVI, [year])[year], 5).tables}
    assert "groups.detail" in gvi_tables and "attendees.age" in gvi_tables
    assert not [k for k in gvi_tables if k.startswith(("groups.", "incidents.")) and "age" in k]


def test_no_hidden_cell_can_be_recovered_from_a_year_with_its_quarters_and_months(data):
    limit = 5
    for spec in (DEFECTOR, SSPF, GVI):
        for year in (2023, 2024):
            whole = periods.Period(year * 12, periods.YEAR)
            raw = summary.counts(spec, [whole])[whole]
            monthly = summary.monthly_totals(spec, [year])
            published = tables.year_publication(spec, year, raw, monthly, limit)
            cells = list(published.joint.cells())
            assert any(cell.hidden for _ref, cell in cells), (spec.code, year)
            assert not [c for _r, c in cells if not c.hidden and 0 < c.value < limit]
            assert recoverable_cells(published.joint) == [], (spec.code, year)


def test_protected_identity_is_kept_out_of_the_area_tables(data):
    """Every person with protected identity is in "Area not shown", never in an area row."""
    for spec in (DEFECTOR, SSPF):
        year = periods.parse("2024")
        built = tables.build(spec, summary.counts(spec, [year])[year], 5)
        area = next(t for t in built.tables if t.key == "referred.area")
        in_areas = sum(cell.value for value, cell in area.rows.items() if value)
        unprotected = [
            f for f in data[spec.code] if f.measure == "referred" and f.at.year == 2024 and f.area
        ]
        assert in_areas == len(unprotected)
        assert area.rows[""].value == built.totals["referred"].value - in_areas > 0


@pytest.mark.parametrize("key", ["2024", "2024-Q2"])
def test_no_count_between_1_and_4_in_html_csv_or_pdf(data, steering, client, key):
    page = client.get("/statistik/", {"period": key})
    assert page.status_code == 200
    content = page.content.decode()
    for code in ("sig", "sspf", "gvi", "defector"):
        assert f'data-programme="{code}"' in content
    swedish = ["Avhopparverksamhet", "Avidentifierade ärendedragningar", "Call-in-möten"]
    if key == "2024":  # the breakdowns are the year's
        swedish += ["Hotnivå", "Hävstång", "Omslussningar: riktning", "Grupper vid periodens slut"]
    else:
        assert "data-totals-only" in content
    for text in swedish:
        assert text in content, text
    shown = counts_shown(content)
    _assert_no_small_count([value for _state, value in shown])
    assert ("primary", "<5") in shown
    report = client.get("/statistik/rapport/", {"period": key})
    _assert_no_small_count([value for _s, value in counts_shown(report.content.decode())])
    for spec in (DEFECTOR, SSPF, GVI):
        published = tables.report(spec, periods.parse(key))
        if key == "2024":
            assert published.tables
        else:  # a quarter publishes its totals only
            assert not published.tables
        names = ["overview", *[f"trend.{m}" for m in spec.chart_measures]]
        names += [t.key for t in published.tables if not t.withheld]
        for name in names:
            response = client.get(f"/statistik/csv/{spec.code}/{name}.csv", {"period": key})
            assert response.status_code == 200, name
            rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
            _assert_no_small_count([row[1] for row in rows[1:]] or ["0"])
    response = client.get("/statistik/rapport.pdf", {"period": key})
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Avhopparverksamhet" in text and "GVI" in text and "SSPF" in text
    values = re.findall(r"^(?!Dagar|Days).+? (\S+)$", text, flags=re.MULTILINE)
    _assert_no_small_count(values)


def test_a_selection_is_for_whole_years_and_leaves_out_programmes_without_it(
    data, steering, client
):
    month = client.get("/statistik/", {"period": "2024-03", "selection": "gender:male"})
    assert month.status_code == 400
    assert "hela år" in month.content.decode()
    year = client.get("/statistik/", {"period": "2024", "selection": "gender:male"})
    assert year.status_code == 200
    content = year.content.decode()
    # GVI has no gender breakdown: it is left out of a selection by gender.
    assert 'data-programme="gvi"' not in content
    assert 'data-programme="defector"' in content and 'data-programme="sspf"' in content
    # SIG has no cases here: the selection is refused there alone, with the reason.
    sig = content.split('data-programme="sig"')[1].split("</section>")[0]
    assert "data-refusal" in sig and "färre än 5" in sig
    assert content.count("data-refusal") == 1
    _assert_no_small_count([value for _state, value in counts_shown(content)])
    # SSPF's age bands are not SIG's: each programme offers its own.
    sspf_band = client.get("/statistik/", {"period": "2024", "selection": "age:13-15"})
    assert sspf_band.status_code == 200
    assert 'data-programme="sig"' not in sspf_band.content.decode()


@pytest.mark.django_db(databases=["default", "keystore"])
def test_the_transitions_record_the_stage_moments(demo):
    """Driven through the real services: each stage's moment lands in its plain column and
    is counted (the first routing stays; a raise afterwards is a re-routing)."""
    from casework.services import cases as case_services
    from tests.workflows.defector.factories import PURPOSE, assessment, defector_case
    from tests.workflows.sspf.factories import sspf_case
    from workflows.defector import models as defector
    from workflows.defector import services as defector_services
    from workflows.sspf.models import Status as SspfStatus

    case = defector_case(demo, "activate")
    case.refresh_from_db()
    assert case.consented_at and case.assessed_at and case.started_at
    assert (case.assessed_level, case.routed_to) == ("low", "local")
    first_routed = case.routed_at
    defector_services.reassess_threat(
        user=demo["per.polis"], case=case, purpose=PURPOSE, **assessment(defector.Level.HIGH)
    )
    case.refresh_from_db()
    assert case.status == defector.Status.HANDED_OVER_REGIONAL
    assert (case.routed_to, case.routed_at) == ("local", first_routed)
    refused = defector_case(demo, "consent_partial")
    refused.refresh_from_db()
    assert refused.status == defector.Status.NOT_ELIGIBLE
    assert refused.consent_refused_at == refused.closed_at and refused.routed_to == "not_eligible"
    sspf = sspf_case(demo, SspfStatus.PLAN_ACTIVE)
    sspf.refresh_from_db()
    assert sspf.consented_at and sspf.plan_adopted_at
    closed = sspf_case(demo, SspfStatus.CONSENT_PENDING)
    case_services.close_case(
        user=demo["sara.samordnare"],
        case=closed,
        purpose=PURPOSE,
        reason="consent_refused",
    )
    closed.refresh_from_db()
    assert closed.consent_refused_at == closed.closed_at
    period = periods.current(periods.MONTH)
    totals = tables.build(DEFECTOR, summary.counts(DEFECTOR, [period])[period], 5).totals
    assert totals["referred"].value == 2  # the support case opened at the hand-over is not
    assert totals["routed"].value == 2 and totals["started"].value == 1
    assert totals["consent_refused"].value == 1
    assert totals["rerouted"].value == 1 and totals["assessed"].value == 1
    totals = tables.build(SSPF, summary.counts(SSPF, [period])[period], 5).totals
    assert totals["referred"].value == 2 and totals["consent_given"].value == 1
    assert totals["consent_refused"].value == 1 and totals["plan_adopted"].value == 1
    assert totals["active"].value == 1
