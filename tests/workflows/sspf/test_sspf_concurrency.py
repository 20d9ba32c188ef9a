"""Two users advance the same SSPF case at once, on PostgreSQL (as ``test_sig_concurrency``).

Real threads, each with its own database connection, commit for real. A barrier in front
of the lock makes the race certain: exactly one wins, the other gets "the case was changed
by someone else" (or, for a task already done, is taken to the case), nothing is
half-written. A guardian's withdrawal of consent racing a step always wins: whichever
takes the lock first, the case ends closed on the withdrawal, its process stopped.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from casework.models import Case, CaseEvent, Consent
from tests.conftest import COMMITTED_DB
from tests.workflows import racing
from tests.workflows.sspf.factories import (
    PURPOSE,
    SspfFlowDriver,
    open_tasks,
    sspf_case,
    write_plan,
)
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfCase, SspfProcess, Status

pytestmark = COMMITTED_DB


@pytest.fixture
def meet_at_the_flow_lock(monkeypatch):
    """Hold each racer in front of ``SspfFlow.lock`` until all have arrived."""
    return racing.flow_lock_meeting(monkeypatch, SspfFlow)


def test_two_coordinators_adopt_the_same_plan(staff, meet_at_the_lock):
    case = sspf_case(staff, Status.NETWORK_MEETING)
    write_plan(staff, case)
    meet_at_the_lock(2)
    winner, after = racing.race_two_coordinators(
        staff, case, "adopt_plan", purpose=PURPOSE, signed_by="adopted_by"
    )
    assert after["status"] == Status.PLAN_ACTIVE
    assert SspfCase.objects.get(pk=case.pk).plan_adopted_by == staff[winner]


def test_two_coordinators_close_the_case_from_the_case_page(staff, meet_at_the_lock):
    """Through the view: one is taken to the closed case, the other told to reload."""
    case = sspf_case(staff, Status.PLAN_ACTIVE)
    meet_at_the_lock(2)
    closers = {"sara": ("sara.samordnare", "goals_met"), "sven": ("sven.samordnare", "moved")}
    _, after = racing.race_to_close_on_the_case_page(staff, case, closers, "sv")
    assert after["status"] == Status.CLOSED


def test_the_same_task_step_posted_twice(staff):
    """Two tabs submit the mapping conversation at once: the flow's lock queues them; the
    first moves the case on, the second finds the step done and is taken to the case."""
    driver = SspfFlowDriver(staff)
    case = driver.build("mapping")
    task = driver.task(case, "mapping")
    driver.post("sara.samordnare", driver.url(task, "assign"))
    before = racing.record(case)

    def submit():
        client = Client()
        client.force_login(staff["sara.samordnare"])
        return client.post(
            driver.url(task),
            {
                "_action": "mapping",
                "version": before["version"],
                "held_on": timezone.localdate().isoformat(),
                "mapping_note": "Familjen vill ha stöd.",
            },
        )

    responses = list(racing.race(tab_1=submit, tab_2=submit).values())
    assert [r.status_code for r in responses] == [302, 302], responses
    assert {r["Location"] for r in responses} == {f"/arenden/fall/{case.pk}/"}
    after = racing.record(case)
    assert after["status"] == Status.NETWORK_MEETING
    assert after["transitions"] == before["transitions"] + 1
    assert after["timeline"] == before["timeline"] + 2  # the mapping and its transition, once
    assert open_tasks(case) == {"network_meeting": None}


@pytest.mark.parametrize("first_to_lock", ["withdrawal", "step"])
def test_a_guardians_withdrawal_racing_a_task_step(staff, meet_at_the_flow_lock, first_to_lock):
    """The coordinator begins the follow-up meeting while the guardian's consent is
    withdrawn on the case page: the withdrawal always wins.

    Withdrawal first: the case closes and the process stops; the step finds its task
    cancelled and its user is taken to the closed case. Step first: the follow-up begins,
    then the withdrawal goes through on the case as it now is and closes it. Never a
    withdrawal without its closing, nor a follow-up on a withdrawn consent.
    """
    driver = SspfFlowDriver(staff)
    case = driver.build("follow_up")
    task = driver.task(case, "follow_up")
    driver.post("sara.samordnare", driver.url(task, "assign"))
    before = racing.record(case)
    guardian_consent = case.consents.get(giver=Consent.Giver.GUARDIAN)
    meet_at_the_flow_lock(2, first=first_to_lock)

    def step():
        client = Client()
        client.force_login(staff["sara.samordnare"])
        return client.post(driver.url(task), {"_action": "begin", "version": before["version"]})

    def withdrawal():
        client = Client()
        client.force_login(staff["sven.samordnare"])
        return client.post(
            f"/arenden/fall/{case.pk}/",
            {"_action": "withdraw", "consent": str(guardian_consent.pk)},
        )

    results = racing.race(withdrawal=withdrawal, step=step)
    assert results["withdrawal"].status_code == 302, results
    assert results["withdrawal"]["Location"] == f"/arenden/fall/{case.pk}/"
    assert results["step"].status_code == 302, results
    after = racing.record(case)
    closed = SspfCase.objects.get(pk=case.pk)
    assert (after["status"], after["withdrawn"]) == (Status.CLOSED, before["withdrawn"] + 1)
    assert closed.close_reason == Case.CloseReason.CONSENT_WITHDRAWN
    assert open_tasks(case) == {}
    assert SspfProcess.objects.get(case=case).finished is not None
    began = CaseEvent.objects.filter(case_id=case.pk, transition="begin_follow_up").exists()
    if first_to_lock == "withdrawal":
        # The step came too late: its user is taken to the case; nothing of it happened.
        assert results["step"]["Location"] == f"/arenden/fall/{case.pk}/"
        assert not began
        assert after["transitions"] == before["transitions"] + 1  # the closing
        assert after["timeline"] == before["timeline"] + 2  # the withdrawal and the closing
    else:
        assert began
        assert after["transitions"] == before["transitions"] + 2  # follow-up, then closing
        assert after["timeline"] == before["timeline"] + 3
