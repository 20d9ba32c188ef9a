"""The shared case machinery: transitions, teams, consent, legal bases, decisions,
actions and break-the-glass — written once for every programme.

Every function is keyword-only, takes the acting ``user`` and the ``purpose``,
asks ``casework.policy``, locks the case row, checks the version the user saw,
does its work inside ``transaction.atomic()`` and writes its access-log event
there (field names only). A refusal writes an ``ACCESS_DENIED`` event that
survives the rollback and raises :class:`CaseDenied`; a form posted against an
older version of the case raises :class:`CaseConflict`; bad input raises
``ValidationError`` with Swedish messages. Nothing is half-written.

The programme modules in ``workflows/`` declare their state machines with
django-fsm-2; :func:`transition` is the one way any of them changes state.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition

from audit.services import Action as AuditAction
from audit.services import Outcome, record_event
from casework import policy
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import seal_value
from casework.models import (
    Action,
    BreakGlassAccess,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseLink,
    CaseMembership,
    Consent,
    Guardian,
    LegalBasis,
    Organisation,
)
from casework.selectors.cases import person_registered
from casework.selectors.persons import PersonErased, require_purpose

if TYPE_CHECKING:
    from casework.models import User

NOTE_LIMIT = 10_000
REFERENCE_LOCK = 0x5A5F
REASON_LIMIT = 2_000


class CaseDenied(Exception):
    """The user may not do this to this case (already recorded in the access log)."""

    def __init__(self, message: Any = None) -> None:
        self.message = message or _("You do not have access to this case.")
        super().__init__(str(self.message))


class CaseConflict(Exception):
    """The case changed after the user loaded it: nothing was saved."""

    message = _("The case was changed by someone else. Reload the page and try again.")

    def __init__(self) -> None:
        super().__init__(str(self.message))


# --- Shared helpers ---------------------------------------------------------------


def clean_text(value: Any, field: str, *, limit: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(
                {field: ValidationError(_("This field is required."), "required")}
            )
        return None
    if not isinstance(value, str):
        raise ValidationError({field: ValidationError(_("Enter text."), "invalid")})
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(
            {
                field: ValidationError(
                    _("Ensure this value has at most %(limit)d characters."),
                    "max_length",
                    {"limit": limit},
                )
            }
        )
    return value


def deny_case(*, user, case: Case, purpose: str, what: str, reason: str) -> CaseDenied:
    record_event(
        action=AuditAction.ACCESS_DENIED,
        user=user,
        obj=case,
        person_id=case.person_id,
        purpose=purpose,
        outcome=Outcome.DENIED,
        details={"operation": what, "reason": reason},
        independent=True,
    )
    return CaseDenied()


def require_access(
    *, user, case: Case, purpose: str, what: str, any_ground: bool = False
) -> policy.CaseAccess:
    """The user's access to the case, or :class:`CaseDenied` after a denial event.

    ``any_ground``: see :func:`casework.policy.case_access` (``via`` may differ).
    """
    access = policy.case_access(user, case, any_ground=any_ground)
    if not access:
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason=access.denial)
    if access.via == policy.CLOSED_LEAD:
        # The lead of a closed case reads it for the documentation duty; nothing more.
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason="case closed")
    return access


def lock_version(case: Case, expected_version: int | None) -> Case:
    """Lock the case row for this transaction and check the version the user saw."""
    current = Case.objects.select_for_update().only("version").get(pk=case.pk)
    if expected_version is not None and current.version != expected_version:
        raise CaseConflict()
    case.version = current.version
    return current


def lock_case(*, case: Case, expected_version: int | None) -> None:
    """Lock the case row for the caller's transaction and check the version the user saw
    (:class:`CaseConflict`): for a caller that writes several things before the service
    that would check it (closing a SIG case to the defector programme)."""
    lock_version(case, expected_version)


def bump_version(case: Case) -> None:
    Case.objects.filter(pk=case.pk).update(version=F("version") + 1)
    case.version += 1


def case_data_key(case: Case):
    """The person's data key, to seal something new about them; refused (a form error,
    not a 500) once the person is erased: the key is destroyed for good."""
    if case.person.erased_at is not None:
        raise ValidationError(_("This person has been erased."), code="erased")
    return load_data_key(owner_type=PERSON, owner_id=case.person_id)


def _holds(condition, case: Case) -> bool:
    """A guard's answer; a guard that needs the erased person's data does not hold."""
    try:
        return bool(condition(case))
    except PersonErased:
        return False


def timeline_event(
    *, case: Case, user, kind: str, reason: str | None = None, dek=None, **fields: Any
) -> CaseEvent:
    event = CaseEvent(case=case, actor=user, kind=kind, **fields)
    if reason:
        seal_value(event, "reason", reason, dek or case_data_key(case))
    event.save()
    return event


def audit_case(
    *,
    action: str,
    user,
    case: Case,
    purpose: str,
    fields: Iterable[str] = (),
    legal_basis: str = "",
    obj=None,
    **details: Any,
) -> None:
    record_event(
        action=action,
        user=user,
        obj=obj or case,
        person_id=case.person_id,
        fields=fields,
        purpose=purpose,
        legal_basis=legal_basis,
        details={"case": str(case.pk), **details} if obj is not None else details,
    )


def record_change(
    *,
    case: Case,
    user,
    purpose: str,
    kind: str,
    action: str,
    label: str = "",
    fields: Iterable[str] = (),
    obj=None,
    reason: str | None = None,
    legal_basis: str = "",
    **details: Any,
) -> None:
    """Every change of a case, in the caller's transaction: the new row version,
    the timeline entry the team sees and the access-log event the auditors see."""
    bump_version(case)
    timeline_event(case=case, user=user, kind=kind, transition=label, reason=reason)
    audit_case(
        action=action,
        user=user,
        case=case,
        purpose=purpose,
        fields=fields,
        legal_basis=legal_basis,
        obj=obj,
        **details,
    )


def next_reference(programme: str) -> str:
    """``SIG-2026-0001``: per programme and year (the caller holds the programme's lock)."""
    year = timezone.localdate().year
    prefix = f"{programme.upper()}-{year}-"
    last = (
        Case.objects.filter(reference__startswith=prefix)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


# --- Opening a case ---------------------------------------------------------------------


def open_case(
    *,
    user,
    purpose: str,
    case: Case,
    reason_field: str | None = None,
    reason: str | None = None,
    lead: User | None = None,
) -> Case:
    """Save a new programme case (already built, not saved) with its first timeline entry.

    The caller (the programme's referral service) has checked the person and
    the programme's own rules; this assigns the case number, seals the
    referral text and logs the creation.

    The referrer is **not** put on the team: a referral gives no access to the case
    (nor to a person already registered) until the coordinator's screening puts
    someone on the team. The creation event says whether the person was already
    registered (``person_registered``: a flag, no value), which the auditors' log
    review lists (``audit.review.referrals_of_registered_persons``). ADR 0012.
    """
    purpose = require_purpose(purpose)
    if reason_field:
        reason = clean_text(reason, reason_field, limit=REASON_LIMIT, required=True)
    if not policy.can_use_task_inbox(user):
        raise CaseDenied()
    with transaction.atomic():
        # Serialise case numbers of this programme (advisory lock per programme).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [REFERENCE_LOCK, case.programme]
            )
        case.reference = next_reference(case.programme)
        # A programme case extends Case: its primary key is the parent's id.
        if hasattr(case, "case_ptr_id") and case.case_ptr_id is None:
            case.case_ptr_id = case.id
        dek = case_data_key(case)
        if reason_field and reason is not None:
            seal_value(case, reason_field, reason, dek)
        registered = person_registered(case.person_id)
        case.save(force_insert=True)
        timeline_event(
            case=case,
            user=user,
            kind=CaseEvent.Kind.TRANSITION,
            transition="refer",
            to_state=getattr(case, "status", ""),
            dek=dek,
        )
        audit_case(
            action=AuditAction.CREATE,
            user=user,
            case=case,
            purpose=purpose,
            fields=[reason_field] if reason_field and reason else [],
            programme=case.programme,
            reference=case.reference,
            referral=True,
            person_registered=registered,
        )
    return case


# --- Transitions -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionInfo:
    name: str
    label: str
    target: str


def _fsm_meta(case: Case, name: str):
    method = getattr(type(case), name, None)
    meta = getattr(method, "_django_fsm", None)
    if meta is None:
        raise ValueError(f"{type(case).__name__}.{name} is not a transition")
    return meta


def unmet_conditions(case: Case, name: str) -> list[str]:
    """The messages of the guards of transition ``name`` that do not hold now."""
    meta = _fsm_meta(case, name)
    transition = meta.get_transition(case.status)
    if transition is None:
        return [str(_("The case is not in a state where this can be done."))]
    return [
        str(getattr(condition, "message", condition.__name__))
        for condition in transition.conditions
        if not _holds(condition, case)
    ]


def may_transition(*, user, case: Case, name: str) -> bool:
    """Whether ``user`` holds the role for transition ``name`` from the current state."""
    meta = _fsm_meta(case, name)
    return meta.has_transition(case.status) and meta.has_transition_perm(case, case.status, user)


def transition(
    *,
    user,
    case: Case,
    name: str,
    purpose: str,
    reason: str | None = None,
    expected_version: int | None = None,
    **kwargs: Any,
) -> Case:
    """Run transition ``name`` of the programme case: the one way a case changes state.

    Checks, in order: access to the case, that the transition exists from the
    current state, the user's role for it (django-fsm ``permission``, which
    django-fsm itself does not enforce), the guards (``conditions``, each with a
    message), the row lock and version. Then runs it, saves, adds the timeline
    entry and writes one ``TRANSITION`` event, all in one transaction.
    """
    purpose = require_purpose(purpose)
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    # Only allowed or not matters here: a coordinator's access needs no team query.
    require_access(
        user=user, case=case, purpose=purpose, what=f"transition:{name}", any_ground=True
    )
    meta = _fsm_meta(case, name)
    if not meta.has_transition(case.status):
        raise ValidationError(
            _("The case is not in a state where this can be done."), code="invalid_state"
        )
    if not meta.has_transition_perm(case, case.status, user):
        raise deny_case(
            user=user, case=case, purpose=purpose, what=f"transition:{name}", reason="role"
        )
    unmet = unmet_conditions(case, name)
    if unmet:
        raise ValidationError([ValidationError(message, code="condition") for message in unmet])
    source = case.status
    was_open = case.closed_at is None
    try:
        with transaction.atomic():
            lock_version(case, expected_version)
            getattr(case, name)(**kwargs)
            # The row is locked: the new version goes out with the save (no second UPDATE).
            case.version += 1
            case.save()
            ended = _end_team_at_close(case) if was_open and case.closed_at else 0
            timeline_event(
                case=case,
                user=user,
                kind=CaseEvent.Kind.TRANSITION,
                transition=name,
                from_state=source,
                to_state=case.status,
                reason=reason,
            )
            audit_case(
                action=AuditAction.TRANSITION,
                user=user,
                case=case,
                purpose=purpose,
                fields=["reason"] if reason else [],
                transition=name,
                source=source,
                target=case.status,
                **({"memberships_ended": ended} if ended else {}),
            )
    except ConcurrentTransition:
        case.refresh_from_db()
        raise CaseConflict() from None
    except CaseConflict:
        case.refresh_from_db()
        raise
    return case


def _end_team_at_close(case: Case) -> int:
    """A closed case has no team: every open membership ends at the close (in the
    transition's transaction). The lead's reading for the documentation duty is the
    policy's (``casework.policy.closed_case_lead``), not a membership. ADR 0012."""
    return CaseMembership.objects.filter(case_id=case.pk, valid_to__isnull=True).update(
        valid_to=case.closed_at
    )


def close_case(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
    name: str = "close",
) -> Case:
    """Close with an outcome reason (and a note, required for "other")."""
    if reason not in Case.CloseReason.values:
        raise ValidationError({"close_reason": ValidationError(_("Select a valid choice."))})
    note = clean_text(
        note, "close_note", limit=NOTE_LIMIT, required=reason == Case.CloseReason.OTHER
    )
    if note:
        seal_value(case, "close_note", note, case_data_key(case))
    return transition(
        user=user,
        case=case,
        name=name,
        purpose=purpose,
        expected_version=expected_version,
        close_reason=reason,
    )


# --- Team ----------------------------------------------------------------------------------


def add_member(
    *,
    user,
    case: Case,
    purpose: str,
    member: User,
    role: str,
    expected_version: int | None = None,
) -> CaseMembership:
    """Put ``member`` on the case team (coordinators do this)."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="team:add")
    if not policy.coordinates(user, case):
        raise deny_case(user=user, case=case, purpose=purpose, what="team:add", reason="role")
    if role not in CaseMembership.Role.values:
        raise ValidationError({"role": ValidationError(_("Select a valid choice."))})
    if not policy.can_use_task_inbox(member):
        raise ValidationError(
            {"user": ValidationError(_("This user has no case role or no organisation."))}
        )
    if role == CaseMembership.Role.POLICE_CONTACT and not policy.is_police(member):
        raise ValidationError(
            {"user": ValidationError(_("The police contact officer must work for the police."))}
        )
    with transaction.atomic():
        lock_version(case, expected_version)
        existing = policy.team_membership(member, case)
        if existing is not None and existing.role == role:
            raise ValidationError(
                {"user": ValidationError(_("The user is already on the team in that role."))}
            )
        return _put_on_team(
            user=user, case=case, purpose=purpose, member=member, role=role, existing=existing
        )


def _put_on_team(
    *, user, case: Case, purpose: str, member: User, role: str, existing, **details: Any
) -> CaseMembership:
    """The team write of :func:`add_member` and :func:`join_team` (the caller holds the
    case's row lock and has decided that it may be done)."""
    if existing is not None:
        # A new role for someone already on the team (a social worker becomes the lead).
        CaseMembership.objects.filter(pk=existing.pk).update(valid_to=timezone.now())
    membership = CaseMembership.objects.create(case=case, user=member, role=role, added_by=user)
    record_change(
        case=case,
        user=user,
        purpose=purpose,
        kind=CaseEvent.Kind.TEAM,
        label=f"add:{role}",
        action=AuditAction.CHANGE,
        fields=["team"],
        member=member.pk,
        role=role,
        **details,
    )
    return membership


def join_team(
    *, user, case: Case, purpose: str, source: str, role: str = CaseMembership.Role.SOCIAL_WORKER
) -> CaseMembership | None:
    """``user`` takes up a referral that reached their queue from another programme
    (``source``, e.g. ``gvi_member:<id>``: a GVI member's accepted offer of help) and joins
    the case's team in ``role`` — the same team write as :func:`add_member`.

    The caller has decided that ``user`` may take the referral up (the other programme's
    rule); this checks what the case needs: the user works for the organisation that
    leads the case (a team member of another organisation would need a legal basis to
    see it) and the case is open. Someone already on the team keeps their role (a lead
    stays the lead): returns ``None`` and writes nothing. Runs in the caller's transaction.
    """
    purpose = require_purpose(purpose)
    if role not in CaseMembership.Role.values:
        raise ValidationError(_("Select a valid choice."))
    if not policy.can_use_task_inbox(user):
        raise CaseDenied()
    if user.organisation_id != case.owner_organisation_id:
        raise ValidationError(
            _(
                "The referral is led by %(organisation)s: it is taken up by a social worker "
                "of that office."
            ),
            params={"organisation": case.owner_organisation},
            code="organisation",
        )
    with transaction.atomic():
        lock_version(case, None)
        if Case.objects.filter(pk=case.pk, closed_at__isnull=False).exists():
            raise ValidationError(_("The case is closed."), code="closed")
        if policy.defector_handed_over(case):
            raise ValidationError(
                _("The case has been handed over from the local programme."), code="closed"
            )
        existing = policy.team_membership(user, case)
        if existing is not None:
            return None
        return _put_on_team(
            user=user,
            case=case,
            purpose=purpose,
            member=user,
            role=role,
            existing=None,
            source=source[:100],
        )


def end_membership(
    *, user, case: Case, purpose: str, membership: CaseMembership, expected_version: int | None
) -> None:
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="team:remove")
    if not policy.coordinates(user, case) or membership.case_id != case.pk:
        raise deny_case(user=user, case=case, purpose=purpose, what="team:remove", reason="role")
    with transaction.atomic():
        lock_version(case, expected_version)
        CaseMembership.objects.filter(pk=membership.pk, valid_to__isnull=True).update(
            valid_to=timezone.now()
        )
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.TEAM,
            label="remove",
            action=AuditAction.CHANGE,
            fields=["team"],
            member=membership.user_id,
        )


