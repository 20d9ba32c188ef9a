"""A sanction decision and its levers, each lever's state machine."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import Organisation, VersionedModel
from workflows.common.guards import guard
from workflows.gvi.models.groups import Group
from workflows.gvi.models.incidents import Incident
from workflows.gvi.models.rules import owning_organisation, owning_organisation_or_coordinator
from workflows.gvi.models.states import (
    SANCTION_WITHDRAWABLE_STATES,
    GroupStatus,
    Lever,
    SanctionStatus,
)


class SanctionDecision(models.Model):
    """The decision of group-wide sanctions: who decided, when, for which incident."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="sanction_decisions")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), default=timezone.now, editable=False)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("sanction decision")
        verbose_name_plural = _("sanction decisions")

    def __str__(self) -> str:
        return f"Decision {self.pk}"


@guard(_("The group's sanctions are not in force."))
def sanctions_in_force(sanction: Sanction) -> bool:
    return sanction.decision.ended_at is None and sanction.decision.group.status in (
        GroupStatus.SANCTION_DECIDED,
        GroupStatus.SANCTION_ACTIVE,
    )


class Sanction(ConcurrentTransitionMixin, VersionedModel):
    """One agency's lever in a group-wide sanction, recorded by that agency only."""

    Status = SanctionStatus

    decision = models.ForeignKey(
        SanctionDecision, on_delete=models.PROTECT, related_name="sanctions"
    )
    lever = models.CharField(_("lever"), max_length=20, choices=Lever.choices)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("agency"), on_delete=models.PROTECT, related_name="+"
    )
    status = status_field(SanctionStatus, default=SanctionStatus.PROPOSED)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    executed_at = models.DateTimeField(_("executed"), null=True, blank=True)
    reported_at = models.DateTimeField(_("reported"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    # Why the lever is withdrawn: sealed under the group's data key (like its name and
    # notes), so erasing the group erases it too.
    withdraw_reason = EncryptedTextField(_("reason for withdrawing"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    ENCRYPTED_FIELDS = ("withdraw_reason",)

    class Meta:
        verbose_name = _("sanction")
        verbose_name_plural = _("sanctions")
        constraints = [
            models.UniqueConstraint(fields=["decision", "lever"], name="gvi_sanction_lever_once")
        ]

    def __str__(self) -> str:
        return f"Sanction {self.pk}"

    @step(
        SanctionStatus.PROPOSED,
        SanctionStatus.DECIDED,
        _("Decide the lever"),
        by=owning_organisation,
    )
    @when(sanctions_in_force)
    def decide(self, *, by) -> None:
        self.decided_at = timezone.now()
        self.recorded_by = by

    @step(SanctionStatus.DECIDED, SanctionStatus.EXECUTED, _("Executed"), by=owning_organisation)
    @when(sanctions_in_force)
    def execute(self, *, by) -> None:
        self.executed_at = timezone.now()
        self.recorded_by = by

    @step(SanctionStatus.EXECUTED, SanctionStatus.REPORTED, _("Reported"), by=owning_organisation)
    def report(self, *, by) -> None:
        self.reported_at = timezone.now()
        self.recorded_by = by

    @step(
        list(SANCTION_WITHDRAWABLE_STATES),
        SanctionStatus.WITHDRAWN,
        _("Withdraw the lever"),
        by=owning_organisation_or_coordinator,
    )
    @when(sanctions_in_force)
    def withdraw(self, *, by, reason) -> None:
        """The lever will not be carried out. ``reason``: sealed by the service."""
        self.withdrawn_at = timezone.now()
        self.withdraw_reason = reason
        self.recorded_by = by
