"""Routing by threat level: every path, re-routing up at once, down only with approval,
and every guard of the state machine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AccessEvent
from casework.models import Case, CaseLink, Consent
from casework.services import cases as case_services
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import PURPOSE, assessment, defector_case, reassess_data
from tests.workflows.factories import assert_closed, record_consent, review_date_ahead
from workflows.defector import intake, services
from workflows.defector import models as defector
from workflows.defector.flow import DefectorFlow
from workflows.defector.models import (
    DefectorCase,
    DefectorProcess,
    DefectorSupportCase,
    FirstRouting,
    Level,
    Status,
    ThreatAssessment,
)

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.mark.parametrize(
    ("level", "state", "handed_to"),
    [
        (Level.LOW, Status.LOCAL_INTAKE, ""),
        (Level.ELEVATED, Status.HANDED_OVER_REGIONAL, "regional"),
        (Level.HIGH, Status.HANDED_OVER_REGIONAL, "regional"),
        ("evidence", Status.HANDED_OVER_NATIONAL, "national"),
    ],
)
def test_the_first_assessment_routes_the_case(users, level, state, handed_to):
    case = defector_case(users, "assess", level=level)
    assert case.status == state
    assert case.handed_over_to == handed_to
    # Every routing decision is in the access log.
    routed = AccessEvent.objects.filter(
        action=AccessEvent.Action.TRANSITION, object_id=str(case.pk)
    ).values_list("details__transition", flat=True)
    assert "assess" in routed
    assert {"route_local", "hand_over_regional", "hand_over_national"} & set(routed)
    support = CaseLink.objects.filter(from_case=case, kind=CaseLink.Kind.SUPPORT_CASE)
    assert support.exists() == (handed_to == "regional")
    if handed_to:
        disclosure = AccessEvent.objects.get(
            action=AccessEvent.Action.DISCLOSE, object_id=str(case.pk)
        )
        assert disclosure.legal_basis == "consent"
        assert disclosure.details["hand_over"] == handed_to


def test_a_national_programme_case_is_handed_over_nationally(users):
    case = defector_case(users, "police_check")
    services.assess_threat(
        user=users["per.polis"],
        case=case,
        purpose=PURPOSE,
        **assessment(Level.LOW, national_programme=True),
    )
    assert case.status == Status.HANDED_OVER_NATIONAL


def test_an_evidence_person_never_enters_the_local_programme(users):
    case = defector_case(users, "assess", level=Level.LOW)
    services.reassess_threat(
        user=users["per.polis"],
        case=case,
        purpose=PURPOSE,
        **assessment(Level.LOW, evidence_person=True),
    )
    assert case.status == Status.HANDED_OVER_NATIONAL
    # Not even a police coordinator can route it locally: the guard re-checks.
    with pytest.raises(ValidationError) as error:
        case_services.transition(
            user=users["maja.avhopp"], case=case, name="route_local", purpose=PURPOSE
        )
    assert str(defector.routed_local.message) in error.value.messages
    # Dropping the evidence-person mark is a lowering: it waits for approval.
    pending = services.reassess_threat(
        user=users["per.polis"], case=case, purpose=PURPOSE, **assessment(Level.LOW)
    )
    assert pending.state == ThreatAssessment.State.PENDING
    assert case.status == Status.HANDED_OVER_NATIONAL


def test_partial_consent_makes_the_case_not_eligible(users):
    case = defector_case(users, "consent_partial")
    assert case.status == Status.NOT_ELIGIBLE
    assert case.close_reason == "not_eligible"


def test_oral_consent_is_not_enough(users):
    case = defector_case(users, "accept")
    anna = users["anna.social"]
    agencies = [case.owner_organisation, users["per.polis"].organisation]
    record_consent(anna, case, PURPOSE, agencies, form=Consent.Form.ORAL)
    assert case_services.unmet_conditions(case, "consents_given") == [
        str(defector.written_consent_all_agencies.message)
    ]
    case_services.transition(user=anna, case=case, name="consent_insufficient", purpose=PURPOSE)
    assert case.status == Status.NOT_ELIGIBLE


def test_a_not_eligible_close_is_a_close_like_any_other(users):
    """Closed through ``close_case``: no review date set before the consent failed is
    left behind; the first routing and the refusal are recorded too."""
    case = defector_case(users, "accept")
    anna = users["anna.social"]
    review_date_ahead(anna, case, PURPOSE)
    record_consent(anna, case, PURPOSE, [case.owner_organisation], form=Consent.Form.ORAL)
    case_services.transition(user=anna, case=case, name="consent_insufficient", purpose=PURPOSE)
    assert_closed(case, Status.NOT_ELIGIBLE, Case.CloseReason.NOT_ELIGIBLE)
    assert case.consent_refused_at == case.closed_at
    assert case.routed_to == FirstRouting.NOT_ELIGIBLE


def test_a_raise_from_active_hands_over_in_the_same_request(users, client):
    case = defector_case(users, "activate")
    anna = users["anna.social"]
    client.force_login(users["per.polis"])
    response = client.post(f"/arenden/fall/{case.pk}/", reassess_data(case, Level.HIGH))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.HANDED_OVER_REGIONAL
    # The local flow stopped; social services have their support case.
    assert not DefectorProcess.objects.filter(
        case=case, finished__isnull=True, flow_class=DefectorFlow
    ).exists()
    support = DefectorSupportCase.objects.get(links_in__from_case=case)
    assert support.memberships.filter(user=anna).exists()
    # Local access is cut at once: the lead social worker sees only the hand-over.
    client.force_login(anna)
    page = client.get(f"/arenden/fall/{case.pk}/")
    assert page.status_code == 200
    assert page.templates[0].name == "workflows/defector/handed_over.html"
    assert b"Hot fr" not in page.content
    assert support.reference.encode() in page.content


def test_lowering_waits_for_a_police_coordinators_approval(users, client):
    case = defector_case(users, "assess", level=Level.HIGH)
    per, maja, alex = users["per.polis"], users["maja.avhopp"], users["alex.avhopp"]
    pending = services.reassess_threat(
        user=per, case=case, purpose=PURPOSE, **assessment(Level.LOW)
    )
    assert pending.state == ThreatAssessment.State.PENDING
    assert case.status == Status.HANDED_OVER_REGIONAL
    assert defector.current_assessment(case).level == Level.HIGH
    # Neither the police contact officer nor a social-services coordinator approves.
    for user in (per, alex):
        with pytest.raises(case_services.CaseDenied):
            services.decide_lowering(user=user, case=case, purpose=PURPOSE, approve=True)
    client.force_login(maja)
    response = client.post(
        f"/arenden/fall/{case.pk}/",
        {"_action": "lowering", "outcome": "approve", "version": case.version},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.LOCAL_INTAKE
    assert case.handed_over_at is None
    # Back in the local programme: a new local intake task for the coordinators.
    process = DefectorProcess.objects.get(case=case, finished__isnull=True, flow_class=DefectorFlow)
    assert process.task_set.filter(flow_task=DefectorFlow.intake).exists()


def test_a_police_coordinator_cannot_approve_their_own_lowering(users):
    case = defector_case(users, "assess", level=Level.HIGH)
    maja = users["maja.avhopp"]
    services.reassess_threat(user=maja, case=case, purpose=PURPOSE, **assessment(Level.LOW))
    with pytest.raises(ValidationError):
        services.decide_lowering(user=maja, case=case, purpose=PURPOSE, approve=True)
    assert defector.current_assessment(case).level == Level.HIGH


def test_a_rejected_lowering_leaves_the_level(users):
    case = defector_case(users, "assess", level=Level.ELEVATED)
    services.reassess_threat(user=users["per.polis"], case=case, purpose=PURPOSE, **assessment())
    with pytest.raises(ValidationError):  # a rejection needs its reason
        services.decide_lowering(
            user=users["maja.avhopp"], case=case, purpose=PURPOSE, approve=False
        )
    services.decide_lowering(
        user=users["maja.avhopp"], case=case, purpose=PURPOSE, approve=False, note="Kvarstår."
    )
    assert defector.current_assessment(case).level == Level.ELEVATED
    assert case.status == Status.HANDED_OVER_REGIONAL


def test_a_raise_supersedes_a_pending_lowering(users):
    case = defector_case(users, "assess", level=Level.ELEVATED)
    per = users["per.polis"]
    services.reassess_threat(user=per, case=case, purpose=PURPOSE, **assessment())
    services.reassess_threat(user=per, case=case, purpose=PURPOSE, **assessment(Level.HIGH))
    assert defector.pending_lowering(case) is None
    assert defector.current_assessment(case).level == Level.HIGH


def test_a_regional_case_raised_to_national(users):
    case = defector_case(users, "assess", level=Level.HIGH)
    services.reassess_threat(
        user=users["per.polis"],
        case=case,
        purpose=PURPOSE,
        **assessment(Level.HIGH, evidence_person=True),
    )
    assert case.status == Status.HANDED_OVER_NATIONAL


# --- Every guard, with its message -----------------------------------------------------------


def _messages(case, name):
    return case_services.unmet_conditions(case, name)


def test_guards_of_the_initial_check(users):
    case = defector_case(users, "begin_check")
    assert set(_messages(case, "accept")) == {
        str(defector.has_lead.message),
        str(defector.has_police_contact.message),
    }


def test_guards_of_consent(users):
    case = defector_case(users, "accept")
    assert _messages(case, "consents_given") == [str(defector.written_consent_all_agencies.message)]
    assert _messages(case, "consent_insufficient") == [str(defector.consent_partial.message)]


def test_guards_of_the_assessment(users):
    case = defector_case(users, "consents_given")
    assert set(_messages(case, "assess")) == {
        str(defector.police_check_recorded.message),
        str(defector.assessment_in_force.message),
    }
    with pytest.raises(ValidationError):  # the service says so too
        services.assess_threat(user=users["per.polis"], case=case, purpose=PURPOSE, **assessment())


@pytest.mark.parametrize(
    ("level", "name", "guard"),
    [
        (Level.LOW, "hand_over_regional", defector.routed_regional),
        (Level.LOW, "hand_over_national", defector.routed_national),
        (Level.HIGH, "route_local", defector.routed_local),
    ],
)
def test_routing_guards(users, level, name, guard):
    case = defector_case(users, "assess", level=level)
    assert str(guard.message) in _messages(case, name)
    with pytest.raises(ValidationError):
        case_services.transition(user=users["maja.avhopp"], case=case, name=name, purpose=PURPOSE)


def test_guards_of_the_agreement_and_activation(users):
    case = defector_case(users, "assess")
    assert set(_messages(case, "sign_agreement")) == {
        str(defector.conditions_accepted.message),
        str(defector.support_decided.message),
    }
    case = defector_case(users, "sign_agreement")
    assert _messages(case, "activate") == [str(defector.review_date_ahead.message)]
    case = defector_case(users, "activate")
    assert _messages(case, "begin_review") == [str(defector.review_date_reached.message)]


def test_guards_of_continuing_after_review(users):
    case = defector_case(users, "begin_review")
    assert str(defector.review_date_ahead.message) in _messages(case, "continue_case")
    consent = case.consents.get(giver=Consent.Giver.SELF)
    case_services.withdraw_consent(
        user=users["anna.social"], case=case, purpose=PURPOSE, consent=consent
    )
    assert str(defector.consents_complete.message) in _messages(case, "continue_case")


def test_conditions_must_all_be_accepted(users):
    case = defector_case(users, "support")
    with pytest.raises(ValidationError) as error:
        intake.accept_conditions(
            user=users["alex.avhopp"],
            case=case,
            purpose=PURPOSE,
            no_crime=True,
            drug_free=False,
            drug_tests=True,
        )
    assert set(error.value.message_dict) == {"drug_free"}


def test_close_reasons_are_the_programmes(users):
    case = defector_case(users, "activate")
    with pytest.raises(ValidationError):
        services.close_defector_case(
            user=users["alex.avhopp"], case=case, purpose=PURPOSE, reason="goals_met"
        )
    for reason in ("completed", "relapse", "left_voluntarily", "moved", "handed_over"):
        assert reason in defector.CLOSE_REASONS
    services.close_defector_case(
        user=users["alex.avhopp"], case=case, purpose=PURPOSE, reason="relapse"
    )
    case = DefectorCase.objects.get(pk=case.pk)
    assert (case.status, case.close_reason) == (Status.CLOSED, "relapse")
