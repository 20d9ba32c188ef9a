"""Writes of the defector case's way in and its local programme, one function per user
intention: the referral (also from another programme), the initial check, social
services' support decision, the accepted conditions, the programme's start; and the case
page's support actions and protected identity. The threat, routing and closing are in
``workflows.defector.services``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.models import (
    Action,
    Case,
    CaseDecision,
    CaseEvent,
    Organisation,
)
from casework.services import cases as case_services
from casework.services import find_or_create_person, person_corrections
from casework.services.case_changes import case_change, require_access_and_role
from casework.services.cases import new_referral, transition
from workflows.common.services import open_and_start, referrals, screening
from workflows.defector import flow, services
from workflows.defector.models import (
    ASSESSABLE_STATES,
    FINAL_STATES,
    DefectorCase,
    DefectorSupportCase,
    ReferralSource,
    Status,
    SupportStatus,
    adds_actions,
    lead_or_coordinator,
    pending_lowering,
    police_assessor,
    police_coordinator,
)

# --- The referral ----------------------------------------------------------------------------


def refer(*, user, person, source: str, reason: str, purpose: str) -> DefectorCase:
    """Open a defector case for ``person`` (no age limit)."""

    if source not in ReferralSource.values:
        raise ValidationError({"source": ValidationError(_("Select a valid choice."))})
    # Social services carry the main responsibility: the referrer's office or the only one.
    case = new_referral(
        DefectorCase, Case.Programme.DEFECTOR, user=user, person=person, referral_source=source
    )
    return case_services.open_case(
        user=user, purpose=purpose, case=case, reason_field="referral_reason", reason=reason
    )


def register_referral(
    *, user, purpose: str, personnummer: str, source: str, reason: str, **details
) -> DefectorCase:
    """A referral from the referral form: the person is found by personnummer, or
    registered (``details``: their ``name``, ``area``, ``phone``, ``address`` and
    ``protected_identity``), and the case opened, all or nothing."""
    with transaction.atomic(savepoint=False):
        person = find_or_create_person(
            user=user, purpose=purpose, personnummer=personnummer, **details
        )
        return refer(user=user, person=person, source=source, reason=reason, purpose=purpose)


def receive_referral(*, user, purpose: str, **referral) -> DefectorCase:
    """A referral from an organisation's own system (the integration API): registered as
    the referral form registers it (:func:`register_referral`; ``referral``: its
    arguments), then the flow started (the defector coordinators' initial check), all or
    nothing. As on the form, the referrer is not put on the team and learns nothing of the
    register (ADR 0012)."""
    return open_and_start(
        flow.DefectorFlow.start_linked,
        lambda: register_referral(user=user, purpose=purpose, **referral),
    )


def _refer_from_programme(*, user, person, reason: str, purpose: str) -> DefectorCase:
    """A referral from another programme: its source is the referrer's organisation kind
    (police or social services)."""
    return refer(
        user=user, person=person, source=_referral_source(user), reason=reason, purpose=purpose
    )


def _start_flow(case: DefectorCase) -> None:
    """Start the defector flow for a case referred from another programme: it lands in
    the defector coordinators' initial check."""
    flow.DefectorFlow.start_linked.run(case=case)


# Another programme's referrals to the defector programme
# (``workflows.common.services.referrals``): the defector case opened, its flow started
# and the link to the other case recorded (``refer_linked``) or the referral's source
# written on the new case's timeline (``refer_from``), all or nothing.
refer_linked, refer_from = referrals(_refer_from_programme, _start_flow)


def _referral_source(user) -> str:
    """The referral source of a referral one of our users makes from another programme."""
    kind_of = user.organisation.kind if user.organisation else ""
    return {
        Organisation.Kind.POLICE: ReferralSource.POLICE,
        Organisation.Kind.SCHOOL: ReferralSource.SCHOOL,
    }.get(kind_of, ReferralSource.SOCIAL_SERVICES)


# --- The initial check -----------------------------------------------------------------------


def _not_eligible(*, user, case: DefectorCase, purpose: str, note: str | None) -> DefectorCase:
    """A rejected initial check: the person is not eligible (``reject`` closes the case)."""
    return transition(user=user, case=case, name="reject", purpose=purpose, reason=note)


# The defector coordinator's initial check: the note, then either the team (the ``lead``
# and ``police_contact``) and on to consent, or not eligible.
record_initial_check = screening("check_note", reject=_not_eligible)


# --- The local programme: support, conditions, the programme, its review --------------------


def decide_support(
    *, user, case: DefectorCase, purpose: str, note: str | None = None, **decision
) -> CaseDecision:
    """Social services' decision on support (``decision``: the ``decision`` and
    ``expected_version`` of ``record_decision``); a decision against it closes the case
    (and cancels its processes)."""
    with transaction.atomic():
        decided = case_services.record_decision(
            user=user, case=case, purpose=purpose, note=note, **decision
        )
        if decided.decision == CaseDecision.Decision.DECLINE:
            services.close_defector_case(
                user=user,
                case=case,
                purpose=purpose,
                reason=Case.CloseReason.NOT_ELIGIBLE,
                note=note,
            )
    return decided


def accept_conditions(
    *,
    user,
    case: DefectorCase,
    purpose: str,
    no_crime: bool,
    drug_free: bool,
    drug_tests: bool,
    expected_version: int | None = None,
) -> DefectorCase:
    """The person accepted the programme's conditions: no crime, drug-free, drug tests."""
    purpose = require_access_and_role(
        lead_or_coordinator, user=user, case=case, purpose=purpose, what="conditions"
    )
    missing = {
        name: [_("The person must accept this condition.")]
        for name, value in (
            ("no_crime", no_crime),
            ("drug_free", drug_free),
            ("drug_tests", drug_tests),
        )
        if value is not True
    }
    if missing:
        raise ValidationError(missing)
    if case.status != Status.LOCAL_INTAKE:
        raise ValidationError(
            _("The case is not in a state where this can be done."), code="invalid_state"
        )
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        case.conditions_accepted_at = timezone.now()
        case.save(update_fields=["conditions_accepted_at"])
        change.record(CaseEvent.Kind.PLAN, "conditions", fields=["conditions_accepted_at"])
    return case


# --- The case page ---------------------------------------------------------------------------


def available_actions(*, user, case: DefectorCase | DefectorSupportCase) -> dict[str, bool]:
    """What the case page offers ``user`` (each service checks its own rule again)."""
    may_close = case_services.may_transition(user=user, case=case, name="close")
    if isinstance(case, DefectorSupportCase):
        open_case = case.status == SupportStatus.OPEN
        return {"action": adds_actions(case, user), "close": open_case and may_close}
    open_case = case.status not in FINAL_STATES
    return {
        "action": adds_actions(case, user),
        "reassess": case.status in ASSESSABLE_STATES
        and case.status != Status.JOINT_ASSESSMENT
        and police_assessor(case, user),
        "lowering": open_case
        and police_coordinator(case, user)
        and pending_lowering(case) is not None,
        "protected_identity": open_case and policy.may_set_protected_identity(user, case),
        "close": open_case and may_close,
    }


def add_action(
    *,
    user,
    case: DefectorCase | DefectorSupportCase,
    purpose: str,
    organisation: Organisation | None,
    **action,
) -> Action:
    """A support action on the case (``models.adds_actions`` says where and who;
    ``action``: the other arguments of ``casework.services.cases.add_action``)."""
    organisation = organisation or user.organisation
    return case_services.add_action(
        user=user, case=case, purpose=purpose, organisation=organisation, **action
    )


def set_protected_identity(*, user, case: Case, purpose: str, level: int) -> None:
    """Record the person's protected identity (sekretessmarkering, skyddad folkbokföring,
    fingerade personuppgifter): a named handler of the case or its coordinator (the core's
    rule and service, as in every programme: ``casework.services.person_corrections``)."""
    person_corrections.set_protected_identity(user=user, case=case, purpose=purpose, level=level)
