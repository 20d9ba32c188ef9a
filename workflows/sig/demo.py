"""Demo SIG cases in every state, driven through the services and the flow (``seed_demo``).

Each demo case is run step by step the way the task views run it: the flow's
start creates the process, each task is claimed from its queue (as the
"assign" button does) or taken from its owner's inbox, started with
``activation.start(request)`` under the flow's lock, the step's services do
the case changes, and ``activation.execute()`` finishes the task and lets the
flow route on. So every case has its process, its open task in the right
inbox or queue, its timeline and its access-log events, as if the demo users
had clicked through it.

The cases are synthetic persons aged 15-25 (guardians for those under 18),
marked as such like the other demo persons. A case is keyed on its person
(uuid5 of the slot's name): running ``seed_demo`` again adds nothing. Each
case is built in one transaction, so an interrupted run leaves whole cases.

The one shortcut is time: a plan can only be approved with a review date
ahead, and the follow-up begins only once it has come. The cases shown at or
after their review are therefore approved with a review date ahead, then
moved back to a past review date (the case's date and the follow-up timer's
due moment), and the timer is fired as ``send_reminders`` would fire it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from casework.models import Action, Case, CaseDecision, Consent, Person, User
from casework.services import cases as case_services
from workflows.common import demo
from workflows.common.demo import Slot, guardian_name, person_id
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess
from workflows.sig.services import (
    after_consent_withdrawn,
    decide_to_start,
    record_screening,
    refer,
)

PURPOSE = "Demodata: SIG-ärenden (seed_demo)"

LEAD = "anna.social"
POLICE = "per.polis"
COORDINATOR = "sara.samordnare"


# In the order of the process; ``target`` names the last step taken.
SLOTS = [
    Slot("referred", 16, "refer", guardians=1, referrer="lisa.skola"),
    Slot("screening", 19, "begin_screening", area=Person.Area.BRICKEBACKEN),
    Slot("not-eligible", 21, "reject", area=Person.Area.OTHER),
    Slot("consent-pending", 15, "consents_partly", guardians=2),
    Slot("consent-refused", 17, "consent_refused", guardians=1, referrer="fredrik.fritid"),
    Slot("decision-pending", 16, "decide_social", guardians=1, area=Person.Area.VARBERGA_OXHAGEN),
    Slot("not-started", 22, "police_declines"),
    Slot("planning", 18, "decide_police", area=Person.Area.BRICKEBACKEN),
    Slot("plan-for-approval", 20, "draft_plan", referrer="lisa.skola"),
    Slot("active", 17, "police_action", guardians=1),
    Slot("active-adult", 23, "approve", area=Person.Area.VARBERGA_OXHAGEN),
    Slot("review-overdue", 19, "review_due", options={"days_ago": 4}),
    Slot(
        "follow-up",
        16,
        "begin_follow_up",
        guardians=2,
        protected_identity=Person.ProtectedIdentity.CONFIDENTIALITY_MARKING,
        options={"days_ago": 1},
    ),
    Slot("goals-met", 21, "close_goals_met", area=Person.Area.OTHER, options={"days_ago": 2}),
    Slot("ended-by-person", 25, "close_ended_by_person", options={"days_ago": 2}),
    Slot("consent-withdrawn", 18, "withdraw_consent"),
    Slot("moved", 20, "close_moved", area=Person.Area.VARBERGA_OXHAGEN),
]

# The path each target lies on: the steps taken, in order.
_MAIN = [
    "refer",
    "begin_screening",
    "accept",
    "consents_partly",
    "consents_complete",
    "decide_social",
    "decide_police",
    "draft_plan",
    "approve",
    "police_action",
    "review_due",
    "begin_follow_up",
]
_BRANCHES = {
    "reject": ["refer", "begin_screening", "reject"],
    "consent_refused": ["refer", "begin_screening", "accept", "consent_refused"],
    "police_declines": [*_MAIN[:6], "police_declines"],
    "close_goals_met": [*_MAIN, "close_goals_met"],
    "close_ended_by_person": [*_MAIN, "close_ended_by_person"],
    "withdraw_consent": [*_MAIN[:10], "withdraw_consent"],
    "close_moved": [*_MAIN[:10], "close_moved"],
}


def steps_to(target: str) -> list[str]:
    return demo.steps_to(_MAIN, _BRANCHES, target)


@contextmanager
def task_step(case: SigCase, node, user: User) -> Iterator:
    """Run one POST of ``node``'s task view as ``user`` (``workflows.common.demo.task_step``)."""
    with demo.task_step(demo.case_task(SigProcess, case, node), node, user) as activation:
        yield activation


def start_case(*, user: User, person: Person, reason: str, purpose: str = PURPOSE) -> SigCase:
    """The referral: the flow's start view, as ``ReferralView.post`` runs it."""
    with demo.start_step(SigFlow.start, user) as activation:
        case = refer(user=user, person=person, reason=reason, purpose=purpose)
        activation.process.case = case
    return case


