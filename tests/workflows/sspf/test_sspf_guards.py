"""SSPF guards: age range, guardians' written consent, the young person's own consent from
the configured age, the police participation decision, escalation only within SIG's age
range — and the anonymised discussion that refuses anything like a personnummer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from casework import policy
from casework.models import Action, CaseLink, CaseMembership, Consent
from casework.services import cases as services
from casework.services.cases import CaseDenied
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.factories import record_consent
from tests.workflows.sig.factories import make_person, orgs
from tests.workflows.sspf.factories import PURPOSE, consent_everyone, sspf_case
from workflows.sig.models import SigCase
from workflows.sspf import meeting_services
from workflows.sspf import services as sspf_services
from workflows.sspf.models import AnonymisedDiscussion, Status, find_personnummer_like
from workflows.sspf.selectors import anonymised_discussion_counts

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- Age range ----------------------------------------------------------------------------


@pytest.mark.parametrize("years", [9, 19])
def test_a_concern_outside_the_age_range_is_refused(users, years):
    person = make_person(user=users["sara.samordnare"], years=years)
    with pytest.raises(ValidationError) as error:
        sspf_services.raise_concern(
            user=users["lisa.skola"], person=person, concern="Oro.", purpose=PURPOSE
        )
    assert "10" in _messages(error.value) and "18" in _messages(error.value)


@pytest.mark.parametrize("years", [10, 18])
def test_the_age_range_is_inclusive(users, years):
    assert sspf_case(users, years=years).status == Status.CONCERN_RAISED


def test_the_assessment_cannot_accept_outside_the_configured_range(users, settings):
    case = sspf_case(users, Status.ASSESSMENT, years=13)
    sspf_services.record_risk_assessment(
        user=users["sara.samordnare"], case=case, purpose=PURPOSE, level="low", risk_factors="x"
    )
    settings.SAMVERKAN = {**settings.SAMVERKAN, "SSPF_AGE_RANGE": (14, 18)}
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["sara.samordnare"], case=case, name="request_consent", purpose=PURPOSE
        )
    assert "SSPF" in _messages(error.value)


def test_the_assessment_needs_a_risk_assessment(users):
    case = sspf_case(users, Status.ASSESSMENT)
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["sara.samordnare"], case=case, name="request_consent", purpose=PURPOSE
        )
    assert "risk" in _messages(error.value).lower() or "risk" in str(error.value)


# --- Consent --------------------------------------------------------------------------------


def _guardian_consent(users, case, guardian, form):
    record_consent(
        users["sara.samordnare"],
        case,
        PURPOSE,
        [orgs(users)["social"], orgs(users)["school"]],
        giver=Consent.Giver.GUARDIAN,
        guardian=guardian,
        form=form,
    )


def test_a_guardians_oral_consent_does_not_count(users):
    case = sspf_case(users, Status.CONSENT_PENDING, years=12)
    sara = users["sara.samordnare"]
    guardian = services.add_guardian(user=sara, case=case, purpose=PURPOSE, name="V", phone=None)
    _guardian_consent(users, case, guardian, Consent.Form.ORAL)
    assert not policy.consent_state(case).complete
    with pytest.raises(ValidationError):
        services.transition(user=sara, case=case, name="consents_given", purpose=PURPOSE)
    _guardian_consent(users, case, guardian, Consent.Form.WRITTEN)
    assert policy.consent_state(case).complete
    services.transition(user=sara, case=case, name="consents_given", purpose=PURPOSE)
    assert case.status == Status.MAPPING


def test_every_guardian_must_consent(users):
    case = sspf_case(users, Status.CONSENT_PENDING, years=12)
    sara = users["sara.samordnare"]
    first = services.add_guardian(user=sara, case=case, purpose=PURPOSE, name="A", phone=None)
    second = services.add_guardian(user=sara, case=case, purpose=PURPOSE, name="B", phone=None)
    _guardian_consent(users, case, first, Consent.Form.WRITTEN)
    assert not policy.consent_state(case).complete
    _guardian_consent(users, case, second, Consent.Form.WRITTEN)
    assert policy.consent_state(case).complete


def test_no_guardian_registered_means_no_consent(users):
    case = sspf_case(users, Status.CONSENT_PENDING, years=12)
    assert "guardian" in policy.consent_state(case).missing


@pytest.mark.parametrize(
    ("years", "own_needed"), [(12, False), (14, False), (15, True), (17, True)]
)
def test_the_young_persons_own_consent_from_the_configured_age(users, years, own_needed):
    case = sspf_case(users, Status.CONSENT_PENDING, years=years)
    guardian = services.add_guardian(
        user=users["sara.samordnare"], case=case, purpose=PURPOSE, name="V", phone=None
    )
    _guardian_consent(users, case, guardian, Consent.Form.WRITTEN)
    state = policy.consent_state(case)
    assert state.complete is not own_needed
    assert ("self" in state.missing) is own_needed


def test_the_own_consent_age_is_a_setting(users, settings):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "SSPF_OWN_CONSENT_AGE": 12}
    case = sspf_case(users, Status.CONSENT_PENDING, years=13)
    guardian = services.add_guardian(
        user=users["sara.samordnare"], case=case, purpose=PURPOSE, name="V", phone=None
    )
    _guardian_consent(users, case, guardian, Consent.Form.WRITTEN)
    assert policy.consent_state(case).missing == ("self",)


def test_school_sees_the_case_only_once_the_consent_covers_it(users, client):
    case = sspf_case(users, Status.CONSENT_PENDING)
    lisa = users["lisa.skola"]
    assert not policy.case_access(lisa, case)
    consent_everyone(users, case, covering=("social", "leisure"))
    assert not policy.case_access(lisa, case)
    consent_everyone(users, case, covering=("social", "school", "leisure"))
    # The newest consent of each giver counts: now they cover the school.
    assert policy.case_access(lisa, case).legal_basis == "consent"


# --- Police participation --------------------------------------------------------------------


def test_police_cannot_join_without_a_participation_decision(users):
    case = sspf_case(users, Status.ASSESSMENT)
    with pytest.raises(ValidationError):
        sspf_services.add_sspf_member(
            user=users["sara.samordnare"],
            case=case,
            purpose=PURPOSE,
            member=users["per.polis"],
            role=CaseMembership.Role.POLICE_CONTACT,
        )


def test_police_see_the_case_only_with_the_decision_and_under_the_consent(users):
    sara, per = users["sara.samordnare"], users["per.polis"]
    case = sspf_case(users, Status.PLAN_ACTIVE, police=True)
    assert policy.case_access(per, case).legal_basis == "consent"
    # A statutory basis does not replace the decision: a "no" ends the access at once.
    sspf_services.record_police_participation(
        user=sara, case=case, purpose=PURPOSE, participates=False, reason="Inte längre aktuellt."
    )
    assert not policy.case_access(per, case)
    assert not case.memberships.filter(user=per, valid_to__isnull=True).exists()


def test_a_statutory_basis_does_not_replace_the_participation_decision(users):
    from casework.models import LegalBasis

    sara, per = users["sara.samordnare"], users["per.polis"]
    case = sspf_case(users, Status.PLAN_ACTIVE)
    services.add_member(
        user=sara, case=case, purpose=PURPOSE, member=per, role=CaseMembership.Role.OTHER
    )
    services.record_legal_basis(  # OSL 10:18 a, social services to police
        user=sara,
        case=case,
        purpose=PURPOSE,
        legal_basis=LegalBasis.objects.get(code="osl-10-18a"),
        justification="Särskilda omständigheter.",
    )
    assert policy.case_access(per, case).denial == "no police participation decision"


def test_police_outside_the_consents_scope_see_nothing(users):
    sara, per = users["sara.samordnare"], users["per.polis"]
    case = sspf_case(users, Status.PLAN_ACTIVE)  # consents do not cover the police
    sspf_services.record_police_participation(
        user=sara, case=case, purpose=PURPOSE, participates=True, reason="Behövs."
    )
    sspf_services.add_sspf_member(
        user=sara, case=case, purpose=PURPOSE, member=per, role=CaseMembership.Role.POLICE_CONTACT
    )
    access = policy.case_access(per, case)
    assert not access and access.denial == "consent does not cover the police"


def test_a_plan_with_police_actions_needs_the_decision(users):
    case = sspf_case(users, Status.NETWORK_MEETING)
    with pytest.raises(ValidationError):
        sspf_services.add_sspf_action(
            user=users["sara.samordnare"],
            case=case,
            purpose=PURPOSE,
            kind=Action.Kind.POLICE_TALK,
            status=Action.Status.PLANNED,
            date=timezone.localdate(),
            organisation=orgs(users)["police"],
        )


def test_only_the_coordinator_decides_on_the_police(users):
    case = sspf_case(users, Status.PLAN_ACTIVE)
    with pytest.raises(CaseDenied):
        sspf_services.record_police_participation(
            user=users["lisa.skola"], case=case, purpose=PURPOSE, participates=True, reason="x"
        )


# --- Members and their parts -------------------------------------------------------------------


def test_school_and_leisure_see_only_their_parts(users):
    from workflows.sspf.selectors import get_sspf_case_page

    case = sspf_case(users, Status.PLAN_ACTIVE)
    page = get_sspf_case_page(user=users["fredrik.fritid"], purpose=PURPOSE, case=case)
    assert page.page.person.name and page.page.person.personnummer is None
    assert set(page.page.texts) == {"plan_goals"}
    assert {a.obj.organisation.kind for a in page.page.actions} == {"school"}
    assert not page.risk_assessments and not page.page.guardians
    full = get_sspf_case_page(user=users["sara.samordnare"], purpose=PURPOSE, case=case)
    assert full.risk_assessments and {a.obj.organisation.kind for a in full.page.actions} == {
        "school",
        "social_services",
    }


def test_a_member_adds_only_own_actions_and_only_under_the_plan(users):
    fredrik = users["fredrik.fritid"]

    def add_leisure_activity(case, **organisation):
        return sspf_services.add_sspf_action(
            user=fredrik,
            case=case,
            purpose=PURPOSE,
            kind="leisure_activity",
            status="planned",
            date=timezone.localdate(),
            **organisation,
        )

    case = sspf_case(users, Status.NETWORK_MEETING)
    with pytest.raises(CaseDenied):
        add_leisure_activity(case)
    case = sspf_case(users, Status.PLAN_ACTIVE)
    with pytest.raises(CaseDenied):
        add_leisure_activity(case, organisation=orgs(users)["school"])
    action = add_leisure_activity(case)
    assert action.organisation == fredrik.organisation


# --- Escalation -------------------------------------------------------------------------------


def test_escalation_outside_sigs_age_range_is_refused(users):
    case = sspf_case(users, Status.PLAN_ACTIVE, years=13)
    with pytest.raises(ValidationError):
        sspf_services.escalate_to_sig(
            user=users["sara.samordnare"], case=case, reason="Allvarligt.", purpose=PURPOSE
        )
    assert not SigCase.objects.filter(person=case.person).exists()


def test_escalation_within_sigs_age_range_opens_a_linked_referral(users, client):
    sara = users["sara.samordnare"]
    case = sspf_case(users, Status.PLAN_ACTIVE, years=16)
    sig = sspf_services.escalate_to_sig(
        user=sara, case=case, reason="Grövre brottslighet.", purpose=PURPOSE
    )
    link = CaseLink.objects.get(from_case=case, to_case=sig)
    assert link.kind == CaseLink.Kind.ESCALATED
    client.force_login(sara)
    for own, other in ((case, sig), (sig, case)):
        page = client.get(f"/arenden/fall/{own.pk}/")
        assert page.status_code == 200 and other.reference in page.content.decode()


def test_only_the_coordinator_escalates(users):
    case = sspf_case(users, Status.PLAN_ACTIVE, years=16)
    with pytest.raises(CaseDenied):
        sspf_services.escalate_to_sig(
            user=users["fredrik.fritid"], case=case, reason="x", purpose=PURPOSE
        )


# --- Anonymised discussion ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Gäller 20090815-1234 i åk 8",
        "pnr 200908151234",
        "090815-1234",
        "0908151234",
        "090815+1234",
        "090875-1234",  # samordningsnummer
        "20090875 1234",
        "090815-XXXX",
        "09 08 15-1234",
        "200908151235",  # invalid check digit: still refused
    ],
)
def test_a_discussion_with_anything_like_a_personnummer_is_refused(users, text):
    assert find_personnummer_like(text)
    with pytest.raises(ValidationError) as error:
        meeting_services.record_anonymised_discussion(
            user=users["sara.samordnare"],
            purpose=PURPOSE,
            date=timezone.localdate(),
            organisation=orgs(users)["school"],
            topic="absence",
            summary=text,
        )
    assert "summary" in error.value.message_dict
    assert not AnonymisedDiscussion.objects.exists()


@pytest.mark.parametrize("text", ["Elev i åk 8, 14 år", "Möte 2024-05-12 kl 14.00", "070 17"])
def test_ordinary_text_is_accepted_and_counted(users, text):
    meeting_services.record_anonymised_discussion(
        user=users["sara.samordnare"],
        purpose=PURPOSE,
        date=timezone.localdate(),
        organisation=orgs(users)["school"],
        topic="absence",
        summary=text,
        age_band="13-15",
        area="brickebacken",
    )
    assert anonymised_discussion_counts() == [
        {
            "organisation__kind": "school",
            "topic": "absence",
            "age_band": "13-15",
            "area": "brickebacken",
            "count": 1,
        }
    ]


def test_a_discussion_form_with_a_personnummer_shows_the_error(users, client):
    meeting = meeting_services.create_meeting(
        user=users["sara.samordnare"],
        purpose=PURPOSE,
        date=timezone.localdate(),
        organisations=[orgs(users)["school"]],
    )
    client.force_login(users["sara.samordnare"])
    response = client.post(
        f"/arenden/sspf/moten/{meeting.pk}/",
        {
            "_action": "discussion",
            "date": timezone.localdate().isoformat(),
            "organisation": orgs(users)["school"].pk,
            "topic": "crime",
            "summary": "Eleven 090815-1234 har snattat.",
        },
    )
    assert response.status_code == 200
    assert response.context["forms"]["discussion"].errors["summary"]
    assert not AnonymisedDiscussion.objects.exists()
