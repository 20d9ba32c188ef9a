"""A custom notification, its state machine and its delivery team."""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import VersionedModel
from workflows.common.guards import guard
from workflows.gvi.models.members import GroupMember
from workflows.gvi.models.rules import coordinator, gvi_staff, police, police_or_coordinator
from workflows.gvi.models.states import (
    MemberResponse,
    MessengerKind,
    NotificationCloseReason,
    NotificationStatus,
)


@guard(_("The police legal assessment has not been recorded."))
def legal_assessment_recorded(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None


@guard(_("The police legal assessment does not support the notification."))
def legal_assessment_supports(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None and notification.lawful is True


@guard(_("The legal assessment supports the notification: approve or reschedule instead."))
def legal_assessment_refuses(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None and notification.lawful is False


@guard(_("Write the message before approving it."))
def message_written(notification: CustomNotification) -> bool:
    return notification.message is not None


@guard(_("Set the date and time of the visit."))
def visit_scheduled(notification: CustomNotification) -> bool:
    return notification.scheduled_for is not None


@guard(_("The delivery team must include a messenger who is not police."))
def non_police_messenger(notification: CustomNotification) -> bool:
    return notification.messengers.exclude(kind=MessengerKind.POLICE).exists()


@guard(_("Record the offer of help and the member's response."))
def offer_recorded(notification: CustomNotification) -> bool:
    return notification.offer_of_help is not None and bool(notification.response)


@guard(_("The limit of delivery attempts has been reached."))
def retry_left(notification: CustomNotification) -> bool:
    return notification.attempts < settings.SAMVERKAN["GVI_NOTIFICATION_MAX_ATTEMPTS"]


@guard(_("Record the follow-up contact first."))
def follow_up_recorded(notification: CustomNotification) -> bool:
    return notification.followed_up_at is not None


class CustomNotification(ConcurrentTransitionMixin, VersionedModel):
    """A one-to-one message to a member, delivered in person by police and a non-police
    messenger, with an offer of help. Texts are encrypted under the member's person key."""

    Status = NotificationStatus

    reference = models.CharField(_("notification number"), max_length=20, unique=True)
    member = models.ForeignKey(GroupMember, on_delete=models.PROTECT, related_name="notifications")
    status = status_field(NotificationStatus, default=NotificationStatus.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, editable=False)
    # The police officer responsible: legal assessment, scheduling, delivery.
    police_officer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("police officer"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    legal_assessment = EncryptedTextField(_("legal assessment"))
    lawful = models.BooleanField(_("supported by the legal assessment"), null=True, blank=True)
    legal_assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    legal_assessed_at = models.DateTimeField(_("legal assessment"), null=True, blank=True)
    message = EncryptedTextField(_("message"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    scheduled_for = models.DateTimeField(_("visit"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts not reached"), default=0)
    offer_of_help = EncryptedTextField(_("offer of help"))
    response = models.CharField(
        _("member's response"), max_length=10, choices=MemberResponse.choices, blank=True
    )
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    follow_up_due = models.DateTimeField(_("follow-up due"), null=True, blank=True, db_index=True)
    follow_up_note = EncryptedTextField(_("follow-up"))
    followed_up_at = models.DateTimeField(_("followed up"), null=True, blank=True)
    close_reason = models.CharField(
        _("close reason"), max_length=20, choices=NotificationCloseReason.choices, blank=True
    )

    ENCRYPTED_FIELDS = ("legal_assessment", "message", "offer_of_help", "follow_up_note")

    class Meta:
        verbose_name = _("custom notification")
        verbose_name_plural = _("custom notifications")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return self.reference

    @step(
        NotificationStatus.REQUESTED,
        NotificationStatus.LEGAL_ASSESSMENT,
        _("Start the legal assessment"),
        by=police,
    )
    def begin_assessment(self) -> None:
        """Police review the member's legal history and vulnerabilities first."""

    @step(
        NotificationStatus.LEGAL_ASSESSMENT,
        NotificationStatus.APPROVED,
        _("Approve the message"),
        by=coordinator,
    )
    @when(legal_assessment_supports, message_written)
    def approve(self, *, approved_by) -> None:
        self.approved_by = approved_by
        self.approved_at = timezone.now()

    @step(
        NotificationStatus.LEGAL_ASSESSMENT,
        NotificationStatus.CLOSED,
        _("Close: not supported"),
        by=police_or_coordinator,
    )
    @when(legal_assessment_refuses)
    def reject(self) -> None:
        self.close_reason = NotificationCloseReason.NOT_LAWFUL

    @step(
        NotificationStatus.APPROVED,
        NotificationStatus.SCHEDULED,
        _("Schedule the visit"),
        by=police,
    )
    @when(visit_scheduled, non_police_messenger)
    def schedule(self) -> None:
        """Date, time and delivery team set."""

    @step(NotificationStatus.SCHEDULED, NotificationStatus.DELIVERED, _("Delivered"), by=police)
    @when(legal_assessment_supports, non_police_messenger, offer_recorded)
    def deliver(self) -> None:
        self.delivered_at = timezone.now()
        hours = settings.SAMVERKAN["GVI_NOTIFICATION_FOLLOWUP_HOURS"]
        self.follow_up_due = self.delivered_at + datetime.timedelta(hours=hours)

    @step(NotificationStatus.SCHEDULED, NotificationStatus.NOT_REACHED, _("Not reached"), by=police)
    def not_reached(self) -> None:
        self.attempts += 1
        self.scheduled_for = None

    @step(NotificationStatus.NOT_REACHED, NotificationStatus.SCHEDULED, _("Try again"), by=police)
    @when(retry_left, visit_scheduled, non_police_messenger)
    def retry(self) -> None:
        """A new visit within the limit of attempts."""

    @step(
        NotificationStatus.NOT_REACHED,
        NotificationStatus.CLOSED,
        _("Close: not reached"),
        by=police_or_coordinator,
    )
    def give_up(self) -> None:
        self.close_reason = NotificationCloseReason.NOT_REACHED

    @step(
        NotificationStatus.DELIVERED,
        NotificationStatus.FOLLOW_UP,
        _("Start the follow-up"),
        by=gvi_staff,
    )
    def begin_follow_up(self) -> None:
        """Contact the member again about the offer of help."""

    @step(
        NotificationStatus.FOLLOW_UP,
        NotificationStatus.CLOSED,
        _("Close after the follow-up"),
        by=gvi_staff,
    )
    @when(follow_up_recorded)
    def close(self) -> None:
        self.close_reason = NotificationCloseReason.FOLLOWED_UP


class DeliveryTeamMember(models.Model):
    """Who goes on the visit: an officer, a social worker, a community representative …
    (their role title, as for call-in speakers)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    notification = models.ForeignKey(
        CustomNotification, on_delete=models.CASCADE, related_name="messengers"
    )
    kind = models.CharField(_("messenger"), max_length=20, choices=MessengerKind.choices)
    description = models.CharField(_("who"), max_length=200)

    class Meta:
        verbose_name = _("messenger")
        verbose_name_plural = _("delivery team")

    def __str__(self) -> str:
        return f"Messenger {self.pk}"
