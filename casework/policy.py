"""Who may see what: every access decision of Samverkan is made here.

Deny by default. Views, viewflow applications, exports and the admin ask these
functions and never decide on group names or flags themselves.
"""

from __future__ import annotations

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


def can_manage_users(user) -> bool:
    """Administrators: users and organisations in the admin, never case data."""
    return _active(user) and user.is_staff


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
