"""Absence: a user names a deputy of the same organisation and role for a period.

During the period the deputy sees and does the absent user's tasks and opens the cases
whose team the absent user is on (``casework.policy.teams``); before and after it,
nothing. The rows are kept (a cancelled absence has ``cancelled_at``), so who stood in
for whom and when remains answerable.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models.accounts import User


class Absence(models.Model):
    user = models.ForeignKey(
        User, verbose_name=_("absent user"), on_delete=models.PROTECT, related_name="absences"
    )
    deputy = models.ForeignKey(
        User, verbose_name=_("deputy"), on_delete=models.PROTECT, related_name="deputyships"
    )
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="absence_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(deputy=models.F("user")), name="absence_deputy_not_self"
            ),
        ]
        indexes = [models.Index(fields=["deputy", "starts_on", "ends_on"])]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.deputy_id} {self.starts_on}..{self.ends_on}"


__all__ = ["Absence"]