def members(case: Case, role: str) -> list[User]:
    now = timezone.now()
    return [
        m.user
        for m in case.memberships.filter(role=role, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user")
    ]


# --- Consent and legal basis -----------------------------------------------------------------


def _keep_consent(case: Case, *, was_complete: bool) -> None:
    """A case under way on consent (the programme's ``CONSENT_REQUIRED_STATES``) keeps it.

    A refusal or a new guardian without consent would leave it running without
    valid consent; ending a consent is a withdrawal, which closes the case
    unless another legal basis applies.
    """
    if (
        was_complete
        and getattr(case, "status", None) in getattr(type(case), "CONSENT_REQUIRED_STATES", ())
        and not policy.consent_state(case).complete
        and not has_other_legal_basis(case)
    ):
        raise ValidationError(
            _(
                "The case is under way: this would leave it without valid consent. "
                "To end a consent, withdraw it on the case page."
            ),
            code="consent_required",
        )


def add_guardian(*, user, case: Case, purpose: str, name: str, phone: str | None) -> Guardian:
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="guardian:add")
    name = clean_text(name, "guardian_name", limit=200, required=True)
    phone = clean_text(phone, "guardian_phone", limit=40)
    with transaction.atomic():
        was_complete = policy.consent_state(case).complete
        guardian = Guardian(person_id=case.person_id)
        dek = case_data_key(case)
        seal_value(guardian, "name", name, dek)
        seal_value(guardian, "phone", phone, dek)
        guardian.save(force_insert=True)
        _keep_consent(case, was_complete=was_complete)
        audit_case(
            action=AuditAction.CREATE,
            user=user,
            case=case,
            purpose=purpose,
            fields=["name", "phone"] if phone else ["name"],
            obj=guardian,
        )
    return guardian


