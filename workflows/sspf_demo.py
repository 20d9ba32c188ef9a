"""Demo SSPF cases in every state, a meeting and anonymised discussions (``seed_demo``).

The cases are synthetic persons aged 11-17 (see ``workflows/sig_demo.py`` for how they are
made), each raised by the school or leisure demo user and taken by the coordinator as far
as its slot says, through the same services the pages call. The newest concern is raised
through the flow's start (so it waits in the coordinators' queue); the others are built
through the services alone and have no viewflow process (their tasks are not in the
inbox). Keyed on the person: running ``seed_demo`` again adds nothing.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from casework.models import Action, Case, CaseMembership, Consent, Organisation, Person, User
from casework.services import cases as case_services
from casework.services import sspf as sspf_services
from workflows.sig_demo import Slot, _person, person_id
from workflows.sspf import SspfCase, SspfFlow, Status

PURPOSE = "Demodata: SSPF-ärenden (seed_demo)"
COORDINATOR = "sara.samordnare"

SLOTS = [
    Slot("sspf-concern", 13, Status.CONCERN_RAISED, guardians=1, referrer="lisa.skola"),
    Slot("sspf-assessment", 12, Status.ASSESSMENT, guardians=1, referrer="fredrik.fritid"),
    Slot("sspf-consent", 16, Status.CONSENT_PENDING, guardians=2, referrer="lisa.skola"),
    Slot("sspf-mapping", 14, Status.MAPPING, guardians=1, referrer="lisa.skola"),
    Slot("sspf-network", 15, Status.NETWORK_MEETING, guardians=1, referrer="fredrik.fritid"),
    Slot("sspf-plan", 13, Status.PLAN_ACTIVE, guardians=2, referrer="lisa.skola"),
    Slot("sspf-follow-up", 17, Status.FOLLOW_UP, guardians=1, referrer="lisa.skola"),
    Slot("sspf-closed", 11, Status.CLOSED, guardians=1, referrer="fredrik.fritid"),
]
ORDER = [
    Status.CONCERN_RAISED,
    Status.ASSESSMENT,
    Status.CONSENT_PENDING,
    Status.MAPPING,
    Status.NETWORK_MEETING,
    Status.PLAN_ACTIVE,
    Status.FOLLOW_UP,
]


def _start_through_flow(*, user, person, concern) -> SspfCase:
    node = SspfFlow.start
    activation = node.activation_class.create(node, None, None)

    class _Request:
        pass

    request = _Request()
    request.user = user
    activation.start(request)
    case = sspf_services.raise_concern(user=user, person=person, concern=concern, purpose=PURPOSE)
    activation.process.case = case
    activation.execute()
    return case


def build_case(slot: Slot, users: dict[str, User], *, index: int) -> SspfCase:
    sara = users[COORDINATOR]
    person = _person(slot, index)
    concern = "Syntetiskt demoärende: hög frånvaro, sena kvällar och äldre umgänge."
    if slot.target == Status.CONCERN_RAISED:
        return _start_through_flow(user=users[slot.referrer], person=person, concern=concern)
    case = sspf_services.raise_concern(
        user=users[slot.referrer], person=person, concern=concern, purpose=PURPOSE
    )
    reach = ORDER.index(slot.target) if slot.target in ORDER else len(ORDER) - 2

    def run(name, **kwargs):
        case_services.transition(user=sara, case=case, name=name, purpose=PURPOSE, **kwargs)

    run("begin_assessment")
    if reach < 2:
        return case
    sspf_services.record_risk_assessment(
        user=sara, case=case, purpose=PURPOSE, level="moderate", risk_factors="Skolfrånvaro."
    )
    other = "fredrik.fritid" if slot.referrer == "lisa.skola" else "lisa.skola"
    role = CaseMembership.Role.LEISURE if other == "fredrik.fritid" else CaseMembership.Role.SCHOOL
    sspf_services.add_sspf_member(
        user=sara, case=case, purpose=PURPOSE, member=users[other], role=role
    )
    run("request_consent")
    guardians = [
        case_services.add_guardian(
            user=sara, case=case, purpose=PURPOSE, name=f"Vårdnadshavare {n + 1}", phone=None
        )
        for n in range(slot.guardians)
    ]
    parties = [
        case.owner_organisation,
        users["lisa.skola"].organisation,
        users["fredrik.fritid"].organisation,
    ]
    given = guardians if reach > 2 else guardians[:1]
    for guardian in given:
        case_services.record_consent(
            user=sara,
            case=case,
            purpose=PURPOSE,
            giver=Consent.Giver.GUARDIAN,
            guardian=guardian,
            decision=Consent.Decision.GIVEN,
            form=Consent.Form.WRITTEN,
            organisations=parties,
        )
    if reach < 3:
        return case
    case_services.record_consent(
        user=sara,
        case=case,
        purpose=PURPOSE,
        giver=Consent.Giver.SELF,
        decision=Consent.Decision.GIVEN,
        form=Consent.Form.WRITTEN,
        organisations=parties,
    )
    run("consents_given")
    if reach < 4:
        return case
    sspf_services.record_mapping(
        user=sara,
        case=case,
        purpose=PURPOSE,
        held_on=timezone.localdate(),
        note="Familjen vill ha stöd kring skolgång och fritid.",
    )
    run("mapping_done")
    if reach < 5:
        return case
    today = timezone.localdate()
    for organisation, kind in (
        (users["lisa.skola"].organisation, Action.Kind.SCHOOL_SUPPORT),
        (users["fredrik.fritid"].organisation, Action.Kind.LEISURE_ACTIVITY),
    ):
        sspf_services.add_sspf_action(
            user=sara,
            case=case,
            purpose=PURPOSE,
            kind=kind,
            status=Action.Status.PLANNED,
            date=today + datetime.timedelta(days=7),
            organisation=organisation,
        )
    case_services.update_case(
        user=sara,
        case=case,
        purpose=PURPOSE,
        texts={"plan_goals": "Mål: närvaro i skolan och en aktiv fritid."},
        review_date=today + datetime.timedelta(days=42),
    )
    run("adopt_plan", adopted_by=sara)
    if slot.target == Status.CLOSED:
        case_services.close_case(
            user=sara, case=case, purpose=PURPOSE, reason=Case.CloseReason.GOALS_MET
        )
        return case
    if reach < 6:
        return case
    Case.objects.filter(pk=case.pk).update(review_date=today)  # demo time travel
    case.review_date = today
    run("begin_follow_up")
    return case


def seed_sspf_cases() -> int:
    """Create the SSPF demo cases, a meeting and anonymised discussions not there yet."""
    from workflows.sspf import AnonymisedDiscussion

    users = {
        u.username: u
        for u in User.objects.filter(username__in=[COORDINATOR, "lisa.skola", "fredrik.fritid"])
    }
    existing = set(
        Person.objects.filter(pk__in=[person_id(s) for s in SLOTS]).values_list("pk", flat=True)
    )
    created = []
    for index, slot in enumerate(SLOTS):
        if person_id(slot) in existing:
            continue
        with transaction.atomic():
            created.append(build_case(slot, users, index=40 + index))
    if created and not AnonymisedDiscussion.objects.exists():
        sara = users[COORDINATOR]
        with transaction.atomic():
            meeting = sspf_services.create_meeting(
                user=sara,
                purpose=PURPOSE,
                date=timezone.localdate(),
                organisations=Organisation.objects.exclude(kind=Organisation.Kind.OTHER),
            )
            for case in created:
                if case.status in (Status.PLAN_ACTIVE, Status.FOLLOW_UP):
                    item = sspf_services.add_to_agenda(
                        user=sara, meeting=meeting, case=case, purpose=PURPOSE
                    )
                    sspf_services.record_agenda_decision(
                        user=sara,
                        item=item,
                        decision="Planen följs; ny uppföljning om sex veckor.",
                        purpose=PURPOSE,
                    )
            for organisation, topic, band, area, text in (
                (
                    users["lisa.skola"].organisation,
                    "absence",
                    "13-15",
                    "vivalla_baronbackarna",
                    "Elev i åk 8 med ökande frånvaro; vårdnadshavarna vill inte samtycka ännu.",
                ),
                (
                    users["fredrik.fritid"].organisation,
                    "company",
                    "16-18",
                    "brickebacken",
                    "Ungdom som ses med äldre på kvällarna vid fritidsgården.",
                ),
            ):
                sspf_services.record_anonymised_discussion(
                    user=sara,
                    purpose=PURPOSE,
                    meeting=meeting,
                    date=timezone.localdate(),
                    organisation=organisation,
                    topic=topic,
                    age_band=band,
                    area=area,
                    summary=text,
                    outcome="Skolan och fritidsgården bjuder in familjen till samtal.",
                )
    return len(created)