def fire_review_timer(case: SigCase, *, days_ago: int) -> None:
    """Demo time travel: the review date ``days_ago`` days back; the follow-up timer fires
    (``workflows.common.demo.fire_review_timer``)."""
    timer = demo.case_task(SigProcess, case, SigFlow.wait_for_review)
    demo.fire_review_timer(case, timer, days_ago=days_ago)


class _Builder(demo.Builder):
    """Takes one demo case through its steps."""

    process_model = SigProcess

    def __init__(self, slot: Slot, users: dict[str, User], person: Person) -> None:
        super().__init__(users, person)
        self.slot = slot
        self.guardians = []
        self.today = timezone.localdate()

    def run(self) -> SigCase:
        for name in steps_to(self.slot.target):
            self.take_step(name)
        return SigCase.objects.get(pk=self.case.pk)

    # --- referral and screening ------------------------------------------------------

    def step_refer(self) -> None:
        self.case = start_case(
            user=self.users[self.slot.referrer],
            person=self.person,
            reason="Syntetiskt demoärende: oro för umgänge med äldre kriminella, "
            "skolfrånvaro och sena kvällar ute.",
        )

    def step_begin_screening(self) -> None:
        self.begin(SigFlow.screen, self.coordinator, "begin_screening")

    def _screen(self, *, accept: bool) -> None:
        self.do(
            SigFlow.screen,
            self.coordinator,
            record_screening,
            finish=True,
            versioned=True,
            accept=accept,
            note="Uppfyller kriterierna för SIG."
            if accept
            else "Behovet möts bättre på annat sätt.",
            close_reason=None if accept else Case.CloseReason.NOT_ELIGIBLE,
            lead=self.lead,
            police_contact=self.police,
        )

    def step_accept(self) -> None:
        self._screen(accept=True)

    def step_reject(self) -> None:
        self._screen(accept=False)

    # --- consent -------------------------------------------------------------------

    def _organisations(self, case: SigCase) -> list:
        organisations = [case.owner_organisation, self.police.organisation]
        if case.referring_organisation_id != case.owner_organisation_id:
            organisations.append(case.referring_organisation)
        return organisations

    def _consent(self, case, *, giver, guardian=None, decision=Consent.Decision.GIVEN) -> None:
        case_services.record_consent(
            user=self.lead,
            case=case,
            purpose=PURPOSE,
            giver=giver,
            guardian=guardian,
            decision=decision,
            form=Consent.Form.WRITTEN,
            organisations=self._organisations(case),
            valid_until=self.today + datetime.timedelta(days=365),
            expected_version=case.version,
        )

    def _add_guardians(self, case, *, with_phone: bool) -> None:
        for number in range(self.slot.guardians):
            self.guardians.append(
                case_services.add_guardian(
                    user=self.lead,
                    case=case,
                    purpose=PURPOSE,
                    name=guardian_name(self.slot, number),
                    phone=f"070-174 06 {60 + number:02d}" if with_phone else None,
                )
            )

    def step_consents_partly(self) -> None:
        """Guardians registered; the person's own consent, and the first guardian's."""
        with self.task(SigFlow.consent, self.lead) as activation:
            case = activation.process.case
            self._add_guardians(case, with_phone=True)
            self._consent(case, giver=Consent.Giver.SELF)
            for guardian in self.guardians[:1]:
                self._consent(case, giver=Consent.Giver.GUARDIAN, guardian=guardian)

    def step_consents_complete(self) -> None:
        with self.task(SigFlow.consent, self.lead) as activation:
            case = activation.process.case
            for guardian in self.guardians[1:]:
                self._consent(case, giver=Consent.Giver.GUARDIAN, guardian=guardian)
            self._transition(self.lead, case, "consents_given", expected_version=case.version)
            activation.execute()

    def step_consent_refused(self) -> None:
        with self.task(SigFlow.consent, self.lead) as activation:
            case = activation.process.case
            self._add_guardians(case, with_phone=False)
            self._consent(case, giver=Consent.Giver.SELF, decision=Consent.Decision.REFUSED)
            self._transition(self.lead, case, "consent_refused", expected_version=case.version)
            case_services.close_case(
                user=self.lead,
                case=case,
                purpose=PURPOSE,
                reason=Case.CloseReason.CONSENT_REFUSED,
            )
            activation.execute()

    # --- decisions -------------------------------------------------------------------

    def _decide(self, node, user, decision: str, note: str | None = None) -> None:
        """As ``DecisionView.do_decide``."""
        with self.task(node, user) as activation:
            decide_to_start(
                user=user,
                activation=activation,
                choice=decision,
                reason=note,
                expected_version=activation.process.case.version,
                purpose=PURPOSE,
            )

    def step_decide_social(self) -> None:
        self._decide(SigFlow.decide_social, self.lead, CaseDecision.Decision.START)

    def step_decide_police(self) -> None:
        self._decide(SigFlow.decide_police, self.police, CaseDecision.Decision.START)

    def step_police_declines(self) -> None:
        self._decide(
            SigFlow.decide_police,
            self.police,
            CaseDecision.Decision.DECLINE,
            note="Polisen bedömer att andra insatser passar bättre just nu.",
        )

    # --- plan -------------------------------------------------------------------------

    def step_draft_plan(self) -> None:
        with self.task(SigFlow.draft_plan, self.lead) as activation:
            case = activation.process.case
            self.plan_actions(
                self.lead,
                case,
                [
                    (
                        case.owner_organisation,
                        Action.Kind.SUPPORT_TALKS,
                        "Stödsamtal varannan vecka.",
                    ),
                    (
                        self.police.organisation,
                        Action.Kind.POLICE_FOLLOW_UP,
                        "Kontaktpolisen följer upp varje månad.",
                    ),
                ],
                versioned=True,
            )
            case_services.update_case(
                user=self.lead,
                case=case,
                purpose=PURPOSE,
                texts={"plan": "Mål: regelbunden skolgång, en meningsfull fritid, inga nya brott."},
                review_date=self.today + datetime.timedelta(days=90),
                expected_version=case.version,
            )
            activation.execute()

    def step_approve(self) -> None:
        user = self.coordinator
        self.do(
            SigFlow.approve,
            user,
            case_services.transition,
            finish=True,
            versioned=True,
            name="approve_plan",
            approved_by=user,
        )

    # --- active ----------------------------------------------------------------------

    def _on_case_page(self, user: User, service, **kwargs) -> SigCase:
        """``service`` on the case as ``user`` from the case page (a form with the version)."""
        case = SigCase.objects.get(pk=self.case.pk)
        with transaction.atomic():
            service(user=user, case=case, purpose=PURPOSE, expected_version=case.version, **kwargs)
        return case

    def step_police_action(self) -> None:
        """The police contact officer records a talk from the case page."""
        self._on_case_page(
            self.police,
            case_services.add_action,
            kind=Action.Kind.POLICE_TALK,
            status=Action.Status.DONE,
            date=self.today,
            note="Samtal med kontaktpolisen om framtiden.",
        )

    def step_review_due(self) -> None:
        fire_review_timer(self.case, days_ago=self.slot.options.get("days_ago", 1))

    def step_begin_follow_up(self) -> None:
        self.begin(SigFlow.follow_up, self.lead, "begin_follow_up")

    def _follow_up_close(self, reason: str, note: str) -> None:
        self.do(
            SigFlow.follow_up,
            self.lead,
            case_services.close_case,
            finish=True,
            versioned=True,
            reason=reason,
            note=note,
        )

    def step_close_goals_met(self) -> None:
        self._follow_up_close(Case.CloseReason.GOALS_MET, "Målen i planen är uppnådda.")

    def step_close_ended_by_person(self) -> None:
        self._follow_up_close(Case.CloseReason.ENDED_BY_PERSON, "Vill inte fortsätta.")

    # --- closing from the case page -------------------------------------------------------

    def step_withdraw_consent(self) -> None:
        """As ``SigCasePageView.do_withdraw``: the person withdraws the own consent."""
        case = SigCase.objects.get(pk=self.case.pk)
        own = case.consents.get(giver=Consent.Giver.SELF, withdrawn_at__isnull=True)
        with transaction.atomic():
            case_services.withdraw_consent(user=self.lead, case=case, purpose=PURPOSE, consent=own)
            after_consent_withdrawn(user=self.lead, case=case, purpose=PURPOSE)

    def step_close_moved(self) -> None:
        """As ``SigCasePageView.do_close``: close, then cancel the open tasks."""
        with transaction.atomic():
            case = self._on_case_page(
                self.lead,
                case_services.close_case,
                reason=Case.CloseReason.MOVED,
                note="Flyttat till annan kommun.",
            )
            process = SigProcess.objects.get(case=case)
            if process.finished is None:
                SigFlow.instance.cancel(process)


def build_case(slot: Slot, *, index: int = 0) -> SigCase:
    """Register the slot's person and take a new case to the slot's target, in one transaction.

    Needs the demo users (``seed_demo``). ``index`` varies the synthetic details.
    """
    usernames = {LEAD, POLICE, COORDINATOR, slot.referrer}
    users = {u.username: u for u in User.objects.filter(username__in=usernames)}
    with transaction.atomic():
        person = demo.person(slot, index)
        return _Builder(slot, users, person).run()


def seed_sig_cases() -> int:
    """Create the SIG demo cases that do not exist yet; return how many were created."""
    new = demo.new_slots(SLOTS)
    for index, slot in new:
        build_case(slot, index=index)
    return len(new)


__all__ = [
    "SLOTS",
    "Slot",
    "build_case",
    "fire_review_timer",
    "person_id",
    "seed_sig_cases",
    "start_case",
    "task_step",
]
