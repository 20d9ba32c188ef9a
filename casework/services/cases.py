"""The shared case services: opening, transitions, decisions, actions, the plan's texts,
links between cases and break-the-glass — written once for every programme. Teams
live in :mod:`casework.services.teams`, consent and legal bases in
:mod:`casework.services.consent`; both are importable from here too.

Every function is keyword-only, takes the acting ``user`` and the ``purpose``,
asks ``casework.policy``, locks the case row, checks the version the user saw,
does its work inside ``transaction.atomic()`` and writes its access-log event
there (field names only). A refusal writes an ``ACCESS_DENIED`` event that
survives the rollback and raises :class:`CaseDenied`; a form posted against an
older version of the case raises :class:`CaseConflict`; bad input raises
``ValidationError`` with Swedish messages. Nothing is half-written.

The programme modules in ``workflows/`` declare their state machines with
django-fsm-2; :func:`transition` (the transition engine,
:mod:`casework.services.transitions`) is the one way any of them changes state.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_event, record_refusal
from casework import policy, programmes
from casework.crypto.records import seal_value
from casework.models import (
    Action,
    BreakGlassAccess,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLink,
    Organisation,
)
from casework.selectors.cases import person_registered
from casework.selectors.persons import require_purpose
from casework.services import alerts, transitions, webhooks
from casework.services.case_changes import (
    NOTE_LIMIT,
    REASON_LIMIT,
    CaseConflict,
    CaseDenied,
    audit_case,
    bump_version,
    case_change,
    case_data_key,
    clean_text,
    deny_case,
    lock_case,
    lock_version,
    next_reference,
    record_change,
    require_access,
    require_role,
    save_case,
    timeline_event,
)
from casework.services.case_keys import discard_case_key, new_case_key
from casework.services.consent import (
    add_guardian,
    has_other_legal_basis,
    record_consent,
    record_legal_basis,
    withdraw_consent,
)
from casework.services.teams import add_member, end_membership, join_team, members
from casework.services.transitions import REFERENCE_LOCK, unmet_conditions

if TYPE_CHECKING:
    from casework.models import User

__all__ = [
    "NOTE_LIMIT",
    "REASON_LIMIT",
    "REFERENCE_LOCK",
    "CaseConflict",
    "CaseDenied",
    "add_action",
    "add_guardian",
    "add_member",
    "audit_case",
    "break_glass",
    "bump_version",
    "case_data_key",
    "clean_text",
    "close_case",
    "comment_case",
    "deny_case",
    "end_membership",
    "has_other_legal_basis",
    "join_team",
    "link_cases",
    "lock_case",
    "lock_version",
    "may_transition",
    "members",
    "new_case_key",
    "new_referral",
    "next_reference",
    "open_case",
    "record_change",
    "record_consent",
    "record_decision",
    "record_legal_basis",
    "record_opening",
    "record_source",
    "require_access",
    "review_break_glass",
    "social_services_office",
    "timeline_event",
    "transition",
    "unmet_conditions",
    "update_case",
    "withdraw_consent",
]


# --- Opening a case ---------------------------------------------------------------------


def social_services_office(user, message=None) -> Organisation:
    """The social services office that leads a new case: ``user``'s own when ``user`` (may
    be ``None``) works for social services, else the only active one; ``ValidationError``
    (``message``, by default that none leads the case) when there is not exactly one."""
    if (
        user is not None
        and user.organisation
        and (user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES)
    ):
        return user.organisation
    offices = list(
        Organisation.objects.filter(kind=Organisation.Kind.SOCIAL_SERVICES, is_active=True)[:2]
    )
    if len(offices) != 1:
        raise ValidationError(
            message or _("No single social services organisation is registered to lead the case.")
        )
    return offices[0]


def new_referral(
    model: type[Case],
    programme: str,
    *,
    user,
    person,
    owner: Organisation | None = None,
    **fields: Any,
) -> Case:
    """A new case of ``model`` in ``programme`` for ``person``, referred by ``user`` and
    led by ``owner`` (by default :func:`social_services_office` of ``user``); unsaved:
    :func:`open_case` saves it."""
    return model(
        programme=programme,
        person=person,
        owner_organisation=owner or social_services_office(user),
        referred_by=user,
        referring_organisation=user.organisation,
        **fields,
    )


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
    # The case's own data key, committed in the key store before the case row.
    dek = new_case_key(case)
    try:
        with transaction.atomic(savepoint=False):
            case.reference = next_reference(case.programme)
            # A programme case extends Case: its primary key is the parent's id.
            if hasattr(case, "case_ptr_id") and case.case_ptr_id is None:
                case.case_ptr_id = case.id
            if reason_field and reason is not None:
                seal_value(case, reason_field, reason, dek)
            registered = person_registered(case.person_id)
            case.save(force_insert=True)
            record_opening(
                case=case,
                user=user,
                purpose=purpose,
                transition="refer",
                dek=dek,
                fields=[reason_field] if reason_field and reason else [],
                referral=True,
                person_registered=registered,
            )
    except BaseException:
        discard_case_key(case.id)
        raise
    return case


def record_opening(*, case: Case, user, purpose: str, transition: str = "", dek=None, **details):
    """A new case's first timeline entry (its state, reached by ``transition``), its
    ``CREATE`` event (its programme and number, and ``details``) and its first
    ``case.status_changed`` webhooks."""
    timeline_event(
        case=case,
        user=user,
        kind=CaseEvent.Kind.TRANSITION,
        transition=transition,
        to_state=getattr(case, "status", ""),
        dek=dek,
    )
    audit_case(
        action=AuditAction.CREATE,
        user=user,
        case=case,
        purpose=purpose,
        programme=case.programme,
        reference=case.reference,
        **details,
    )
    webhooks.case_status_changed(case=case)


# --- Transitions -------------------------------------------------------------------------


def may_transition(*, user, case: Case, name: str) -> bool:
    """Whether ``user`` holds the role for transition ``name`` from the current state."""
    return transitions.may_transition(user=user, obj=case, name=name)


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

    The engine (:func:`casework.services.transitions.transition`) checks access to the
    case (any ground), the state, the user's role, the guards and the version; the
    reason is sealed in the timeline entry; a close ends the team's memberships.
    """
    purpose = require_purpose(purpose)
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    return transitions.transition(
        user=user,
        obj=case,
        name=name,
        purpose=purpose,
        timeline_reason=reason,
        expected_version=expected_version,
        **kwargs,
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
    reasons: Iterable[str] = Case.CloseReason.values,
) -> Case:
    """Close with an outcome reason (one of ``reasons``: the programme's) and a note,
    required for "other"."""
    if reason not in reasons:
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
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
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
            change.seal(entry, "note", note)
        entry.save()
        change.record_created(
            entry, CaseEvent.Kind.DECISION, f"{agency}:{decision}", agency=agency, decision=decision
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
    expected_version: int | None = None,
) -> Action:
    """Record an action (insats) of an organisation in the case.

    The case's programme decides who may add one in the case's state (its
    ``may_add_action`` in the registry; e.g. SIG: police add actions only in
    ``active``/``follow_up``); a planned action for another organisation may be
    written into the plan by the team's social worker.
    """
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="action:add")
    organisation = organisation or user.organisation
    programme = programmes.get(case.programme)
    rule = programme.may_add_action if programme is not None else None
    if rule is not None and not rule(user, case):
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
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
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
            change.seal(action, "note", note)
        action.save(force_insert=True)
        change.record_created(
            action, CaseEvent.Kind.ACTION, f"{kind}:{status}", organisation=organisation.pk
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
    require_role(
        user=user,
        case=case,
        purpose=reason,
        what="break_glass",
        allowed=policy.can_break_glass(user),
    )
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
        audit_case(
            action=AuditAction.BREAK_GLASS,
            user=user,
            case=case,
            purpose=reason,
            expires_at=access.expires_at.isoformat(),
            hours=hours,
            break_glass=str(access.pk),
        )
        alerts.break_glass_opened(access=access)
    return access


def review_break_glass(
    *, user, access: BreakGlassAccess, verdict: str, note: str, purpose: str
) -> BreakGlassAccess:
    """An auditor other than the one who broke the glass reviews the access: justified or
    not, with a comment. Written once: a second review is refused (and the database
    refuses any change of a written review, and the breaker as reviewer)."""
    purpose = require_purpose(purpose)
    own = user.pk == access.user_id
    if not policy.can_view_access_log(user) or own:
        record_refusal(
            user=user,
            obj=access,
            purpose=purpose,
            details={"operation": "break_glass:review", "own_access": own},
        )
        if own and policy.can_view_access_log(user):
            raise ValidationError(
                _("You broke the glass yourself: another auditor must review the access.")
            )
        raise CaseDenied()
    errors = {}
    if verdict not in BreakGlassAccess.Verdict.values:
        errors["verdict"] = ValidationError(_("Select a valid choice."), "invalid_choice")
    try:
        note = clean_text(note, "review_note", limit=REASON_LIMIT, required=True)
    except ValidationError as error:
        errors.update(error.error_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        updated = BreakGlassAccess.objects.filter(pk=access.pk, reviewed_at__isnull=True).update(
            reviewed_by=user, reviewed_at=timezone.now(), verdict=verdict, review_note=note
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
            details={"break_glass": str(access.pk), "verdict": verdict},
        )
    return access


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
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
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
        save_case(case)
        change.record(CaseEvent.Kind.PLAN, "update", fields=fields)
    return case


def comment_case(
    *, user, case: Case, purpose: str, text: str, kind: str = CaseEvent.Kind.PLAN
) -> None:
    """A comment on the case's timeline (e.g. why a plan was returned)."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="case:comment")
    text = clean_text(text, "comment", limit=REASON_LIMIT, required=True)
    with case_change(case, user=user, purpose=purpose) as change:
        change.record(kind, "comment", fields=["comment"], reason=text)


def link_cases(
    *, user, from_case: Case, to_case: Case, kind: str, reason: str, purpose: str
) -> CaseLink:
    """Record that ``from_case`` led to ``to_case`` (the same person's case in another
    programme, usually just opened by the caller in the same transaction).

    Both timelines show the link; the reason is sealed under ``from_case``'s key.
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
    with case_change(case, user=user, purpose=purpose) as change:
        change.record(CaseEvent.Kind.LINK, source[:50], source=source)
