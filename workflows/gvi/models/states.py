"""The states of GVI's objects and the choices of their fields."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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


FOLLOW_UP_PENDING_STATES = (NotificationStatus.DELIVERED, NotificationStatus.FOLLOW_UP)


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
