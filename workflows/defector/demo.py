"""Demo defector cases at every level and state, driven through the flow and the services.

Like ``workflows/sig_demo.py``: each case is run step by step the way the task
views run it (the flow's start, each task claimed and executed under the flow's
lock), so every case has its process, its open task in the right inbox or queue,
its timeline and its access-log events. The persons are synthetic
(samordningsnummer, made-up names, the PTS fiction phone series) and keyed on
the slot (uuid5): running ``seed_demo`` again adds nothing. Each case is built
in one transaction.

The tests use :func:`build_case` as their flow driver too.

Time travel (the same one shortcut as the SIG demo): a case shown at its review
gets its review date moved back and its timer fired; an overdue reassessment
gets its next-review date moved back.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from casework.models import Case, CaseDecision, Consent, Person, User
from casework.selectors.persons import person_age
from casework.services import cases as case_services
from workflows.common import demo
from workflows.common.services import transition_with_review_date
from workflows.defector import intake, services
from workflows.defector.flow import DefectorFlow, ThreatReviewFlow, reassessment_time
from workflows.defector.models import (
    DefectorCase,
    DefectorProcess,
    Level,
    ReferralSource,
    ThreatAssessment,
)

PURPOSE = "Demodata: avhopparärenden (seed_demo)"
DEFECTOR_NAMESPACE = uuid.UUID("6f1d2c1e-8a8c-4e0e-9a51-5a6d656d6fde")

LEAD = "anna.social"
POLICE = "per.polis"
COORDINATOR = "alex.avhopp"
POLICE_COORDINATOR = "maja.avhopp"


@dataclass(frozen=True)
class Slot:
    key: str
    age: int
    target: str  # the last step of ``STEPS`` taken (or a branch)
    level: str = Level.LOW
    protected_identity: int = Person.ProtectedIdentity.NONE
    referrer: str = LEAD
    area: str = Person.Area.VIVALLA_BARONBACKARNA


SLOTS = [
    Slot("referred", 24, "refer", referrer=POLICE),
    Slot("initial-check", 31, "begin_check"),
    Slot("not-eligible", 27, "reject"),
    Slot("consent-pending", 17, "accept", area=Person.Area.BRICKEBACKEN),
    Slot("partial-consent", 22, "consent_partial"),
    Slot("joint-assessment", 29, "consents_given", area=Person.Area.VARBERGA_OXHAGEN),
    Slot("local-intake", 19, "assess"),
    Slot("agreement-signed", 26, "sign_agreement"),
    Slot(
        "active-protected",
        23,
        "activate",
        protected_identity=Person.ProtectedIdentity.PROTECTED_REGISTRATION,
    ),
    Slot("review", 33, "begin_review"),
    Slot("reassessment-overdue", 28, "reassessment_overdue"),
    Slot("lowering-pending", 25, "propose_lowering", level=Level.ELEVATED),
    Slot(
        "handed-over-regional",
        21,
        "raise_to_high",
        protected_identity=Person.ProtectedIdentity.CONFIDENTIALITY_MARKING,
    ),
    Slot("handed-over-national", 30, "assess", level="evidence"),
    Slot("closed", 35, "close_completed"),
]

_MAIN = [
    "refer",
    "begin_check",
    "accept",
    "consents_given",
    "police_check",
    "assess",
    "support",
    "conditions",
    "sign_agreement",
    "activate",
    "begin_review",
]
_BRANCHES = {
    "reject": ["refer", "begin_check", "reject"],
    "consent_partial": ["refer", "begin_check", "accept", "consent_partial"],
    "reassessment_overdue": [*_MAIN[:10], "reassessment_overdue"],
    "raise_to_high": [*_MAIN[:10], "raise_to_high"],
    "propose_lowering": [*_MAIN[:6], "propose_lowering"],
    "close_completed": [*_MAIN[:10], "close_completed"],
}


def steps_to(target: str) -> list[str]:
    return demo.steps_to(_MAIN, _BRANCHES, target)


def open_task(case: DefectorCase, node):
    """The open task of ``node`` in the case's running process of ``node``'s flow."""
    return demo.case_task(DefectorProcess, case, node)


def start_case(*, user: User, person: Person, reason: str, source: str) -> DefectorCase:
    with demo.start_step(DefectorFlow.start, user) as activation:
        case = intake.refer(user=user, person=person, source=source, reason=reason, purpose=PURPOSE)
        activation.process.case = case
    return case


def _assessment(level: str) -> dict:
    today = timezone.localdate()
    evidence = level == "evidence"
    return {
        "level": Level.HIGH if evidence else level,
        "evidence_person": evidence,
        "national_programme": False,
        "basis": "Syntetisk bedömning: hot från tidigare nätverk efter avhoppet.",
        "valid_until": today + datetime.timedelta(days=180),
        "next_review": today + datetime.timedelta(days=60),
    }


class Builder(demo.Builder):
    """Takes one case through its steps (demo users: anna, per, alex, maja)."""

    COORDINATOR = COORDINATOR
    purpose = PURPOSE
    process_model = DefectorProcess

    def __init__(self, users: dict[str, User], person: Person, *, level: str = Level.LOW):
        super().__init__(users, person)
        self.level = level
        self.referrer = LEAD

    def run(self, target: str) -> DefectorCase:
        for name in steps_to(target):
            self.take_step(name)
            self.case = DefectorCase.objects.get(pk=self.case.pk)
        return self.case

    def step_refer(self):
        referrer = self.users[self.referrer]
        self.case = start_case(
            user=referrer,
            person=self.person,
            reason="Syntetiskt demoärende: vill lämna ett kriminellt nätverk och har fått hot.",
            source=ReferralSource.POLICE
            if referrer.organisation.kind == "police"
            else ReferralSource.SOCIAL_SERVICES,
        )

    def step_begin_check(self):
        self.begin(DefectorFlow.check, self.coordinator, "begin_check")

    def _check(self, *, accept: bool):
        self.do(
            DefectorFlow.check,
            self.coordinator,
            intake.record_initial_check,
            finish=True,
            accept=accept,
            note="Motiverad att lämna; hotbild finns." if accept else "Ingen hotbild.",
            lead=self.lead if accept else None,
            police_contact=self.police if accept else None,
        )

    def step_accept(self):
        self._check(accept=True)

    def step_reject(self):
        self._check(accept=False)

    def _consent(self, case, *, organisations):
        if (
            person_age(case.person, on=timezone.localdate()) < 18
            and not case.person.guardians.exists()
        ):
            case_services.add_guardian(
                user=self.lead, case=case, purpose=PURPOSE, name="Vera Provsson", phone=None
            )
        givers = [(Consent.Giver.SELF, None)] + [
            (Consent.Giver.GUARDIAN, g) for g in case.person.guardians.all()
        ]
        self.give_consents(self.lead, case, givers, organisations)

    def step_consents_given(self):
        with self.task(DefectorFlow.consent, self.lead) as activation:
            case = activation.process.case
            self._consent(case, organisations=[case.owner_organisation, self.police.organisation])
            self._transition(self.lead, case, "consents_given")
            activation.execute()

    def step_consent_partial(self):
        """The person leaves the police out: the method is ruled out."""
        with self.task(DefectorFlow.consent, self.lead) as activation:
            case = activation.process.case
            self._consent(case, organisations=[case.owner_organisation])
            self._transition(self.lead, case, "consent_insufficient")
            activation.execute()

    def step_police_check(self):
        self.do(
            DefectorFlow.assess_threat,
            self.police,
            services.record_police_check,
            note="Syntetisk slagning: tidigare narkotikabrott.",
        )

    def step_assess(self):
        self.do(
            DefectorFlow.assess_threat,
            self.police,
            services.assess_threat,
            finish=True,
            **_assessment(self.level),
        )

    def step_support(self):
        self.do(
            DefectorFlow.intake,
            self.coordinator,
            case_services.record_decision,
            decision=CaseDecision.Decision.START,
        )

    def step_conditions(self):
        self.do(
            DefectorFlow.intake,
            self.coordinator,
            intake.accept_conditions,
            no_crime=True,
            drug_free=True,
            drug_tests=True,
        )

    def step_sign_agreement(self):
        self.do(
            DefectorFlow.intake, self.coordinator, case_services.transition, name="sign_agreement"
        )

    def step_activate(self):
        self.do(
            DefectorFlow.intake,
            self.coordinator,
            transition_with_review_date,
            finish=True,
            name="activate",
            review_date=timezone.localdate() + datetime.timedelta(days=90),
        )

    def step_begin_review(self):
        fire_review_timer(self.case, days_ago=2)
        self.do(DefectorFlow.review, self.lead, case_services.transition, name="begin_review")

    def step_reassessment_overdue(self):
        fire_reassessment_timer(self.case, days_ago=3)

    def step_raise_to_high(self):
        services.reassess_threat(
            user=self.police, case=self.case, purpose=PURPOSE, **_assessment(Level.HIGH)
        )

    def step_propose_lowering(self):
        services.reassess_threat(
            user=self.police, case=self.case, purpose=PURPOSE, **_assessment(Level.LOW)
        )

    def step_close_completed(self):
        services.close_defector_case(
            user=self.coordinator,
            case=self.case,
            purpose=PURPOSE,
            reason=Case.CloseReason.COMPLETED,
            note="Programmet genomfört.",
        )


def fire_review_timer(case: DefectorCase, *, days_ago: int) -> None:
    """Demo time travel: the review date ``days_ago`` back; fire the review timer."""
    demo.fire_review_timer(case, open_task(case, DefectorFlow.wait_for_review), days_ago=days_ago)


def fire_reassessment_timer(case: DefectorCase, *, days_ago: int) -> None:
    """Demo time travel: the next review date of the assessment in force ``days_ago`` back;
    fire the threat review's timer (the reassessment task appears)."""
    ThreatAssessment.objects.filter(case=case, state=ThreatAssessment.State.IN_FORCE).update(
        next_review=timezone.localdate() - datetime.timedelta(days=days_ago)
    )
    demo.fire_timer(open_task(case, ThreatReviewFlow.wait_for_reassessment), reassessment_time)


def person_id(slot: Slot) -> uuid.UUID:
    return demo.person_id(slot, DEFECTOR_NAMESPACE)


def _person(slot: Slot, index: int) -> Person:
    return demo.person(
        slot,
        20 + index,
        namespace=DEFECTOR_NAMESPACE,
        purpose=PURPOSE,
        note="Syntetisk demoperson (avhopparärende): påhittade uppgifter.",
    )


def build_case(slot: Slot, *, index: int = 0) -> DefectorCase:
    users = {
        u.username: u
        for u in User.objects.filter(username__in=[LEAD, POLICE, COORDINATOR, POLICE_COORDINATOR])
    }
    with transaction.atomic():
        builder = Builder(users, _person(slot, index), level=slot.level)
        builder.referrer = slot.referrer
        return builder.run(slot.target)


def seed_defector_cases(stdout, *, enabled: bool) -> int:
    """Create the defector demo cases that do not exist yet (``seed_demo``'s one line)."""
    if not enabled:
        return 0
    new = demo.new_slots(SLOTS, person_id)
    for index, slot in new:
        build_case(slot, index=index)
    stdout.write(f"Avhopparärenden (demo): {len(new)} nya, {len(SLOTS)} totalt.")
    return len(new)
