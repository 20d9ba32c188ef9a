"""GVI — gruppvåldsintervention ("Sluta skjut"): groups, members, incidents, call-ins,
custom notifications and sanctions; each object's state machine and the flows, top-down.

Groups that shoot are mapped; their members get the message — at a **call-in**
(a meeting with a moral voice, a law-enforcement voice and an offer of help) or
in a **custom notification** (a one-to-one visit by police and a non-police
messenger, after a police legal assessment and the coordinator's approval of
the message); a group that keeps shooting gets swift, group-wide **sanctions**
from every agency's levers; a member who wants out gets support (a linked SIG
or defector referral).

* **The state machines** (django-fsm-2): :class:`Group`, :class:`GroupMember`,
  :class:`CallIn`, :class:`CustomNotification`, :class:`Sanction`. Each transition
  names who may take it (``permission``) and its guards (``conditions``, each
  with the message the user sees). An :class:`Incident` has no states: police
  record it, and linking it to a monitored group moves the group.
* **The flows** (viewflow): :class:`GviNotificationFlow` (request → police legal
  assessment → coordinator approval → scheduling and delivery → follow-up),
  :class:`GviCallInFlow` (planning → holding → follow-up),
  :class:`GviMinorNoticeFlow` (a member under 18: a task in social services' queue) and
  :class:`GviReferralNoticeFlow` (an accepted offer of help: the referral it opened waits
  in social services' queue until a named participant takes it up and joins the case's team).
* Every transition goes through ``workflows.gvi.services.transition`` (permission,
  guards, row lock and version, atomic save, timeline, access-log event). GVI
  objects are not cases: a group is not a person's case.

State diagrams::

    Group:        identified → mapped → message_delivered → monitored ⇄ incident_linked
                  incident_linked → sanction_decided → sanction_active → sanction_ended
                  sanction_ended → monitored → dormant
                  sanction_decided → incident_linked (every lever withdrawn)
    Member:       identified → selected → message_delivered → offer_accepted | offer_declined
    Call-in:      planned → attendees_selected → invited → held → followed_up
                  (planned | attendees_selected | invited) → cancelled
    Notification: requested → legal_assessment → approved → scheduled → delivered → follow_up
                  → closed; scheduled → not_reached → scheduled (retry, limited) | closed
    Sanction:     proposed → decided → executed → reported   (per agency lever)
                  (proposed | decided) → withdrawn
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.lock import select_for_update_lock
from viewflow.workflow.models import Process

from casework import policy
from casework.fields import EncryptedTextField
from casework.models import Case, Organisation, Person
from workflows.common.nodes import Step

# --- Who may take a transition (django-fsm ``permission``) ----------------------------------


def coordinator(obj, user) -> bool:
    """The GVI coordinator (``samordnare``)."""
    return policy.coordinates_gvi(user)


def police_or_coordinator(obj, user) -> bool:
    return policy.coordinates_gvi(user) or policy.gvi_police(user)


def police(obj, user) -> bool:
    return policy.gvi_police(user)


def gvi_staff(obj, user) -> bool:
    """Anyone who takes part in GVI: police, the coordinator, named social-services participants."""
    return bool(policy.gvi_access(user))


def owning_organisation(sanction, user) -> bool:
    """A sanction is recorded by the organisation whose lever it is, and by no one else."""
    return policy.may_record_sanction(user, sanction)


def owning_organisation_or_coordinator(sanction, user) -> bool:
    """A lever that will not be carried out is withdrawn by its organisation or the coordinator."""
    return policy.may_withdraw_sanction(user, sanction)


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def _guard(message):
    def decorate(func):
        func.message = message
        return func

    return decorate


# --- Groups -------------------------------------------------------------------------------------


class GroupStatus(models.TextChoices):
    IDENTIFIED = "identified", _("Identified")
    MAPPED = "mapped", _("Mapped")
    MESSAGE_DELIVERED = "message_delivered", _("Message delivered")
    MONITORED = "monitored", _("Monitored")
    INCIDENT_LINKED = "incident_linked", _("Incident linked")
    SANCTION_DECIDED = "sanction_decided", _("Sanctions decided")
    SANCTION_ACTIVE = "sanction_active", _("Sanctions active")
    SANCTION_ENDED = "sanction_ended", _("Sanctions ended")
    DORMANT = "dormant", _("Dormant")


# The group has had the message from these states on.
MESSAGE_RECEIVED_STATES = (
    GroupStatus.MESSAGE_DELIVERED,
    GroupStatus.MONITORED,
    GroupStatus.INCIDENT_LINKED,
    GroupStatus.SANCTION_DECIDED,
    GroupStatus.SANCTION_ACTIVE,
    GroupStatus.SANCTION_ENDED,
    GroupStatus.DORMANT,
)


class SizeBand(models.TextChoices):
    SMALL = "1-5", _("1-5 members")
    MEDIUM = "6-15", _("6-15 members")
    LARGE = "16-30", _("16-30 members")
    VERY_LARGE = "31+", _("31 or more members")


@_guard(_("Register at least one member of the group first."))
def has_member(group: Group) -> bool:
    return group.members.exists()


@_guard(_("No member of the group has received the message yet."))
def a_member_has_the_message(group: Group) -> bool:
    return group.members.filter(status__in=MEMBER_MESSAGE_STATES).exists()


@_guard(_("The group has not received the message: sanctions come only after the message."))
def group_received_message(group: Group) -> bool:
    return group.message_delivered_at is not None


@_guard(_("No incident is linked to the group."))
def incident_linked(group: Group) -> bool:
    return group.incidents.exists()


@_guard(_("Record the sanction decision first: who decided, when and which agencies' levers."))
def sanction_decision_recorded(group: Group) -> bool:
    decision = group.open_decision()
    return (
        decision is not None
        and decision.incident.groups.filter(pk=group.pk).exists()
        and decision.sanctions.exists()
    )


@_guard(_("No sanction lever has been executed yet."))
def a_lever_executed(group: Group) -> bool:
    decision = group.open_decision()
    return (
        decision is not None
        and decision.sanctions.filter(
            status__in=(SanctionStatus.EXECUTED, SanctionStatus.REPORTED)
        ).exists()
    )


@_guard(_("Every sanction lever must be reported (or withdrawn) before the sanctions end."))
def every_lever_reported(group: Group) -> bool:
    decision = group.open_decision()
    return (
        decision is not None
        and not decision.sanctions.exclude(
            status__in=(SanctionStatus.REPORTED, SanctionStatus.WITHDRAWN)
        ).exists()
    )


@_guard(_("Not every sanction lever has been withdrawn."))
def every_lever_withdrawn(group: Group) -> bool:
    decision = group.open_decision()
    return (
        decision is not None
        and decision.sanctions.exists()
        and not decision.sanctions.exclude(status=SanctionStatus.WITHDRAWN).exists()
    )


class Group(ConcurrentTransitionMixin, models.Model):
    """A criminal group. Name and notes are encrypted under the group's own data key;
    area and size band are plain for statistics."""

    Status = GroupStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(_("group number"), max_length=20, unique=True, editable=False)
    name = EncryptedTextField(_("name"))
    notes = EncryptedTextField(_("notes"))
    area = models.CharField(_("area"), max_length=30, choices=Person.Area.choices)
    size_band = models.CharField(_("size"), max_length=10, choices=SizeBand.choices)
    status = FSMField(
        _("status"),
        default=GroupStatus.IDENTIFIED,
        choices=GroupStatus.choices,
        protected=True,
        db_index=True,
    )
    message_delivered_at = models.DateTimeField(_("message delivered"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), default=timezone.now, editable=False)
    # Set when the group was erased: its data key destroyed, its name and notes gone.
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    ENCRYPTED_FIELDS = ("name", "notes")

    class Meta:
        verbose_name = _("GVI group")
        verbose_name_plural = _("GVI groups")
        ordering = ["reference"]

    def __str__(self) -> str:
        return self.reference

    def open_decision(self) -> SanctionDecision | None:
        return self.sanction_decisions.filter(ended_at__isnull=True).order_by("-decided_at").first()

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
        decision = self.open_decision()
        decision.ended_at = timezone.now()
        decision.save(update_fields=["ended_at"])

    @transition(
        status,
        source=GroupStatus.SANCTION_ACTIVE,
        target=GroupStatus.SANCTION_ENDED,
        permission=coordinator,
        conditions=[every_lever_reported],
        custom={"label": _("End the sanctions")},
    )
    def end_sanctions(self) -> None:
        decision = self.open_decision()
        decision.ended_at = timezone.now()
        decision.save(update_fields=["ended_at"])

    @transition(
        status,
        source=GroupStatus.MONITORED,
        target=GroupStatus.DORMANT,
        permission=coordinator,
        custom={"label": _("Dormant")},
    )
    def go_dormant(self) -> None:
        """No activity: the group is no longer followed actively."""


class GviParticipation(models.Model):  # noqa: DJ008 (never instantiated)
    """Holder of the GVI permission for named social-services participants.

    Unmanaged and without a table, like ``casework.Capability``: granting a social
    worker ``workflows.take_part_in_gvi`` (per user, by an administrator) names
    them a participant.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("take_part_in_gvi", _("Takes part in GVI for social services (named participant)"))
        ]


