"""Writes of the defector programme, one function per user intention: the referral, the
initial check, the police check, threat assessments and the decision on a lowering
(routing and hand-over follow), the local programme's steps, the case page's actions,
protected identity and closing.

Built on the shared machinery of ``casework.services.cases`` (access, lock and
version, timeline, access-log event, the one ``transition``): every state change
here is a ``transition`` whose FSM guards re-check the assessment in force. A write
that re-routes or closes a case keeps the case's processes (``workflows.defector.flow``)
in step in the same transaction. The state machine and the routing rules are in
``workflows.defector.models``.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from casework import policy
from casework.models import (
    Case,
    CaseEvent,
    CaseLink,
    CaseMembership,
    Consent,
    Organisation,
)
from casework.services import alerts
from casework.services import cases as case_services
from casework.services.case_changes import (
    FieldErrors,
    case_change,
    choice,
    require_access_and_role,
)
from casework.services.cases import (
    NOTE_LIMIT,
    REASON_LIMIT,
    CaseDenied,
    audit_case,
    clean_text,
    deny_case,
    link_cases,
    next_reference,
    timeline_event,
    transition,
)
from workflows.common.services import close_and_stop
from workflows.defector import flow
from workflows.defector.models import (
    ASSESSABLE_STATES,
    CLOSE_REASONS,
    FINAL_STATES,
    HANDED_OVER_STATES,
    LOCAL_STATES,
    POLICE_CHECK_STATES,
    DefectorCase,
    DefectorProcess,
    DefectorSupportCase,
    Level,
    Route,
    Status,
    ThreatAssessment,
    current_assessment,
    lowers,
    pending_lowering,
    police_assessor,
    police_coordinator,
    route_of,
)

# --- The police check ---------------------------------------------------------------------


def record_police_check(
    *, user, case: DefectorCase, purpose: str, note: str, expected_version: int | None = None
) -> DefectorCase:
    """The police searched their own systems (criminal history): only after the person's
    written consent covering the police is recorded. Refused before (logged)."""
    purpose = require_access_and_role(
        police_assessor, user=user, case=case, purpose=purpose, what="police_check"
    )
    consent = policy.consent_state(case)
    if case.status not in POLICE_CHECK_STATES or not consent.covers(
        user.organisation_id, Consent.Purpose.THREAT_ASSESSMENT
    ):
        deny_case(user=user, case=case, purpose=purpose, what="police_check", reason="no consent")
        raise CaseDenied(
            _("Police may search their own systems only after the written consent is recorded.")
        )
    note = clean_text(note, "note", limit=NOTE_LIMIT, required=True)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        change.seal(case, "police_check_note", note)
        case.police_checked_at = timezone.now()
        case.police_checked_by = user
        case.save(update_fields=["police_check_note", "police_checked_at", "police_checked_by"])
        change.record(CaseEvent.Kind.ACTION, "police_check", legal_basis="consent")
    return case


# --- Threat assessment, approval of a lowering, routing -----------------------------------


def _date(value, field: str, *, after: datetime.date) -> datetime.date:
    if not isinstance(value, datetime.date):
        raise ValidationError({field: ValidationError(_("Enter a valid date."), "invalid")})
    if value <= after:
        raise ValidationError({field: ValidationError(_("The date must be in the future."))})
    return value


def _record_assessment(
    *,
    user,
    case: DefectorCase,
    purpose: str,
    level: str,
    basis: str,
    valid_until: datetime.date,
    next_review: datetime.date,
    evidence_person: bool = False,
    national_programme: bool = False,
    expected_version: int | None = None,
) -> ThreatAssessment:
    """Record a police threat assessment and route the case by it.

    The first one (in the joint assessment), or one that does not lower the
    level, is in force at once: the case is re-routed in the same transaction
    (a raise above LOW takes it out of the local programme and cuts local
    access). A lowering is stored as pending until a police defector
    coordinator approves it (:func:`decide_lowering`).
    """
    purpose = require_access_and_role(
        police_assessor, user=user, case=case, purpose=purpose, what="threat:assess"
    )
    if case.status not in ASSESSABLE_STATES:
        raise ValidationError(
            _("The case is not in a state where this can be done."), code="invalid_state"
        )
    errors = FieldErrors()
    with errors.check():
        choice(level, Level, "level")
    today = timezone.localdate()
    for name, value in (("valid_until", valid_until), ("next_review", next_review)):
        with errors.check():
            _date(value, name, after=today)
    if not errors and next_review > valid_until:
        errors.add("next_review", _("The next reassessment must be on or before the end date."))
    errors.raise_any()
    basis = clean_text(basis, "basis", limit=NOTE_LIMIT, required=True)
    if case.status == Status.JOINT_ASSESSMENT and case.police_checked_at is None:
        raise ValidationError(_("Record the police check first."))
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        current = current_assessment(case)
        assessment = ThreatAssessment(
            case=case,
            level=level,
            evidence_person=bool(evidence_person),
            national_programme=bool(national_programme),
            valid_until=valid_until,
            next_review=next_review,
            assessed_by=user,
        )
        change.seal(assessment, "basis", basis)
        lowering = lowers(assessment, current)
        # A newer assessment replaces a lowering still waiting for approval.
        case.assessments.filter(state=ThreatAssessment.State.PENDING).update(
            state=ThreatAssessment.State.SUPERSEDED
        )
        if lowering:
            assessment.state = ThreatAssessment.State.PENDING
        else:
            if current is not None:
                current.state = ThreatAssessment.State.SUPERSEDED
                current.save(update_fields=["state"])
            assessment.state = ThreatAssessment.State.IN_FORCE
        assessment.save(force_insert=True)
        change.record_created(
            assessment,
            CaseEvent.Kind.THREAT_ASSESSMENT,
            f"{level}:{assessment.state}",
            level=level,
            route=route_of(assessment),
            state=assessment.state,
        )
        if not lowering:
            _reroute(user=user, case=case, purpose=purpose)
        else:
            # The police defector coordinators are alerted (in the app, by e-mail without
            # case data) that a lowering awaits their approval.
            alerts.lowering_awaits_approval(
                case=case, assessment=assessment, organisation=_police_organisation(case, user)
            )
    return assessment


def _decide_pending_lowering(
    *, user, case: DefectorCase, purpose: str, approve: bool, note: str | None = None
) -> ThreatAssessment:
    """A police defector coordinator, not the assessor, approves or rejects a pending
    lowering; an approved one is in force at once and re-routes the case."""
    purpose = require_access_and_role(
        police_coordinator, user=user, case=case, purpose=purpose, what="threat:approve"
    )
    note = clean_text(note, "note", limit=REASON_LIMIT, required=not approve)
    with case_change(case, user=user, purpose=purpose) as change:
        pending = pending_lowering(case)
        if pending is None:
            raise ValidationError(_("No lowered threat level awaits approval."))
        if pending.assessed_by_id == user.pk:
            raise ValidationError(
                _("A lowering must be approved by someone other than its assessor.")
            )
        if approve:
            case.assessments.filter(state=ThreatAssessment.State.IN_FORCE).update(
                state=ThreatAssessment.State.SUPERSEDED
            )
            pending.state = ThreatAssessment.State.IN_FORCE
        else:
            pending.state = ThreatAssessment.State.REJECTED
        pending.decided_by = user
        pending.decided_at = timezone.now()
        pending.save(update_fields=["state", "decided_by", "decided_at"])
        change.record(
            CaseEvent.Kind.THREAT_ASSESSMENT,
            f"lowering:{'approved' if approve else 'rejected'}",
            fields=["state"],
            obj=pending,
            reason=note,
            approved=approve,
            route=route_of(pending),
        )
        if approve:
            _reroute(user=user, case=case, purpose=purpose)
    return pending


def assess_threat(
    *, user, case: DefectorCase, purpose: str, expected_version: int | None = None, **values
) -> ThreatAssessment:
    """The first threat assessment (the joint assessment's task): recorded and routed;
    its review cycle starts."""
    with transaction.atomic():
        assessment = _record_assessment(
            user=user, case=case, purpose=purpose, expected_version=expected_version, **values
        )
        _restart_threat_review(case)
    return assessment


def _reassess(*, user, case, purpose, expected_version, values) -> ThreatAssessment:
    _lock_processes(case)
    previous = case.status
    assessment = _record_assessment(
        user=user, case=case, purpose=purpose, expected_version=expected_version, **values
    )
    _follow_route(case, previous)
    return assessment


def reassess_threat(
    *, user, case: DefectorCase, purpose: str, expected_version: int | None = None, **values
) -> ThreatAssessment:
    """A reassessment from the case page: recorded, re-routed, the case's process kept in
    step; the threat review starts anew from it."""
    with transaction.atomic():
        assessment = _reassess(
            user=user, case=case, purpose=purpose, expected_version=expected_version, values=values
        )
        _restart_threat_review(case)
    return assessment


def record_reassessment(
    *, user, case: DefectorCase, purpose: str, expected_version: int | None = None, **values
) -> ThreatAssessment:
    """The reassessment task of the threat review: recorded and re-routed like any other;
    the review flow itself goes on (to the approval of a lowering, or the next date)."""
    with transaction.atomic():
        return _reassess(
            user=user, case=case, purpose=purpose, expected_version=expected_version, values=values
        )


def _decide(*, user, case, purpose, approve, note) -> ThreatAssessment:
    _lock_processes(case)
    previous = case.status
    assessment = _decide_pending_lowering(
        user=user, case=case, purpose=purpose, approve=approve, note=note
    )
    _follow_route(case, previous)
    return assessment


def decide_lowering(
    *, user, case: DefectorCase, purpose: str, approve: bool, note: str | None = None
) -> ThreatAssessment:
    """A police coordinator approves (re-routing at once) or rejects a pending lowering
    from the case page; the threat review starts anew from the outcome."""
    with transaction.atomic():
        assessment = _decide(user=user, case=case, purpose=purpose, approve=approve, note=note)
        _restart_threat_review(case)
    return assessment


def record_lowering_decision(
    *, user, case: DefectorCase, purpose: str, approve: bool, note: str | None = None
) -> ThreatAssessment:
    """The approval task of the threat review (the review flow goes on by itself)."""
    with transaction.atomic():
        return _decide(user=user, case=case, purpose=purpose, approve=approve, note=note)


def _route_transition(status: str, route: str) -> str | None:
    """The transition that brings a case in ``status`` to where ``route`` says."""
    S, R = Status, Route
    if status == S.THREAT_ASSESSED or status in HANDED_OVER_STATES:
        wanted = {
            R.LOCAL: S.LOCAL_INTAKE,
            R.REGIONAL: S.HANDED_OVER_REGIONAL,
            R.NATIONAL: S.HANDED_OVER_NATIONAL,
        }[route]
    elif status in LOCAL_STATES and route != R.LOCAL:
        wanted = S.HANDED_OVER_REGIONAL if route == R.REGIONAL else S.HANDED_OVER_NATIONAL
    else:
        return None
    if wanted == status:
        return None
    return {
        S.LOCAL_INTAKE: "route_local",
        S.HANDED_OVER_REGIONAL: "hand_over_regional",
        S.HANDED_OVER_NATIONAL: "hand_over_national",
    }[wanted]


def _reroute(*, user, case: DefectorCase, purpose: str) -> None:
    """Bring the case where the assessment in force sends it (inside the caller's
    transaction): every step an FSM transition whose guards check the route."""
    if case.status == Status.JOINT_ASSESSMENT:
        transition(user=user, case=case, name="assess", purpose=purpose)
    route = route_of(current_assessment(case))
    name = _route_transition(case.status, route)
    if name is None:
        return
    was_local = case.handed_over_at is None
    transition(user=user, case=case, name=name, purpose=purpose)
    if name != "route_local":
        _record_hand_over(user=user, case=case, purpose=purpose, first=was_local)


def _police_organisation(case: DefectorCase, user) -> Organisation | None:
    if policy.is_police(user):
        return user.organisation
    member = (
        case.memberships.filter(valid_to__isnull=True, user__organisation__kind="police")
        .select_related("user__organisation")
        .first()
    )
    return member.user.organisation if member else None


def _record_hand_over(*, user, case: DefectorCase, purpose: str, first: bool) -> None:
    """The hand-over is a disclosure from the local programme to the police handlers,
    logged with its legal basis; a regional hand-over leaves social services a
    linked support case."""
    recipient = _police_organisation(case, user)
    basis = (
        policy.disclosure_basis(case, recipient, purpose=Consent.Purpose.HAND_OVER)
        if recipient
        else ""
    )
    if not basis:
        raise ValidationError(
            _("The hand-over needs a legal basis: a consent covering the police.")
        )
    timeline_event(
        case=case, user=user, kind=CaseEvent.Kind.HAND_OVER, transition=case.handed_over_to
    )
    audit_case(
        action=AuditAction.DISCLOSE,
        user=user,
        case=case,
        purpose=purpose,
        fields=["case"],
        legal_basis=basis,
        hand_over=case.handed_over_to,
        from_organisation=case.owner_organisation_id,
        to_organisation=recipient.pk,
    )
    if (
        case.handed_over_to == Route.REGIONAL
        and not CaseLink.objects.filter(from_case=case, kind=CaseLink.Kind.SUPPORT_CASE).exists()
    ):
        support = _open_support_case(user=user, case=case, purpose=purpose)
        link_cases(
            user=user,
            from_case=case,
            to_case=support,
            kind=CaseLink.Kind.SUPPORT_CASE,
            reason=str(_("Social services' support continues after the hand-over.")),
            purpose=purpose,
        )


def _open_support_case(*, user, case: DefectorCase, purpose: str) -> DefectorSupportCase:
    """Social services' support case: owned by the case's owner, its social-services team."""
    support = DefectorSupportCase(
        programme=Case.Programme.DEFECTOR,
        person_id=case.person_id,
        owner_organisation_id=case.owner_organisation_id,
        referred_by=user,
        referring_organisation_id=user.organisation_id,
    )
    support.reference = next_reference(support.programme)
    support.case_ptr_id = support.id
    # Its own data key, committed before the row (an orphan if the hand-over rolls back:
    # it opens nothing and ``keys sweep`` removes it).
    case_services.new_case_key(support)
    support.save(force_insert=True)
    for membership in case.memberships.filter(
        valid_to__isnull=True, user__organisation_id=case.owner_organisation_id
    ):
        CaseMembership.objects.create(
            case=support, user_id=membership.user_id, role=membership.role, added_by=user
        )
    case_services.record_opening(case=support, user=user, purpose=purpose, support_for=str(case.pk))
    return support


# --- The case's processes follow its writes ------------------------------------------------


def _cancel_processes(case: DefectorCase, flow_class: type | None = None) -> None:
    """Cancel the case's open processes (of ``flow_class`` only, if given)."""
    if isinstance(case, DefectorSupportCase):
        return
    processes = DefectorProcess.objects.filter(case=case, finished__isnull=True)
    if flow_class is not None:
        processes = processes.filter(flow_class=flow_class)
    for process in processes:
        process.flow_class.instance.cancel(process)


def _lock_processes(case: DefectorCase) -> None:
    """Lock the case's open processes before the case row (inside the caller's transaction).

    A task view holds its process's lock (viewflow's ``select_for_update_lock``) when it
    locks the case row; a write that may cancel processes (a re-route, a restarted
    threat review, closing) takes the same locks in the same order — processes first —
    so the two wait for each other instead of failing on a lock timeout.
    """
    if isinstance(case, DefectorSupportCase):
        return
    list(
        DefectorProcess.objects.select_for_update()
        .filter(case=case, finished__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _follow_route(case: DefectorCase, previous_status: str) -> None:
    """Keep the case's process in step with a re-route: a case that left the local
    programme stops its local tasks; one that came back starts a new local intake.
    (The threat review runs on: see :func:`_restart_threat_review`.)"""
    if case.status == previous_status:
        return
    if case.status in HANDED_OVER_STATES or case.status in FINAL_STATES:
        _cancel_processes(case, flow.DefectorFlow)
    elif case.status == Status.LOCAL_INTAKE and previous_status in HANDED_OVER_STATES:
        _cancel_processes(case, flow.DefectorFlow)
        flow.DefectorFlow.start_local.run(case=case)


def _restart_threat_review(case: DefectorCase) -> None:
    """Start the threat review anew after an assessment recorded outside it (the first
    one, one from the case page, a decision on a lowering from the case page): the
    open step or timer is cancelled; the new cycle waits for the next review date of
    the assessment in force, or asks for the approval of a pending lowering. A closed
    case has none. Runs inside the caller's transaction."""
    _cancel_processes(case, flow.ThreatReviewFlow)
    if case.status not in FINAL_STATES and (
        current_assessment(case) is not None or pending_lowering(case) is not None
    ):
        flow.ThreatReviewFlow.start.run(case=case)


# --- The review -----------------------------------------------------------------------------


def close_after_review(*, case: DefectorCase, **close) -> Case:
    """The review closes the case with one of the programme's outcomes (``close``: the
    other arguments of ``close_case``): its threat review stops; the review task itself
    finishes its process."""
    return _close(case, flow.ThreatReviewFlow, **close)


# --- Closing --------------------------------------------------------------------------------


def _close_reasons(case: DefectorCase | DefectorSupportCase) -> list[str]:
    """The programme's outcomes; a support case may also say "other"."""
    if isinstance(case, DefectorSupportCase):
        return [*CLOSE_REASONS, Case.CloseReason.OTHER]
    return list(CLOSE_REASONS)


def _close(case, flow_class: type | None, /, **close) -> Case:
    """Close with one of the programme's outcomes (``close``: the other arguments of
    ``close_case``) and cancel the case's open processes (of ``flow_class`` only, if
    given)."""
    return close_and_stop(
        lambda case: _cancel_processes(case, flow_class),
        case=case,
        reasons=_close_reasons(case),
        **close,
    )


def close_defector_case(*, case: DefectorCase | DefectorSupportCase, **close) -> Case:
    """Close with one of the programme's outcomes (:func:`_close_reasons`; ``close``: the
    other arguments of ``close_case``): every open process of the case (its own, its
    threat review) is cancelled."""
    with transaction.atomic():
        _lock_processes(case)
        return _close(case, None, **close)
