"""``seed_demo`` creates live SSPF cases in every state (each with its process and the right
open task in the right queue or inbox), a meeting and anonymised discussions; a second run
adds nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework.models import CaseEvent, User
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sspf.factories import open_tasks
from workflows.sig import demo as sig_demo
from workflows.sspf import demo as sspf_demo
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import (
    AnonymisedDiscussion,
    OperationalMeeting,
    SspfCase,
    SspfProcess,
    Status,
)


def _seed() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def _counts() -> dict[str, int]:
    return {
        "cases": SspfCase.objects.count(),
        "processes": SspfProcess.objects.count(),
        "tasks": Task.objects.filter(process__flow_class=SspfFlow).count(),
        "timeline": CaseEvent.objects.filter(case__programme="sspf").count(),
        "meetings": OperationalMeeting.objects.count(),
        "discussions": AnonymisedDiscussion.objects.count(),
        "access_events": AccessEvent.objects.filter(
            object_id__in=[str(pk) for pk in SspfCase.objects.values_list("pk", flat=True)]
        ).count(),
    }


@pytest.mark.django_db(databases=BOTH_DATABASES)
def test_seed_demo_makes_live_sspf_cases_in_every_state(demo, settings, monkeypatch):
    settings.DEMO_SIG_CASES = True
    monkeypatch.setattr(sig_demo, "SLOTS", [])  # only the SSPF part here (SIG has its own test)
    _seed()
    first = _counts()
    _seed()
    # Nothing added the second time: no case, task, timeline entry or log event.
    assert _counts() == first

    assert first["cases"] == len(sspf_demo.SLOTS) == 8
    assert set(SspfCase.objects.values_list("status", flat=True)) == set(Status.values)
    assert (first["meetings"], first["discussions"]) == (1, 2)
    for slot in sspf_demo.SLOTS:
        case = SspfCase.objects.get(person_id=sig_demo.person_id(slot))
        assert case.status == slot.target, slot.key
        # Every case has its process with exactly the expected open task(s), with whom.
        assert open_tasks(case) == sspf_demo.OPEN_TASKS[case.status], slot.key
        process = SspfProcess.objects.get(case=case)
        assert (process.finished is not None) == (case.status == Status.CLOSED), slot.key
        timers = process.task_set.filter(flow_task=SspfFlow.wait_for_review).exclude(
            status__in=["DONE", "CANCELED"]
        )
        # The plan in force waits for its follow-up date.
        assert timers.exists() == (case.status == Status.PLAN_ACTIVE), slot.key

    # The tasks are where their users look: the coordinators' queue and inbox, the
    # school's and leisure's inboxes (only tasks of the cases they are members of).
    def lists(username):
        user = User.objects.get(username=username)
        inbox = Task.objects.inbox([SspfFlow], user)
        queue = Task.objects.queue([SspfFlow], user)
        return (
            sorted(t.flow_task.name for t in inbox),
            sorted(t.flow_task.name for t in queue),
        )

    expected: dict[str, tuple[list, list]] = {
        name: ([], []) for name in ("sara.samordnare", "lisa.skola", "fredrik.fritid")
    }
    for tasks in sspf_demo.OPEN_TASKS.values():
        for node, owner in tasks.items():
            if owner is None:
                expected["sara.samordnare"][1].append(node)
            else:
                expected[owner][0].append(node)
    for username, (inbox, queue) in expected.items():
        assert lists(username) == (sorted(inbox), sorted(queue)), username
    for member in ("lisa.skola", "fredrik.fritid"):
        user = User.objects.get(username=member)
        for task in Task.objects.inbox([SspfFlow], user):
            case = task.coerced_process.case
            assert case.memberships.filter(user=user, valid_to__isnull=True).exists()
    assert lists("per.polis") == ([], [])
    assert lists("anna.social") == ([], [])
