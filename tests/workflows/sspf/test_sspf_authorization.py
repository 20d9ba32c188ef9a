"""Every SSPF page by every role: the flow's start and assessment step, the case page (and
its actions), the overview, the meetings and a meeting; plus bad input on the pages."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.conftest import COMMITTED_DB, demo_users
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import PERSON_NAME, fresh_personnummer, orgs
from tests.workflows.sspf.factories import PURPOSE, sspf_case
from workflows.sspf import meeting_services
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfCase, SspfProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

ROLES = [*demo_users(but={"maja.avhopp"}), "other.skola"]


def _concern(client, users, years=13):
    client.force_login(users["lisa.skola"])
    response = client.post(
        SspfFlow.start.reverse("execute"),
        {
            "personnummer": fresh_personnummer(years),
            "name": PERSON_NAME,
            "area": "brickebacken",
            "reason": "Oro för frånvaro.",
        },
    )
    return response


def test_a_concern_through_the_flow_lands_in_the_coordinators_queue(everyone, client):
    response = _concern(client, everyone)
    # The receipt (ADR 0012): the case number and what was typed; no access to the case.
    assert response.status_code == 200
    assert response.templates[0].name == "workflows/referral_receipt.html"
    case = SspfCase.objects.get()
    assert case.reference in response.content.decode()
    assert not case.memberships.exists()
    task = SspfProcess.objects.get(case=case).task_set.get(flow_task=SspfFlow.assess)
    assert task.owner is None
    sara = everyone["sara.samordnare"]
    assert SspfFlow.assess.can_assign(sara, task)
    for name in ("lisa.skola", "fredrik.fritid", "anna.social", "per.polis"):
        assert not SspfFlow.assess.can_assign(everyone[name], task)


@pytest.mark.parametrize("years", [9, 19])
def test_a_concern_outside_the_age_range_is_a_form_error(everyone, client, years):
    response = _concern(client, everyone, years=years)
    assert response.status_code == 200
    assert response.context["form"].errors["personnummer"]
    assert not SspfCase.objects.exists()


def test_bad_concern_input_is_a_form_error(everyone, client):
    client.force_login(everyone["lisa.skola"])
    response = client.post(
        SspfFlow.start.reverse("execute"), {"personnummer": "12345", "name": "", "reason": ""}
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) >= {"personnummer", "name", "reason", "area"}


START_ALLOWED = {"anna.social", "per.polis", "sara.samordnare", "lisa.skola", "fredrik.fritid"}


@pytest.mark.parametrize("role", ROLES)
def test_the_start_page_by_role(everyone, client, role):
    client.force_login(everyone[role])
    response = client.get(SspfFlow.start.reverse("execute"))
    if role in START_ALLOWED | {"alex.avhopp", "other.skola"}:
        assert response.status_code == 200
    else:
        assert response.status_code in (302, 403)


# Who may open a case in the plan: the coordinator, the members school (lisa, the referrer)
# and leisure (fredrik), police only with the decision (here: yes, consent covers them).
CASE_ALLOWED = {"sara.samordnare", "lisa.skola", "fredrik.fritid", "per.polis"}


@pytest.mark.parametrize("role", ROLES)
def test_the_case_page_by_role(everyone, client, role):
    case = sspf_case(everyone, Status.PLAN_ACTIVE, police=True)
    client.force_login(everyone[role])
    response = client.get(f"/arenden/fall/{case.pk}/")
    body = response.content.decode()
    if role in CASE_ALLOWED:
        assert response.status_code == 200 and PERSON_NAME in body
        school_or_leisure = role in ("lisa.skola", "fredrik.fritid")
        assert ("Socialtjänstens anteckning social" in body) is not school_or_leisure
        assert ("Skolfrånvaro." in body) is not school_or_leisure  # the risk assessment
    else:
        assert response.status_code in (302, 403, 404)
        assert PERSON_NAME not in body


@COMMITTED_DB
def test_case_page_actions_by_role(everyone):
    """Refusals inside the view's transaction write their event on the ``audit``
    connection: a transactional test, every role in one run."""
    from django.test import Client

    from audit.models import AccessEvent

    case = sspf_case(everyone, Status.PLAN_ACTIVE, years=16)
    url = f"/arenden/fall/{case.pk}/"
    for role in ROLES:
        client = Client()
        client.force_login(everyone[role])
        for action, data, allowed in (
            ("participation", {"participates": "yes", "reason": "Behövs."}, {"sara.samordnare"}),
            ("escalate", {"reason": "Allvarligt."}, {"sara.samordnare"}),
            (
                "action",
                {
                    "kind": "leisure_activity",
                    "status": "done",
                    "date": timezone.localdate().isoformat(),
                    "visibility": "team",
                },
                {"sara.samordnare", "lisa.skola", "fredrik.fritid"},
            ),
        ):
            case.refresh_from_db()
            denied_before = AccessEvent.objects.filter(outcome="denied").count()
            response = client.post(url, {"_action": action, "version": case.version, **data})
            if role in allowed:
                assert response.status_code == 302 and "/konto/" not in response.url, (
                    action,
                    role,
                )
            else:
                assert response.status_code in (302, 403, 404), (action, role)
                assert response.status_code != 302 or "/konto/" in response.url, (action, role)
                if response.status_code in (403, 404) and role in CASE_ROLES:
                    assert AccessEvent.objects.filter(outcome="denied").count() > denied_before


CASE_ROLES = START_ALLOWED | {"alex.avhopp", "other.skola"}


def test_bad_input_on_the_case_page(everyone, client):
    case = sspf_case(everyone, Status.PLAN_ACTIVE, years=13)
    client.force_login(everyone["sara.samordnare"])
    url = f"/arenden/fall/{case.pk}/"
    response = client.post(url, {"_action": "escalate", "version": case.version, "reason": "x"})
    assert response.status_code == 200 and response.context["forms"]["escalate"].errors
    response = client.post(url, {"_action": "action", "version": case.version, "kind": "nope"})
    assert response.status_code == 200 and response.context["forms"]["action"].errors
    response = client.post(url, {"_action": "participation", "version": 1, "reason": "x"})
    assert response.status_code == 200
    response = client.post(url, {"_action": "bogus"})
    assert response.status_code == 302


@pytest.mark.parametrize("role", ROLES)
def test_overview_and_meetings_by_role(everyone, client, role):
    case = sspf_case(everyone, Status.PLAN_ACTIVE)
    sara = everyone["sara.samordnare"]
    meeting = meeting_services.create_meeting(
        user=sara,
        purpose=PURPOSE,
        date=timezone.localdate(),
        organisations=[orgs(everyone)["school"]],
    )
    meeting_services.add_to_agenda(user=sara, meeting=meeting, case=case, purpose=PURPOSE)
    client.force_login(everyone[role])
    casework = role in START_ALLOWED | {"alex.avhopp", "other.skola"}
    for url in ("/arenden/sspf/", "/arenden/sspf/moten/"):
        response = client.get(url)
        assert (response.status_code == 200) is casework, (url, role)
    response = client.get(f"/arenden/sspf/moten/{meeting.pk}/")
    # The coordinator, and staff of the organisations taking part (Vivallaskolan).
    sees_meeting = role in ("sara.samordnare", "lisa.skola")
    assert (response.status_code == 200) is sees_meeting, role
    if sees_meeting:
        assert case.reference in response.content.decode()
    response = client.post("/arenden/sspf/moten/", {"date": "2026-01-01", "organisations": []})
    if role == "sara.samordnare":
        assert response.status_code == 200 and response.context["form"].errors
    else:
        assert response.status_code in (302, 403)
    response = client.post(
        f"/arenden/sspf/moten/{meeting.pk}/", {"_action": "agenda", "reference": "SSPF-0"}
    )
    if role == "sara.samordnare":
        assert response.context["forms"]["agenda"].errors
    else:
        assert response.status_code in (302, 403, 404)


def test_the_assessment_task_by_role(everyone, client):
    _concern(client, everyone)
    case = SspfCase.objects.get()
    task = SspfProcess.objects.get(case=case).task_set.get(flow_task=SspfFlow.assess)
    execute = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    client.force_login(everyone["sara.samordnare"])
    assert (
        client.post(task.flow_task.reverse("assign", args=[task.process_id, task.pk])).status_code
        == 302
    )
    for role in ROLES:
        client.force_login(everyone[role])
        response = client.get(execute)
        assert (response.status_code == 200) is (role == "sara.samordnare"), role
    client.force_login(everyone["sara.samordnare"])
    response = client.post(execute, {"_action": "begin", "version": case.version})
    assert response.status_code == 302
    case.refresh_from_db()
    response = client.post(
        execute, {"_action": "outcome", "version": case.version, "outcome": "accept"}
    )
    assert (
        response.status_code == 200
        and "risk" in str(response.context["forms"]["outcome"].errors).lower()
    ) or response.context["forms"]["outcome"].errors
