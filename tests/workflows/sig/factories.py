"""Factories of the SIG tests: persons and SIG cases in any state.

``sig_case`` builds a case through the services only (no viewflow process): what
the state machine, concurrency and bad-input tests need. ``FlowDriver`` builds
one through the flow's own views (the views call the same services), because
only the flow makes viewflow tasks — what the authorisation matrix needs.

Time does not move in tests: a case "at its review date" gets its review date
set to today with a queryset update, the one stand-in for the passing of time.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass

from django.utils import timezone

from casework.models import Action, CaseDecision, CaseMembership, Consent, LegalBasis
from casework.selectors.persons import person_age
from casework.services import cases as services
from casework.services import create_person
from tests.workflows.conftest import born_years_ago, personnummer
from tests.workflows.factories import (
    TaskDriver,
    close_or_follow_up,
    fire_timer,
    open_task,
    reach_review_date,
    record_consent,
)
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status
from workflows.sig.services import refer

PURPOSE = "Test av SIG-processen"
# The synthetic person of every factory case: its name must never reach a user
# who may not see the case.
PERSON_NAME = "Testa Provsson"
REASON = "Orosanmälan: umgås med äldre kriminella."

# The states in the order the happy path reaches them.
PATH = (
    Status.REFERRED,
    Status.SCREENING,
    Status.CONSENT_PENDING,
    Status.DECISION_PENDING,
    Status.PLANNING,
    Status.ACTIVE,
    Status.FOLLOW_UP,
)

_serials = itertools.count(100)


def fresh_personnummer(years: int = 16) -> str:
    """A valid personnummer not used before in this test run."""
    number = next(_serials)
    return personnummer(
        born_years_ago(years, days=40 + number % 300), serial=f"{number % 1000:03d}"
    )


def make_person(*, user, years: int = 16, name: str = PERSON_NAME):
    return create_person(
        user=user,
        purpose=PURPOSE,
        name=name,
        personnummer=fresh_personnummer(years),
        area="vivalla_baronbackarna",
        phone="070-174 06 11",
        address="Provgatan 1",
    )


def orgs(users) -> dict[str, object]:
    return {
        "social": users["anna.social"].organisation,
        "police": users["per.polis"].organisation,
        "school": users["lisa.skola"].organisation,
        "leisure": users["fredrik.fritid"].organisation,
    }


def record_full_consent(users, case, *, covering=("social", "police")) -> list[Consent]:
    """The person's own consent and, under 18, a guardian's: both covering ``covering``."""
    anna = users["anna.social"]
    covered = [orgs(users)[name] for name in covering]
    given = [record_consent(anna, case, PURPOSE, covered)]
    guardians = list(case.person.guardians.all())
    if not guardians and person_age(case.person, on=timezone.localdate()) < 18:
        guardians = [
            services.add_guardian(
                user=anna, case=case, purpose=PURPOSE, name="Vera Provsson", phone=None
            )
        ]
    for guardian in guardians:
        given.append(
            record_consent(
                anna, case, PURPOSE, covered, giver=Consent.Giver.GUARDIAN, guardian=guardian
            )
        )
    return given


def record_statute(users, case, code: str = "osl-10-18a", *, by: str = "anna.social"):
    """Social services (``by``) record a statutory basis for disclosure to the police."""
    return services.record_legal_basis(
        user=users[by],
        case=case,
        purpose=PURPOSE,
        legal_basis=LegalBasis.objects.get(code=code),
        justification="Särskilda omständigheter talar för att brott kan förhindras.",
    )


def write_plan(users, case) -> None:
    """The lead social worker's plan: an action per agency, the text, a review date."""
    anna = users["anna.social"]
    today = timezone.localdate()
    for org in ("social", "police"):
        services.add_action(
            user=anna,
            case=case,
            purpose=PURPOSE,
            kind=Action.Kind.SUPPORT_TALKS,
            status=Action.Status.PLANNED,
            date=today,
            organisation=orgs(users)[org],
        )
    services.update_case(
        user=anna,
        case=case,
        purpose=PURPOSE,
        texts={"plan": "Mål: skolgång."},
        review_date=today + datetime.timedelta(days=60),
    )


def decide(user, case, decision: str, note: str | None = None) -> None:
    """``user``'s agency decides on starting the joint work (a decline needs ``note``)."""
    services.record_decision(user=user, case=case, purpose=PURPOSE, decision=decision, note=note)


