"""Two users advance the same SIG case at once, on PostgreSQL.

Real threads, each with its own database connection (as web workers), commit
for real (``transaction=True``). Both have loaded the case and passed every
check before either takes the row lock — a barrier in front of the lock makes
the race certain, not a matter of timing. Exactly one wins; the other gets
``CaseConflict`` ("the case was changed by someone else"), and nothing is lost
or half-written: one transition, one timeline entry, one ``TRANSITION`` event,
the version moved once.

``transaction=True`` tests end with a flush, which the project's ``flush``
override performs on the append-only audit tables of a test database
(docs/adr/0005-audit-log.md); ``serialized_rollback`` restores the data the
migrations made (roles, legal bases) for the tests after.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from casework.models import Action, CaseEvent, Consent
from casework.services import cases as services
from casework.services.cases import CaseConflict
from tests.conftest import COMMITTED_DB
from tests.workflows.racing import (
    flow_lock_meeting,
    race,
    race_to_close_on_the_case_page,
    race_two_coordinators,
    record,
)
from tests.workflows.sig.factories import (
    PURPOSE,
    FlowDriver,
    reach_review_date,
    record_full_consent,
    sig_case,
    write_plan,
)
from workflows.sig.models import SigCase, Status
from workflows.sig.services import after_consent_withdrawn

pytestmark = COMMITTED_DB


def test_two_coordinators_approve_the_same_plan(staff, meet_at_the_lock):
    case = sig_case(staff, Status.PLANNING)
    # Ready for approval: an action per agency, the plan and a review date.
    case = _ready_for_approval(staff, case)
    meet_at_the_lock(2)
    winner, after = race_two_coordinators(
        staff, case, "approve_plan", purpose=PURPOSE, signed_by="approved_by"
    )
    assert after["status"] == Status.ACTIVE
    approved = SigCase.objects.get(pk=case.pk)
    assert approved.plan_approved_by == staff[winner]


def test_the_same_step_posted_twice_with_the_same_version(staff, meet_at_the_lock):
    """A double submit (two tabs): the same action form, the same version, twice."""
    case = sig_case(staff, Status.ACTIVE)
    before = record(case)
    meet_at_the_lock(2)

    def add_action():
        mine = SigCase.objects.get(pk=case.pk)
        return services.add_action(
            user=staff["anna.social"],
            case=mine,
            purpose=PURPOSE,
            kind=Action.Kind.SUPPORT_TALKS,
            status=Action.Status.DONE,
            date=timezone.localdate(),
            note="Samtal.",
            expected_version=before["version"],
        )

    results = race(tab_1=add_action, tab_2=add_action)
    assert sum(isinstance(r, Action) for r in results.values()) == 1, results
    assert sum(isinstance(r, CaseConflict) for r in results.values()) == 1, results
    after = record(case)
    assert after["actions"] == before["actions"] + 1
    assert after["version"] == before["version"] + 1
    assert after["timeline"] == before["timeline"] + 1
    assert after["status"] == before["status"]


@pytest.mark.parametrize("first_to_lock", ["withdrawal", "transition"])
def test_a_transition_racing_a_consent_withdrawal(staff, meet_at_the_lock, first_to_lock):
    """The follow-up begins while the person's consent is withdrawn: the withdrawal
    always wins.

    If the withdrawal takes the lock first, the case closes and the follow-up is
    refused as stale. If the follow-up commits first, the withdrawal still goes
    through on the case as it now is (in follow-up) and closes it: a person's
    withdrawal is never refused because someone else was working on the case.
    Never a withdrawal without its closing, nor a follow-up on a withdrawn consent.
    """
    case = sig_case(staff, Status.ACTIVE)
    reach_review_date(case)
    before = record(case)
    meet_at_the_lock(2, first=first_to_lock)
    anna = staff["anna.social"]

    def withdraw():
        mine = SigCase.objects.get(pk=case.pk)
        consent = mine.consents.get(giver=Consent.Giver.SELF)
        with transaction.atomic():  # one request, as on the case page
            services.withdraw_consent(user=anna, case=mine, purpose=PURPOSE, consent=consent)
            return after_consent_withdrawn(user=anna, case=mine, purpose=PURPOSE)

    def follow_up():
        mine = SigCase.objects.get(pk=case.pk)
        return services.transition(
            user=anna,
            case=mine,
            name="begin_follow_up",
            purpose=PURPOSE,
            expected_version=before["version"],
        )

    results = race(withdrawal=withdraw, transition=follow_up)
    assert results["withdrawal"] is True, results  # the case was closed with it
    after = record(case)
    assert (after["status"], after["withdrawn"]) == (Status.CLOSED, before["withdrawn"] + 1)
    if first_to_lock == "withdrawal":
        assert isinstance(results["transition"], CaseConflict), results
        assert after["transitions"] == before["transitions"] + 1  # the closing
        assert after["timeline"] == before["timeline"] + 2  # the withdrawal and the closing
        assert after["version"] == before["version"] + 2
    else:
        assert not isinstance(results["transition"], BaseException), results
        assert after["transitions"] == before["transitions"] + 2  # follow-up, then closing
        assert after["timeline"] == before["timeline"] + 3
        assert after["version"] == before["version"] + 3


@pytest.mark.parametrize("language", ["sv", "en"])
def test_two_users_close_the_case_from_the_case_page(staff, meet_at_the_lock, language):
    """Through the view: one is redirected to the closed case, the other told to reload."""
    case = sig_case(staff, Status.ACTIVE)
    meet_at_the_lock(2)
    closers = {"anna": ("anna.social", "goals_met"), "sara": ("sara.samordnare", "moved")}
    message, after = race_to_close_on_the_case_page(staff, case, closers, language)
    # The message in the page's language, from the project's catalogue: Swedish
    # ("Ärendet har ändrats av någon annan …") when the catalogue is compiled,
    # else the English msgid; with English chosen, exactly the msgid.
    if language == "en":
        assert message == "The case was changed by someone else. Reload the page and try again."
    assert after["status"] == Status.CLOSED


def test_the_same_task_step_posted_twice(staff):
    """Two tabs submit "consents complete" at once: viewflow's process lock queues them;
    the first moves the case on, the second finds the task done and is taken to the
    case with a message (no 403, nothing done twice)."""
    flow_case = FlowDriver(staff).build("consent")
    record_full_consent(staff, flow_case.case)
    flow_case.refresh()
    before = record(flow_case.case)
    consent_task = flow_case.task("consent")
    url = consent_task.flow_task.reverse("execute", args=[consent_task.process_id, consent_task.pk])

    def submit():
        client = Client()
        client.force_login(staff["anna.social"])
        return client.post(url, {"_action": "complete", "version": before["version"]})

    responses = list(race(tab_1=submit, tab_2=submit).values())
    assert [r.status_code for r in responses] == [302, 302], responses
    locations = sorted(r["Location"] for r in responses)
    assert f"/arenden/fall/{flow_case.case.pk}/" in locations, locations
    after = record(flow_case.case)
    assert after["status"] == Status.DECISION_PENDING
    assert after["transitions"] == before["transitions"] + 1
    assert after["version"] == before["version"] + 1
    open_tasks = flow_case.process.task_set.exclude(status__in=["DONE", "CANCELED"])
    assert sorted(t.flow_task.name for t in open_tasks.filter(flow_task_type="HUMAN")) == [
        "decide_police",
        "decide_social",
    ]


def _ready_for_approval(staff, case):
    write_plan(staff, case)
    return SigCase.objects.get(pk=case.pk)


@pytest.fixture
def meet_at_the_flow_lock(monkeypatch):
    """Hold each racer in front of ``SigFlow.lock`` until all have arrived."""
    from workflows.sig.flow import SigFlow

    return flow_lock_meeting(monkeypatch, SigFlow)


@pytest.mark.parametrize("first_to_lock", ["withdrawal", "step"])
def test_a_withdrawal_on_the_case_page_racing_a_task_step(
    staff, meet_at_the_flow_lock, first_to_lock
):
    """The lead begins the follow-up in its task while the person's consent is withdrawn
    on the case page: both take the flow's lock first, so neither deadlocks, and the
    withdrawal always wins — the case ends closed, its process stopped."""
    from workflows.sig.models import SigProcess

    flow_case = FlowDriver(staff).build("follow_up")
    case = flow_case.case
    task = flow_case.task("follow_up")
    before = record(case)
    consent = case.consents.get(giver=Consent.Giver.SELF)
    url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    meet_at_the_flow_lock(2, first=first_to_lock)

    def step():
        client = Client()
        client.force_login(staff["anna.social"])
        return client.post(url, {"_action": "begin", "version": before["version"]})

    def withdrawal():
        client = Client()
        client.force_login(staff["sara.samordnare"])
        return client.post(
            f"/arenden/fall/{case.pk}/", {"_action": "withdraw", "consent": str(consent.pk)}
        )

    results = race(withdrawal=withdrawal, step=step)
    assert results["withdrawal"].status_code == 302, results
    assert results["step"].status_code == 302, results
    after = record(case)
    assert (after["status"], after["withdrawn"]) == (Status.CLOSED, before["withdrawn"] + 1)
    assert SigProcess.objects.get(case_id=case.pk).finished is not None
    began = CaseEvent.objects.filter(case_id=case.pk, transition="begin_follow_up").exists()
    assert began is (first_to_lock == "step")
