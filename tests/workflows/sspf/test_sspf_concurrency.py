"""Two users advance the same SSPF case at once, on PostgreSQL (as ``test_sig_concurrency``).

Real threads, each with its own database connection, commit for real. A barrier in front
of the lock makes the race certain: exactly one wins, the other gets "the case was changed
by someone else" (or, for a task already done, is taken to the case), nothing is
half-written. A guardian's withdrawal of consent racing a step always wins: whichever
takes the lock first, the case ends closed on the withdrawal, its process stopped.
"""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.utils import timezone, translation

from audit.models import AccessEvent
from casework.models import Case, CaseEvent, Consent, User
from casework.services import cases as services
from casework.services.cases import CaseConflict
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.racing import flow_lock_meeting
from tests.workflows.sig.test_sig_concurrency import meet_at_the_lock, race  # noqa: F401 (a fixture)
from tests.workflows.sspf.factories import (
    PURPOSE,
    SspfFlowDriver,
    open_tasks,
    sspf_case,
    write_plan,
)
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfCase, SspfProcess, Status

pytestmark = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=[*BOTH_DATABASES, "audit"]
)


@pytest.fixture
def people(users):
    """The demo users and a second coordinator."""
    people = dict(users)
    sven = User.objects.create(
        username="sven.samordnare", organisation=users["sara.samordnare"].organisation
    )
    sven.groups.set(users["sara.samordnare"].groups.all())
    people["sven.samordnare"] = sven
    return people


@pytest.fixture
def meet_at_the_flow_lock(monkeypatch):
    """Hold each racer in front of ``SspfFlow.lock`` until all have arrived."""
    return flow_lock_meeting(monkeypatch, SspfFlow)


def record(case_id) -> dict:
    case = SspfCase.objects.get(pk=case_id)
    return {
        "status": case.status,
        "version": case.version,
        "timeline": CaseEvent.objects.filter(case_id=case_id).count(),
        "transitions": AccessEvent.objects.filter(
            action=AccessEvent.Action.TRANSITION, object_id=str(case_id)
        ).count(),
        "withdrawn": Consent.objects.filter(case_id=case_id, withdrawn_at__isnull=False).count(),
    }


def test_two_coordinators_adopt_the_same_plan(people, meet_at_the_lock):  # noqa: F811
    case = sspf_case(people, Status.NETWORK_MEETING)
    write_plan(people, case)
    before = record(case.pk)
    meet_at_the_lock(2)

    def adopt(username):
        def run():
            user = people[username]
            mine = SspfCase.objects.get(pk=case.pk)  # each request loads its own copy
            services.transition(
                user=user,
                case=mine,
                name="adopt_plan",
                purpose=PURPOSE,
                adopted_by=user,
                expected_version=before["version"],
            )
            return username

        return run

    results = race(sara=adopt("sara.samordnare"), sven=adopt("sven.samordnare"))
    winners = [r for r in results.values() if isinstance(r, str)]
    losers = [r for r in results.values() if not isinstance(r, str)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], CaseConflict), results
    after = record(case.pk)
    assert after["status"] == Status.PLAN_ACTIVE
    assert after["version"] == before["version"] + 1
    assert after["timeline"] == before["timeline"] + 1
    assert after["transitions"] == before["transitions"] + 1
    assert SspfCase.objects.get(pk=case.pk).plan_adopted_by == people[winners[0]]


def test_two_coordinators_close_the_case_from_the_case_page(people, meet_at_the_lock):  # noqa: F811
    """Through the view: one is taken to the closed case, the other told to reload."""
    case = sspf_case(people, Status.PLAN_ACTIVE)
    before = record(case.pk)
    meet_at_the_lock(2)
    url = f"/arenden/fall/{case.pk}/"

    def close(username, reason):
        def run():
            client = Client()
            client.cookies["django_language"] = "sv"
            client.force_login(people[username])
            return client.post(
                url, {"_action": "close", "version": before["version"], "close_reason": reason}
            )

        return run

    responses = race(
        sara=close("sara.samordnare", "goals_met"), sven=close("sven.samordnare", "moved")
    ).values()
    assert sorted(r.status_code for r in responses) == [200, 302], responses
    refused = next(r for r in responses if r.status_code == 200)
    with translation.override("sv"):
        message = str(CaseConflict.message)
    assert html.escape(message) in refused.content.decode()
    after = record(case.pk)
    assert after["status"] == Status.CLOSED
    assert after["version"] == before["version"] + 1
    assert after["transitions"] == before["transitions"] + 1
    assert after["timeline"] == before["timeline"] + 1


def test_the_same_task_step_posted_twice(people):
    """Two tabs submit the mapping conversation at once: the flow's lock queues them; the
    first moves the case on, the second finds the step done and is taken to the case."""
    driver = SspfFlowDriver(people)
    case = driver.build("mapping")
    task = driver.task(case, "mapping")
    driver.post("sara.samordnare", driver.url(task, "assign"))
    before = record(case.pk)

    def submit():
        client = Client()
        client.force_login(people["sara.samordnare"])
        return client.post(
            driver.url(task),
            {
                "_action": "mapping",
                "version": before["version"],
                "held_on": timezone.localdate().isoformat(),
                "mapping_note": "Familjen vill ha stöd.",
            },
        )

    responses = list(race(tab_1=submit, tab_2=submit).values())
    assert [r.status_code for r in responses] == [302, 302], responses
    assert {r["Location"] for r in responses} == {f"/arenden/fall/{case.pk}/"}
    after = record(case.pk)
    assert after["status"] == Status.NETWORK_MEETING
    assert after["transitions"] == before["transitions"] + 1
    assert after["timeline"] == before["timeline"] + 2  # the mapping and its transition, once
    assert open_tasks(case) == {"network_meeting": None}


@pytest.mark.parametrize("first_to_lock", ["withdrawal", "step"])
def test_a_guardians_withdrawal_racing_a_task_step(people, meet_at_the_flow_lock, first_to_lock):
    """The coordinator begins the follow-up meeting while the guardian's consent is
    withdrawn on the case page: the withdrawal always wins.

    Withdrawal first: the case closes and the process stops; the step finds its task
    cancelled and its user is taken to the closed case. Step first: the follow-up begins,
    then the withdrawal goes through on the case as it now is and closes it. Never a
    withdrawal without its closing, nor a follow-up on a withdrawn consent.
    """
    driver = SspfFlowDriver(people)
    case = driver.build("follow_up")
    task = driver.task(case, "follow_up")
    driver.post("sara.samordnare", driver.url(task, "assign"))
    before = record(case.pk)
    guardian_consent = case.consents.get(giver=Consent.Giver.GUARDIAN)
    meet_at_the_flow_lock(2, first=first_to_lock)

    def step():
        client = Client()
        client.force_login(people["sara.samordnare"])
        return client.post(driver.url(task), {"_action": "begin", "version": before["version"]})

    def withdrawal():
        client = Client()
        client.force_login(people["sven.samordnare"])
        return client.post(
            f"/arenden/fall/{case.pk}/",
            {"_action": "withdraw", "consent": str(guardian_consent.pk)},
        )

    results = race(withdrawal=withdrawal, step=step)
    assert results["withdrawal"].status_code == 302, results
    assert results["withdrawal"]["Location"] == f"/arenden/fall/{case.pk}/"
    assert results["step"].status_code == 302, results
    after = record(case.pk)
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
