"""What an approval of an API client covers, and its OAuth side: application, secret, tokens.

``api_client_state`` is what a second administrator approves (its digest is the client's
``approved_digest``, ``casework.services.administration``); the client service
(``casework.services.api_clients``) builds on this module, which imports neither.

An :class:`~casework.models.ApiClient` authenticates with django-oauth-toolkit's
``Application`` (confidential, client-credentials grant). The application is made when a
second administrator first approves the client (``casework.services.administration``),
and a new secret only on another approved request. The secret is generated here, stored
only as a hash (``hash_client_secret``: Django's password hasher) and returned once to
the caller, who shows it to the approving administrator: never stored in clear, never
logged, never in an access-log event (docs/adr/0022-integration-api.md).

No checks of rights here: the callers (the four-eyes approval, deactivation) make them.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
)

from casework.models import ApiClient

Application = get_application_model()


def api_client_state(client: ApiClient) -> dict[str, Any]:
    """What decides what a client system may do: its name, organisation, scopes, rate limit
    and OAuth application (all but its on/off switch); an approval covers exactly this."""
    return {
        "name": client.name,
        "organisation": client.organisation_id,
        "application": client.application_id,
        "scopes": sorted(client.scope_set),
        "rate_limit": client.rate_limit,
    }


def issue_application(client: ApiClient) -> str:
    """Make ``client``'s OAuth application (confidential, client credentials, hashed
    secret) and link it; returns the secret, which exists nowhere else afterwards."""
    secret = generate_client_secret()
    application = Application.objects.create(
        name=client.name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    client.application = application
    client.save(update_fields=["application"])
    return secret


def replace_secret(client: ApiClient, secret: str | None = None) -> str:
    """Give ``client``'s application a new secret (hashed; ``secret`` or a generated one)
    and revoke its tokens: the old secret and every token made with it stop at once."""
    secret = secret or generate_client_secret()
    application = Application.objects.select_for_update().get(pk=client.application_id)
    application.client_secret = secret
    application.hash_client_secret = True
    application.save(update_fields=["client_secret", "hash_client_secret"])
    revoke_tokens(client)
    return secret


def revoke_tokens(client: ApiClient) -> int:
    """Delete ``client``'s access (and any refresh) tokens; returns how many access tokens."""
    if client.application_id is None:
        return 0
    get_refresh_token_model().objects.filter(application_id=client.application_id).delete()
    model = get_access_token_model()
    _total, by_model = model.objects.filter(application_id=client.application_id).delete()
    return by_model.get(model._meta.label, 0)
