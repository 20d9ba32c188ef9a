"""SSPF end to end through the real task views: a concern raised by the school, to the plan
in force, the school's and the leisure centre's reports, and one follow-up meeting.

At every step: the case's state, the timeline, the access-log events, and what is in each
role's inbox and queue (the coordinator's queue and inbox, the school and leisure members'
inboxes, nothing for an unrelated school user, the police or a social worker off the team).
"""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework.models import CaseEvent, Organisation
from tests.workflows.conftest import BOTH_DATABASES, colleague
from tests.workflows.sig.factories import orgs
from tests.workflows.sspf.factories import (
    TRANSITIONS,
    SspfFlowDriver,
    fire_follow_up_timer,
    open_tasks,
)
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfProcess, Status
from workflows.sspf.services import NO_OWN_ACTION

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

SARA, LISA, FREDRIK = "sara.samordnare", "lisa.skola", "fredrik.fritid"
ROLES = (SARA, LISA, FREDRIK, "per.polis", "anna.social", "nils.skola")


@pytest.fixture
def people(users):
    """The demo users and a school user at another school, on no team."""
    navet = Organisation.objects.get(name="Navets skola")
    return {**users, "nils.skola": colleague(users, LISA, "nils.skola", organisation=navet)}


def task_lists(people) -> dict[str, tuple[list[str], list[str]]]:
    """Each role's SSPF inbox and queue (flow node names), as the task list pages list them."""
    lists = {}
    for username in ROLES:
        user = people[username]
        inbox = Task.objects.inbox([SspfFlow], user)
        queue = Task.objects.queue([SspfFlow], user)
        lists[username] = (
            sorted(task.flow_task.name for task in inbox),
            sorted(task.flow_task.name for task in queue),
        )
    return lists


def expect_lists(people, **expected) -> None:
    """Every role's lists are empty except those named: ``sara=(inbox, queue)``."""
    wanted = {username: ([], []) for username in ROLES}
    for key, (inbox, queue) in expected.items():
        wanted[key.replace("_", ".")] = (sorted(inbox), sorted(queue))
    assert task_lists(people) == wanted


class Trail:
    """What the case's timeline and the access log gained since the last look."""

    def __init__(self, case):
        self.case = case
        self.events = 0
        self.transitions = 0

    def since(self) -> tuple[list[str], int]:
        events = list(
            CaseEvent.objects.filter(case_id=self.case.pk)
            .order_by("at", "pk")
            .values_list("transition", flat=True)
        )
        transitions = AccessEvent.objects.filter(
            action=AccessEvent.Action.TRANSITION, object_id=str(self.case.pk)
        ).count()
        new_events, new_transitions = events[self.events :], transitions - self.transitions
        self.events, self.transitions = len(events), transitions
        return new_events, new_transitions


