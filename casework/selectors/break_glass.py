"""The auditors' list of break-the-glass accesses and one access with its log entries.

Nothing is decrypted: the auditor judges an access by the access log's entries of it
(the break-the-glass event names the reason given, as the log holds it), the case
number and who broke the glass when. Only for users who may read the access log.
"""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from audit.models import AccessEvent
from casework import policy
from casework.models import BreakGlassAccess

LIST_LIMIT = 200


def _require_auditor(user) -> None:
    if not policy.can_view_access_log(user):
        raise PermissionDenied


def break_glass_list(*, user, unreviewed_only: bool) -> tuple[list[BreakGlassAccess], int]:
    """The newest accesses (at most ``LIST_LIMIT``), unreviewed only or all, and how many
    there are unreviewed."""
    _require_auditor(user)
    accesses = BreakGlassAccess.objects.select_related(
        "user__organisation", "case", "reviewed_by"
    ).order_by("-opened_at")
    unreviewed = accesses.filter(reviewed_at__isnull=True)
    shown = unreviewed if unreviewed_only else accesses
    return list(shown[:LIST_LIMIT]), unreviewed.count()


def break_glass_access(*, user, access_id: UUID) -> BreakGlassAccess | None:
    _require_auditor(user)
    return (
        BreakGlassAccess.objects.select_related("user__organisation", "case", "reviewed_by")
        .filter(pk=access_id)
        .first()
    )


def break_glass_events(access: BreakGlassAccess) -> list[AccessEvent]:
    """The access log's break-the-glass entry of ``access`` (named by its id; an older one
    by its case, user and end time) and its review's entry."""
    opened = Q(action=AccessEvent.Action.BREAK_GLASS) & (
        Q(details__break_glass=str(access.pk))
        | Q(
            object_id=str(access.case_id),
            user_id=access.user_id,
            details__expires_at=access.expires_at.isoformat(),
        )
    )
    reviewed = Q(
        action=AccessEvent.Action.CHANGE,
        object_type="casework.breakglassaccess",
        object_id=str(access.pk),
    )
    return list(AccessEvent.objects.filter(opened | reviewed).order_by("id"))
