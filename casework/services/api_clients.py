"""The integration API's clients: made and widened with four eyes, stopped by one.

An API client is an organisation's own case system (docs/adr/0022-integration-api.md).
Administrators make and change clients here (name, organisation, scopes from
``settings.API_SCOPES``, rate limit); every save is an ``account_change`` event. A client
is **used only while its configuration is exactly what a second administrator approved**
(``api_client_approved``): "request approval" records an ``AdminChangeRequest`` of kind
``api_client`` (``casework.services.administration``: the target's digest, stale requests
refused, never one's own), and any later change takes the client out of use until
approved again (docs/adr/0014-four-eyes-on-power.md).

- **A new client** gets its OAuth application and secret when first approved; the secret
  is shown once, to the approving administrator, as a set-password link is
  (ADR 0014 §6): the one who configured the client never holds its credentials alone.
  Only a hash is stored.
- **A new secret** (a secret lost or leaked) is a four-eyes request as well: whoever holds a
  client's secret can act for any person of its organisation, as far as its scopes reach.
  The approval replaces the secret, revokes the tokens and shows the new secret once, to
  the approver. For a leak, deactivate the client first: that is immediate.
- **Less power is immediate**, as removing a role is (ADR 0014 §3): deactivating a client
  (its tokens are deleted, and ``casework.api.auth`` checks the client on every request)
  and removing scopes from an approved client (the approval is kept for what is left).
  Reactivating restores what was approved, with its old secret: logged, not four-eyed, as
  for accounts (ADR 0014, "Consequences") and identity providers (ADR 0018).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from audit.services import Action, record_event
from casework.models import AdminChangeRequest, ApiClient, Organisation
from casework.services import administration
from casework.services.api_credentials import (
    Application,
    api_client_state,
    replace_secret,
    revoke_tokens,
)

Kind = AdminChangeRequest.Kind
NAME_MAX_LENGTH = 100
# Django REST framework's rates: a number per second, minute, hour or day.
_RATE = re.compile(r"^[1-9][0-9]{0,6}/(s|sec|second|m|min|minute|h|hour|d|day)$")
CONFIGURATION = "configuration"
NEW_SECRET = "new_secret"  # noqa: S105 - the name of an action, not a secret

__all__ = [
    "activate_client",
    "api_client_approved",
    "api_client_state",
    "change_client",
    "clean_client_values",
    "create_client",
    "deactivate_client",
    "install_demo_credentials",
    "pending_requests",
    "request_approval",
    "request_new_secret",
]


def api_client_approved(client: ApiClient) -> bool:
    """Is this client's configuration the one a second administrator approved?"""
    return bool(client.approved_digest) and (
        administration.state_digest(api_client_state(client)) == client.approved_digest
    )


def pending_requests(client: ApiClient):
    """The change requests of ``client`` waiting for a decision, newest first."""
    return AdminChangeRequest.objects.filter(
        kind=Kind.API_CLIENT,
        target_type="casework.apiclient",
        target_id=str(client.pk),
        decision=AdminChangeRequest.Decision.PENDING,
    ).order_by("-requested_at", "-id")


