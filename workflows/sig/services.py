"""SIG's services: open a case from a referral (the flow's start, or another programme's
referral), screen it, each agency's decision to start, close it, and what a withdrawn
consent does to it.

The shared machinery (``casework.services.cases``) does the writing: row lock and
version, the state machine's transition, the timeline and the access-log event.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from casework import programmes
from casework.models import Case, CaseLink
from casework.services.cases import (
    close_case,
    comment_case,
    lock_case,
    may_transition,
    new_referral,
    open_case,
    record_decision,
    transition,
    unmet_conditions,
)
from casework.services.persons import find_or_create_person
from workflows.common.services import (
    close_after_withdrawal,
    open_and_start,
    referrals,
    screening,
)
from workflows.sig.models import POLICE_ACTION_STATES, SigCase, SigProcess, within_age_range


def police_may_add_actions(case: SigCase) -> bool:
    """Police record their own actions only while the plan is in force."""
    return case.status in POLICE_ACTION_STATES


def refer(*, user, person, reason: str, purpose: str) -> SigCase:
    """Open a SIG case for ``person`` from a referral (the flow's start step calls this)."""
    # Social services lead SIG: the referrer's own office, or the municipality's one.
    case = new_referral(SigCase, Case.Programme.SIG, user=user, person=person)
    return open_case(
        user=user, purpose=purpose, case=case, reason_field="referral_reason", reason=reason
    )


def _reject(
    *, user, case: SigCase, purpose: str, note: str | None, close_reason: str | None = None
) -> SigCase:
    """A rejected referral: the case closed for ``close_reason``, the note its close note."""
    return close_case(user=user, case=case, purpose=purpose, reason=close_reason, note=note)


# The coordinators' screening: the note, then either the team (the ``lead`` and
# ``police_contact``) and on to consent, or the case closed for ``close_reason``.
record_screening = screening("screening_note", reject=_reject)


def decide_to_start(
    *, user, activation, choice: str, reason: str | None, expected_version: int | None, purpose: str
) -> str:
    """One agency's decision step (``choice``: a ``CaseDecision.Decision``, ``reason`` its
    note), on its page, through the integration API (``api_tasks``) and in the demo data:
    the decision recorded; where it declines and may, the case closed and the flow ended;
    where both agencies decided to start, the case started; the step done. Returns
    "declined", "started" or "recorded"."""
    case = activation.process.case
    record_decision(
        user=user,
        case=case,
        purpose=purpose,
        decision=choice,
        note=reason or None,
        expected_version=expected_version,
    )
    if may_transition(user=user, case=case, name="decline") and not (
        unmet_conditions(case, "decline")
    ):
        transition(user=user, case=case, name="decline", purpose=purpose, reason=reason)
        activation.execute()
        activation.flow_class.instance.cancel(activation.process)
        return "declined"
    outcome = "recorded"
    if not unmet_conditions(case, "start"):
        transition(user=user, case=case, name="start", purpose=purpose)
        outcome = "started"
    activation.execute()
    return outcome


def review_plan(
    *,
    user,
    case: SigCase,
    purpose: str,
    approve: bool,
    comment: str | None,
    expected_version: int | None = None,
) -> None:
    """The coordinator's review of the plan, on its page and through the integration API
    (``api_tasks``): approved (the transition ``approve_plan``, ``comment`` its reason: the
    case becomes active), or returned to the lead social worker with ``comment`` on the
    case's timeline."""
    if approve:
        transition(
            user=user,
            case=case,
            name="approve_plan",
            purpose=purpose,
            approved_by=user,
            reason=comment or None,
            expected_version=expected_version,
        )
    else:
        comment_case(user=user, case=case, purpose=purpose, text=comment)


def refer_person(*, user, purpose: str, personnummer: str, reason: str, **details) -> SigCase:
    """A referral from the referral page: the person is found by personnummer, or
    registered (``details``: their ``name``, ``area``, ``phone`` and ``address``), and the
    case opened (:func:`refer`), all or nothing."""
    with transaction.atomic(savepoint=False):
        person = find_or_create_person(
            user=user, purpose=purpose, personnummer=personnummer, **details
        )
        return refer(user=user, person=person, reason=reason, purpose=purpose)


def register_referral(*, user, purpose: str, **referral) -> SigCase:
    """A referral from an organisation's own system (the integration API): registered as
    the referral page registers it (:func:`refer_person`; ``referral``: its arguments),
    then the flow started (the coordinators' screening queue), all or nothing. As on the
    referral page, the referrer is not put on the team and learns nothing of the register
    (ADR 0012)."""
    # The flow imports the task views, which import this module: looked up when used.
    from workflows.sig.flow import SigFlow

    return open_and_start(
        SigFlow.start_linked, lambda: refer_person(user=user, purpose=purpose, **referral)
    )


def _require_age_range(person) -> None:
    """Refuse a referral from another programme of a person outside the SIG age range."""
    if not within_age_range(person):
        low, high = settings.SAMVERKAN["SIG_AGE_RANGE"]
        raise ValidationError(
            _(
                "SIG takes young people aged %(low)s to %(high)s; "
                "this person is outside that range."
            ),
            params={"low": low, "high": high},
        )


def _start_flow(case: SigCase) -> None:
    """Start the SIG flow for a case referred from another programme: it lands in the
    coordinators' screening queue."""
    # The flow imports the task views, which import this module: the flow is looked up
    # when first used, not when this module loads.
    from workflows.sig.flow import SigFlow

    SigFlow.start_linked.run(case=case)


def _refer_from_programme(*, user, person, reason: str, purpose: str) -> SigCase:
    """A referral from another programme: a person outside the SIG age range is refused
    with a ``ValidationError``."""
    _require_age_range(person)
    return refer(user=user, person=person, reason=reason, purpose=purpose)


# Another programme's referrals to SIG (``workflows.common.services.referrals``): the SIG
# case opened, its flow started (the coordinators' screening queue) and the link to the
# other case recorded (``refer_linked``) or the referral's source written on the new case's
# timeline (``refer_from``), all or nothing.
refer_linked, refer_from = referrals(_refer_from_programme, _start_flow)


def after_consent_withdrawn(*, user, case: SigCase, purpose: str) -> bool:
    """Stop the process and close the case unless another legal basis applies.

    Returns whether the case was closed. Runs inside the withdrawal's transaction.
    """
    return close_after_withdrawal(
        user=user, case=case, purpose=purpose, case_model=SigCase, process_model=SigProcess
    )


def close(
    *,
    user,
    case: SigCase,
    purpose: str,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> Case | None:
    """Close a SIG case (the case page, the follow-up step).

    Closed as "handed to the defector programme", the same transaction opens the
    person's defector referral, linked to this case (``CaseLink.Kind.HANDED_OVER``,
    shown on both cases; the note is the referral's reason): if the referral cannot
    be opened, the case is not closed either. Returns the defector case, if any.
    """
    to_defector = reason == Case.CloseReason.DEFECTOR_PROGRAMME
    if to_defector and not (note or "").strip():
        raise ValidationError(
            {
                "close_note": ValidationError(
                    _("Describe why the person is referred to the defector programme."),
                    "required",
                )
            }
        )
    try:
        with transaction.atomic():
            referral = None
            if to_defector:
                # The referral and its link first, while the team still has the case (a
                # close ends every membership: ADR 0012); the close then takes the version
                # the link left.
                lock_case(case=case, expected_version=expected_version)
                referral = programmes.refer_linked(
                    Case.Programme.DEFECTOR,
                    user=user,
                    from_case=case,
                    kind=CaseLink.Kind.HANDED_OVER,
                    reason=note,
                    purpose=purpose,
                )
                expected_version = case.version
            close_case(
                user=user,
                case=case,
                purpose=purpose,
                reason=reason,
                note=note,
                expected_version=expected_version,
            )
            return referral
    except Exception:
        # Nothing was closed: the caller shows the case as it still is.
        case.refresh_from_db()
        raise
