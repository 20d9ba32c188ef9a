"""Who changes a case's team: the coordinator, and the lead for their own organisation."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from casework.models import CaseMembership, User
from casework.policy.accounts import can_use_task_inbox
from casework.policy.cases import (
    case_access,
    coordinates,
    coordinator_permission,
    defector_local_access_cut,
    team_membership,
)

# The seats a case has one holder of: replacing the holder moves their open tasks.
SEATS = (CaseMembership.Role.LEAD, CaseMembership.Role.POLICE_CONTACT)


def may_change_team(user, case, organisation_id: int | None = None) -> bool:
    """May ``user`` change ``case``'s team, for a seat held by (or given to) someone of
    ``organisation_id`` (``None``: whoever — the team page is shown)? The coordinator of
    the case's programme always; the lead social worker for a seat of their own
    organisation (never the lead seat itself: the lead is appointed by the coordinator)."""
    if not can_use_task_inbox(user) or getattr(case, "closed_at", None) is not None:
        return False
    if defector_local_access_cut(user, case):
        return False
    if coordinates(user, case):
        return True
    membership = team_membership(user, case)
    if membership is None or membership.role != CaseMembership.Role.LEAD:
        return False
    return organisation_id is None or organisation_id == user.organisation_id


def seat_holder(case, role: str):
    """Who a step of ``role`` is assigned to: the newest active member of the case's team
    in that role (a member who left — an inactive account — gets no new task); ``None``
    when there is none (the task then waits in the queue)."""
    now = timezone.now()
    membership = (
        case.memberships.filter(role=role, valid_from__lte=now, user__is_active=True)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user")
        .order_by("-valid_from", "-pk")
        .first()
    )
    return membership.user if membership else None


def case_coordinators(case) -> list:
    """The active coordinators of ``case``'s programme who may open it (those told when
    it loses a team member)."""
    app_label, codename = coordinator_permission(case.programme).split(".", 1)
    granted = Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    ) | Q(
        user_permissions__codename=codename,
        user_permissions__content_type__app_label=app_label,
    )
    found = (
        User.objects.filter(granted, is_active=True, organisation__isnull=False)
        .select_related("organisation")
        .distinct()
        .order_by("pk")
    )
    return [u for u in found if coordinates(u, case) and case_access(u, case, any_ground=True)]
