"""The programme models live with their flows (``workflows/sig.py`` …); Django finds them here."""

from workflows.gvi import (
    CallIn,
    CallInAttendee,
    CallInSpeaker,
    CustomNotification,
    DeliveryTeamMember,
    Group,
    GroupMember,
    GviCallInProcess,
    GviEvent,
    GviMinorNoticeProcess,
    GviNotificationProcess,
    GviParticipation,
    Incident,
    Sanction,
    SanctionDecision,
)
from workflows.sig import SigCase, SigProcess

__all__ = [
    "CallIn",
    "CallInAttendee",
    "CallInSpeaker",
    "CustomNotification",
    "DeliveryTeamMember",
    "Group",
    "GroupMember",
    "GviCallInProcess",
    "GviEvent",
    "GviMinorNoticeProcess",
    "GviNotificationProcess",
    "GviParticipation",
    "Incident",
    "Sanction",
    "SanctionDecision",
    "SigCase",
    "SigProcess",
]