def sig_case(
    users,
    state: str = Status.REFERRED,
    *,
    years: int = 16,
    covering=("social", "police"),
    person=None,
    members: tuple[tuple[str, str], ...] = (),
) -> SigCase:
    """A SIG case brought to ``state`` along the happy path, through the services.

    Team: anna.social lead, per.polis police contact (from screening on) and
    ``members`` (username, role); sara.samordnare coordinates; the consents
    cover the organisations named in ``covering``. ``closed`` is a case closed by the coordinator
    from ``active``; ``consent_refused`` one whose person refused.
    """
    anna, per, sara = users["anna.social"], users["per.polis"], users["sara.samordnare"]
    person = person or make_person(user=anna, years=years)
    case = refer(user=anna, person=person, reason=REASON, purpose=PURPOSE)
    if state == Status.REFERRED:
        return case
    services.transition(user=sara, case=case, name="begin_screening", purpose=PURPOSE)
    if state == Status.SCREENING:
        return case
    services.add_member(
        user=sara, case=case, purpose=PURPOSE, member=anna, role=CaseMembership.Role.LEAD
    )
    services.add_member(
        user=sara, case=case, purpose=PURPOSE, member=per, role=CaseMembership.Role.POLICE_CONTACT
    )
    for username, role in members:
        services.add_member(
            user=sara, case=case, purpose=PURPOSE, member=users[username], role=role
        )
    services.transition(user=sara, case=case, name="accept", purpose=PURPOSE)
    if state == Status.CONSENT_PENDING:
        return case
    if state == Status.CONSENT_REFUSED:
        record_consent(
            anna, case, PURPOSE, [], decision=Consent.Decision.REFUSED, form=Consent.Form.ORAL
        )
        services.transition(user=anna, case=case, name="consent_refused", purpose=PURPOSE)
        return case
    record_full_consent(users, case, covering=covering)
    services.transition(user=anna, case=case, name="consents_given", purpose=PURPOSE)
    if state == Status.DECISION_PENDING:
        return case
    decide(anna, case, CaseDecision.Decision.START)
    decide(per, case, CaseDecision.Decision.START)
    services.transition(user=anna, case=case, name="start", purpose=PURPOSE)
    if state == Status.PLANNING:
        return case
    write_plan(users, case)
    services.transition(
        user=sara, case=case, name="approve_plan", purpose=PURPOSE, approved_by=sara
    )
    if state == Status.ACTIVE:
        return case
    return close_or_follow_up(case, state, coordinator=sara, lead=anna, purpose=PURPOSE)


# --- Through the flow (viewflow tasks) --------------------------------------------------------


@dataclass
class FlowCase:
    case: SigCase
    process: SigProcess

    def task(self, node: str):
        """The open task of flow node ``node``."""
        return open_task(self.process, getattr(SigFlow, node))

    def refresh(self) -> FlowCase:
        self.case.refresh_from_db()
        return self


class FlowDriver(TaskDriver):
    """Walks a case through the flow's task views as the demo users would.

    Stops at ``stop`` (a flow node name whose task is then open, or a case state).
    """

    STOPS = (
        "screen:new",  # referred; the screening task waits in the coordinators' queue
        "screen",  # screening; taken by the coordinator
        "consent",  # consent_pending
        "decide",  # decision_pending; both decision tasks open
        "draft_plan",  # planning
        "approve",  # planning; the plan waits for the coordinator
        "wait_for_review",  # active
        "follow_up",  # active at the review date; the follow-up task is open
        "follow_up:begun",  # follow_up
    )

    def task(self, case, node: str):
        return open_task(SigProcess.objects.get(case=case), getattr(SigFlow, node))

    def _run(self, flow_case: FlowCase, node: str, username: str, data: dict):
        self.run(flow_case.case, node, username, data)

    def build(self, stop: str, *, years: int = 16) -> FlowCase:
        assert stop in self.STOPS, stop
        users = self.users
        self.post(
            "anna.social",
            SigFlow.start.reverse("execute"),
            {
                "personnummer": fresh_personnummer(years),
                "name": PERSON_NAME,
                "area": "vivalla_baronbackarna",
                "phone": "070-174 06 11",
                "address": "Provgatan 1",
                "reason": REASON,
            },
            # The referral's receipt (ADR 0012): the referrer is not on the team.
            expect=200,
        )
        case = SigCase.objects.order_by("-opened_at").first()
        flow_case = FlowCase(case=case, process=SigProcess.objects.get(case=case))
        if stop == "screen:new":
            return flow_case
        self._run(flow_case, "screen", "sara.samordnare", {"_action": "begin"})
        if stop == "screen":
            return flow_case
        self._run(
            flow_case,
            "screen",
            "sara.samordnare",
            {
                "_action": "screen",
                "outcome": "accept",
                "lead": users["anna.social"].pk,
                "police_contact": users["per.polis"].pk,
            },
        )
        if stop == "consent":
            return flow_case
        record_full_consent(users, flow_case.case)
        flow_case.refresh()
        self._run(flow_case, "consent", "anna.social", {"_action": "complete"})
        if stop == "decide":
            return flow_case
        for node, username in (("decide_social", "anna.social"), ("decide_police", "per.polis")):
            self._run(flow_case, node, username, {"_action": "decide", "decision": "start"})
        if stop == "draft_plan":
            return flow_case
        today = timezone.localdate()
        for org in ("social", "police"):
            self._run(
                flow_case,
                "draft_plan",
                "anna.social",
                {
                    "_action": "action",
                    "kind": "support_talks",
                    "organisation": orgs(users)[org].pk,
                    "status": "planned",
                    "date": today.isoformat(),
                    "visibility": "team",
                },
            )
        self._run(
            flow_case,
            "draft_plan",
            "anna.social",
            {
                "_action": "plan",
                "plan": "Mål: skolgång.",
                "review_date": (today + datetime.timedelta(days=60)).isoformat(),
            },
        )
        if stop == "approve":
            return flow_case
        self._run(
            flow_case, "approve", "sara.samordnare", {"_action": "review", "outcome": "approve"}
        )
        if stop == "wait_for_review":
            return flow_case
        reach_review_date(flow_case.case)
        fire_timer(flow_case.task("wait_for_review"))
        flow_case.refresh()
        if stop == "follow_up":
            return flow_case
        self._run(flow_case, "follow_up", "anna.social", {"_action": "begin"})
        return flow_case