def test_sspf_from_concern_to_the_plan_and_a_follow_up(people):
    driver = SspfFlowDriver(people)
    today = timezone.localdate()

    # The school raises a concern: the coordinators' queue has it.
    case = driver.raise_concern(LISA)
    trail = Trail(case)
    assert case.status == Status.CONCERN_RAISED and case.reference.startswith("SSPF-")
    assert trail.since() == (["refer"], 0)
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.CREATE, user=people[LISA], object_id=str(case.pk)
    ).exists()
    expect_lists(people, sara_samordnare=([], ["assess"]))

    # The coordinator takes it up: the task moves from the queue to her inbox.
    driver.run(case, "assess", SARA, {"_action": "begin"})
    assert case.status == Status.ASSESSMENT
    assert trail.since() == (["begin_assessment"], 1)
    expect_lists(people, sara_samordnare=(["assess"], []))

    # Risk assessment; lisa.skola (raising the concern gave her no access) and
    # fredrik.fritid on the team; accepted: consent is next.
    driver.run(
        case,
        "assess",
        SARA,
        {"_action": "risk", "level": "moderate", "risk_factors": "Hög frånvaro."},
    )
    driver.run(
        case, "assess", SARA, {"_action": "member", "user": people[LISA].pk, "role": "school"}
    )
    driver.run(
        case, "assess", SARA, {"_action": "member", "user": people[FREDRIK].pk, "role": "leisure"}
    )
    assert case.status == Status.ASSESSMENT
    driver.run(case, "assess", SARA, {"_action": "outcome", "outcome": "accept"})
    assert case.status == Status.CONSENT_PENDING
    assert trail.since() == (
        ["risk:moderate", "add:school", "add:leisure", "request_consent"],
        1,
    )
    expect_lists(people, sara_samordnare=([], ["consent"]))

    # Consent: the guardian in writing (the young person is 13: no own consent needed),
    # covering social services, the school and leisure.
    driver.run(case, "consent", SARA, {"_action": "guardian", "guardian_name": "Vera Provsson"})
    guardian = case.person.guardians.get()
    covering = [orgs(people)[name].pk for name in ("social", "school", "leisure")]
    driver.run(
        case,
        "consent",
        SARA,
        {
            "_action": "consent",
            "giver": "guardian",
            "guardian": str(guardian.pk),
            "decision": "given",
            "form": "written",
            "organisations": covering,
            "purposes": ["coordination"],
        },
    )
    assert case.status == Status.CONSENT_PENDING
    driver.run(case, "consent", SARA, {"_action": "complete"})
    assert case.status == Status.MAPPING
    events, transitions = trail.since()
    assert events[-1] == "consents_given" and transitions == 1
    expect_lists(people, sara_samordnare=([], ["mapping"]))

    # The mapping conversation.
    driver.run(
        case,
        "mapping",
        SARA,
        {
            "_action": "mapping",
            "held_on": today.isoformat(),
            "mapping_note": "Familjen vill ha stöd kring skolan.",
        },
    )
    assert case.status == Status.NETWORK_MEETING
    assert trail.since() == (["mapping", "mapping_done"], 1)
    expect_lists(people, sara_samordnare=([], ["network_meeting"]))

    # The network meeting: the school's action, the goals, the follow-up date; adopted.
    driver.run(
        case,
        "network_meeting",
        SARA,
        {
            "_action": "action",
            "kind": "school_support",
            "organisation": orgs(people)["school"].pk,
            "status": "planned",
            "date": today.isoformat(),
            "visibility": "team",
            "note": "Mentorssamtal varje vecka.",
        },
    )
    review = today + datetime.timedelta(days=42)
    driver.run(
        case,
        "network_meeting",
        SARA,
        {"_action": "plan", "plan_goals": "Mål: närvaro.", "review_date": review.isoformat()},
    )
    assert case.status == Status.PLAN_ACTIVE
    assert case.plan_adopted_by == people[SARA]
    events, transitions = trail.since()
    assert events[-1] == "adopt_plan" and transitions == 1
    # The plan is in force: the school's and the leisure centre's parts are in their
    # members' inboxes; the coordinator waits for the follow-up date.
    expect_lists(people, lisa_skola=(["school_part"], []), fredrik_fritid=(["leisure_part"], []))

    # The inbox page lists the task for its member, not for another school's user.
    school_task = driver.task(case, "school_part")
    task_url = driver.url(school_task, "index")
    client = Client()
    client.force_login(people[LISA])
    assert task_url in client.get(reverse("arenden:inbox")).content.decode()
    client.force_login(people["nils.skola"])
    assert task_url not in client.get(reverse("arenden:inbox")).content.decode()
    assert client.get(driver.url(school_task)).status_code == 403

    # The school reports its part (it has its action in the plan).
    driver.client.force_login(people[LISA])
    page = driver.client.get(driver.url(school_task))
    assert page.status_code == 200
    assert "Mål: närvaro." in page.content.decode()
    assert "Hög frånvaro." not in page.content.decode()  # the risk factors are not the school's
    driver.run(case, "school_part", LISA, {"_action": "report", "report": "Närvaron ökar."})
    assert trail.since() == (["report:school"], 0)
    expect_lists(people, fredrik_fritid=(["leisure_part"], []))

    # Leisure has no action in the plan yet: the report is refused until it records one.
    response = driver.run(
        case, "leisure_part", FREDRIK, {"_action": "report", "report": "Bra."}, expect=200
    )
    with translation.override("sv"):
        swedish = str(NO_OWN_ACTION)
    content = response.content.decode()
    assert escape(swedish) in content or escape(str(NO_OWN_ACTION)) in content
    assert trail.since() == ([], 0)
    driver.run(
        case,
        "leisure_part",
        FREDRIK,
        {
            "_action": "action",
            "kind": "leisure_activity",
            "status": "done",
            "date": today.isoformat(),
            "visibility": "team",
            "note": "Började i fotbollsgruppen.",
        },
    )
    action = case.actions.get(kind="leisure_activity")
    assert action.organisation == people[FREDRIK].organisation
    driver.run(
        case, "leisure_part", FREDRIK, {"_action": "report", "report": "Kommer varje vecka."}
    )
    assert trail.since() == (["leisure_activity:done", "report:leisure"], 0)
    expect_lists(people)

    # The follow-up date comes: the follow-up meeting is in the coordinators' queue.
    fire_follow_up_timer(case)
    case.refresh_from_db()
    expect_lists(people, sara_samordnare=([], ["follow_up"]))
    driver.run(case, "follow_up", SARA, {"_action": "begin"})
    assert case.status == Status.FOLLOW_UP
    assert trail.since() == (["begin_follow_up"], 1)
    expect_lists(people, sara_samordnare=(["follow_up"], []))

    # It continues with a new follow-up date: a new period, new reports due.
    next_review = today + datetime.timedelta(days=42)
    driver.run(
        case,
        "follow_up",
        SARA,
        {
            "_action": "follow_up",
            "outcome": "continue",
            "review_date": next_review.isoformat(),
            "note": "Planen fungerar.",
        },
    )
    assert case.status == Status.PLAN_ACTIVE
    assert case.review_date == next_review
    events, transitions = trail.since()
    assert events[-1] == "continue_plan" and transitions == 1
    expect_lists(people, lisa_skola=(["school_part"], []), fredrik_fritid=(["leisure_part"], []))
    # Every transition taken is in the access log, once.
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.TRANSITION, object_id=str(case.pk)
    ).count() == len(TRANSITIONS)


def test_closing_the_case_at_the_follow_up_cancels_the_open_reports(people):
    driver = SspfFlowDriver(people)
    case = driver.build("follow_up")
    driver.run(case, "follow_up", SARA, {"_action": "begin"})
    assert open_tasks(case) == {
        "follow_up": SARA,
        "school_part": LISA,
        "leisure_part": FREDRIK,
    }
    driver.run(
        case,
        "follow_up",
        SARA,
        {"_action": "follow_up", "outcome": "close", "close_reason": "goals_met"},
    )
    assert case.status == Status.CLOSED
    assert open_tasks(case) == {}
    assert SspfProcess.objects.get(case=case).finished is not None
    expect_lists(people)
