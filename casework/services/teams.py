"""Case teams: who works on a case, and in which role.

Coordinators put members on the team and end memberships; a participant of another
programme takes up a referral by joining its team (:func:`join_team`). Every write
locks the case row, writes the case's timeline entry and its access-log event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from casework import policy
from casework.models import Case, CaseEvent, CaseMembership
from casework.selectors.persons import require_purpose
from casework.services.case_changes import (
    CaseDenied,
    case_change,
    lock_version,
    record_change,
    require_access_and_role,
    require_coordinator_access,
)

if TYPE_CHECKING:
    from casework.models import User


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
    purpose = require_coordinator_access(user=user, case=case, purpose=purpose, what="team:add")
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
    purpose = require_access_and_role(
        lambda case, user: policy.coordinates(user, case) and membership.case_id == case.pk,
        user=user,
        case=case,
        purpose=purpose,
        what="team:remove",
    )
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        CaseMembership.objects.filter(pk=membership.pk, valid_to__isnull=True).update(
            valid_to=timezone.now()
        )
        change.record(CaseEvent.Kind.TEAM, "remove", fields=["team"], member=membership.user_id)


def members(case: Case, role: str) -> list[User]:
    now = timezone.now()
    return [
        m.user
        for m in case.memberships.filter(role=role, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user")
    ]
