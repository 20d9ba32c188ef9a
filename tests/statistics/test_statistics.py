"""The statistics on a known synthetic data set: numbers, suppression everywhere they are
shown (HTML, CSV, PDF), protected identity, selections, who may see them and the access log."""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter

import pytest
from pypdf import PdfReader

from audit.models import AccessEvent
from casework import roles
from casework.statistics import disclosure, periods, summary, tables
from casework.statistics.registry import get
from workflows.sig.models import Status

from .conftest import Spec, local, random_specs, recoverable_cells

SIG = get("sig")
_COUNT = re.compile(r'class="samverkan-count samverkan-(\w+)">([^<]*)<')


def counts_shown(content: str) -> list[tuple[str, str]]:
    """(state, shown text) of every count cell of a page."""
    return [(state, html.unescape(text)) for state, text in _COUNT.findall(content)]


def _in(moment, period: periods.Period) -> bool:
    if moment is None:
        return False
    day = moment.astimezone(local(2000, 1, 1).tzinfo).date()
    return period.start <= day < period.end


def _band(spec: Spec) -> int:
    age = spec.opened.year - spec.born
    return 0 if age <= 14 else 1 if age <= 17 else 2 if age <= 20 else 3


def _expected(specs: list[Spec], period: periods.Period) -> dict[str, Counter]:
    """Counts of the period computed in Python from the specs (no SQL)."""
    end = local(period.end.year, period.end.month, 1, 0)
    moments = {
        "referred": lambda s: s.opened,
        "consent_given": lambda s: s.consented,
        "consent_refused": lambda s: s.refused,
        "started": lambda s: s.started,
        "plan_approved": lambda s: s.approved,
        "closed": lambda s: s.closed,
    }
    result = {}
    for key, moment in moments.items():
        result[key] = Counter()
        for spec in specs:
            if _in(moment(spec), period):
                _count(result[key], spec)
                if key == "closed":
                    result[key][("detail", spec.reason)] += 1
    result["active"] = Counter()
    for spec in specs:
        if spec.approved and spec.approved < end and (spec.closed is None or spec.closed >= end):
            _count(result["active"], spec)
    return result


def _count(counter: Counter, spec: Spec) -> None:
    counter[("", "")] += 1
    counter[("age", _band(spec))] += 1
    counter[("gender", spec.gender)] += 1
    counter[("area", "" if spec.protected else spec.area)] += 1


@pytest.fixture
def dataset(make_cases):
    return make_cases(random_specs(seed=20241, count=160))


PERIODS = ["2023", "2024", "2024-Q2", "2023-Q4", "2024-03", "2023-11"]


@pytest.mark.parametrize("key", PERIODS)
def test_counts_are_right(dataset, key):
    period = periods.parse(key)
    raw = summary.counts(SIG, [period])[period]
    publication = tables.publication(SIG, raw, 5)
    expected = _expected(dataset, period)
    for measure, counter in expected.items():
        assert publication.totals[measure].value == counter[("", "")], measure
        for table in publication.tables_of(measure) + [
            t for t in publication.tables if t.total == measure and t.withheld
        ]:
            dimension = table.key.split(".")[1]
            for value, cell in table.rows.items():
                assert cell.value == counter[(dimension, value)], (table.key, value)
    histogram = raw.durations["referral_to_decision"]
    assert sum(histogram.values()) == sum(1 for s in dataset if _in(s.decided, period))


def test_counts_of_the_running_month_are_live(make_cases):
    from django.utils import timezone

    moment = timezone.now()
    specs = make_cases([Spec(2008, "female", "brickebacken", 0, moment) for _ in range(6)])
    period = periods.current(periods.MONTH)
    raw = summary.counts(SIG, [period])[period]
    assert tables.publication(SIG, raw, 5).totals["referred"].value == len(specs)


def test_no_hidden_cell_can_be_recovered_in_any_period(dataset):
    for key in PERIODS:
        period = periods.parse(key)
        raw = summary.counts(SIG, [period])[period]
        publication = tables.publication(SIG, raw, 5)
        assert any(cell.hidden for _ref, cell in publication.cells())
        assert recoverable_cells(publication) == [], key


