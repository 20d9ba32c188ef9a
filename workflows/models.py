"""The programme models live with their flows (``workflows/sig.py`` …); Django finds them here."""

from workflows.sig import SigCase, SigProcess
from workflows.sspf import (
    AgendaItem,
    AnonymisedDiscussion,
    OperationalMeeting,
    PoliceParticipation,
    RiskAssessment,
    SspfCase,
    SspfProcess,
)

__all__ = [
    "AgendaItem",
    "AnonymisedDiscussion",
    "OperationalMeeting",
    "PoliceParticipation",
    "RiskAssessment",
    "SigCase",
    "SigProcess",
    "SspfCase",
    "SspfProcess",
]
