"""The steering group's statistics in the API: the dashboard's numbers for the same
selection, the same suppression, the same refusals and the same access-log events."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AccessEvent
from casework.statistics import periods, tables
from casework.statistics.registry import get
from tests.statistics import conftest as statistics_data
from tests.statistics.test_statistics import counts_shown

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

STATISTICS = "/api/v1/statistics/"

# The statistics tests' synthetic data set (SIG cases written straight to the tables),
# with the running month counted afresh at every request.
make_cases = statistics_data.make_cases
count_the_running_month = statistics_data._count_the_running_month_every_time


@pytest.fixture
def dataset(make_cases):
    return make_cases(statistics_data.random_specs(seed=20241, count=160))


@pytest.fixture
def steering_api(api_for, demo):
    """A client of the steering group's organisation (stig.styrgrupp's)."""
    return api_for(demo["stig.styrgrupp"].organisation.name)


def page_of(user, **query) -> str:
    browser = Client()
    browser.force_login(user)
    response = browser.get("/statistik/", query)
    assert response.status_code == 200
    return response.content.decode()


def read(api, acting="stig.styrgrupp", **query):
    return api.http.get(STATISTICS, query, **api.headers(acting))


def counts_answered(body: dict) -> list[tuple[str, str]]:
    """(state, shown text) of every count the answer holds, in the page's order: each
    programme's overview, then each table's rows and total."""
    shown = []
    for programme in body["programmes"]:
        shown += [(row["state"], row["display"]) for row in programme["overview"]]
        for table in programme["tables"]:
            if not table["withheld"]:
                rows = [*table["rows"], table["total"]]
                shown += [(row["state"], row["display"]) for row in rows]
    return shown


def assert_suppressed(body: dict) -> None:
    """No count from 1 to 4 anywhere: a small count is "<5" with no value."""
    counts = []
    for programme in body["programmes"]:
        counts += programme["overview"]
        for table in programme["tables"]:
            assert not table["withheld"] or (table["rows"] == [] and table["total"] is None)
            counts += [*table["rows"], *([table["total"]] if table["total"] else [])]
        for trend in programme["trends"]:
            counts += trend["points"]
    assert counts
    for count in counts:
        if count["state"] == "shown":
            assert count["value"] == 0 or count["value"] >= 5, count
            assert count["display"] == str(count["value"])
        else:
            assert count["value"] is None, count
            assert count["display"] not in {"1", "2", "3", "4"}


@pytest.mark.parametrize("key", ["2024", "2024-Q2", "2023-11"])
def test_the_answer_is_the_pages_numbers_suppressed_alike(dataset, steering_api, demo, key):
    response = read(steering_api, period=key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == key and body["threshold"] == 5
    assert counts_answered(body) == counts_shown(page_of(demo["stig.styrgrupp"], period=key))
    assert ("primary", "<5") in counts_answered(body)
    assert_suppressed(body)
    sig = next(p for p in body["programmes"] if p["code"] == "sig")
    published = tables.report(get("sig"), periods.parse(key))
    assert [row["display"] for row in sig["overview"]] == [r.display for r in published.overview]
    assert [row["key"] for row in sig["overview"]] == [m.key for m in tables.measures(get("sig"))]


def test_a_selection_and_one_programme(dataset, steering_api, demo):
    response = read(steering_api, period="2024", selection="gender:male", programme="sig")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [p["code"] for p in body["programmes"]] == ["sig"]
    assert body["selection"] == "gender:male"
    published = tables.report(get("sig"), periods.parse("2024"), selection=("gender", "male"))
    sig = body["programmes"][0]
    assert sig["selection_label"] == published.selection_label
    assert [row["display"] for row in sig["overview"]] == [r.display for r in published.overview]
    assert_suppressed(body)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "2024-13"}, "period"),
        ({"period": "1999"}, "period"),
        ({"period": ""}, "period"),
        ({"period": "2024", "selection": "shoe-size:42"}, "selection"),
        ({"period": "2024", "programme": "nope"}, "programme"),
    ],
)
def test_bad_parameters_are_a_400_problem_and_logged_as_the_page_does(
    steering_api, demo, query, field
):
    response = read(steering_api, **query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == [field]
    assert problem["errors"][0]["detail"] and problem["errors"][0]["detail_en"]
    event = AccessEvent.objects.filter(object_type="statistics").last()
    assert event.details["invalid"] is True
    assert event.details["api_client"] == steering_api.client.name


def test_a_refused_selection_says_why_in_both_languages(dataset, steering_api):
    month = read(steering_api, period="2024-03", selection="gender:male")
    assert month.status_code == 409
    problem = month.json()
    assert "hela år" in problem["detail"] and "whole year" in problem["detail_en"]
    # Too few cases in every programme: the threshold, in both languages.
    few = read(steering_api, period="2024", selection="area:other", programme="sspf")
    assert few.status_code == 409
    assert AccessEvent.objects.filter(object_type="statistics").last().details["invalid"]
    assert "färre än 5" in few.json()["detail"] and "fewer than 5" in few.json()["detail_en"]


def test_the_steering_group_or_no_person_reads_a_social_worker_does_not(
    dataset, steering_api, social_api
):
    assert read(steering_api, period="2024").status_code == 200
    event = AccessEvent.objects.filter(object_type="statistics").last()
    assert (event.action, event.username) == ("consult", "stig.styrgrupp")
    assert event.details == {
        "period": "2024",
        "selection": "",
        "api_client": steering_api.client.name,
    }
    # Anonymised: a client may read them without an acting person.
    assert read(social_api, acting=None, period="2024").status_code == 200
    event = AccessEvent.objects.filter(object_type="statistics").last()
    assert event.username == "" and event.details["api_client"] == social_api.client.name
    events = AccessEvent.objects.filter(object_type="statistics").count()
    refused = read(social_api, acting="anna.social", period="2024")
    assert refused.status_code == 403
    assert AccessEvent.objects.filter(object_type="statistics").count() == events
    assert AccessEvent.objects.filter(action="access_denied", username="anna.social").exists()