# --- Members ------------------------------------------------------------------------------------


class MemberStatus(models.TextChoices):
    IDENTIFIED = "identified", _("Identified")
    SELECTED = "selected", _("Selected")
    MESSAGE_DELIVERED = "message_delivered", _("Message delivered")
    OFFER_ACCEPTED = "offer_accepted", _("Offer accepted")
    OFFER_DECLINED = "offer_declined", _("Offer declined")


MEMBER_MESSAGE_STATES = (
    MemberStatus.MESSAGE_DELIVERED,
    MemberStatus.OFFER_ACCEPTED,
    MemberStatus.OFFER_DECLINED,
)


class ReferralProgramme(models.TextChoices):
    SIG = "sig", _("SIG")
    DEFECTOR = "defector", _("Defector programme")


@_guard(_("The group must be mapped before members are selected."))
def group_mapped(member: GroupMember) -> bool:
    return member.group.status != GroupStatus.IDENTIFIED


@_guard(_("The member has neither attended a held call-in nor had a delivered notification."))
def message_source_recorded(member: GroupMember) -> bool:
    return (
        member.attendances.filter(attended=True, call_in__status__in=CALL_IN_HELD_STATES).exists()
        or member.notifications.filter(delivered_at__isnull=False).exists()
    )


@_guard(_("The referral to SIG or the defector programme has not been opened."))
def referral_opened(member: GroupMember) -> bool:
    return member.referral_case_id is not None


