"""Single sign-on: the providers the login page offers (docs/adr/0018-single-sign-on.md)."""

from __future__ import annotations

from casework.models import IdentityProvider
from casework.services.administration import sso_approved


def sign_in_providers() -> list[IdentityProvider]:
    """Active providers whose configuration a second administrator approved."""
    return [
        provider
        for provider in IdentityProvider.objects.filter(is_active=True)
        .exclude(approved_digest="")
        .prefetch_related("identityproviderorganisation_set")
        if sso_approved(provider)
    ]
