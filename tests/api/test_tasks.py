"""The acting person's tasks in the API: the list is their inbox (or queue), and a simple
decision completed through the API moves the case and the flow exactly as its page does."""

from __future__ import annotations

import pytest
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework import programmes
from tests.workflows.defector.factories import PURPOSE as DEFECTOR_PURPOSE
from tests.workflows.defector.factories import assessment, defector_case
from tests.workflows.sig.factories import FlowDriver
from workflows.defector import models as defector
from workflows.defector.flow import ThreatReviewFlow
from workflows.defector.models import DefectorProcess, Level
from workflows.defector.models import Status as DefectorStatus
from workflows.sig.flow import SigFlow
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

TASKS = "/api/v1/tasks/"


def complete_url(task) -> str:
    return f"{TASKS}{task.pk}/complete/"


def if_match(case) -> dict:
    case.refresh_from_db()
    return {"If-Match": f'"v{case.version}"'}


def listed(api, acting: str, **query) -> list[dict]:
    response = api.http.get(TASKS, query, **api.headers(acting))
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def driver(demo):
    return FlowDriver(demo)


@pytest.fixture
def at_approval(driver):
    """A SIG case whose plan waits for the coordinator's approval (in her queue)."""
    return driver.build("approve")


def _signature(events) -> list[tuple]:
    """What the access log says happened, without when and through what (and without the
    test client's sign-ins before each page)."""
    return sorted(
        (e.action, e.object_type, tuple(e.fields), e.purpose, e.outcome, e.username)
        for e in events
        if e.action != "login"
    )


def _flow_state(process) -> list[tuple[str, str]]:
    return sorted((t.flow_task.name, t.status) for t in process.task_set.all())


# --- The list ------------------------------------------------------------------------------------


def test_the_list_is_the_persons_inbox_and_queue_not_anyone_elses(social_api, driver, at_approval):
    approval = at_approval.task("approve")
    # In the coordinator's queue, not yet in her inbox; nobody else's.
    assert approval.pk not in [t["id"] for t in listed(social_api, "sara.samordnare")]
    queue = listed(social_api, "sara.samordnare", box="queue")
    row = next(t for t in queue if t["id"] == approval.pk)
    assert row["step"] == "approve" and row["status"] == STATUS.NEW
    assert row["flow"] == programmes.decision_key(SigFlow.approve).rsplit(".", 1)[0]
    assert row["case"]["reference"] == at_approval.case.reference
    assert row["case"]["version"] == at_approval.refresh().case.version
    assert [c["value"] for c in row["decision"]["choices"]] == ["approve", "return"]
    assert [c["reason_required"] for c in row["decision"]["choices"]] == [False, True]
    assert approval.pk not in [t["id"] for t in listed(social_api, "anna.social", box="queue")]
    # Taken (the page's "assign" button): in her inbox.
    driver.post("sara.samordnare", driver.url(approval, "assign"))
    events = AccessEvent.objects.count()
    inbox = listed(social_api, "sara.samordnare")
    assert approval.pk in [t["id"] for t in inbox]
    assert approval.pk not in [t["id"] for t in listed(social_api, "anna.social")]
    # As the inbox page, the list records no reading.
    assert AccessEvent.objects.count() == events


def test_the_list_matches_the_inbox_page(social_api, driver):
    """The lead social worker's inbox: the same tasks as her inbox page lists."""
    driver.build("draft_plan")
    anna = driver.users["anna.social"]
    driver.client.force_login(anna)
    page = driver.client.get("/arenden/inbox/").content.decode()
    tasks = listed(social_api, "anna.social")
    assert tasks, "the lead social worker drafts the plan"
    inbox = Task.objects.filter(owner=anna, status=STATUS.ASSIGNED)
    assert sorted(t["id"] for t in tasks) == sorted(inbox.values_list("pk", flat=True))
    for task in tasks:
        assert f"/{task['id']}/" in page
        assert task["decision"] is None  # none of hers is a simple decision


def test_a_bad_box_is_a_400_and_no_inbox_a_403(social_api, api_for, demo):
    response = social_api.get(f"{TASKS}?box=all", acting="sara.samordnare")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "box"
    steering = api_for(demo["stig.styrgrupp"].organisation.name)
    assert steering.get(TASKS, acting="stig.styrgrupp").status_code == 403
    assert social_api.get(TASKS).status_code == 403  # no acting person


# --- Completing a plan approval ----------------------------------------------------------------


