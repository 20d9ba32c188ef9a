"""Who may correct a person's record, set or lift a protected identity, see a protected
person's contact details, and find a person among their own cases (ADR 0027)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from casework.models import Case, CaseMembership
from casework.policy.accounts import can_use_task_inbox
from casework.policy.cases import (
    case_access,
    coordinates,
    coordinates_gvi_or_police,
    named_handler,
    team_membership,
)


def _team_role(user, case, roles, team: list[CaseMembership] | None) -> bool:
    if team is not None:
        return any(m.user_id == user.pk and m.role in roles for m in team)
    membership = team_membership(user, case)
    return membership is not None and membership.role in roles


def may_correct_record(user, case, *, team: list[CaseMembership] | None = None) -> bool:
    """Correct the person's name, address, phone and guardians: the case's lead social
    worker and the coordinator of its programme, each only while the case is open.

    They answer for the case's documentation (the lead) and its register (the
    coordinator); the rest of the team reports an error to them. The caller checks the
    access to the case itself (``casework.services.case_changes.require_access``).
    """
    if not can_use_task_inbox(user) or getattr(case, "closed_at", None) is not None:
        return False
    return coordinates(user, case) or _team_role(user, case, (CaseMembership.Role.LEAD,), team)


def may_set_protected_identity(user, case, *, team: list[CaseMembership] | None = None) -> bool:
    """Set or lift a protected identity: the named handlers of the case (lead, police
    contact, coordinator on the team) and the coordinator of its programme, while the
    case is open — the same people who see the protected details."""
    if not can_use_task_inbox(user) or getattr(case, "closed_at", None) is not None:
        return False
    return coordinates(user, case) or named_handler(user, case, team=team)


def may_set_gvi_protected_identity(user) -> bool:
    """A GVI member's protected identity: those who register GVI members (the GVI
    coordinator and the police)."""
    return coordinates_gvi_or_police(user)


def sees_protected_contact(user, case, *, team: list[CaseMembership] | None = None) -> bool:
    """Does ``user`` see the address, phone and guardians' contact details of a person
    with protected identity in ``case``? Only the named handlers of the case; in every
    programme but the defector programme also the coordinator of the programme (in a
    defector case the coordinator's role alone is not enough: DESIGN.md "Processes")."""
    if named_handler(user, case, team=team):
        return True
    return case.programme != Case.Programme.DEFECTOR and coordinates(user, case)


def own_cases(user):
    """The cases where ``user`` is on the team now (not the coordinator's whole programme,
    not a break-the-glass access): where the own-case search looks. A queryset; each case
    still goes through :func:`casework.policy.case_access` before anything is opened."""
    if not can_use_task_inbox(user):
        return Case.objects.none()
    now = timezone.now()
    current = Q(
        memberships__user=user,
        memberships__valid_from__lte=now,
    ) & (Q(memberships__valid_to__isnull=True) | Q(memberships__valid_to__gt=now))
    return Case.objects.filter(current).distinct()


def may_search_own_cases(user) -> bool:
    """Anyone with a case role searches their own cases (the list may be empty)."""
    return can_use_task_inbox(user)


def searchable(user, case) -> bool:
    """A case of :func:`own_cases` the user may see now (consent, legal basis, hand-over)."""
    access = case_access(user, case)
    return bool(access) and access.via == "team"
