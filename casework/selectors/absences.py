"""The absences page's lists: a user's own absences not yet over, and whom they stand in for."""

from __future__ import annotations

from django.utils import timezone

from casework.models import Absence


def absences_not_over(*, user) -> tuple[list[Absence], list[Absence]]:
    """``user``'s own absences not yet over, and those ``user`` stands in for, by first day."""
    current = Absence.objects.filter(
        cancelled_at__isnull=True, ends_on__gte=timezone.localdate()
    ).order_by("starts_on")
    return (
        list(current.filter(user=user).select_related("deputy")),
        list(current.filter(deputy=user).select_related("user")),
    )