def _assert_no_small_count(values, limit=5):
    small = {str(n) for n in range(1, limit)}
    assert values, "nothing was checked"
    assert not [v for v in values if v.strip() in small]


@pytest.mark.parametrize("key", ["2024", "2024-Q2", "2023-11"])
def test_no_count_between_1_and_4_in_html_csv_or_pdf(dataset, steering, client, key):
    page = client.get("/statistik/", {"period": key})
    assert page.status_code == 200
    shown = counts_shown(page.content.decode())
    _assert_no_small_count([value for _state, value in shown])
    assert ("primary", "<5") in shown
    if key == "2024":  # enough cases that some larger counts protect smaller ones
        assert any(state == "secondary" and value == "\u00d7" for state, value in shown)
    report = client.get("/statistik/rapport/", {"period": key})
    _assert_no_small_count([value for _s, value in counts_shown(report.content.decode())])
    # Every table as CSV.
    published = tables.report(SIG, periods.parse(key))
    keys = ["overview", *[f"trend.{m}" for m in SIG.chart_measures]]
    keys += [t.key for t in published.tables if not t.withheld]
    for table in keys:
        response = client.get(f"/statistik/csv/sig/{table}.csv", {"period": key})
        assert response.status_code == 200, table
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        _assert_no_small_count([row[1] for row in rows[1:]])
    # The PDF: every count table row ends in its shown value, none of them small.
    response = client.get("/statistik/rapport.pdf", {"period": key})
    assert response["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "<5" in text
    values = re.findall(r"^(?!Dagar|Days).+? (\S+)$", text, flags=re.MULTILINE)
    lines = [line for line in text.splitlines() if line.strip()]
    counted = []
    for row in published.overview + [r for t in published.tables for r in t.rows]:
        matches = [line for line in lines if line.startswith(str(row.label) + " ")]
        assert matches, row.label
        counted += [line.rsplit(" ", 1)[1] for line in matches]
    _assert_no_small_count(counted)
    assert values


def test_protected_identity_is_never_counted_by_area(make_cases, steering, client):
    opened = local(2024, 5, 10)
    make_cases(
        [Spec(2008, "male", "brickebacken", 2, opened) for _ in range(7)]
        + [Spec(2008, "male", "brickebacken", 0, opened) for _ in range(6)]
        + [Spec(2008, "female", "vivalla_baronbackarna", 0, opened) for _ in range(6)]
    )
    report = tables.report(SIG, periods.parse("2024"))
    area = next(t for t in report.tables if t.key == "referred.area")
    shown = {str(row.label): row.display for row in area.rows}
    assert shown["Brickebacken"] == "6"
    assert shown["Vivalla/Baronbackarna"] == "6"
    assert report.overview[0].display == "19"
    # The selection of one area counts only the persons without protected identity.
    selected = tables.report(SIG, periods.parse("2024"), selection=("area", "brickebacken"))
    assert selected.overview[0].display == "6"


def test_a_selection_that_narrows_below_the_threshold_is_refused(make_cases, steering, client):
    opened = local(2024, 5, 10)
    make_cases(
        [Spec(2008, "male", "brickebacken", 0, opened) for _ in range(4)]
        + [Spec(2008, "female", "varberga_oxhagen", 0, opened) for _ in range(8)]
    )
    response = client.get("/statistik/", {"period": "2024", "selection": "area:brickebacken"})
    assert response.status_code == 400
    content = response.content.decode()
    assert "Urvalet omfattar färre än 5 ärenden" in content
    assert not counts_shown(content)
    for url in ("/statistik/csv/sig/overview.csv",):
        refused = client.get(url, {"period": "2024", "selection": "area:brickebacken"})
        assert refused.status_code == 400
    allowed = client.get("/statistik/", {"period": "2024", "selection": "area:varberga_oxhagen"})
    assert allowed.status_code == 200
    # The selection shows its cells as the area table publishes them: the 8 referrals of
    # Varberga/Oxhagen protect the 4 of Brickebacken there, so they stay hidden here too.
    shown = counts_shown(allowed.content.decode())
    assert shown[0] == ("secondary", "\u00d7")
    _assert_no_small_count([value for _state, value in shown])
    # A month publishes its totals only: no selection there.
    month = client.get("/statistik/", {"period": "2024-05", "selection": "area:varberga_oxhagen"})
    assert month.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"period": "2024-13"},
        {"period": "1999"},
        {"period": "2999"},
        {"selection": "area:mars"},
        {"period": "2024-01-01"},
    ],
)
def test_bad_choices_are_refused_with_a_message(steering, client, params):
    response = client.get("/statistik/", params)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_unknown_table_is_404(steering, client):
    assert client.get("/statistik/csv/sig/nothing.csv").status_code == 404
    assert client.get("/statistik/csv/nope/overview.csv").status_code == 404
    assert client.get("/statistik/csv/gvi/referred.area.csv").status_code == 404