def clean_client_values(
    *,
    name: str,
    organisation: Organisation | None,
    scopes: Iterable[str] | str,
    rate_limit: str = "",
    client: ApiClient | None = None,
) -> dict[str, Any]:
    """Validated values of a client (``client``: the one being changed, for the unique
    name); a ``ValidationError`` per field otherwise."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        errors["name"] = _("Enter a name of at most %(limit)d characters.") % {
            "limit": NAME_MAX_LENGTH
        }
    elif ApiClient.objects.filter(name=name).exclude(pk=getattr(client, "pk", None)).exists():
        errors["name"] = _("Another API client already has this name.")
    changing_organisation = client is None or client.organisation_id != getattr(
        organisation, "pk", None
    )
    if organisation is None or (changing_organisation and not organisation.is_active):
        errors["organisation"] = _("Choose an active organisation.")
    chosen = sorted(set(scopes.split() if isinstance(scopes, str) else scopes or ()))
    if not chosen or not set(chosen) <= set(settings.API_SCOPES):
        errors["scopes"] = _("Choose at least one scope from the list.")
    rate_limit = (rate_limit or "").strip()
    if rate_limit and not _RATE.match(rate_limit):
        errors["rate_limit"] = _(
            "Enter a number of requests per s, min, hour or day, e.g. 600/min, or leave it "
            "empty for the site's default."
        )
    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "organisation": organisation,
        "scopes": " ".join(chosen),
        "rate_limit": rate_limit,
    }


def _record(user, client: ApiClient, step: str, *, fields=(), **details: Any) -> None:
    """The access-log event of a change to a client (names and flags, never a secret)."""
    record_event(
        action=Action.ACCOUNT_CHANGE,
        user=user,
        obj=client,
        fields=list(fields),
        details={
            "step": step,
            "client": client.name,
            "approved": api_client_approved(client),
            **details,
        },
    )


def create_client(
    *, user, name: str, organisation: Organisation, scopes: Iterable[str] | str, rate_limit=""
) -> ApiClient:
    """A new client, saved but not usable until another administrator approves it."""
    administration.require_right(user, Kind.API_CLIENT)
    values = clean_client_values(
        name=name, organisation=organisation, scopes=scopes, rate_limit=rate_limit
    )
    with transaction.atomic():
        client = ApiClient.objects.create(**values)
        _record(user, client, "create", fields=values)
    return client


def _locked(client: ApiClient) -> ApiClient:
    return ApiClient.objects.select_for_update().select_related("organisation").get(pk=client.pk)


def change_client(
    *,
    user,
    client: ApiClient,
    name: str,
    organisation: Organisation,
    scopes: Iterable[str] | str,
    rate_limit: str = "",
) -> ApiClient:
    """Save a client's new configuration. Anything but fewer scopes takes an approved
    client out of use until approved again; fewer scopes alone keep the approval."""
    administration.require_right(user, Kind.API_CLIENT)
    with transaction.atomic():
        client = _locked(client)
        values = clean_client_values(
            name=name,
            organisation=organisation,
            scopes=scopes,
            rate_limit=rate_limit,
            client=client,
        )
        changed = [field for field, value in values.items() if getattr(client, field) != value]
        if not changed:
            return client
        fewer = set(values["scopes"].split()) < client.scope_set
        reduced = changed == ["scopes"] and fewer and api_client_approved(client)
        for field in changed:
            setattr(client, field, values[field])
        client.save(update_fields=changed)
        if reduced:  # less power at once, as removing a role (ADR 0014 §3)
            client.approved_digest = administration.state_digest(api_client_state(client))
            client.save(update_fields=["approved_digest"])
        if "name" in changed and client.application_id:
            Application.objects.filter(pk=client.application_id).update(name=client.name)
        _record(user, client, "change", fields=changed, reduced=reduced)
    return client


def deactivate_client(*, user, client: ApiClient) -> int:
    """Stop a client at once (no second administrator needed to take power away): its
    tokens are deleted; returns how many."""
    administration.require_right(user, Kind.API_CLIENT)
    with transaction.atomic():
        client = _locked(client)
        if not client.is_active:
            return 0
        client.is_active = False
        client.save(update_fields=["is_active"])
        revoked = revoke_tokens(client)
        _record(user, client, "deactivate", fields=["is_active"], tokens_revoked=revoked)
    return revoked


def activate_client(*, user, client: ApiClient) -> None:
    """Switch a client on again: usable if its configuration is still the approved one
    (logged, not four-eyed: it restores what two administrators approved)."""
    administration.require_right(user, Kind.API_CLIENT)
    with transaction.atomic():
        client = _locked(client)
        if client.is_active:
            return
        client.is_active = True
        client.save(update_fields=["is_active"])
        _record(user, client, "activate", fields=["is_active"])


def request_approval(*, user, client: ApiClient, reason: str) -> AdminChangeRequest:
    """Ask a second administrator to approve ``client``'s configuration as it is now."""
    reason = administration.request_reason(user, Kind.API_CLIENT, reason)
    with transaction.atomic():
        client = _locked(client)
        if api_client_approved(client):
            raise ValidationError(_("The request changes nothing."), code="no_change")
        change = {
            "action": CONFIGURATION,
            "name": client.name,
            "organisation": client.organisation.name,
            "scopes": sorted(client.scope_set),
            "rate_limit": client.rate_limit,
            "new": client.application_id is None,
        }
        return administration.create_request(
            user=user, kind=Kind.API_CLIENT, target=client, change=change, reason=reason
        )


def request_new_secret(*, user, client: ApiClient, reason: str) -> AdminChangeRequest:
    """Ask a second administrator to replace ``client``'s secret (shown once, to them)."""
    reason = administration.request_reason(user, Kind.API_CLIENT, reason)
    with transaction.atomic():
        client = _locked(client)
        if client.application_id is None:
            raise ValidationError(
                _("The client has no secret yet: it gets one when it is first approved."),
                code="no_application",
            )
        change = {"action": NEW_SECRET, "name": client.name}
        return administration.create_request(
            user=user, kind=Kind.API_CLIENT, target=client, change=change, reason=reason
        )


def install_demo_credentials(*, client: ApiClient, client_id: str, secret: str) -> bool:
    """``seed_demo`` only (an operator's command, never the admin, never production): give
    an approved demo client a known client id and secret (hashed). Returns whether
    anything changed; a changed secret revokes the tokens."""
    if settings.PRODUCTION:
        raise ValidationError("Demo credentials are refused in production.")
    with transaction.atomic():
        client = _locked(client)
        application = Application.objects.select_for_update().get(pk=client.application_id)
        same_secret = application.hash_client_secret and check_password(
            secret, application.client_secret
        )
        if application.client_id == client_id and same_secret:
            return False
        if application.client_id != client_id:
            application.client_id = client_id
            application.save(update_fields=["client_id"])
        if not same_secret:
            replace_secret(client, secret)
        _record(None, client, "demo_credentials", fields=["client_id", "client_secret"])
    return True
