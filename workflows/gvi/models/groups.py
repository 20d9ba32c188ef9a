"""A GVI group and its state machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import Person, VersionedModel
from workflows.common.guards import guard
from workflows.gvi.models.rules import coordinator, gvi_staff, police, police_or_coordinator
from workflows.gvi.models.states import (
    MEMBER_MESSAGE_STATES,
    GroupStatus,
    SanctionStatus,
    SizeBand,
)

if TYPE_CHECKING:
    from workflows.gvi.models.sanctions import SanctionDecision


@guard(_("Register at least one member of the group first."))
def has_member(group: Group) -> bool:
    return group.members.exists()


@guard(_("No member of the group has received the message yet."))
def a_member_has_the_message(group: Group) -> bool:
    return group.members.filter(status__in=MEMBER_MESSAGE_STATES).exists()


@guard(_("The group has not received the message: sanctions come only after the message."))
def group_received_message(group: Group) -> bool:
    return group.message_delivered_at is not None


@guard(_("No incident is linked to the group."))
def incident_linked(group: Group) -> bool:
    return group.incidents.exists()


@guard(_("Record the sanction decision first: who decided, when and which agencies' levers."))
def sanction_decision_recorded(group: Group) -> bool:
    decision = group.open_decision()
    return (
        decision is not None
        and decision.incident.groups.filter(pk=group.pk).exists()
        and decision.sanctions.exists()
    )


def _open_levers(group: Group) -> models.QuerySet | None:
    """The levers of the group's sanction decision in force (``None``: no decision)."""
    decision = group.open_decision()
    return None if decision is None else decision.sanctions.all()


@guard(_("No sanction lever has been executed yet."))
def a_lever_executed(group: Group) -> bool:
    levers = _open_levers(group)
    executed = (SanctionStatus.EXECUTED, SanctionStatus.REPORTED)
    return levers is not None and levers.filter(status__in=executed).exists()


@guard(_("Every sanction lever must be reported (or withdrawn) before the sanctions end."))
def every_lever_reported(group: Group) -> bool:
    levers = _open_levers(group)
    done = (SanctionStatus.REPORTED, SanctionStatus.WITHDRAWN)
    return levers is not None and not levers.exclude(status__in=done).exists()


@guard(_("Not every sanction lever has been withdrawn."))
def every_lever_withdrawn(group: Group) -> bool:
    levers = _open_levers(group)
    return (
        levers is not None
        and levers.exists()
        and not levers.exclude(status=SanctionStatus.WITHDRAWN).exists()
    )


class Group(ConcurrentTransitionMixin, VersionedModel):
    """A criminal group. Name and notes are encrypted under the group's own data key;
    area and size band are plain for statistics."""

    Status = GroupStatus

    reference = models.CharField(_("group number"), max_length=20, unique=True, editable=False)
    name = EncryptedTextField(_("name"))
    notes = EncryptedTextField(_("notes"))
    area = models.CharField(_("area"), max_length=30, choices=Person.Area.choices)
    size_band = models.CharField(_("size"), max_length=10, choices=SizeBand.choices)
    status = status_field(GroupStatus, default=GroupStatus.IDENTIFIED)
    message_delivered_at = models.DateTimeField(_("message delivered"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), default=timezone.now, editable=False)
    # Set when the group was erased: its data key destroyed, its name and notes gone.
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True, editable=False)

    ENCRYPTED_FIELDS = ("name", "notes")

    class Meta:
        verbose_name = _("GVI group")
        verbose_name_plural = _("GVI groups")
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference

    def open_decision(self) -> SanctionDecision | None:
        return self.sanction_decisions.filter(ended_at__isnull=True).order_by("-decided_at").first()

    def _end_open_decision(self) -> None:
        """The sanction decision in force ends now."""
        decision = self.open_decision()
        decision.ended_at = timezone.now()
        decision.save(update_fields=["ended_at"])

    @step(GroupStatus.IDENTIFIED, GroupStatus.MAPPED, _("Mapping done"), by=police_or_coordinator)
    @when(has_member)
    def map(self) -> None:
        """The group audit is done: members, area, size."""

    @step(
        GroupStatus.MAPPED,
        GroupStatus.MESSAGE_DELIVERED,
        _("The group has the message"),
        by=police_or_coordinator,
    )
    @when(a_member_has_the_message)
    def deliver_message(self) -> None:
        self.message_delivered_at = timezone.now()

    @step(
        [GroupStatus.MESSAGE_DELIVERED, GroupStatus.SANCTION_ENDED],
        GroupStatus.MONITORED,
        _("Monitor the group"),
        by=police_or_coordinator,
    )
    def monitor(self) -> None:
        """Watched for new violence."""

    @step(GroupStatus.MONITORED, GroupStatus.INCIDENT_LINKED, _("Incident linked"), by=police)
    @when(incident_linked)
    def link_incident(self) -> None:
        """Police linked a new incident to the group."""

    @step(
        GroupStatus.INCIDENT_LINKED,
        GroupStatus.MONITORED,
        _("No sanctions: back to monitoring"),
        by=coordinator,
    )
    def clear_incident(self) -> None:
        """The incident does not lead to sanctions."""

    @step(
        GroupStatus.INCIDENT_LINKED,
        GroupStatus.SANCTION_DECIDED,
        _("Sanctions decided"),
        by=coordinator,
    )
    @when(group_received_message, incident_linked, sanction_decision_recorded)
    def decide_sanctions(self) -> None:
        """Group-wide sanctions, after the message, for a linked incident, with a decision."""

    @step(
        GroupStatus.SANCTION_DECIDED,
        GroupStatus.SANCTION_ACTIVE,
        _("Sanctions active"),
        by=gvi_staff,
    )
    @when(a_lever_executed)
    def activate_sanctions(self) -> None:
        """An agency has executed its lever."""

    @step(
        GroupStatus.SANCTION_DECIDED,
        GroupStatus.INCIDENT_LINKED,
        _("Every lever withdrawn"),
        by=gvi_staff,
    )
    @when(every_lever_withdrawn)
    def withdraw_sanctions(self) -> None:
        """Every lever of the decision was withdrawn before any was executed: the decision
        ends, and the coordinator decides again (new levers) or clears the incident."""
        self._end_open_decision()

    @step(
        GroupStatus.SANCTION_ACTIVE,
        GroupStatus.SANCTION_ENDED,
        _("End the sanctions"),
        by=coordinator,
    )
    @when(every_lever_reported)
    def end_sanctions(self) -> None:
        self._end_open_decision()

    @step(GroupStatus.MONITORED, GroupStatus.DORMANT, _("Dormant"), by=coordinator)
    def go_dormant(self) -> None:
        """No activity: the group is no longer followed actively."""