def test_a_csv_reads_its_own_programmes_publication_only(
    dataset, steering, client, monkeypatch, django_assert_num_queries
):
    """A table's CSV computes the publication of the table's programme, not every
    programme's (the dashboard's): the same file, a quarter of the work with four."""
    read = []
    real = tables.report

    def report(spec, *args, **kwargs):
        read.append(spec.code)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(tables, "report", report)
    assert client.get("/statistik/", {"period": "2024"}).status_code == 200
    programmes = list(read)
    assert "sig" in programmes and len(programmes) > 1
    read.clear()
    # 46 statements when every programme was read.
    with django_assert_num_queries(13):
        response = client.get("/statistik/csv/sig/overview.csv", {"period": "2024"})
    assert response.status_code == 200
    assert read == ["sig"]
    # A selection of another programme (an age band of its own) is not offered here:
    # 404, after every programme was read, as before.
    other = next(
        (code, key)
        for code in programmes
        for key, _label in tables.selection_choices(get(code))
        if key not in dict(tables.selection_choices(SIG))
    )
    read.clear()
    params = {"period": "2024", "selection": other[1]}
    assert client.get("/statistik/csv/sig/overview.csv", params).status_code in (400, 404)
    assert other[0] in read and "sig" not in read


def test_viewing_and_exporting_are_logged_without_personal_data(dataset, steering, client):
    client.get("/statistik/", {"period": "2024"})
    client.get("/statistik/csv/sig/overview.csv", {"period": "2024"})
    client.get("/statistik/rapport/", {"period": "2024"})
    client.get("/statistik/rapport.pdf", {"period": "2024"})
    events = list(AccessEvent.objects.filter(object_type="statistics").order_by("id"))
    assert [e.action for e in events] == ["consult", "export", "export", "export"]
    assert [e.details.get("format") for e in events[1:]] == ["csv", "html", "pdf"]
    assert all(e.person_id is None and e.user_id == steering.pk for e in events)


STATISTICS_URLS = [
    "/statistik/",
    "/statistik/rapport/",
    "/statistik/rapport.pdf",
    "/statistik/csv/sig/overview.csv",
]


@pytest.mark.parametrize("role", [r for r in roles.ALL_ROLES if r != roles.STEERING_GROUP])
def test_other_roles_cannot_see_statistics(demo, client, role):
    from casework.models import User

    user = User.objects.filter(groups__name=role).first()
    client.force_login(user)
    for url in STATISTICS_URLS:
        assert client.get(url).status_code == 403, (role, url)


def test_anonymous_users_are_sent_to_log_in(db, client):
    for url in STATISTICS_URLS:
        response = client.get(url)
        assert response.status_code in (302, 403)
        if response.status_code == 302:
            assert "logga-in" in response["Location"]


def test_steering_group_reaches_statistics_only(demo, client, make_cases):
    from casework.models import Case

    make_cases([Spec(2008, "male", "brickebacken", 0, local(2024, 5, 10))])
    case = Case.objects.get()
    client.force_login(demo["stig.styrgrupp"])
    for url in STATISTICS_URLS:
        assert client.get(url).status_code == 200, url
    for url in [
        f"/arenden/fall/{case.pk}/",
        "/arenden/fall/",
        "/arenden/inbox/",
        "/granskning/",
        "/admin/",
    ]:
        response = client.get(url)
        assert response.status_code in (302, 403, 404), url
        assert str(case.reference) not in response.content.decode()


