"""A group's member and its state machine."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework.fsm import status_field, step, when
from casework.models import Case, Person, VersionedModel
from workflows.common.guards import guard
from workflows.gvi.models.groups import Group
from workflows.gvi.models.rules import gvi_staff, police_or_coordinator
from workflows.gvi.models.states import (
    CALL_IN_HELD_STATES,
    GroupStatus,
    MemberStatus,
    ReferralProgramme,
)


@guard(_("The group must be mapped before members are selected."))
def group_mapped(member: GroupMember) -> bool:
    return member.group.status != GroupStatus.IDENTIFIED


@guard(_("The member has neither attended a held call-in nor had a delivered notification."))
def message_source_recorded(member: GroupMember) -> bool:
    return (
        member.attendances.filter(attended=True, call_in__status__in=CALL_IN_HELD_STATES).exists()
        or member.notifications.filter(delivered_at__isnull=False).exists()
    )


@guard(_("The referral to SIG or the defector programme has not been opened."))
def referral_opened(member: GroupMember) -> bool:
    return member.referral_case_id is not None


class GroupMember(ConcurrentTransitionMixin, VersionedModel):
    """A person in a group. The person's data stays under the person's own key."""

    Status = MemberStatus

    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="members")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="gvi_memberships")
    status = status_field(MemberStatus, default=MemberStatus.IDENTIFIED)
    # The SIG or defector case opened when the member accepted the offer of help.
    referral_case = models.ForeignKey(
        Case,
        verbose_name=_("referral"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="gvi_referrals",
    )
    referral_programme = models.CharField(
        _("referred to"), max_length=10, choices=ReferralProgramme.choices, blank=True
    )
    minor_notice = models.BooleanField(_("social services notified (under 18)"), default=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField(_("added"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("group member")
        verbose_name_plural = _("group members")
        ordering = ["added_at"]
        constraints = [
            models.UniqueConstraint(fields=["group", "person"], name="gvi_member_once_per_group")
        ]

    def __str__(self) -> str:
        return f"Member {self.pk}"

    @step(
        MemberStatus.IDENTIFIED,
        MemberStatus.SELECTED,
        _("Select for the message"),
        by=police_or_coordinator,
    )
    @when(group_mapped)
    def select(self) -> None:
        """Chosen to receive the message (influence over the group)."""

    @step(
        MemberStatus.SELECTED,
        MemberStatus.MESSAGE_DELIVERED,
        _("Message delivered"),
        by=police_or_coordinator,
    )
    @when(message_source_recorded)
    def deliver_message(self) -> None:
        """At a call-in or in a custom notification."""

    @step(
        MemberStatus.MESSAGE_DELIVERED,
        MemberStatus.OFFER_ACCEPTED,
        _("Offer of help accepted"),
        by=gvi_staff,
    )
    @when(referral_opened)
    def accept_offer(self) -> None:
        """A SIG or defector referral is opened and linked."""

    @step(
        MemberStatus.MESSAGE_DELIVERED,
        MemberStatus.OFFER_DECLINED,
        _("Offer of help declined"),
        by=gvi_staff,
    )
    def decline_offer(self) -> None:
        """The offer stands; the member said no for now."""


def is_minor(age: int) -> bool:
    return age < 18
