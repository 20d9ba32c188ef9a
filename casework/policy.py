"""Who may see what: every access decision of Samverkan is made here.

Deny by default. Views, viewflow applications, exports and the admin ask these
functions and never decide on group names or flags themselves.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.urls import reverse

from casework import roles


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def can_use_task_inbox(user) -> bool:
    """Case workers: tasks and cases. Needs the role *and* an organisation to act for."""
    return (
        _active(user) and user.organisation_id is not None and user.has_perm(roles.PERM_TASK_INBOX)
    )


def can_view_statistics(user) -> bool:
    """The steering group: anonymised statistics only."""
    return _active(user) and user.has_perm(roles.PERM_STATISTICS)


def can_view_access_log(user) -> bool:
    """Auditors: the access log and its integrity, nothing else."""
    return _active(user) and user.has_perm(roles.PERM_ACCESS_LOG)


def case_team_person_ids(*, user_id: int, start: datetime, end: datetime) -> frozenset[UUID]:
    """The persons in cases whose team had ``user_id`` as a member at some time in [start, end).

    The log review's "access outside own cases" rule asks this. Case teams
    (``CaseMembership``) arrive with the case models; until then nobody is on
    any case team, so every access to a person counts as outside own cases.
    """
    return frozenset()


def can_manage_users(user) -> bool:
    """Administrators: users and organisations in the admin, never case data."""
    return _active(user) and user.is_staff


def can_process_person_data(user) -> bool:
    """Registering, finding and reading persons: case workers acting for an organisation.

    The case-team rules (need to know per case, consent, legal basis for police)
    narrow this when cases exist; until then a person's data is open to case roles
    only, and every read is in the access log.
    """
    return can_use_task_inbox(user)


def can_erase_person(user) -> bool:
    """Erasure (crypto-shredding) from the UI: only with the explicit permission.

    No role group has it yet; operators erase with ``manage.py erase_person``.
    """
    return _active(user) and user.has_perm(roles.PERM_ERASE_PERSON)


def start_url(user) -> str | None:
    """The page a user lands on after logging in, or ``None`` for a user with no role."""
    if can_use_task_inbox(user):
        return reverse("arenden:inbox")
    if can_view_statistics(user):
        return reverse("statistik:index")
    if can_view_access_log(user):
        return reverse("granskning:index")
    if can_manage_users(user):
        return reverse("admin:index")
    return None