def record_consent(
    *,
    user,
    case: Case,
    purpose: str,
    giver: str,
    decision: str,
    form: str,
    organisations: Iterable[Organisation],
    guardian: Guardian | None = None,
    valid_until: datetime.date | None = None,
    purposes: Iterable[str] = (),
    expected_version: int | None = None,
) -> Consent:
    """Record a consent (or refusal) of the person or one guardian, with its scope."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="consent:record")
    if policy.is_police(user):
        raise deny_case(user=user, case=case, purpose=purpose, what="consent:record", reason="role")
    errors: dict[str, list] = {}
    if giver not in Consent.Giver.values:
        errors["giver"] = [_("Select a valid choice.")]
    if decision not in Consent.Decision.values:
        errors["decision"] = [_("Select a valid choice.")]
    if form not in Consent.Form.values:
        errors["form"] = [_("Select a valid choice.")]
    if giver == Consent.Giver.GUARDIAN and (
        guardian is None or guardian.person_id != case.person_id
    ):
        errors["guardian"] = [_("Choose the guardian who gave the consent.")]
    if giver == Consent.Giver.SELF and guardian is not None:
        errors["guardian"] = [_("A consent of the person names no guardian.")]
    organisations = list(organisations)
    if decision == Consent.Decision.GIVEN and not organisations:
        errors["organisations"] = [_("Choose the organisations the consent covers.")]
    if valid_until is not None and valid_until < timezone.localdate():
        errors["valid_until"] = [_("The date cannot be in the past.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        lock_version(case, expected_version)
        was_complete = policy.consent_state(case).complete
        consent = Consent.objects.create(
            case=case,
            giver=giver,
            guardian=guardian,
            decision=decision,
            form=form,
            valid_until=valid_until,
            purposes=list(purposes) or [case.programme],
            recorded_by=user,
        )
        consent.organisations.set(organisations)
        _keep_consent(case, was_complete=was_complete)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.CONSENT,
            label=f"{giver}:{decision}",
            action=AuditAction.CREATE,
            fields=["consent"],
            obj=consent,
            decision=decision,
            giver=giver,
            organisations=sorted(o.pk for o in organisations),
        )
    return consent


def withdraw_consent(
    *,
    user,
    case: Case,
    purpose: str,
    consent: Consent,
    on_withdrawn=None,
) -> Consent:
    """Withdraw a consent at once: sharing stops in this very request.

    Police (and other organisations) lose access as soon as this commits —
    ``casework.policy`` reads consents on every request. ``on_withdrawn(case)``
    lets the programme cancel its open tasks and close the case unless another
    legal basis applies, inside the same transaction.
    """
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="consent:withdraw")
    if consent.case_id != case.pk:
        raise deny_case(
            user=user, case=case, purpose=purpose, what="consent:withdraw", reason="case"
        )
    if policy.is_police(user) or (
        # The case's own organisation keeps the consents (and keeps its access once one
        # is withdrawn, to close the case); the coordinator acts for it.
        user.organisation_id != case.owner_organisation_id and not policy.coordinates(user, case)
    ):
        raise deny_case(
            user=user, case=case, purpose=purpose, what="consent:withdraw", reason="role"
        )
    with transaction.atomic():
        lock_version(case, None)
        updated = Consent.objects.filter(pk=consent.pk, withdrawn_at__isnull=True).update(
            withdrawn_at=timezone.now(), withdrawn_by=user
        )
        if not updated:
            raise ValidationError(_("The consent has already been withdrawn."))
        consent.refresh_from_db()
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.CONSENT_WITHDRAWN,
            action=AuditAction.CHANGE,
            fields=["consent"],
            obj=consent,
            withdrawn=True,
        )
        if on_withdrawn is not None:
            on_withdrawn(case)
    return consent


def record_legal_basis(
    *,
    user,
    case: Case,
    purpose: str,
    legal_basis: LegalBasis,
    justification: str,
    valid_until: datetime.date | None = None,
) -> CaseLegalBasis:
    """Record a statutory basis for disclosure (e.g. OSL 10:18 a), with its justification."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="legal_basis:record")
    if user.organisation_id != case.owner_organisation_id:
        # The disclosing organisation decides on its own disclosures.
        raise deny_case(
            user=user, case=case, purpose=purpose, what="legal_basis:record", reason="organisation"
        )
    justification = clean_text(justification, "justification", limit=REASON_LIMIT, required=True)
    if not legal_basis.is_active or legal_basis.kind != LegalBasis.Kind.STATUTE:
        raise ValidationError({"legal_basis": ValidationError(_("Select a valid choice."))})
    if valid_until is not None and valid_until < timezone.localdate():
        raise ValidationError(
            {"valid_until": ValidationError(_("The date cannot be in the past."))}
        )
    with transaction.atomic():
        lock_version(case, None)
        entry = CaseLegalBasis(
            case=case, legal_basis=legal_basis, recorded_by=user, valid_until=valid_until
        )
        seal_value(entry, "justification", justification, case_data_key(case))
        entry.save(force_insert=True)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.LEGAL_BASIS,
            label=legal_basis.code,
            action=AuditAction.CREATE,
            fields=["justification"],
            legal_basis=legal_basis.code,
            obj=entry,
        )
    return entry