@pytest.mark.django_db(databases=["default", "keystore"])
def test_sig_transitions_record_the_stage_moments(demo):
    from tests.workflows.sig.factories import sig_case

    case = sig_case(demo, Status.ACTIVE)
    case.refresh_from_db()
    assert case.consented_at and case.decided_at and case.started_at and case.plan_approved_at
    assert case.opened_at <= case.consented_at <= case.started_at <= case.plan_approved_at
    refused = sig_case(demo, Status.CONSENT_REFUSED)
    refused.refresh_from_db()
    assert refused.consent_refused_at and refused.consented_at is None
    period = periods.current(periods.MONTH)
    raw = summary.counts(SIG, [period])[period]
    totals = tables.publication(SIG, raw, disclosure.threshold()).totals
    assert totals["referred"].value == 2
    assert totals["consent_refused"].value == 1
    assert totals["active"].value == 1


def test_a_year_is_protected_jointly_with_its_quarters_and_months(make_cases):
    """Five referrals in every month of 2024 but March, which has two. Protected month by
    month (the old way), the year minus the other months gives March away; protected
    jointly, nothing can be worked out from the year, its quarters and its months."""
    make_cases(
        [
            Spec(2008, "male", "brickebacken", 0, local(2024, month, 10))
            for month in range(1, 13)
            for _ in range(2 if month == 3 else 5)
        ]
    )
    year = periods.parse("2024")
    quarters = [periods.parse(f"2024-Q{q}") for q in range(1, 5)]
    months = [periods.parse(f"2024-{m:02d}") for m in range(1, 13)]
    raw = summary.counts(SIG, [year, *quarters, *months])
    # Each period protected on its own, then put side by side as they are published.
    alone = {each: tables.publication(SIG, raw[each], 5) for each in [year, *quarters, *months]}
    totals = {f"{each.key}|{k}": c for each, pub in alone.items() for k, c in pub.totals.items()}
    linked = [
        disclosure.Table(
            f"2024-Q{q + 1}|referred.months",
            f"2024-Q{q + 1}|referred",
            {m.key: alone[m].totals["referred"] for m in months[3 * q : 3 * q + 3]},
        )
        for q in range(4)
    ]
    linked.append(
        disclosure.Table(
            "2024|referred.quarters",
            "2024|referred",
            {q.key: alone[q].totals["referred"] for q in quarters},
        )
    )
    side_by_side = disclosure.Publication(totals, linked, threshold=5)
    assert alone[months[2]].totals["referred"].state == disclosure.PRIMARY
    assert ("", "2024-03|referred") in recoverable_cells(side_by_side)
    # Jointly: March is hidden in the year's publication and cannot be recovered.
    published = tables.year_publication(
        SIG, 2024, raw[year], summary.monthly_totals(SIG, [2024]), 5
    )
    assert published.totals(months[2])["referred"].display(5) == "<5"
    assert published.totals(year)["referred"].value == 57
    assert recoverable_cells(published.joint) == []
    # Every report shows the same marks: the month's overview and the year's trend.
    march = tables.report(SIG, months[2])
    assert march.overview[0].display == "<5" and not march.tables
    april = tables.report(SIG, months[3])
    points = {pt.period.key: pt.row.display for pt in april.trends[0].points}
    assert points["2024-03"] == "<5"
    hidden_elsewhere = [
        each.key for each in [*quarters, *months] if published.totals(each)["referred"].hidden
    ]
    assert len(hidden_elsewhere) >= 2  # March and a complement (its quarter or a month)


def test_sig_years_jointly_protected_against_the_integer_program(dataset):
    for year in (2023, 2024):
        whole = periods.Period(year * 12, periods.YEAR)
        raw = summary.counts(SIG, [whole])[whole]
        published = tables.year_publication(SIG, year, raw, summary.monthly_totals(SIG, [year]), 5)
        assert any(cell.hidden for _ref, cell in published.joint.cells())
        assert recoverable_cells(published.joint) == [], year
