"""The absences page's lists: a user's own absences not yet over, and whom they stand in for."""

from __future__ import annotations

from django.utils import timezone

from casework.models import Absence


def my_absences(*, user) -> list[Absence]:
    """``user``'s absences not yet over."""
    today = timezone.localdate()
    return list(
        Absence.objects.filter(user=user, cancelled_at__isnull=True, ends_on__gte=today)
        .select_related("deputy")
        .order_by("starts_on")
    )


def deputyships(*, user) -> list[Absence]:
    """The absences ``user`` stands in for, not yet over."""
    today = timezone.localdate()
    return list(
        Absence.objects.filter(deputy=user, cancelled_at__isnull=True, ends_on__gte=today)
        .select_related("user")
        .order_by("starts_on")
    )