# --- Decisions and actions --------------------------------------------------------------------


def record_decision(
    *,
    user,
    case: Case,
    purpose: str,
    decision: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> CaseDecision:
    """An agency's decision on starting the joint work; the agency is the user's organisation."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="decision")
    agency = user.organisation.kind
    if agency not in (Organisation.Kind.SOCIAL_SERVICES, Organisation.Kind.POLICE):
        raise deny_case(
            user=user, case=case, purpose=purpose, what="decision", reason="organisation"
        )
    if decision not in CaseDecision.Decision.values:
        raise ValidationError({"decision": ValidationError(_("Select a valid choice."))})
    note = clean_text(
        note, "note", limit=NOTE_LIMIT, required=decision == CaseDecision.Decision.DECLINE
    )
    with transaction.atomic():
        lock_version(case, expected_version)
        if CaseDecision.objects.filter(case=case, agency=agency).exists():
            raise ValidationError(_("Your agency has already decided on this case."))
        entry = CaseDecision(
            case=case,
            agency=agency,
            organisation=user.organisation,
            decision=decision,
            decided_by=user,
        )
        if note:
            seal_value(entry, "note", note, case_data_key(case))
        entry.save()
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.DECISION,
            label=f"{agency}:{decision}",
            action=AuditAction.CREATE,
            fields=["note"] if note else [],
            obj=entry,
            agency=agency,
            decision=decision,
        )
    return entry


def add_action(
    *,
    user,
    case: Case,
    purpose: str,
    kind: str,
    status: str,
    date: datetime.date,
    organisation: Organisation | None = None,
    note: str | None = None,
    visibility: str = Action.Visibility.TEAM,
    allowed: bool = True,
    expected_version: int | None = None,
) -> Action:
    """Record an action (insats) of an organisation in the case.

    ``allowed`` is the programme's rule for this state (e.g. SIG: police add
    actions only in ``active``/``follow_up``); a planned action for another
    organisation may be written into the plan by the team's social worker.
    """
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="action:add")
    organisation = organisation or user.organisation
    if not allowed:
        raise deny_case(user=user, case=case, purpose=purpose, what="action:add", reason="state")
    if organisation.pk != user.organisation_id and (
        policy.is_police(user) or status != Action.Status.PLANNED
    ):
        raise deny_case(
            user=user, case=case, purpose=purpose, what="action:add", reason="organisation"
        )
    errors: dict[str, list] = {}
    if kind not in Action.Kind.values:
        errors["kind"] = [_("Select a valid choice.")]
    if status not in (Action.Status.PLANNED, Action.Status.DONE):
        errors["status"] = [_("Select a valid choice.")]
    if visibility not in Action.Visibility.values:
        errors["visibility"] = [_("Select a valid choice.")]
    today = timezone.localdate()
    if status == Action.Status.DONE and date > today:
        errors["date"] = [_("A completed action cannot be dated in the future.")]
    if status == Action.Status.PLANNED and date < today - datetime.timedelta(days=30):
        errors["date"] = [_("A planned action cannot be dated more than 30 days back.")]
    if errors:
        raise ValidationError(errors)
    note = clean_text(note, "note", limit=NOTE_LIMIT)
    with transaction.atomic():
        lock_version(case, expected_version)
        action = Action(
            case=case,
            organisation=organisation,
            actor=user,
            kind=kind,
            status=status,
            date=date,
            visibility=visibility,
        )
        if note:
            seal_value(action, "note", note, case_data_key(case))
        action.save(force_insert=True)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.ACTION,
            label=f"{kind}:{status}",
            action=AuditAction.CREATE,
            fields=["note"] if note else [],
            obj=action,
            organisation=organisation.pk,
        )
    return action


# --- Break-the-glass --------------------------------------------------------------------------


def break_glass(*, user, case: Case, reason: str) -> BreakGlassAccess:
    """Open a case outside the team: a reason, a time limit, an alert and a later review."""
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    if len(reason) < 10:
        raise ValidationError(
            {"reason": ValidationError(_("Describe the reason in at least 10 characters."))}
        )
    if not policy.can_break_glass(user):
        raise deny_case(user=user, case=case, purpose=reason, what="break_glass", reason="role")
    if user.organisation_id != case.owner_organisation_id and not policy.disclosure_basis(
        case, user.organisation
    ):
        # Break-the-glass crosses the team boundary, not the secrecy between agencies.
        raise deny_case(
            user=user, case=case, purpose=reason, what="break_glass", reason="no legal basis"
        )
    hours = settings.SAMVERKAN["BREAK_GLASS_HOURS"]
    with transaction.atomic():
        access = BreakGlassAccess(
            case=case, user=user, expires_at=timezone.now() + datetime.timedelta(hours=hours)
        )
        seal_value(access, "reason", reason, case_data_key(case))
        access.save(force_insert=True)
        timeline_event(case=case, user=user, kind=CaseEvent.Kind.BREAK_GLASS)
        record_event(
            action=AuditAction.BREAK_GLASS,
            user=user,
            obj=case,
            person_id=case.person_id,
            purpose=reason,
            details={"expires_at": access.expires_at.isoformat(), "hours": hours},
        )
    return access


def review_break_glass(
    *, user, access: BreakGlassAccess, note: str, purpose: str
) -> BreakGlassAccess:
    """A second person (an auditor) reviews a break-the-glass access."""
    purpose = require_purpose(purpose)
    if not policy.can_view_access_log(user) or user.pk == access.user_id:
        record_event(
            action=AuditAction.ACCESS_DENIED,
            user=user,
            obj=access,
            purpose=purpose,
            outcome=Outcome.DENIED,
            details={"operation": "break_glass:review"},
            independent=True,
        )
        raise CaseDenied()
    note = clean_text(note, "review_note", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        updated = BreakGlassAccess.objects.filter(pk=access.pk, reviewed_at__isnull=True).update(
            reviewed_by=user, reviewed_at=timezone.now(), review_note=note
        )
        if not updated:
            raise ValidationError(_("This access has already been reviewed."))
        access.refresh_from_db()
        record_event(
            action=AuditAction.CHANGE,
            user=user,
            obj=access,
            purpose=purpose,
            fields=["review"],
            details={"break_glass": str(access.pk)},
        )
    return access


__all__ = [
    "CaseConflict",
    "CaseDenied",
    "add_action",
    "add_guardian",
    "add_member",
    "break_glass",
    "close_case",
    "end_membership",
    "members",
    "open_case",
    "record_consent",
    "record_decision",
    "record_legal_basis",
    "require_access",
    "review_break_glass",
    "transition",
    "unmet_conditions",
    "withdraw_consent",
]


def update_case(
    *,
    user,
    case: Case,
    purpose: str,
    texts: dict[str, str | None] | None = None,
    review_date: datetime.date | None = None,
    expected_version: int | None = None,
    limits: dict[str, int] | None = None,
) -> Case:
    """Write encrypted text fields of the programme case and/or its review date.

    ``texts`` maps field names (encrypted fields of the case) to new values;
    ``None`` clears one. A review date must be in the future.
    """
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="case:update")
    texts = texts or {}
    encrypted = set(getattr(type(case), "ENCRYPTED_FIELDS", ()))
    unknown = set(texts) - encrypted
    if unknown:
        raise ValueError(f"not encrypted fields of {type(case).__name__}: {sorted(unknown)}")
    cleaned = {
        name: clean_text(value, name, limit=(limits or {}).get(name, NOTE_LIMIT))
        for name, value in texts.items()
    }
    if review_date is not None and review_date <= timezone.localdate():
        raise ValidationError(
            {"review_date": ValidationError(_("The review date must be in the future."))}
        )
    with transaction.atomic():
        lock_version(case, expected_version)
        dek = case_data_key(case) if cleaned else None
        for name, value in cleaned.items():
            seal_value(case, name, value, dek)
        if review_date is not None:
            case.review_date = review_date
        fields = [*cleaned, *(["review_date"] if review_date is not None else [])]
        if not fields:
            return case
        # Saving the programme model writes its FSM field back unchanged; the
        # ConcurrentTransitionMixin refuses it if the state moved meanwhile.
        try:
            case.save()
        except ConcurrentTransition:
            raise CaseConflict() from None
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label="update",
            action=AuditAction.CHANGE,
            fields=fields,
        )
    return case


def comment_case(
    *, user, case: Case, purpose: str, text: str, kind: str = CaseEvent.Kind.PLAN
) -> None:
    """A comment on the case's timeline (e.g. why a plan was returned)."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="case:comment")
    text = clean_text(text, "comment", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        lock_version(case, None)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=kind,
            label="comment",
            action=AuditAction.CHANGE,
            fields=["comment"],
            reason=text,
        )


