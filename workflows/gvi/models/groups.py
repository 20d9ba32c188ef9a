"""A GVI group and its state machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, transition

from casework.fields import EncryptedTextField
from casework.fsm import status_field
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

    @transition(
        status,
        source=GroupStatus.IDENTIFIED,
        target=GroupStatus.MAPPED,
        permission=police_or_coordinator,
        conditions=[has_member],
        custom={"label": _("Mapping done")},
    )
    def map(self) -> None:
        """The group audit is done: members, area, size."""

    @transition(
        status,
        source=GroupStatus.MAPPED,
        target=GroupStatus.MESSAGE_DELIVERED,
        permission=police_or_coordinator,
        conditions=[a_member_has_the_message],
        custom={"label": _("The group has the message")},
    )
    def deliver_message(self) -> None:
        self.message_delivered_at = timezone.now()

    @transition(
        status,
        source=[GroupStatus.MESSAGE_DELIVERED, GroupStatus.SANCTION_ENDED],
        target=GroupStatus.MONITORED,
        permission=police_or_coordinator,
        custom={"label": _("Monitor the group")},
    )
    def monitor(self) -> None:
        """Watched for new violence."""

    @transition(
        status,
        source=GroupStatus.MONITORED,
        target=GroupStatus.INCIDENT_LINKED,
        permission=police,
        conditions=[incident_linked],
        custom={"label": _("Incident linked")},
    )
    def link_incident(self) -> None:
        """Police linked a new incident to the group."""

    @transition(
        status,
        source=GroupStatus.INCIDENT_LINKED,
        target=GroupStatus.MONITORED,
        permission=coordinator,
        custom={"label": _("No sanctions: back to monitoring")},
    )
    def clear_incident(self) -> None:
        """The incident does not lead to sanctions."""

    @transition(
        status,
        source=GroupStatus.INCIDENT_LINKED,
        target=GroupStatus.SANCTION_DECIDED,
        permission=coordinator,
        conditions=[group_received_message, incident_linked, sanction_decision_recorded],
        custom={"label": _("Sanctions decided")},
    )
    def decide_sanctions(self) -> None:
        """Group-wide sanctions, after the message, for a linked incident, with a decision."""

    @transition(
        status,
        source=GroupStatus.SANCTION_DECIDED,
        target=GroupStatus.SANCTION_ACTIVE,
        permission=gvi_staff,
        conditions=[a_lever_executed],
        custom={"label": _("Sanctions active")},
    )
    def activate_sanctions(self) -> None:
        """An agency has executed its lever."""

    @transition(
        status,
        source=GroupStatus.SANCTION_DECIDED,
        target=GroupStatus.INCIDENT_LINKED,
        permission=gvi_staff,
        conditions=[every_lever_withdrawn],
        custom={"label": _("Every lever withdrawn")},
    )
    def withdraw_sanctions(self) -> None:
        """Every lever of the decision was withdrawn before any was executed: the decision
        ends, and the coordinator decides again (new levers) or clears the incident."""
        self._end_open_decision()

    @transition(
        status,
        source=GroupStatus.SANCTION_ACTIVE,
        target=GroupStatus.SANCTION_ENDED,
        permission=coordinator,
        conditions=[every_lever_reported],
        custom={"label": _("End the sanctions")},
    )
    def end_sanctions(self) -> None:
        self._end_open_decision()

    @transition(
        status,
        source=GroupStatus.MONITORED,
        target=GroupStatus.DORMANT,
        permission=coordinator,
        custom={"label": _("Dormant")},
    )
    def go_dormant(self) -> None:
        """No activity: the group is no longer followed actively."""
