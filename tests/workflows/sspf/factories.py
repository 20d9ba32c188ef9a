"""Factories of the SSPF tests: SSPF cases in any state, through the services.

Team: sara.samordnare coordinates (social services own the case); the concern is raised by
lisa.skola (school), who gets no access from raising it: she and fredrik.fritid (leisure) are
put on the team at the assessment (ADR 0012). The consents cover social services, the school
and leisure — and the police only when ``police=True`` (then the participation decision is
recorded too and per.polis is on the team).
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from casework.models import Action, CaseMembership, Consent
from casework.services import cases as services
from tests.workflows import factories as shared
from tests.workflows.sig.factories import PERSON_NAME, fresh_personnummer, make_person, orgs
from workflows.sspf import services as sspf_services
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import RiskAssessment, SspfCase, SspfProcess, Status

PURPOSE = "Test av SSPF-processen"
CONCERN = "Hög frånvaro och ses med äldre ungdomar sent på kvällarna."

PATH = (
    Status.CONCERN_RAISED,
    Status.ASSESSMENT,
    Status.CONSENT_PENDING,
    Status.MAPPING,
    Status.NETWORK_MEETING,
    Status.PLAN_ACTIVE,
    Status.FOLLOW_UP,
)
# The transitions the happy path takes, in its order (a follow-up continues the plan).
TRANSITIONS = (
    "begin_assessment",
    "request_consent",
    "consents_given",
    "mapping_done",
    "adopt_plan",
    "begin_follow_up",
    "continue_plan",
)


def consent_everyone(users, case, *, covering=("social", "school", "leisure"), guardians=1):
    """Every guardian's written consent and (from 15) the young person's own."""
    sara = users["sara.samordnare"]
    covered = [orgs(users)[name] for name in covering]
    existing = list(case.person.guardians.all())
    for number in range(len(existing), guardians):
        existing.append(
            services.add_guardian(
                user=sara, case=case, purpose=PURPOSE, name=f"Vera Provsson {number}", phone=None
            )
        )
    for guardian in existing:
        shared.record_consent(
            sara, case, PURPOSE, covered, giver=Consent.Giver.GUARDIAN, guardian=guardian
        )
    shared.record_consent(sara, case, PURPOSE, covered)


def sspf_case(users, state: str = Status.CONCERN_RAISED, *, years: int = 13, police=False):
    sara, lisa = users["sara.samordnare"], users["lisa.skola"]
    person = make_person(user=sara, years=years)
    case = sspf_services.raise_concern(user=lisa, person=person, concern=CONCERN, purpose=PURPOSE)
    if state == Status.CONCERN_RAISED:
        return case
    services.transition(user=sara, case=case, name="begin_assessment", purpose=PURPOSE)
    if state == Status.ASSESSMENT:
        return case
    sspf_services.record_risk_assessment(
        user=sara,
        case=case,
        purpose=PURPOSE,
        level=RiskAssessment.Level.MODERATE,
        risk_factors="Skolfrånvaro.",
    )
    # Raising the concern gave lisa.skola no access: the assessment puts her on the team.
    for username, role in (
        ("lisa.skola", CaseMembership.Role.SCHOOL),
        ("fredrik.fritid", CaseMembership.Role.LEISURE),
    ):
        sspf_services.add_sspf_member(
            user=sara, case=case, purpose=PURPOSE, member=users[username], role=role
        )
    if police:
        sspf_services.record_police_participation(
            user=sara, case=case, purpose=PURPOSE, participates=True, reason="Ses i otrygg miljö."
        )
        sspf_services.add_sspf_member(
            user=sara,
            case=case,
            purpose=PURPOSE,
            member=users["per.polis"],
            role=CaseMembership.Role.POLICE_CONTACT,
        )
    services.transition(user=sara, case=case, name="request_consent", purpose=PURPOSE)
    if state == Status.CONSENT_PENDING:
        return case
    covering = ("social", "school", "leisure", *(("police",) if police else ()))
    consent_everyone(users, case, covering=covering)
    services.transition(user=sara, case=case, name="consents_given", purpose=PURPOSE)
    if state == Status.MAPPING:
        return case
    sspf_services.record_mapping(
        user=sara, case=case, purpose=PURPOSE, held_on=timezone.localdate(), note="Familjen vill."
    )
    services.transition(user=sara, case=case, name="mapping_done", purpose=PURPOSE)
    if state == Status.NETWORK_MEETING:
        return case
    write_plan(users, case)
    services.transition(user=sara, case=case, name="adopt_plan", purpose=PURPOSE, adopted_by=sara)
    if state == Status.PLAN_ACTIVE:
        return case
    return shared.close_or_follow_up(case, state, coordinator=sara, lead=sara, purpose=PURPOSE)


def write_plan(users, case: SspfCase) -> None:
    sara = users["sara.samordnare"]
    today = timezone.localdate()
    for org, kind in (
        ("school", Action.Kind.SCHOOL_SUPPORT),
        ("social", Action.Kind.SUPPORT_TALKS),
    ):
        sspf_services.add_sspf_action(
            user=sara,
            case=case,
            purpose=PURPOSE,
            kind=kind,
            status=Action.Status.PLANNED,
            date=today,
            organisation=orgs(users)[org],
            note=f"Socialtjänstens anteckning {org}",
        )
    services.update_case(
        user=sara,
        case=case,
        purpose=PURPOSE,
        texts={"plan_goals": "Mål: närvaro i skolan."},
        review_date=today + datetime.timedelta(days=42),
    )


# --- Through the flow (viewflow tasks and the real task views) --------------------------------


def open_tasks(case) -> dict[str, str | None]:
    """The case's open human tasks: flow node name → owner's username (None: a queue)."""
    process = SspfProcess.objects.get(case=case)
    return {
        task.flow_task.name: task.owner.username if task.owner else None
        for task in process.task_set.filter(flow_task_type="HUMAN")
        .exclude(status__in=["DONE", "CANCELED"])
        .select_related("owner")
    }


def fire_follow_up_timer(case) -> None:
    """The passing of time: the follow-up date is today and ``send_reminders`` fires the timer."""
    shared.reach_review_date(case)
    shared.fire_timer(
        shared.open_task(SspfProcess.objects.get(case=case), SspfFlow.wait_for_review)
    )


class SspfFlowDriver(shared.TaskDriver):
    """Walks an SSPF case through the flow's task views as the demo users would."""

    STOPS = ("assess:new", "consent", "mapping", "network_meeting", "plan", "follow_up")

    def task(self, case, node: str):
        return shared.open_task(SspfProcess.objects.get(case=case), getattr(SspfFlow, node))

    def raise_concern(self, username: str = "lisa.skola", *, years: int = 13):
        self.post(
            username,
            SspfFlow.start.reverse("execute"),
            {
                "personnummer": fresh_personnummer(years),
                "name": PERSON_NAME,
                "area": "vivalla_baronbackarna",
                "reason": CONCERN,
            },
            # The concern's receipt (ADR 0012): the one who raised it is not on the team.
            expect=200,
        )
        return SspfCase.objects.order_by("-opened_at").first()

    def build(self, stop: str, *, years: int = 13) -> SspfCase:
        """A case raised by lisa.skola, with her and fredrik.fritid on the team, taken by
        sara.samordnare through the task views up to ``stop`` (see ``STOPS``)."""
        assert stop in self.STOPS, stop
        users = self.users
        case = self.raise_concern(years=years)
        if stop == "assess:new":
            return case
        sara = "sara.samordnare"
        self.run(case, "assess", sara, {"_action": "begin"})
        self.run(
            case,
            "assess",
            sara,
            {"_action": "risk", "level": "moderate", "risk_factors": "Skolfrånvaro."},
        )
        # Raising the concern gave lisa.skola no access: the assessment puts her on the team.
        for username, role in (("lisa.skola", "school"), ("fredrik.fritid", "leisure")):
            self.run(
                case,
                "assess",
                sara,
                {"_action": "member", "user": users[username].pk, "role": role},
            )
        self.run(case, "assess", sara, {"_action": "outcome", "outcome": "accept"})
        if stop == "consent":
            return case
        consent_everyone(users, case)
        case.refresh_from_db()
        self.run(case, "consent", sara, {"_action": "complete"})
        if stop == "mapping":
            return case
        self.run(
            case,
            "mapping",
            sara,
            {
                "_action": "mapping",
                "held_on": timezone.localdate().isoformat(),
                "mapping_note": "Familjen vill ha stöd.",
            },
        )
        if stop == "network_meeting":
            return case
        for org, kind in (("school", "school_support"), ("leisure", "leisure_activity")):
            self.run(
                case,
                "network_meeting",
                sara,
                {
                    "_action": "action",
                    "kind": kind,
                    "organisation": orgs(users)[org].pk,
                    "status": "planned",
                    "date": timezone.localdate().isoformat(),
                    "visibility": "team",
                },
            )
        self.run(
            case,
            "network_meeting",
            sara,
            {
                "_action": "plan",
                "plan_goals": "Mål: närvaro i skolan.",
                "review_date": (timezone.localdate() + datetime.timedelta(days=42)).isoformat(),
            },
        )
        if stop == "plan":
            return case
        fire_follow_up_timer(case)
        case.refresh_from_db()
        return case