def has_other_legal_basis(case: Case) -> bool:
    """A recorded statutory basis is in force (consent withdrawal then does not close)."""
    today = timezone.localdate()
    return (
        CaseLegalBasis.objects.filter(case=case, revoked_at__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .filter(legal_basis__is_active=True, legal_basis__kind=LegalBasis.Kind.STATUTE)
        .exists()
    )


def link_cases(
    *, user, from_case: Case, to_case: Case, kind: str, reason: str, purpose: str
) -> CaseLink:
    """Record that ``from_case`` led to ``to_case`` (the same person's case in another
    programme, usually just opened by the caller in the same transaction).

    Both timelines show the link; the reason is sealed under the person's key.
    The user needs access to the case the link starts from.
    """
    purpose = require_purpose(purpose)
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    if kind not in CaseLink.Kind.values:
        raise ValidationError({"kind": _("Choose a kind of link.")})
    if from_case.pk == to_case.pk:
        raise ValidationError(_("A case cannot be linked to itself."))
    if from_case.person_id != to_case.person_id:
        raise ValidationError(_("Only cases of the same person can be linked."))
    require_access(user=user, case=from_case, purpose=purpose, what="case:link")
    with transaction.atomic():
        lock_version(from_case, None)
        if CaseLink.objects.filter(from_case=from_case, to_case=to_case).exists():
            raise ValidationError(_("These cases are already linked."))
        dek = case_data_key(from_case)
        link = CaseLink(
            from_case_id=from_case.pk, to_case_id=to_case.pk, kind=kind, created_by=user
        )
        seal_value(link, "reason", reason, dek)
        link.save()
        label = f"{kind}:{to_case.reference}"
        bump_version(from_case)
        timeline_event(case=from_case, user=user, kind=CaseEvent.Kind.LINK, transition=label)
        Case.objects.filter(pk=to_case.pk).update(version=F("version") + 1)
        timeline_event(
            case=to_case,
            user=user,
            kind=CaseEvent.Kind.LINK,
            transition=f"{kind}:{from_case.reference}",
        )
        audit_case(
            action=AuditAction.CREATE,
            user=user,
            case=from_case,
            purpose=purpose,
            fields=["reason"],
            obj=link,
            kind=kind,
            to_case=str(to_case.pk),
            to_programme=to_case.programme,
        )
    return link


def record_source(*, user, case: Case, source: str, purpose: str) -> None:
    """Record on a just-opened case where it came from when that is not a case (e.g.
    ``gvi_member:<id>``, a GVI group member): a timeline entry the case page shows as
    a link, and a change event. The caller has opened the case in its transaction."""
    purpose = require_purpose(purpose)
    with transaction.atomic():
        lock_version(case, None)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.LINK,
            action=AuditAction.CHANGE,
            label=source[:50],
            source=source,
        )
