"""A deputy's tasks in the API (ADR 0026): during the absence the deputy acting person lists
and completes the absent user's simple-decision task, as on the pages; after the period it
is gone; a deputy of another organisation never sees it."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework.models import Absence
from casework.services import absences
from tests.workflows.conftest import colleague
from tests.workflows.sig.factories import FlowDriver
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

TASKS = "/api/v1/tasks/"


def day(offset: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=offset)


def listed_ids(api, acting: str, **query) -> list[int]:
    response = api.http.get(TASKS, query, **api.headers(acting))
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def complete(api, task, case, acting: str):
    case.refresh_from_db()
    return api.post(
        f"{TASKS}{task.pk}/complete/",
        {"choice": "approve", "reason": ""},
        acting=acting,
        **{"If-Match": f'"v{case.version}"'},
    )


@pytest.fixture
def taken_approval(demo):
    """A SIG plan approval taken by sara.samordnare: in her inbox, in nobody's queue."""
    driver = FlowDriver(demo)
    flow_case = driver.build("approve")
    approval = flow_case.task("approve")
    driver.post("sara.samordnare", driver.url(approval, "assign"))
    approval.refresh_from_db()
    assert approval.owner == demo["sara.samordnare"] and approval.status == STATUS.ASSIGNED
    return flow_case, approval


@pytest.fixture
def sven(demo):
    """A second coordinator of social services: sara.samordnare's deputy."""
    return colleague(demo, "sara.samordnare", "sven.samordnare")


def test_the_deputy_lists_and_completes_the_absent_users_decision(
    social_api, demo, taken_approval, sven
):
    flow_case, approval = taken_approval
    sara = demo["sara.samordnare"]
    # Before any absence: not his (assigned to sara, so not in his queue either).
    assert approval.pk not in listed_ids(social_api, "sven.samordnare")
    assert approval.pk not in listed_ids(social_api, "sven.samordnare", box="queue")
    assert complete(social_api, approval, flow_case.case, "sven.samordnare").status_code == 404

    absences.name_deputy(user=sara, deputy=sven, starts_on=day(0), ends_on=day(5))
    rows = social_api.http.get(TASKS, **social_api.headers("sven.samordnare")).json()["results"]
    row = next(r for r in rows if r["id"] == approval.pk)
    assert row["case"]["reference"] == flow_case.case.reference
    assert [c["value"] for c in row["decision"]["choices"]] == ["approve", "return"]

    response = complete(social_api, approval, flow_case.case, "sven.samordnare")
    assert response.status_code == 200, response.content
    assert response.json()["task"]["status"] == STATUS.DONE
    flow_case.refresh()
    assert flow_case.case.status == Status.ACTIVE
    assert flow_case.task("wait_for_review").status == STATUS.SCHEDULED
    # The deputy did it, under his own name, through the client.
    transition = AccessEvent.objects.filter(
        action="transition", object_id=str(flow_case.case.pk)
    ).latest("pk")
    assert transition.username == "sven.samordnare"
    assert transition.details["api_client"] == social_api.client.name
    # Gone from both inboxes once done.
    assert approval.pk not in listed_ids(social_api, "sven.samordnare")
    assert approval.pk not in listed_ids(social_api, "sara.samordnare")


def test_after_the_period_the_deputy_sees_nothing(social_api, demo, taken_approval, sven):
    flow_case, approval = taken_approval
    sara = demo["sara.samordnare"]
    absence = absences.name_deputy(user=sara, deputy=sven, starts_on=day(0), ends_on=day(3))
    assert approval.pk in listed_ids(social_api, "sven.samordnare")
    # Time does not move in tests: the period moved into the past instead.
    Absence.objects.filter(pk=absence.pk).update(starts_on=day(-10), ends_on=day(-1))
    assert approval.pk not in listed_ids(social_api, "sven.samordnare")
    assert approval.pk not in listed_ids(social_api, "sven.samordnare", box="queue")
    version = flow_case.refresh().case.version
    response = complete(social_api, approval, flow_case.case, "sven.samordnare")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    approval.refresh_from_db()
    assert approval.status == STATUS.ASSIGNED and approval.owner == sara
    assert flow_case.refresh().case.version == version
    # A period not yet begun is the same.
    Absence.objects.filter(pk=absence.pk).update(starts_on=day(2), ends_on=day(4))
    assert approval.pk not in listed_ids(social_api, "sven.samordnare")
    assert complete(social_api, approval, flow_case.case, "sven.samordnare").status_code == 404
    # Sara's own inbox still has it.
    assert approval.pk in listed_ids(social_api, "sara.samordnare")


def test_a_deputy_of_another_organisation_never_sees_it(
    social_api, police_api, demo, taken_approval
):
    flow_case, approval = taken_approval
    sara = demo["sara.samordnare"]
    # The service refuses such a deputy; a row written past it (an import, a fault) must
    # not open anything either.
    olle = colleague(
        demo, "sara.samordnare", "olle.samordnare", organisation=demo["per.polis"].organisation
    )
    Absence.objects.create(user=sara, deputy=olle, starts_on=day(-1), ends_on=day(5))
    assert approval.pk not in listed_ids(police_api, "olle.samordnare")
    assert approval.pk not in listed_ids(police_api, "olle.samordnare", box="queue")
    response = complete(police_api, approval, flow_case.case, "olle.samordnare")
    assert response.status_code == 404
    approval.refresh_from_db()
    assert approval.status == STATUS.ASSIGNED and approval.owner == sara
    assert flow_case.refresh().case.status == Status.PLANNING