class GroupMember(ConcurrentTransitionMixin, models.Model):
    """A person in a group. The person's data stays under the person's own key."""

    Status = MemberStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="members")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="gvi_memberships")
    status = FSMField(
        _("status"),
        default=MemberStatus.IDENTIFIED,
        choices=MemberStatus.choices,
        protected=True,
        db_index=True,
    )
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
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        verbose_name = _("group member")
        verbose_name_plural = _("group members")
        ordering = ["added_at"]
        constraints = [
            models.UniqueConstraint(fields=["group", "person"], name="gvi_member_once_per_group")
        ]

    def __str__(self) -> str:
        return f"Member {self.pk}"

    @transition(
        status,
        source=MemberStatus.IDENTIFIED,
        target=MemberStatus.SELECTED,
        permission=police_or_coordinator,
        conditions=[group_mapped],
        custom={"label": _("Select for the message")},
    )
    def select(self) -> None:
        """Chosen to receive the message (influence over the group)."""

    @transition(
        status,
        source=MemberStatus.SELECTED,
        target=MemberStatus.MESSAGE_DELIVERED,
        permission=police_or_coordinator,
        conditions=[message_source_recorded],
        custom={"label": _("Message delivered")},
    )
    def deliver_message(self) -> None:
        """At a call-in or in a custom notification."""

    @transition(
        status,
        source=MemberStatus.MESSAGE_DELIVERED,
        target=MemberStatus.OFFER_ACCEPTED,
        permission=gvi_staff,
        conditions=[referral_opened],
        custom={"label": _("Offer of help accepted")},
    )
    def accept_offer(self) -> None:
        """A SIG or defector referral is opened and linked."""

    @transition(
        status,
        source=MemberStatus.MESSAGE_DELIVERED,
        target=MemberStatus.OFFER_DECLINED,
        permission=gvi_staff,
        custom={"label": _("Offer of help declined")},
    )
    def decline_offer(self) -> None:
        """The offer stands; the member said no for now."""


# --- Incidents ------------------------------------------------------------------------------------


class Incident(models.Model):
    """A shooting, an explosion, a serious assault …: police record it and link groups.

    No free text and no person: date, area and type are what the mapping and the
    statistics need.
    """

    class Kind(models.TextChoices):
        SHOOTING = "shooting", _("Shooting")
        EXPLOSION = "explosion", _("Explosion")
        SERIOUS_ASSAULT = "serious_assault", _("Serious assault")
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    date = models.DateField(_("date"))
    area = models.CharField(_("area"), max_length=30, choices=Person.Area.choices)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    groups = models.ManyToManyField(Group, verbose_name=_("groups"), related_name="incidents")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-date", "-recorded_at"]

    def __str__(self) -> str:
        return f"Incident {self.pk}"


# --- Call-ins -------------------------------------------------------------------------------------


class CallInStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    ATTENDEES_SELECTED = "attendees_selected", _("Attendees selected")
    INVITED = "invited", _("Invited")
    HELD = "held", _("Held")
    FOLLOWED_UP = "followed_up", _("Followed up")
    CANCELLED = "cancelled", _("Cancelled")


CALL_IN_HELD_STATES = (CallInStatus.HELD, CallInStatus.FOLLOWED_UP)
CALL_IN_OPEN_STATES = (
    CallInStatus.PLANNED,
    CallInStatus.ATTENDEES_SELECTED,
    CallInStatus.INVITED,
)


class SpeakerRole(models.TextChoices):
    MORAL = "moral", _("Moral / community voice")
    LAW_ENFORCEMENT = "law_enforcement", _("Law enforcement")
    OFFER_OF_HELP = "offer_of_help", _("Offer of help")


