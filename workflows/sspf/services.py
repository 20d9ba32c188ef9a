"""Writes of the SSPF programme: concerns, risk assessments, the police participation
decision, the mapping conversation, team and actions, meetings, anonymised discussions and
escalation to SIG.

Built on the shared case machinery (``casework.services.cases``): every function is
keyword-only, takes the acting ``user`` and the ``purpose``, asks ``casework.policy``, locks
the case row and checks the version the user saw, seals free text under the case's data
key, and writes the timeline entry and the access-log event in the same transaction. A
refusal is an ``ACCESS_DENIED`` event and :class:`CaseDenied`; bad input a
``ValidationError`` with Swedish messages. The state machine is in ``workflows/sspf/models.py``;
a service that stops the case's process reaches its flow through the process
(``SspfProcess.flow_class``).
"""

from __future__ import annotations

import datetime
from contextlib import nullcontext
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import policy, programmes
from casework.models import Action, Case, CaseEvent, CaseLink, CaseMembership, Organisation, Person
from casework.selectors.persons import require_purpose
from casework.services import find_or_create_person
from casework.services.case_changes import (
    case_change,
    past_date,
    require_coordinator,
    require_coordinator_access,
    save_case,
)
from casework.services.cases import (
    NOTE_LIMIT,
    REASON_LIMIT,
    CaseDenied,
    add_action,
    add_member,
    clean_text,
    deny_case,
    new_referral,
    open_case,
    require_access,
    social_services_office,
    transition,
    update_case,
)
from casework.services.cases import withdraw_consent as register_withdrawal
from workflows.common.services import (
    cancel_running_process,
    close_after_withdrawal,
    close_and_stop,
    open_and_start,
)
from workflows.sspf.models import (
    CONCERN_RAISERS,
    PLAN_STATES,
    PoliceParticipation,
    RiskAssessment,
    SspfCase,
    SspfProcess,
    Status,
    within_age_range,
)

if TYPE_CHECKING:
    from casework.models import User


def _owner_organisation() -> Organisation:
    """Social services hold the SSPF case (the coordinator works for them)."""
    return social_services_office(
        None, _("No single social services organisation is registered to hold the case.")
    )


# --- The concern ---------------------------------------------------------------------------


def raise_concern(*, user, person: Person, concern: str, purpose: str) -> SspfCase:
    """Open an SSPF case from a concern raised by school, social services, police or leisure.

    The young person must be within the SSPF age range.
    """
    purpose = require_purpose(purpose)
    if not policy.can_use_task_inbox(user):
        raise CaseDenied()
    if user.organisation.kind not in CONCERN_RAISERS:
        raise ValidationError(
            _("Only school, social services, police and leisure staff raise SSPF concerns.")
        )
    if not within_age_range(person):
        low, high = settings.SAMVERKAN["SSPF_AGE_RANGE"]
        raise ValidationError(
            {
                "personnummer": ValidationError(
                    _("SSPF is for children and young people aged %(low)s to %(high)s."),
                    params={"low": low, "high": high},
                )
            }
        )
    case = new_referral(
        SspfCase, Case.Programme.SSPF, user=user, person=person, owner=_owner_organisation()
    )
    return open_case(user=user, purpose=purpose, case=case, reason_field="concern", reason=concern)


def raise_concern_about(
    *, user, personnummer: str, name: str, area: str, concern: str, purpose: str
) -> SspfCase:
    """The concern page: find the young person by personnummer (or register them), then
    raise the concern (:func:`raise_concern`)."""
    person = find_or_create_person(
        user=user, purpose=purpose, personnummer=personnummer, name=name, area=area
    )
    return raise_concern(user=user, person=person, concern=concern, purpose=purpose)


def register_concern(*, user, purpose: str, **raised) -> SspfCase:
    """A concern from an organisation's own system (the integration API): raised as the
    concern page raises it (:func:`raise_concern_about`; ``raised``: its other
    arguments), then the flow started (the coordinators' assessment queue), all or
    nothing. As on the page, the one who raises it is not put on the team and learns
    nothing of the register (ADR 0012)."""
    # The flow imports the task views, which import this module: looked up when used.
    from workflows.sspf.flow import SspfFlow

    return open_and_start(
        SspfFlow.start_registered,
        lambda: raise_concern_about(user=user, purpose=purpose, **raised),
    )


# --- Assessment ------------------------------------------------------------------------------


def record_risk_assessment(
    *,
    user,
    case: SspfCase,
    purpose: str,
    level: str,
    risk_factors: str,
    protective_factors: str | None = None,
    expected_version: int | None = None,
) -> RiskAssessment:
    """The coordinator's risk assessment (a new one replaces the older as the one in force)."""
    purpose = require_coordinator_access(user=user, case=case, purpose=purpose, what="risk:record")
    if level not in RiskAssessment.Level.values:
        raise ValidationError({"level": ValidationError(_("Select a valid choice."))})
    risk_factors = clean_text(risk_factors, "risk_factors", limit=NOTE_LIMIT, required=True)
    protective_factors = clean_text(protective_factors, "protective_factors", limit=NOTE_LIMIT)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        assessment = RiskAssessment(case=case, level=level, assessed_by=user)
        change.seal(assessment, "risk_factors", risk_factors)
        change.seal(assessment, "protective_factors", protective_factors)
        assessment.save(force_insert=True)
        change.record_created(assessment, CaseEvent.Kind.DECISION, f"risk:{level}", level=level)
    return assessment


