"""A call-in meeting, its state machine, its attendees and speakers."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework.fsm import status_field, step, when
from casework.models import VersionedModel
from workflows.common.guards import guard
from workflows.gvi.models.members import GroupMember
from workflows.gvi.models.rules import coordinator, gvi_staff
from workflows.gvi.models.states import (
    CALL_IN_OPEN_STATES,
    CallInStatus,
    CancelReason,
    SpeakerRole,
)


@guard(_("Select at least one attendee."))
def has_attendees(call_in: CallIn) -> bool:
    return call_in.attendees.exists()


@guard(_("Every speaker role must be filled: moral voice, law enforcement, offer of help."))
def speakers_filled(call_in: CallIn) -> bool:
    filled = set(call_in.speakers.values_list("role", flat=True))
    return filled >= set(SpeakerRole.values)


@guard(_("Record the attendance of every attendee; at least one must have attended."))
def attendance_recorded(call_in: CallIn) -> bool:
    attendance = list(call_in.attendees.values_list("attended", flat=True))
    return bool(attendance) and None not in attendance and any(attendance)


@guard(_("Every attendee who came must have had the follow-up contact."))
def every_attendee_followed_up(call_in: CallIn) -> bool:
    return not call_in.attendees.filter(attended=True, followed_up_at__isnull=True).exists()


class CallIn(ConcurrentTransitionMixin, VersionedModel):
    """A call-in meeting: selected members hear the three messages from the speakers."""

    Status = CallInStatus

    reference = models.CharField(_("call-in number"), max_length=20, unique=True, editable=False)
    date = models.DateField(_("date"))
    status = status_field(CallInStatus, default=CallInStatus.PLANNED)
    cancel_reason = models.CharField(
        _("cancel reason"), max_length=20, choices=CancelReason.choices, blank=True
    )
    held_at = models.DateTimeField(_("held"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("planned"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("call-in")
        verbose_name_plural = _("call-ins")
        ordering = ["-date"]

    def __str__(self) -> str:
        return self.reference

    @step(
        CallInStatus.PLANNED,
        CallInStatus.ATTENDEES_SELECTED,
        _("Attendees selected"),
        by=coordinator,
    )
    @when(has_attendees)
    def select_attendees(self) -> None:
        """The attendees are chosen for their influence over their groups."""

    @step(
        CallInStatus.ATTENDEES_SELECTED, CallInStatus.INVITED, _("Invitations sent"), by=coordinator
    )
    @when(has_attendees)
    def invite(self) -> None:
        """Invited (with their probation officers, where they have one)."""

    @step(CallInStatus.INVITED, CallInStatus.HELD, _("Call-in held"), by=coordinator)
    @when(speakers_filled, attendance_recorded)
    def hold(self) -> None:
        self.held_at = timezone.now()

    @step(CallInStatus.HELD, CallInStatus.FOLLOWED_UP, _("Follow-up done"), by=gvi_staff)
    @when(every_attendee_followed_up)
    def complete_follow_up(self) -> None:
        """Everyone who came has had the follow-up contact."""

    @step(
        list(CALL_IN_OPEN_STATES), CallInStatus.CANCELLED, _("Cancel the call-in"), by=coordinator
    )
    def cancel(self, *, cancel_reason: str) -> None:
        self.cancel_reason = cancel_reason


class CallInAttendee(models.Model):
    """A group member invited to a call-in: attendance and the follow-up contact."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call_in = models.ForeignKey(CallIn, on_delete=models.CASCADE, related_name="attendees")
    member = models.ForeignKey(GroupMember, on_delete=models.PROTECT, related_name="attendances")
    attended = models.BooleanField(_("attended"), null=True, blank=True)
    follow_up_due = models.DateField(_("follow-up due"), null=True, blank=True)
    followed_up_at = models.DateTimeField(_("followed up"), null=True, blank=True)
    followed_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("call-in attendee")
        verbose_name_plural = _("call-in attendees")
        constraints = [
            models.UniqueConstraint(fields=["call_in", "member"], name="gvi_attendee_once")
        ]

    def __str__(self) -> str:
        return f"Attendee {self.pk}"


class CallInSpeaker(models.Model):
    """Who speaks in one of the three roles. Speakers act in a public role (an officer,
    a prosecutor, a faith leader, a former gang member): their role title, not a data
    subject's data, is what is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call_in = models.ForeignKey(CallIn, on_delete=models.CASCADE, related_name="speakers")
    role = models.CharField(_("speaker role"), max_length=20, choices=SpeakerRole.choices)
    speaker = models.CharField(_("speaker"), max_length=200)

    class Meta:
        verbose_name = _("call-in speaker")
        verbose_name_plural = _("call-in speakers")
        constraints = [models.UniqueConstraint(fields=["call_in", "role"], name="gvi_speaker_role")]

    def __str__(self) -> str:
        return f"Speaker {self.pk}"
