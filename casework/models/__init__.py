"""The core's models: accounts, persons and cases; every model is importable from here."""

from casework.models.accounts import (
    AdminChangeRequest,
    Capability,
    ExternalIdentity,
    IdentityProvider,
    IdentityProviderOrganisation,
    Organisation,
    User,
)
from casework.models.cases import (
    Action,
    BreakGlassAccess,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseLink,
    CaseMembership,
    Consent,
    LegalBasis,
    Reminder,
)
from casework.models.persons import DataKey, Guardian, Person

__all__ = [
    "Action",
    "AdminChangeRequest",
    "BreakGlassAccess",
    "Capability",
    "Case",
    "CaseDecision",
    "CaseEvent",
    "CaseLegalBasis",
    "CaseLink",
    "CaseMembership",
    "Consent",
    "DataKey",
    "ExternalIdentity",
    "Guardian",
    "IdentityProvider",
    "IdentityProviderOrganisation",
    "LegalBasis",
    "Organisation",
    "Person",
    "Reminder",
    "User",
]