def record_police_participation(
    *,
    user,
    case: SspfCase,
    purpose: str,
    participates: bool,
    reason: str,
    expected_version: int | None = None,
) -> PoliceParticipation:
    """The coordinator records whether the police take part, and why.

    "No" ends the police's access at once (``casework.policy.case_access`` reads the newest
    decision on every request); the police's team memberships are ended with it.
    """
    purpose = require_coordinator_access(
        user=user, case=case, purpose=purpose, what="police_participation"
    )
    if not isinstance(participates, bool):
        raise ValidationError({"participates": ValidationError(_("Select a valid choice."))})
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        decision = PoliceParticipation(case=case, participates=participates, decided_by=user)
        change.seal(decision, "reason", reason)
        decision.save(force_insert=True)
        ended = 0
        if not participates:
            ended = CaseMembership.objects.filter(
                case=case, valid_to__isnull=True, user__organisation__kind=Organisation.Kind.POLICE
            ).update(valid_to=timezone.now())
        change.record_created(
            decision,
            CaseEvent.Kind.DECISION,
            f"police:{'yes' if participates else 'no'}",
            participates=participates,
            memberships_ended=ended,
        )
    return decision


def record_mapping(
    *,
    user,
    case: SspfCase,
    purpose: str,
    held_on: datetime.date,
    note: str,
    expected_version: int | None = None,
) -> SspfCase:
    """The mapping conversation with the family: when it was held and what came out of it."""
    purpose = require_coordinator_access(
        user=user, case=case, purpose=purpose, what="mapping:record"
    )
    note = clean_text(note, "mapping_note", limit=NOTE_LIMIT, required=True)
    dated_in_future = _("The conversation cannot be dated in the future.")
    past_date(held_on, "held_on", future=dated_in_future, invalid=dated_in_future)
    if held_on < timezone.localtime(case.opened_at).date():
        raise ValidationError(
            {"held_on": ValidationError(_("The conversation cannot be before the concern."))}
        )
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        change.seal(case, "mapping_note", note)
        case.mapping_date = held_on
        save_case(case)
        change.record(CaseEvent.Kind.PLAN, "mapping", fields=["mapping_note", "mapping_date"])
    return case


def finish_mapping(*, user, case: SspfCase, purpose: str, **mapping) -> SspfCase:
    """Record the mapping conversation (:func:`record_mapping`, ``mapping`` its other
    arguments) and move the case on to the network meeting."""
    with transaction.atomic():
        record_mapping(user=user, case=case, purpose=purpose, **mapping)
        transition(user=user, case=case, name="mapping_done", purpose=purpose)
    return case


def adopt_plan(*, user, case: SspfCase, purpose: str, goals: str, **update) -> SspfCase:
    """The network meeting writes the plan's goals and follow-up date (``update``: the
    ``review_date`` and ``expected_version`` of ``update_case``) and adopts the plan."""
    with transaction.atomic():
        update_case(user=user, case=case, purpose=purpose, texts={"plan_goals": goals}, **update)
        transition(user=user, case=case, name="adopt_plan", purpose=purpose, adopted_by=user)
    return case


# --- Team and actions --------------------------------------------------------------------------


def add_sspf_member(
    *, user, case: SspfCase, purpose: str, member: User, **membership
) -> CaseMembership:
    """Put school, leisure, social services or (where they take part) police staff on the
    team (``membership``: the ``role`` and ``expected_version`` of ``add_member``)."""
    purpose = require_purpose(purpose)
    if policy.is_police(member) and not policy.sspf_police_participates(case):
        raise ValidationError(
            {
                "user": ValidationError(
                    _("Record the decision that the police take part before adding police staff.")
                )
            }
        )
    return add_member(user=user, case=case, purpose=purpose, member=member, **membership)


def may_add_action(user, case: SspfCase) -> bool:
    """The coordinator plans actions from the network meeting on; members (police
    included, where they take part) record theirs while the plan is in force."""
    if case.status in PLAN_STATES:
        return True
    return case.status == Status.NETWORK_MEETING and policy.coordinates(user, case)