class CancelReason(models.TextChoices):
    RESCHEDULED = "rescheduled", _("Moved to a new date")
    SAFETY = "safety", _("Safety")
    TOO_FEW = "too_few", _("Too few attendees")
    OTHER = "other", _("Other")


@_guard(_("Select at least one attendee."))
def has_attendees(call_in: CallIn) -> bool:
    return call_in.attendees.exists()


@_guard(_("Every speaker role must be filled: moral voice, law enforcement, offer of help."))
def speakers_filled(call_in: CallIn) -> bool:
    filled = set(call_in.speakers.values_list("role", flat=True))
    return filled >= set(SpeakerRole.values)


@_guard(_("Record the attendance of every attendee; at least one must have attended."))
def attendance_recorded(call_in: CallIn) -> bool:
    attendance = list(call_in.attendees.values_list("attended", flat=True))
    return bool(attendance) and None not in attendance and any(attendance)


@_guard(_("Every attendee who came must have had the follow-up contact."))
def every_attendee_followed_up(call_in: CallIn) -> bool:
    return not call_in.attendees.filter(attended=True, followed_up_at__isnull=True).exists()


class CallIn(ConcurrentTransitionMixin, models.Model):
    """A call-in meeting: selected members hear the three messages from the speakers."""

    Status = CallInStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(_("call-in number"), max_length=20, unique=True, editable=False)
    date = models.DateField(_("date"))
    status = FSMField(
        _("status"),
        default=CallInStatus.PLANNED,
        choices=CallInStatus.choices,
        protected=True,
        db_index=True,
    )
    cancel_reason = models.CharField(
        _("cancel reason"), max_length=20, choices=CancelReason.choices, blank=True
    )
    held_at = models.DateTimeField(_("held"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("planned"), default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        verbose_name = _("call-in")
        verbose_name_plural = _("call-ins")
        ordering = ["-date"]

    def __str__(self) -> str:
        return self.reference

    @transition(
        status,
        source=CallInStatus.PLANNED,
        target=CallInStatus.ATTENDEES_SELECTED,
        permission=coordinator,
        conditions=[has_attendees],
        custom={"label": _("Attendees selected")},
    )
    def select_attendees(self) -> None:
        """The attendees are chosen for their influence over their groups."""

    @transition(
        status,
        source=CallInStatus.ATTENDEES_SELECTED,
        target=CallInStatus.INVITED,
        permission=coordinator,
        conditions=[has_attendees],
        custom={"label": _("Invitations sent")},
    )
    def invite(self) -> None:
        """Invited (with their probation officers, where they have one)."""

    @transition(
        status,
        source=CallInStatus.INVITED,
        target=CallInStatus.HELD,
        permission=coordinator,
        conditions=[speakers_filled, attendance_recorded],
        custom={"label": _("Call-in held")},
    )
    def hold(self) -> None:
        self.held_at = timezone.now()

    @transition(
        status,
        source=CallInStatus.HELD,
        target=CallInStatus.FOLLOWED_UP,
        permission=gvi_staff,
        conditions=[every_attendee_followed_up],
        custom={"label": _("Follow-up done")},
    )
    def complete_follow_up(self) -> None:
        """Everyone who came has had the follow-up contact."""

    @transition(
        status,
        source=list(CALL_IN_OPEN_STATES),
        target=CallInStatus.CANCELLED,
        permission=coordinator,
        custom={"label": _("Cancel the call-in")},
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


# --- Custom notifications -------------------------------------------------------------------------


class NotificationStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    LEGAL_ASSESSMENT = "legal_assessment", _("Legal assessment")
    APPROVED = "approved", _("Approved")
    SCHEDULED = "scheduled", _("Scheduled")
    DELIVERED = "delivered", _("Delivered")
    NOT_REACHED = "not_reached", _("Not reached")
    FOLLOW_UP = "follow_up", _("Follow-up")
    CLOSED = "closed", _("Closed")


class MemberResponse(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted the offer of help")
    DECLINED = "declined", _("Declined the offer of help")
    UNDECIDED = "undecided", _("Wants to think about it")


class MessengerKind(models.TextChoices):
    POLICE = "police", _("Police")
    SOCIAL_SERVICES = "social_services", _("Social services")
    COMMUNITY = "community", _("Community representative")
    OTHER = "other", _("Other")


class NotificationCloseReason(models.TextChoices):
    FOLLOWED_UP = "followed_up", _("Followed up")
    NOT_LAWFUL = "not_lawful", _("Not supported by the legal assessment")
    NOT_REACHED = "not_reached", _("Not reached")


@_guard(_("The police legal assessment has not been recorded."))
def legal_assessment_recorded(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None


@_guard(_("The police legal assessment does not support the notification."))
def legal_assessment_supports(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None and notification.lawful is True


@_guard(_("The legal assessment supports the notification: approve or reschedule instead."))
def legal_assessment_refuses(notification: CustomNotification) -> bool:
    return notification.legal_assessed_at is not None and notification.lawful is False


@_guard(_("Write the message before approving it."))
def message_written(notification: CustomNotification) -> bool:
    return notification.message is not None


@_guard(_("Set the date and time of the visit."))
def visit_scheduled(notification: CustomNotification) -> bool:
    return notification.scheduled_for is not None


@_guard(_("The delivery team must include a messenger who is not police."))
def non_police_messenger(notification: CustomNotification) -> bool:
    return notification.messengers.exclude(kind=MessengerKind.POLICE).exists()


@_guard(_("Record the offer of help and the member's response."))
def offer_recorded(notification: CustomNotification) -> bool:
    return notification.offer_of_help is not None and bool(notification.response)


@_guard(_("The limit of delivery attempts has been reached."))
def retry_left(notification: CustomNotification) -> bool:
    return notification.attempts < settings.SAMVERKAN["GVI_NOTIFICATION_MAX_ATTEMPTS"]


@_guard(_("Record the follow-up contact first."))
def follow_up_recorded(notification: CustomNotification) -> bool:
    return notification.followed_up_at is not None


class CustomNotification(ConcurrentTransitionMixin, models.Model):
    """A one-to-one message to a member, delivered in person by police and a non-police
    messenger, with an offer of help. Texts are encrypted under the member's person key."""

    Status = NotificationStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(_("notification number"), max_length=20, unique=True)
    member = models.ForeignKey(GroupMember, on_delete=models.PROTECT, related_name="notifications")
    status = FSMField(
        _("status"),
        default=NotificationStatus.REQUESTED,
        choices=NotificationStatus.choices,
        protected=True,
        db_index=True,
    )
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
    version = models.PositiveIntegerField(default=1, editable=False)

    ENCRYPTED_FIELDS = ("legal_assessment", "message", "offer_of_help", "follow_up_note")

    class Meta:
        verbose_name = _("custom notification")
        verbose_name_plural = _("custom notifications")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return self.reference

    @transition(
        status,
        source=NotificationStatus.REQUESTED,
        target=NotificationStatus.LEGAL_ASSESSMENT,
        permission=police,
        custom={"label": _("Start the legal assessment")},
    )
    def begin_assessment(self) -> None:
        """Police review the member's legal history and vulnerabilities first."""

    @transition(
        status,
        source=NotificationStatus.LEGAL_ASSESSMENT,
        target=NotificationStatus.APPROVED,
        permission=coordinator,
        conditions=[legal_assessment_supports, message_written],
        custom={"label": _("Approve the message")},
    )
    def approve(self, *, approved_by) -> None:
        self.approved_by = approved_by
        self.approved_at = timezone.now()

    @transition(
        status,
        source=NotificationStatus.LEGAL_ASSESSMENT,
        target=NotificationStatus.CLOSED,
        permission=police_or_coordinator,
        conditions=[legal_assessment_refuses],
        custom={"label": _("Close: not supported")},
    )
    def reject(self) -> None:
        self.close_reason = NotificationCloseReason.NOT_LAWFUL

    @transition(
        status,
        source=NotificationStatus.APPROVED,
        target=NotificationStatus.SCHEDULED,
        permission=police,
        conditions=[visit_scheduled, non_police_messenger],
        custom={"label": _("Schedule the visit")},
    )
    def schedule(self) -> None:
        """Date, time and delivery team set."""

    @transition(
        status,
        source=NotificationStatus.SCHEDULED,
        target=NotificationStatus.DELIVERED,
        permission=police,
        conditions=[legal_assessment_supports, non_police_messenger, offer_recorded],
        custom={"label": _("Delivered")},
    )
    def deliver(self) -> None:
        self.delivered_at = timezone.now()
        hours = settings.SAMVERKAN["GVI_NOTIFICATION_FOLLOWUP_HOURS"]
        self.follow_up_due = self.delivered_at + datetime.timedelta(hours=hours)

    @transition(
        status,
        source=NotificationStatus.SCHEDULED,
        target=NotificationStatus.NOT_REACHED,
        permission=police,
        custom={"label": _("Not reached")},
    )
    def not_reached(self) -> None:
        self.attempts += 1
        self.scheduled_for = None

    @transition(
        status,
        source=NotificationStatus.NOT_REACHED,
        target=NotificationStatus.SCHEDULED,
        permission=police,
        conditions=[retry_left, visit_scheduled, non_police_messenger],
        custom={"label": _("Try again")},
    )
    def retry(self) -> None:
        """A new visit within the limit of attempts."""

    @transition(
        status,
        source=NotificationStatus.NOT_REACHED,
        target=NotificationStatus.CLOSED,
        permission=police_or_coordinator,
        custom={"label": _("Close: not reached")},
    )
    def give_up(self) -> None:
        self.close_reason = NotificationCloseReason.NOT_REACHED

    @transition(
        status,
        source=NotificationStatus.DELIVERED,
        target=NotificationStatus.FOLLOW_UP,
        permission=gvi_staff,
        custom={"label": _("Start the follow-up")},
    )
    def begin_follow_up(self) -> None:
        """Contact the member again about the offer of help."""

    @transition(
        status,
        source=NotificationStatus.FOLLOW_UP,
        target=NotificationStatus.CLOSED,
        permission=gvi_staff,
        conditions=[follow_up_recorded],
        custom={"label": _("Close after the follow-up")},
    )
    def close(self) -> None:
        self.close_reason = NotificationCloseReason.FOLLOWED_UP


FOLLOW_UP_PENDING_STATES = (NotificationStatus.DELIVERED, NotificationStatus.FOLLOW_UP)


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


# --- Sanctions ------------------------------------------------------------------------------------


class SanctionStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    DECIDED = "decided", _("Decided")
    EXECUTED = "executed", _("Executed")
    REPORTED = "reported", _("Reported")
    # A lever (påverkansmedel) is withdrawn, as it is proposed, decided, executed …
    WITHDRAWN = "withdrawn", pgettext_lazy("sanction", "Withdrawn")


# A lever that will not be carried out can be withdrawn until it is executed.
SANCTION_WITHDRAWABLE_STATES = (SanctionStatus.PROPOSED, SanctionStatus.DECIDED)


class Lever(models.TextChoices):
    POLICE_CHECKS = "police_checks", _("Targeted police checks")
    TRAFFIC = "traffic", _("Traffic enforcement")
    TAX = "tax", _("Tax audit")
    ENFORCEMENT = "enforcement", _("Debt enforcement")
    HOUSING = "housing", _("Housing")
    PROBATION = "probation", _("Probation conditions")
    BENEFITS = "benefits", _("Benefits control")
    OTHER = "other", _("Other")


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


@_guard(_("The group's sanctions are not in force."))
def sanctions_in_force(sanction: Sanction) -> bool:
    return sanction.decision.ended_at is None and sanction.decision.group.status in (
        GroupStatus.SANCTION_DECIDED,
        GroupStatus.SANCTION_ACTIVE,
    )


class Sanction(ConcurrentTransitionMixin, models.Model):
    """One agency's lever in a group-wide sanction, recorded by that agency only."""

    Status = SanctionStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    decision = models.ForeignKey(
        SanctionDecision, on_delete=models.PROTECT, related_name="sanctions"
    )
    lever = models.CharField(_("lever"), max_length=20, choices=Lever.choices)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("agency"), on_delete=models.PROTECT, related_name="+"
    )
    status = FSMField(
        _("status"),
        default=SanctionStatus.PROPOSED,
        choices=SanctionStatus.choices,
        protected=True,
        db_index=True,
    )
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
    version = models.PositiveIntegerField(default=1, editable=False)

    ENCRYPTED_FIELDS = ("withdraw_reason",)

    class Meta:
        verbose_name = _("sanction")
        verbose_name_plural = _("sanctions")
        constraints = [
            models.UniqueConstraint(fields=["decision", "lever"], name="gvi_sanction_lever_once")
        ]

    def __str__(self) -> str:
        return f"Sanction {self.pk}"

    @transition(
        status,
        source=SanctionStatus.PROPOSED,
        target=SanctionStatus.DECIDED,
        permission=owning_organisation,
        conditions=[sanctions_in_force],
        custom={"label": _("Decide the lever")},
    )
    def decide(self, *, by) -> None:
        self.decided_at = timezone.now()
        self.recorded_by = by

    @transition(
        status,
        source=SanctionStatus.DECIDED,
        target=SanctionStatus.EXECUTED,
        permission=owning_organisation,
        conditions=[sanctions_in_force],
        custom={"label": _("Executed")},
    )
    def execute(self, *, by) -> None:
        self.executed_at = timezone.now()
        self.recorded_by = by

    @transition(
        status,
        source=SanctionStatus.EXECUTED,
        target=SanctionStatus.REPORTED,
        permission=owning_organisation,
        custom={"label": _("Reported")},
    )
    def report(self, *, by) -> None:
        self.reported_at = timezone.now()
        self.recorded_by = by

    @transition(
        status,
        source=list(SANCTION_WITHDRAWABLE_STATES),
        target=SanctionStatus.WITHDRAWN,
        permission=owning_organisation_or_coordinator,
        conditions=[sanctions_in_force],
        custom={"label": _("Withdraw the lever")},
    )
    def withdraw(self, *, by, reason) -> None:
        """The lever will not be carried out. ``reason``: sealed by the service."""
        self.withdrawn_at = timezone.now()
        self.withdraw_reason = reason
        self.recorded_by = by


# --- The timeline -------------------------------------------------------------------------------


class GviEvent(models.Model):
    """The GVI timeline the participants see (the access log is the auditors' record).

    Holds no free text: what happened, to which object, by whom and when. Every
    event of a group's members, notifications and sanctions names the group, so
    the group page shows them all.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    object_type = models.CharField(max_length=50)
    object_id = models.UUIDField()
    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    transition = models.CharField(max_length=50)
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.transition}"


# --- The flows ------------------------------------------------------------------------------------


class GviNotificationProcess(Process):
    """The viewflow process of one custom notification."""

    notification = models.OneToOneField(
        CustomNotification,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="process",
    )

    class Meta:
        verbose_name = _("custom notification process")
        verbose_name_plural = _("custom notification processes")
        ordering = ["-created"]


class GviCallInProcess(Process):
    """The viewflow process of one call-in."""

    call_in = models.OneToOneField(
        CallIn, on_delete=models.PROTECT, null=True, blank=True, related_name="process"
    )

    class Meta:
        verbose_name = _("call-in process")
        verbose_name_plural = _("call-in processes")
        ordering = ["-created"]


class GviMinorNoticeProcess(Process):
    """Social services are told that a person under 18 is registered in a group."""

    member = models.OneToOneField(
        GroupMember, on_delete=models.PROTECT, null=True, blank=True, related_name="minor_process"
    )

    class Meta:
        verbose_name = _("notice of a member under 18")
        verbose_name_plural = _("notices of members under 18")
        ordering = ["-created"]


class GviReferralNoticeProcess(Process):
    """A member accepted the offer of help: social services take up the referral opened
    for them (SIG or defector programme) within ``due``."""

    accepted_member = models.OneToOneField(
        GroupMember,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="referral_notice",
    )
    due = models.DateTimeField(_("take up by"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("accepted offer of help")
        verbose_name_plural = _("accepted offers of help")
        ordering = ["-created"]


PERM_GVI_PARTICIPANT = "workflows.take_part_in_gvi"


def _police_officer(activation):
    return activation.process.notification.police_officer


def _notification_in(*states):
    return lambda activation: activation.process.notification.status in states


def _call_in_in(*states):
    return lambda activation: activation.process.call_in.status in states


# The task views of these flows (they import the models above).
from workflows.gvi import views  # noqa: E402


def _police_performer(user, task) -> bool:
    """The notification's police steps: a police officer in GVI."""
    return policy.gvi_police(user)


class _GviFlow(flow.Flow):
    lock_impl = select_for_update_lock
    coordinator_permission = "casework.coordinate_cases"

    def has_view_permission(self, user, obj=None):
        """GVI participants see the flows (their inbox); no one else."""
        return bool(policy.gvi_access(user))

    def has_manage_permission(self, user, obj=None):
        return False


class GviNotificationFlow(_GviFlow):
    """Who does each step of a custom notification, in order."""

    process_class = GviNotificationProcess
    process_title = _("Custom notification")
    process_description = _("GVI: a one-to-one message with an offer of help.")
    process_summary_template = (
        "{{ process.notification.reference }} · {{ process.notification.get_status_display }}"
    )

    # Requested from a member's page (``workflows.gvi.services.request_notification``).
    start = flow.StartHandle(this.start_process).Next(this.assess)
    # The responsible police officer records the legal assessment first.
    assess = (
        Step(views.NotificationStepView.as_view(step="assess"), performer=_police_performer)
        .Annotation(title=_("Legal assessment"))
        .Assign(_police_officer)
        .Permission("casework.coordinate_cases")
        .Next(this.after_assessment)
    )
    after_assessment = (
        flow.If(_notification_in(NotificationStatus.LEGAL_ASSESSMENT))
        .Then(this.approve)
        .Else(this.end)
    )
    # The coordinator approves the message.
    approve = (
        Step(views.NotificationStepView.as_view(step="approve"))
        .Annotation(title=_("Approve the message"))
        .Permission("casework.coordinate_cases")
        .Next(this.after_approval)
    )
    after_approval = (
        flow.If(_notification_in(NotificationStatus.APPROVED)).Then(this.deliver).Else(this.end)
    )
    # The police officer schedules the visit with the delivery team and delivers it;
    # not reached: a new visit, within the limit of attempts.
    deliver = (
        Step(views.NotificationStepView.as_view(step="deliver"), performer=_police_performer)
        .Annotation(title=_("Schedule and deliver"))
        .Assign(_police_officer)
        .Permission("casework.coordinate_cases")
        .Next(this.after_delivery)
    )
    after_delivery = (
        flow.If(_notification_in(NotificationStatus.DELIVERED, NotificationStatus.FOLLOW_UP))
        .Then(this.follow_up)
        .Else(this.end)
    )
    # A named social-services participant (or the coordinator) follows up within the deadline.
    follow_up = (
        Step(views.NotificationStepView.as_view(step="follow_up"))
        .Annotation(title=_("Follow up the notification"))
        .Permission(PERM_GVI_PARTICIPANT)
        .Next(this.end)
    )
    end = flow.End()

    def start_process(self, activation, notification: CustomNotification) -> Process:
        activation.process.notification = notification
        return activation.process


class GviCallInFlow(_GviFlow):
    """Planning, holding and following up a call-in."""

    process_class = GviCallInProcess
    process_title = _("Call-in")
    process_description = _("GVI: a call-in meeting with the group members who matter.")
    process_summary_template = (
        "{{ process.call_in.reference }} · {{ process.call_in.get_status_display }}"
    )

    start = flow.StartHandle(this.start_process).Next(this.plan)
    # The coordinator selects attendees and speakers, invites, records attendance and holds it.
    plan = (
        Step(views.CallInStepView.as_view(step="plan"))
        .Annotation(title=_("Plan and hold the call-in"))
        .Permission("casework.coordinate_cases")
        .Next(this.after_meeting)
    )
    after_meeting = flow.If(_call_in_in(CallInStatus.HELD)).Then(this.follow_up).Else(this.end)
    # Follow-up contact with each attendee within the deadline.
    follow_up = (
        Step(views.CallInStepView.as_view(step="follow_up"))
        .Annotation(title=_("Follow up the attendees"))
        .Permission("casework.coordinate_cases")
        .Next(this.end)
    )
    end = flow.End()

    def start_process(self, activation, call_in: CallIn) -> Process:
        activation.process.call_in = call_in
        return activation.process


class GviMinorNoticeFlow(_GviFlow):
    """A member under 18: the named social-services participants get a task."""

    process_class = GviMinorNoticeProcess
    process_title = _("Group member under 18")
    process_description = _("GVI: social services are told of a member under 18.")
    process_summary_template = "{{ process.member.group.reference }}"

    start = flow.StartHandle(this.start_process).Next(this.acknowledge)
    acknowledge = (
        Step(views.MinorNoticeView.as_view())
        .Annotation(title=_("A member under 18 is registered"))
        .Permission(PERM_GVI_PARTICIPANT)
        .Next(this.end)
    )
    end = flow.End()

    def start_process(self, activation, member: GroupMember) -> Process:
        activation.process.member = member
        return activation.process


def referral_take_up_due(start: datetime.datetime) -> datetime.datetime:
    """The promise of help is kept quickly: social services take the referral up within
    the notification follow-up time (``GVI_NOTIFICATION_FOLLOWUP_HOURS``, 48 h)."""
    return start + datetime.timedelta(hours=settings.SAMVERKAN["GVI_NOTIFICATION_FOLLOWUP_HOURS"])


class ParticipantStep(Step):
    """A step in the named social-services participants' queue. The permission alone does
    not make a participant (granted by mistake to a police officer it would): taking the
    task needs :func:`casework.policy.gvi_participant` too."""

    def performer(self, user, task) -> bool:
        perm = task.owner_permission
        return bool(perm) and user.has_perm(perm) and policy.gvi_participant(user)


class GviReferralNoticeFlow(_GviFlow):
    """An accepted offer of help: the referral it opened waits in the named social-services
    participants' queue; the one who takes it up joins the referral case's team."""

    process_class = GviReferralNoticeProcess
    process_title = _("Accepted offer of help")
    process_description = _(
        "GVI: social services take up the referral of a member who accepted the offer of help."
    )
    process_summary_template = (
        "{{ process.accepted_member.referral_case.reference }} · "
        "{{ process.accepted_member.group.reference }}"
    )

    start = flow.StartHandle(this.start_process).Next(this.take_up)
    take_up = (
        ParticipantStep(views.ReferralNoticeView.as_view())
        .Annotation(title=_("Offer of help accepted: take up the referral"))
        .Permission(PERM_GVI_PARTICIPANT)
        .Next(this.end)
    )
    end = flow.End()

    def start_process(self, activation, member: GroupMember) -> Process:
        activation.process.accepted_member = member
        activation.process.due = referral_take_up_due(timezone.now())
        return activation.process

    def done_step_url(self, process, user) -> str | None:
        """Where a taken-up task leads back to: the referral case for its team, else the
        member's page for anyone in GVI."""
        member = process.accepted_member
        if member is None:
            return None
        case = member.referral_case
        if case is not None and policy.case_access(user, case):
            return reverse("arenden:case", kwargs={"case_id": case.pk})
        if policy.gvi_access(user):
            return reverse("gvi:member", args=[member.pk])
        return None


def is_minor(age: int) -> bool:
    return age < 18
