"""Writes of the defector programme that seal text or cross agencies: the police check,
threat assessments and their approval, routing and hand-over, the support case,
the agreement's conditions, protected identity and closing.

Built on the shared machinery of ``casework.services.cases`` (access, lock and
version, timeline, access-log event, the one ``transition``): every state change
here is a ``transition`` whose FSM guards re-check the assessment in force.
The state machine and the routing rules are in ``workflows.defector.models``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_event
from casework import policy
from casework.crypto.records import seal_value
from casework.models import Case, CaseEvent, CaseLink, CaseMembership, Organisation, Person
from casework.selectors.persons import require_purpose
from casework.services.cases import (
    NOTE_LIMIT,
    REASON_LIMIT,
    REFERENCE_LOCK,
    CaseDenied,
    audit_case,
    case_data_key,
    clean_text,
    close_case,
    deny_case,
    link_cases,
    lock_version,
    next_reference,
    record_change,
    require_access,
    timeline_event,
    transition,
)
from casework.services.persons import update_person

if TYPE_CHECKING:
    from workflows.defector.models import DefectorCase, DefectorSupportCase, ThreatAssessment


def _defector():
    from workflows.defector import models as defector

    return defector


# --- The police check ---------------------------------------------------------------------


def record_police_check(
    *, user, case: DefectorCase, purpose: str, note: str, expected_version: int | None = None
) -> DefectorCase:
    """The police searched their own systems (criminal history): only after the person's
    written consent covering the police is recorded. Refused before (logged)."""
    d = _defector()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="police_check")
    if not d.police_assessor(case, user):
        raise deny_case(user=user, case=case, purpose=purpose, what="police_check", reason="role")
    consent = policy.consent_state(case)
    if case.status not in d.POLICE_CHECK_STATES or user.organisation_id not in (
        consent.organisations
    ):
        deny_case(user=user, case=case, purpose=purpose, what="police_check", reason="no consent")
        raise CaseDenied(
            _("Police may search their own systems only after the written consent is recorded.")
        )
    note = clean_text(note, "note", limit=NOTE_LIMIT, required=True)
    with transaction.atomic():
        lock_version(case, expected_version)
        seal_value(case, "police_check_note", note, case_data_key(case))
        case.police_checked_at = timezone.now()
        case.police_checked_by = user
        case.save(update_fields=["police_check_note", "police_checked_at", "police_checked_by"])
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.ACTION,
            label="police_check",
            action=AuditAction.CHANGE,
            fields=["police_check_note"],
            legal_basis="consent",
        )
    return case


# --- Threat assessment, approval of a lowering, routing -----------------------------------


def _date(value, field: str, *, after: datetime.date) -> datetime.date:
    if not isinstance(value, datetime.date):
        raise ValidationError({field: ValidationError(_("Enter a valid date."), "invalid")})
    if value <= after:
        raise ValidationError({field: ValidationError(_("The date must be in the future."))})
    return value


def assess_threat(
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
    d = _defector()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="threat:assess")
    if not d.police_assessor(case, user):
        raise deny_case(user=user, case=case, purpose=purpose, what="threat:assess", reason="role")
    if case.status not in d.ASSESSABLE_STATES:
        raise ValidationError(
            _("The case is not in a state where this can be done."), code="invalid_state"
        )
    errors = {}
    if level not in d.Level.values:
        errors["level"] = [_("Select a valid choice.")]
    today = timezone.localdate()
    for name, value in (("valid_until", valid_until), ("next_review", next_review)):
        try:
            _date(value, name, after=today)
        except ValidationError as error:
            errors.update(error.message_dict)
    if not errors and next_review > valid_until:
        errors["next_review"] = [_("The next reassessment must be on or before the end date.")]
    if errors:
        raise ValidationError(errors)
    basis = clean_text(basis, "basis", limit=NOTE_LIMIT, required=True)
    if case.status == d.Status.JOINT_ASSESSMENT and case.police_checked_at is None:
        raise ValidationError(_("Record the police check first."))
    with transaction.atomic():
        lock_version(case, expected_version)
        current = d.current_assessment(case)
        assessment = d.ThreatAssessment(
            case=case,
            level=level,
            evidence_person=bool(evidence_person),
            national_programme=bool(national_programme),
            valid_until=valid_until,
            next_review=next_review,
            assessed_by=user,
        )
        seal_value(assessment, "basis", basis, case_data_key(case))
        lowering = d.lowers(assessment, current)
        # A newer assessment replaces a lowering still waiting for approval.
        case.assessments.filter(state=d.ThreatAssessment.State.PENDING).update(
            state=d.ThreatAssessment.State.SUPERSEDED
        )
        if lowering:
            assessment.state = d.ThreatAssessment.State.PENDING
        else:
            if current is not None:
                current.state = d.ThreatAssessment.State.SUPERSEDED
                current.save(update_fields=["state"])
            assessment.state = d.ThreatAssessment.State.IN_FORCE
        assessment.save(force_insert=True)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.THREAT_ASSESSMENT,
            label=f"{level}:{assessment.state}",
            action=AuditAction.CREATE,
            fields=["basis"],
            obj=assessment,
            level=level,
            route=d.route_of(assessment),
            state=assessment.state,
        )
        if not lowering:
            _reroute(user=user, case=case, purpose=purpose)
    return assessment


def decide_lowering(
    *, user, case: DefectorCase, purpose: str, approve: bool, note: str | None = None
) -> ThreatAssessment:
    """A police defector coordinator, not the assessor, approves or rejects a pending
    lowering; an approved one is in force at once and re-routes the case."""
    d = _defector()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="threat:approve")
    if not d.police_coordinator(case, user):
        raise deny_case(user=user, case=case, purpose=purpose, what="threat:approve", reason="role")
    note = clean_text(note, "note", limit=REASON_LIMIT, required=not approve)
    with transaction.atomic():
        lock_version(case, None)
        pending = d.pending_lowering(case)
        if pending is None:
            raise ValidationError(_("No lowered threat level awaits approval."))
        if pending.assessed_by_id == user.pk:
            raise ValidationError(
                _("A lowering must be approved by someone other than its assessor.")
            )
        if approve:
            case.assessments.filter(state=d.ThreatAssessment.State.IN_FORCE).update(
                state=d.ThreatAssessment.State.SUPERSEDED
            )
            pending.state = d.ThreatAssessment.State.IN_FORCE
        else:
            pending.state = d.ThreatAssessment.State.REJECTED
        pending.decided_by = user
        pending.decided_at = timezone.now()
        pending.save(update_fields=["state", "decided_by", "decided_at"])
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.THREAT_ASSESSMENT,
            label=f"lowering:{'approved' if approve else 'rejected'}",
            action=AuditAction.CHANGE,
            fields=["state"],
            obj=pending,
            reason=note,
            approved=approve,
            route=d.route_of(pending),
        )
        if approve:
            _reroute(user=user, case=case, purpose=purpose)
    return pending


def _route_transition(status: str, route: str) -> str | None:
    """The transition that brings a case in ``status`` to where ``route`` says."""
    d = _defector()
    S, R = d.Status, d.Route
    if status == S.THREAT_ASSESSED or status in d.HANDED_OVER_STATES:
        wanted = {
            R.LOCAL: S.LOCAL_INTAKE,
            R.REGIONAL: S.HANDED_OVER_REGIONAL,
            R.NATIONAL: S.HANDED_OVER_NATIONAL,
        }[route]
    elif status in d.LOCAL_STATES and route != R.LOCAL:
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
    d = _defector()
    if case.status == d.Status.JOINT_ASSESSMENT:
        transition(user=user, case=case, name="assess", purpose=purpose)
    route = d.route_of(d.current_assessment(case))
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
    d = _defector()
    recipient = _police_organisation(case, user)
    basis = policy.disclosure_basis(case, recipient) if recipient else ""
    if not basis:
        raise ValidationError(
            _("The hand-over needs a legal basis: a consent covering the police.")
        )
    timeline_event(
        case=case, user=user, kind=CaseEvent.Kind.HAND_OVER, transition=case.handed_over_to
    )
    record_event(
        action=AuditAction.DISCLOSE,
        user=user,
        obj=case,
        person_id=case.person_id,
        fields=["case"],
        purpose=purpose,
        legal_basis=basis,
        details={
            "hand_over": case.handed_over_to,
            "from_organisation": case.owner_organisation_id,
            "to_organisation": recipient.pk,
        },
    )
    if (
        case.handed_over_to == d.Route.REGIONAL
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
    d = _defector()
    support = d.DefectorSupportCase(
        programme=Case.Programme.DEFECTOR,
        person_id=case.person_id,
        owner_organisation_id=case.owner_organisation_id,
        referred_by=user,
        referring_organisation_id=user.organisation_id,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [REFERENCE_LOCK, support.programme]
        )
    support.reference = next_reference(support.programme)
    support.case_ptr_id = support.id
    support.save(force_insert=True)
    for membership in case.memberships.filter(
        valid_to__isnull=True, user__organisation_id=case.owner_organisation_id
    ):
        CaseMembership.objects.create(
            case=support, user_id=membership.user_id, role=membership.role, added_by=user
        )
    timeline_event(case=support, user=user, kind=CaseEvent.Kind.TRANSITION, to_state=support.status)
    audit_case(
        action=AuditAction.CREATE,
        user=user,
        case=support,
        purpose=purpose,
        programme=support.programme,
        reference=support.reference,
        support_for=str(case.pk),
    )
    return support


# --- The local programme: conditions, protected identity, closing -------------------------


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
    d = _defector()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="conditions")
    if not d.lead_or_coordinator(case, user):
        raise deny_case(user=user, case=case, purpose=purpose, what="conditions", reason="role")
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
    if case.status != d.Status.LOCAL_INTAKE:
        raise ValidationError(
            _("The case is not in a state where this can be done."), code="invalid_state"
        )
    with transaction.atomic():
        lock_version(case, expected_version)
        case.conditions_accepted_at = timezone.now()
        case.save(update_fields=["conditions_accepted_at"])
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label="conditions",
            action=AuditAction.CHANGE,
            fields=["conditions_accepted_at"],
        )
    return case


def set_protected_identity(*, user, case: Case, purpose: str, level: int) -> None:
    """Record the person's protected identity (sekretessmarkering, skyddad folkbokföring,
    fingerade personuppgifter): a named handler of the case or its coordinator."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="protected_identity")
    if not (policy.coordinates(user, case) or policy.named_handler(user, case)):
        raise deny_case(
            user=user, case=case, purpose=purpose, what="protected_identity", reason="role"
        )
    try:
        level = int(level)
    except (TypeError, ValueError):
        level = -1
    if level not in Person.ProtectedIdentity.values:
        raise ValidationError({"level": ValidationError(_("Select a valid choice."))})
    with transaction.atomic():
        lock_version(case, None)
        update_person(
            user=user, purpose=purpose, person_id=case.person_id, protected_identity=level
        )
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label="protected_identity",
            action=AuditAction.CHANGE,
            fields=["person.protected_identity"],
            protected_identity=level,
        )


def close_defector_case(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> Case:
    """Close with one of the programme's outcomes (a support case may also say "other")."""
    d = _defector()
    allowed = list(d.CLOSE_REASONS)
    if isinstance(case, d.DefectorSupportCase):
        allowed.append(Case.CloseReason.OTHER)
    if reason not in allowed:
        raise ValidationError({"close_reason": ValidationError(_("Select a valid choice."))})
    return close_case(
        user=user,
        case=case,
        purpose=purpose,
        reason=reason,
        note=note,
        expected_version=expected_version,
    )


__all__ = [
    "accept_conditions",
    "assess_threat",
    "close_defector_case",
    "decide_lowering",
    "record_police_check",
    "set_protected_identity",
]