def add_sspf_action(
    *, user, case: SspfCase, purpose: str, organisation: Organisation | None = None, **action
) -> Action:
    """An action of the commitment plan: who (the organisation), what (kind, note), when
    (``action``: the other arguments of ``add_action``).

    The coordinator plans actions for any organisation from the network meeting on;
    members record their own organisation's while the plan is in force.
    """
    organisation = organisation or user.organisation
    coordinator = policy.coordinates(user, case)
    if not coordinator and organisation.pk != user.organisation_id:
        require_access(user=user, case=case, purpose=purpose, what="action:add")
        raise deny_case(
            user=user, case=case, purpose=purpose, what="action:add", reason="organisation"
        )
    if (
        organisation.kind == Organisation.Kind.POLICE
        and not policy.sspf_police_participates(case)
        and coordinator
    ):
        raise ValidationError(
            {
                "organisation": ValidationError(
                    _("The police take part only after a recorded decision that they should.")
                )
            }
        )
    return add_action(user=user, case=case, purpose=purpose, organisation=organisation, **action)


# --- The school's and the leisure centre's part of the plan --------------------------------------

NO_OWN_ACTION = _("Record your organisation's action in the plan first: who does what, and when.")
PART_REPORTERS = (Organisation.Kind.SCHOOL, Organisation.Kind.LEISURE)


def has_own_action(*, user, case: SspfCase) -> bool:
    """The plan holds an action (not cancelled) of the user's organisation."""
    return (
        case.actions.exclude(status=Action.Status.CANCELLED)
        .filter(organisation_id=user.organisation_id)
        .exists()
    )


def report_plan_part(
    *, user, case: SspfCase, purpose: str, note: str, expected_version: int | None = None
) -> None:
    """A school or leisure member reports their organisation's part of the commitment plan
    before the follow-up meeting: how it is going (sealed on the timeline, for the
    coordinator). Their organisation must have an action in the plan."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="plan:report")
    if (
        user.organisation is None
        or user.organisation.kind not in PART_REPORTERS
        or policy.team_membership(user, case) is None
    ):
        raise deny_case(user=user, case=case, purpose=purpose, what="plan:report", reason="role")
    if case.status not in PLAN_STATES:
        raise ValidationError(_("The commitment plan is not in force."))
    note = clean_text(note, "report", limit=REASON_LIMIT, required=True)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        if not has_own_action(user=user, case=case):
            raise ValidationError(NO_OWN_ACTION)
        change.record(
            CaseEvent.Kind.PLAN, f"report:{user.organisation.kind}", fields=["report"], reason=note
        )


# --- Escalation --------------------------------------------------------------------------------


def escalate_to_sig(*, user, case: SspfCase, reason: str, purpose: str) -> Case:
    """Open a linked SIG referral for the young person (only within SIG's age range)."""
    purpose = require_coordinator_access(user=user, case=case, purpose=purpose, what="escalate")
    if case.status == Status.CLOSED:
        raise ValidationError(_("A closed case cannot be escalated."))
    return programmes.refer_linked(
        Case.Programme.SIG,
        user=user,
        from_case=case,
        kind=CaseLink.Kind.ESCALATED,
        reason=reason,
        purpose=purpose,
    )


# --- Closing: the case and its process -----------------------------------------------------------


def _stop_process(case: SspfCase) -> None:
    """Cancel the case's process if it is still running."""
    cancel_running_process(SspfProcess, case)


def close_case_and_process(*, case: SspfCase, **close) -> SspfCase:
    """Close the case from its page (outside a task step) and stop its process
    (``close``: the other arguments of ``close_case``)."""
    return close_and_stop(_stop_process, case=case, **close)


def withdraw_consent(*, user, case: SspfCase, consent, purpose: str) -> bool:
    """Register the withdrawal of ``consent`` (the case page's button) and its consequence:
    the process stops and the case closes, unless another legal basis applies.

    Returns whether the case was closed. A withdrawal always wins: the flow's lock is
    taken first — in the order a task step takes its locks (the process, then the
    case's row) — so a step under way finishes before it, and the withdrawal then
    works on the case as that step left it; a step posted after it finds its task
    cancelled and its user is taken to the closed case.
    """
    process = SspfProcess.objects.filter(case_id=case.pk).only("pk", "flow_class").first()
    with process.flow_class.lock(process.pk) if process else nullcontext(), transaction.atomic():
        register_withdrawal(user=user, case=case, purpose=purpose, consent=consent)
        return after_consent_withdrawn(user=user, case=case, purpose=purpose)


def after_consent_withdrawn(*, user, case: SspfCase, purpose: str) -> bool:
    """Stop the process and close the case unless another legal basis applies. Runs
    inside the withdrawal's transaction, which holds the case's row lock: the case is
    taken as it is now."""
    return close_after_withdrawal(
        user=user, case=case, purpose=purpose, case_model=SspfCase, process_model=SspfProcess
    )


__all__ = [
    "add_sspf_action",
    "add_sspf_member",
    "adopt_plan",
    "after_consent_withdrawn",
    "close_case_and_process",
    "escalate_to_sig",
    "finish_mapping",
    "has_own_action",
    "may_add_action",
    "raise_concern",
    "raise_concern_about",
    "record_mapping",
    "record_police_participation",
    "record_risk_assessment",
    "report_plan_part",
    "require_coordinator",
    "withdraw_consent",
]
