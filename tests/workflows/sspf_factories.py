"""Factories of the SSPF tests: SSPF cases in any state, through the services.

Team: sara.samordnare coordinates (social services own the case); the concern is raised by
lisa.skola (school, on the team from the start as the referrer); fredrik.fritid (leisure) is
added at the assessment. The consents cover social services, the school and leisure — and
the police only when ``police=True`` (then the participation decision is recorded too and
per.polis is on the team).
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from casework.models import Action, Case, CaseMembership, Consent
from casework.services import cases as services
from casework.services import sspf as sspf_services
from workflows.sspf import RiskAssessment, SspfCase, Status

from .factories import make_person, orgs, reach_review_date

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
        services.record_consent(
            user=sara,
            case=case,
            purpose=PURPOSE,
            giver=Consent.Giver.GUARDIAN,
            guardian=guardian,
            decision=Consent.Decision.GIVEN,
            form=Consent.Form.WRITTEN,
            organisations=covered,
        )
    services.record_consent(
        user=sara,
        case=case,
        purpose=PURPOSE,
        giver=Consent.Giver.SELF,
        decision=Consent.Decision.GIVEN,
        form=Consent.Form.WRITTEN,
        organisations=covered,
    )


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
    sspf_services.add_sspf_member(
        user=sara,
        case=case,
        purpose=PURPOSE,
        member=users["fredrik.fritid"],
        role=CaseMembership.Role.LEISURE,
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
    if state == Status.CLOSED:
        return services.close_case(
            user=sara, case=case, purpose=PURPOSE, reason=Case.CloseReason.GOALS_MET
        )
    reach_review_date(case)
    services.transition(user=sara, case=case, name="begin_follow_up", purpose=PURPOSE)
    if state == Status.FOLLOW_UP:
        return case
    raise ValueError(state)


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
