"""The school's and the leisure centre's part of the plan: a task in the inbox of the member
who takes part for that organisation, only for cases they are members of (and whose
consents cover them); every role on the task's pages; bad input; a done report posted again."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework.models import CaseEvent
from casework.services.cases import CaseDenied
from tests.conftest import demo_users
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sspf.factories import (
    PURPOSE,
    SspfFlowDriver,
    consent_everyone,
    open_tasks,
    sspf_case,
)
from workflows.sspf import services as sspf_services
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

ROLES = [*demo_users(but={"alex.avhopp", "maja.avhopp"}), "other.skola"]


def _inbox(user) -> list:
    return list(Task.objects.inbox([SspfFlow], user))


def test_each_member_gets_their_organisations_part_and_no_one_else_sees_it(everyone):
    driver = SspfFlowDriver(everyone)
    case = driver.build("plan")
    assert open_tasks(case) == {"school_part": "lisa.skola", "leisure_part": "fredrik.fritid"}
    for username in ROLES:
        user = everyone[username]
        inbox = sorted(t.flow_task.name for t in _inbox(user))
        queue = list(Task.objects.queue([SspfFlow], user))
        expected = {"lisa.skola": ["school_part"], "fredrik.fritid": ["leisure_part"]}
        assert (inbox, queue) == (expected.get(username, []), []), username
    # The SSPF overview lists the member's task too; not another school's user's.
    link = driver.url(driver.task(case, "school_part"), "index")
    client = Client()
    client.force_login(everyone["lisa.skola"])
    assert link in client.get("/arenden/sspf/").content.decode()
    client.force_login(everyone["other.skola"])
    page = client.get("/arenden/sspf/").content.decode()
    assert link not in page and case.reference not in page


def test_no_part_for_a_member_whose_organisation_the_consents_do_not_cover(everyone):
    """The consents cover social services and the school only: the leisure member gets
    no task (they could not open the case); the school member does."""
    driver = SspfFlowDriver(everyone)
    case = driver.build("consent")
    consent_everyone(everyone, case, covering=("social", "school"))
    case.refresh_from_db()
    driver.run(case, "consent", "sara.samordnare", {"_action": "complete"})
    driver.run(
        case,
        "mapping",
        "sara.samordnare",
        {"_action": "mapping", "held_on": timezone.localdate().isoformat(), "mapping_note": "x"},
    )
    sspf_case_plan(driver, case)
    assert open_tasks(case) == {"school_part": "lisa.skola"}
    assert _inbox(everyone["fredrik.fritid"]) == []


def test_no_school_part_without_a_school_member(everyone):
    """A concern raised by leisure, with no school on the team: only leisure reports."""
    driver = SspfFlowDriver(everyone)
    case = driver.raise_concern("fredrik.fritid")
    sara = "sara.samordnare"
    driver.run(case, "assess", sara, {"_action": "begin"})
    driver.run(case, "assess", sara, {"_action": "risk", "level": "low", "risk_factors": "x"})
    fredrik = everyone["fredrik.fritid"].pk
    driver.run(case, "assess", sara, {"_action": "member", "user": fredrik, "role": "leisure"})
    driver.run(case, "assess", sara, {"_action": "outcome", "outcome": "accept"})
    consent_everyone(everyone, case)
    case.refresh_from_db()
    driver.run(case, "consent", sara, {"_action": "complete"})
    driver.run(
        case,
        "mapping",
        sara,
        {"_action": "mapping", "held_on": timezone.localdate().isoformat(), "mapping_note": "x"},
    )
    sspf_case_plan(driver, case)
    assert open_tasks(case) == {"leisure_part": "fredrik.fritid"}
    assert _inbox(everyone["lisa.skola"]) == []


def sspf_case_plan(driver, case) -> None:
    """The network meeting adopts a plan with the school's and leisure's actions."""
    import datetime

    from tests.workflows.sig.factories import orgs

    today = timezone.localdate()
    for org, kind in (("school", "school_support"), ("leisure", "leisure_activity")):
        driver.run(
            case,
            "network_meeting",
            "sara.samordnare",
            {
                "_action": "action",
                "kind": kind,
                "organisation": orgs(driver.users)[org].pk,
                "status": "planned",
                "date": today.isoformat(),
                "visibility": "team",
            },
        )
    driver.run(
        case,
        "network_meeting",
        "sara.samordnare",
        {
            "_action": "plan",
            "plan_goals": "Mål.",
            "review_date": (today + datetime.timedelta(days=30)).isoformat(),
        },
    )
    assert case.status == Status.PLAN_ACTIVE


def test_the_school_part_by_every_role(everyone):
    """Only its owner opens and posts the school's part; everyone else gets a 403 and
    nothing is written; no one but its owner and the coordinators hands the task back
    (ADR 0013: the coordinators release and reassign tasks of their programme)."""
    driver = SspfFlowDriver(everyone)
    case = driver.build("plan")
    task = driver.task(case, "school_part")
    # The owner last: her report finishes the task.
    for username in [*(r for r in ROLES if r != "lisa.skola"), "lisa.skola"]:
        client = Client()
        client.force_login(everyone[username])
        events = CaseEvent.objects.filter(case_id=case.pk).count()
        if username not in ("lisa.skola", "sara.samordnare"):
            client.post(driver.url(task, "unassign"))
        task.refresh_from_db()
        assert task.owner == everyone["lisa.skola"], username
        get = client.get(driver.url(task))
        post = client.post(
            driver.url(task), {"_action": "report", "version": case.version, "report": "Bra."}
        )
        if username == "lisa.skola":
            assert (get.status_code, post.status_code) == (200, 302)
            assert CaseEvent.objects.filter(case_id=case.pk).count() == events + 1
        else:
            assert (get.status_code, post.status_code) == (403, 403), username
            assert CaseEvent.objects.filter(case_id=case.pk).count() == events, username


def test_a_released_part_waits_for_the_schools_member(everyone):
    """Released by the coordinator, the school's part is in the queue of the school's
    member on the team only (not of leisure, police or social services)."""
    driver = SspfFlowDriver(everyone)
    case = driver.build("plan")
    task = driver.task(case, "school_part")
    client = Client()
    client.force_login(everyone["sara.samordnare"])
    assert client.post(driver.url(task, "unassign")).status_code == 302
    task.refresh_from_db()
    assert task.owner_id is None
    for username in ("fredrik.fritid", "per.polis", "anna.social", "sara.samordnare"):
        client.force_login(everyone[username])
        assert client.post(driver.url(task, "assign")).status_code == 403, username
    client.force_login(everyone["lisa.skola"])
    assert client.post(driver.url(task, "assign")).status_code == 302
    task.refresh_from_db()
    assert task.owner == everyone["lisa.skola"]


def test_bad_input_on_the_part(everyone):
    driver = SspfFlowDriver(everyone)
    case = driver.build("plan")
    before = CaseEvent.objects.filter(case_id=case.pk).count()
    # An empty report, an unknown action kind: form errors; an unknown action: a message.
    for data in (
        {"_action": "report", "report": ""},
        {"_action": "action", "kind": "nonsense", "status": "done", "date": "2020-01-01"},
    ):
        response = driver.run(case, "school_part", "lisa.skola", data, expect=200)
        assert "errorlist" in response.content.decode()
    driver.run(case, "school_part", "lisa.skola", {"_action": "nonsense"}, expect=302)
    # A stale version: "changed by someone else", nothing written.
    task = driver.task(case, "school_part")
    driver.client.force_login(everyone["lisa.skola"])
    response = driver.client.post(
        driver.url(task), {"_action": "report", "version": case.version - 1, "report": "Bra."}
    )
    assert response.status_code == 200
    assert CaseEvent.objects.filter(case_id=case.pk).count() == before
    assert open_tasks(case)["school_part"] == "lisa.skola"


def test_a_done_report_posted_again_leads_back_to_the_case(everyone):
    driver = SspfFlowDriver(everyone)
    case = driver.build("plan")
    task = driver.task(case, "school_part")
    driver.run(case, "school_part", "lisa.skola", {"_action": "report", "report": "Bra."})
    events = CaseEvent.objects.filter(case_id=case.pk).count()
    driver.client.force_login(everyone["lisa.skola"])
    response = driver.client.post(
        driver.url(task), {"_action": "report", "version": case.version, "report": "Igen."}
    )
    assert response.status_code == 302 and response["Location"] == f"/arenden/fall/{case.pk}/"
    assert CaseEvent.objects.filter(case_id=case.pk).count() == events


def test_the_report_service_refuses_the_wrong_user_and_state(everyone):
    case = sspf_case(everyone, Status.PLAN_ACTIVE)
    sara, lisa = everyone["sara.samordnare"], everyone["lisa.skola"]
    denied = AccessEvent.objects.filter(action="access_denied").count()
    with pytest.raises(CaseDenied):
        sspf_services.report_plan_part(user=sara, case=case, purpose=PURPOSE, note="x")
    assert AccessEvent.objects.filter(action="access_denied").count() == denied + 1
    sspf_services.report_plan_part(user=lisa, case=case, purpose=PURPOSE, note="Bra.")
    mapping = sspf_case(everyone, Status.MAPPING)
    with pytest.raises(ValidationError):
        sspf_services.report_plan_part(user=lisa, case=mapping, purpose=PURPOSE, note="x")
    # The leisure centre has no action in this plan (the factory plans the school's).
    with pytest.raises(ValidationError):
        sspf_services.report_plan_part(
            user=everyone["fredrik.fritid"], case=case, purpose=PURPOSE, note="x"
        )
    assert not SspfProcess.objects.filter(case=case).exists()  # services alone, no flow