def test_completing_the_approval_moves_case_and_flow_as_the_page_does(social_api, driver, demo):
    by_page, by_api = driver.build("approve"), driver.build("approve")
    start = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    driver.run(
        by_page.case, "approve", "sara.samordnare", {"_action": "review", "outcome": "approve"}
    )
    middle = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    approval = by_api.task("approve")
    response = social_api.post(
        complete_url(approval),
        {"choice": "approve", "reason": ""},
        acting="sara.samordnare",
        **if_match(by_api.case),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    by_page.refresh(), by_api.refresh()
    assert by_api.case.status == by_page.case.status == Status.ACTIVE
    assert body["task"]["status"] == STATUS.DONE
    assert body["task"]["case"]["status"] == Status.ACTIVE
    assert response["ETag"] == f'"v{by_api.case.version}"'
    assert by_api.case.version == by_page.case.version
    # The flow moved on alike: the approval done by the coordinator, the review timer next.
    assert _flow_state(by_api.process) == _flow_state(by_page.process)
    assert by_api.task("wait_for_review").status == STATUS.SCHEDULED
    assert [t["step"] for t in body["next_tasks"]] == ["wait_for_review"]
    approval.refresh_from_db()
    assert approval.owner == demo["sara.samordnare"] and approval.finished is not None
    # The access log: the same events as the page's, each naming the client too.
    page_events = AccessEvent.objects.filter(pk__gt=start, pk__lte=middle)
    api_events = AccessEvent.objects.filter(pk__gt=middle)
    assert _signature(api_events) == _signature(page_events)
    changes = api_events.filter(object_id=str(by_api.case.pk), action="transition")
    assert changes.exists()
    for event in api_events:
        assert event.details["api_client"] == social_api.client.name
        assert event.username == "sara.samordnare"


def test_returning_the_plan_needs_a_reason_and_sends_it_back(social_api, at_approval):
    approval = at_approval.task("approve")
    case = at_approval.case
    headers = if_match(case)
    missing = social_api.post(
        complete_url(approval), {"choice": "return"}, acting="sara.samordnare", **headers
    )
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "reason"
    bad = social_api.post(
        complete_url(approval), {"choice": "maybe"}, acting="sara.samordnare", **headers
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "choice"
    assert at_approval.task("approve").status == STATUS.NEW  # nothing taken, nothing done
    returned = social_api.post(
        complete_url(approval),
        {"choice": "return", "reason": "Mer konkreta mål."},
        acting="sara.samordnare",
        **headers,
    )
    assert returned.status_code == 200, returned.content
    at_approval.refresh()
    assert at_approval.case.status == Status.PLANNING
    assert at_approval.task("draft_plan").owner.username == "anna.social"


def test_a_replay_changes_nothing_more(social_api, at_approval):
    approval = at_approval.task("approve")
    headers = if_match(at_approval.case)
    first = social_api.post(
        complete_url(approval),
        {"choice": "approve"},
        acting="sara.samordnare",
        key="approve-1",
        **headers,
    )
    assert first.status_code == 200, first.content
    at_approval.refresh()
    version, events = at_approval.case.version, AccessEvent.objects.count()
    tasks = _flow_state(at_approval.process)
    again = social_api.post(
        complete_url(approval),
        {"choice": "approve"},
        acting="sara.samordnare",
        key="approve-1",
        **headers,
    )
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    at_approval.refresh()
    assert at_approval.case.version == version
    assert _flow_state(at_approval.process) == tasks
    assert AccessEvent.objects.count() == events
    # Without the key, the done task is no longer open.
    other = social_api.post(
        complete_url(approval), {"choice": "approve"}, acting="sara.samordnare", **headers
    )
    assert other.status_code == 409


def test_a_stale_or_missing_if_match_changes_nothing(social_api, at_approval):
    approval = at_approval.task("approve")
    case = at_approval.case
    case.refresh_from_db()
    version = case.version
    stale = social_api.post(
        complete_url(approval),
        {"choice": "approve"},
        acting="sara.samordnare",
        **{"If-Match": f'"v{version - 1}"'},
    )
    assert stale.status_code == 412
    missing = social_api.post(
        complete_url(approval), {"choice": "approve"}, acting="sara.samordnare"
    )
    assert missing.status_code == 428
    approval.refresh_from_db()
    case.refresh_from_db()
    assert (approval.status, approval.owner_id) == (STATUS.NEW, None)
    assert (case.status, case.version) == (Status.PLANNING, version)


def test_another_persons_task_is_not_found_or_refused(social_api, police_api, at_approval, demo):
    approval = at_approval.task("approve")
    case = at_approval.case
    headers = if_match(case)
    body = {"choice": "approve"}
    # Not in her inbox or queue: as if it did not exist.
    for api, username in ((social_api, "anna.social"), (police_api, "per.polis")):
        response = api.post(complete_url(approval), body, acting=username, **headers)
        assert response.status_code == 404, username
    assert (
        social_api.post(
            f"{TASKS}999999999/complete/", body, acting="sara.samordnare", **headers
        ).status_code
        == 404
    )
    # Hers by a mistake of the past, but not a step she may do: refused (and logged).
    Task.objects.filter(pk=approval.pk).update(owner=demo["anna.social"], status=STATUS.ASSIGNED)
    refused = social_api.post(complete_url(approval), body, acting="anna.social", **headers)
    assert refused.status_code == 403
    assert AccessEvent.objects.filter(
        action="access_denied", username="anna.social", details__path=complete_url(approval)
    ).exists()
    case.refresh_from_db()
    approval.refresh_from_db()
    assert case.status == Status.PLANNING and approval.status == STATUS.ASSIGNED


def test_a_step_that_is_not_a_simple_decision_is_a_409(social_api, driver):
    planning = driver.build("draft_plan")
    draft = planning.task("draft_plan")
    assert draft.owner.username == "anna.social"
    response = social_api.post(
        complete_url(draft), {"choice": "approve"}, acting="anna.social", **if_match(planning.case)
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "Det här steget utförs på sin sida i Samverkan, inte genom API:et."
    )
    assert response.json()["detail_en"].startswith("This step is done on its page")
    assert planning.task("draft_plan").status == STATUS.ASSIGNED


# --- The defector programme's lowering ---------------------------------------------------------


def test_a_police_coordinator_approves_a_lowering_through_the_api(police_api, demo):
    case = defector_case(demo, "assess", level=Level.HIGH)
    per = demo["per.polis"]
    from workflows.defector import services

    services.reassess_threat(user=per, case=case, purpose=DEFECTOR_PURPOSE, **assessment(Level.LOW))
    processes = DefectorProcess.objects.filter(case=case, flow_class=ThreatReviewFlow)
    approval = Task.objects.get(
        process__in=processes, flow_task=ThreatReviewFlow.approve_lowering, status=STATUS.NEW
    )
    # The assessor may not approve his own lowering: not his to take.
    own = police_api.post(
        complete_url(approval), {"choice": "approve"}, acting="per.polis", **if_match(case)
    )
    assert own.status_code == 404
    rejected = police_api.post(
        complete_url(approval), {"choice": "reject"}, acting="maja.avhopp", **if_match(case)
    )
    assert rejected.status_code == 400  # a rejection needs its reason
    response = police_api.post(
        complete_url(approval), {"choice": "approve"}, acting="maja.avhopp", **if_match(case)
    )
    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert case.status == DefectorStatus.LOCAL_INTAKE
    assert defector.current_assessment(case).level == Level.LOW
    approval.refresh_from_db()
    assert approval.status == STATUS.DONE and approval.owner.username == "maja.avhopp"


# --- Each agency's decision to start -------------------------------------------------------------


def test_both_agencies_decide_through_the_api_and_the_case_starts(social_api, police_api, driver):
    deciding = driver.build("decide")
    police = deciding.task("decide_police")
    social = deciding.task("decide_social")
    # Each agency's own step: the lead social worker may not do the police's.
    wrong = social_api.post(
        complete_url(police), {"choice": "start"}, acting="anna.social", **if_match(deciding.case)
    )
    assert wrong.status_code == 404
    first = police_api.post(
        complete_url(police), {"choice": "start"}, acting="per.polis", **if_match(deciding.case)
    )
    assert first.status_code == 200, first.content
    assert deciding.refresh().case.status == Status.DECISION_PENDING
    second = social_api.post(
        complete_url(social), {"choice": "start"}, acting="anna.social", **if_match(deciding.case)
    )
    assert second.status_code == 200, second.content
    assert deciding.refresh().case.status == Status.PLANNING
    assert deciding.task("draft_plan").owner.username == "anna.social"
    assert [t["step"] for t in second.json()["next_tasks"]] == ["draft_plan"]


def test_a_decline_through_the_api_closes_the_case_as_the_page_does(social_api, driver):
    by_page, by_api = driver.build("decide"), driver.build("decide")
    decline = {"decision": "decline", "note": "Vill inte delta."}
    driver.run(by_page.case, "decide_social", "anna.social", {"_action": "decide", **decline})
    missing = social_api.post(
        complete_url(by_api.task("decide_social")),
        {"choice": "decline"},
        acting="anna.social",
        **if_match(by_api.case),
    )
    assert missing.status_code == 400  # the motivation is required, as on the page
    response = social_api.post(
        complete_url(by_api.task("decide_social")),
        {"choice": "decline", "reason": decline["note"]},
        acting="anna.social",
        **if_match(by_api.case),
    )
    assert response.status_code == 200, response.content
    by_page.refresh(), by_api.refresh()
    assert by_api.case.status == by_page.case.status == Status.CLOSED
    assert by_api.case.close_reason == by_page.case.close_reason
    assert _flow_state(by_api.process) == _flow_state(by_page.process)
    by_api.process.refresh_from_db(), by_page.process.refresh_from_db()
    assert by_api.process.status == by_page.process.status == STATUS.CANCELED
