"""Who calls the API: a client system, its scopes, and the person it acts for.

- **The client** authenticates with an OAuth 2.0 access token from the client-credentials
  grant (django-oauth-toolkit; ``POST /api/v1/token/``), sent as ``Authorization:
  Bearer …`` and nowhere else. The token's application must belong to an active
  :class:`~casework.models.ApiClient` whose configuration a second administrator approved.
- **Its scopes** cap what it may do: a view names the scope it needs
  (``required_scope``), which the token must carry and the client must still hold.
- **The acting person** (``Samverkan-Acting-User: <username>``) is an active account of
  the client's own organisation; the views call the same services and selectors as the
  pages with that account, so the person's policy applies on top of the scopes, and every
  access-log event names the person and the client (``audit.context``). Operations on
  personal data need one (``acting_person = True``, the default); without one a client
  reaches only what holds no personal data (the statistics).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings
from rest_framework import authentication, exceptions, permissions, throttling

from audit.context import API_CLIENT_ATTRIBUTE
from casework import policy
from casework.access_cache import GenerationCache, access_generation
from casework.models import ApiClient, Organisation, User
from casework.services.api_clients import api_client_approved

ACTING_USER_HEADER = "Samverkan-Acting-User"

# What authenticating a request reads of its token (expiry, scopes, application) and, in
# the same statement, the client and its organisation whole (the request's ``Caller``):
# not the token's other columns, which nothing of the request reads (fewer columns to
# compile and load on every request).
_TOKEN_FIELDS = (
    "expires",
    "scope",
    *(f"application__api_client__{field.name}" for field in ApiClient._meta.concrete_fields),
    *(
        f"application__api_client__organisation__{field.name}"
        for field in Organisation._meta.concrete_fields
    ),
)


@dataclass(frozen=True)
class _Grant:
    """What a token grants, as kept between requests (``casework.access_cache``)."""

    expires: datetime.datetime
    client: ApiClient
    scopes: frozenset[str]
    usable: bool


def _load_grant(raw: str) -> _Grant | None:
    tokens = get_access_token_model().objects.select_related(
        "application__api_client__organisation"
    )
    try:  # the checksum is unique: a get, without first()'s ordering
        token = tokens.only(*_TOKEN_FIELDS).get(
            token_checksum=hashlib.sha256(raw.encode()).hexdigest()
        )
    except tokens.model.DoesNotExist:
        return None
    client = getattr(token.application, "api_client", None) if token.application else None
    if client is None:
        return None
    return _Grant(
        expires=token.expires,
        client=client,
        scopes=frozenset(token.scope.split()) & client.scope_set,
        usable=usable_client(client),
    )


def _load_person(username: str, organisation_id: int) -> User | None:
    """The account with its roles and permissions read (Django's permission cache)."""
    try:  # usernames are unique: a get, without first()'s ordering
        person = User.objects.select_related("organisation").get(
            username=username, organisation_id=organisation_id
        )
    except User.DoesNotExist:
        return None
    person.get_all_permissions()
    return person


# Tokens (by checksum) and acting persons (by organisation and username), each kept
# while the access generation stands.
_grants: GenerationCache[_Grant] = GenerationCache()
_people: GenerationCache[User] = GenerationCache()


@dataclass(frozen=True)
class Caller:
    """``request.auth`` of an API request: the client, its token's scopes and the acting
    person (``None`` when the request names none)."""

    client: ApiClient
    scopes: frozenset[str]
    person: User | None


def usable_client(client: ApiClient | None) -> bool:
    """An active client of an active organisation, as a second administrator approved."""
    return (
        client is not None
        and client.is_active
        and client.organisation.is_active
        and api_client_approved(client)
    )


class GrantedScopes(BaseScopes):
    """django-oauth-toolkit's scopes backend: a client gets a token only for the scopes
    granted to it (and approved); it asks for them by name, or gets them all."""

    def get_all_scopes(self):
        return oauth2_settings.SCOPES

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        client = getattr(application, "api_client", None) if application is not None else None
        if not usable_client(client):
            return []
        return sorted(client.scope_set & set(oauth2_settings.SCOPES))

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self.get_available_scopes(application, request)


class ClientValidator(OAuth2Validator):
    """django-oauth-toolkit's request validator: only a usable client (active, of an active
    organisation, approved) authenticates at the token endpoint."""

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        return usable_client(getattr(request.client, "api_client", None))


class ClientAuthentication(authentication.BaseAuthentication):
    """The bearer token of a usable client; ``request.user`` is the acting person (or
    anonymous) and ``request.auth`` the :class:`Caller`."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header.")) from None
        generation = access_generation()
        grant = _grants.get(
            hashlib.sha256(raw.encode()).hexdigest(), generation, lambda: _load_grant(raw)
        )
        if grant is None or grant.expires <= timezone.now():
            raise exceptions.AuthenticationFailed(_("The access token is unknown or expired."))
        if not grant.usable:
            raise exceptions.AuthenticationFailed(_("The client is not active or not approved."))
        client = grant.client
        # Every access-log event of this request names the client.
        request._request.__dict__[API_CLIENT_ATTRIBUTE] = client.name
        person = self._acting_person(request, client, generation)
        caller = Caller(client=client, scopes=grant.scopes, person=person)
        return (person or AnonymousUser()), caller

    @staticmethod
    def _acting_person(request, client: ApiClient, generation: int | None) -> User | None:
        username = request.headers.get(ACTING_USER_HEADER, "").strip()
        if not username:
            return None
        person = None
        # No account's name holds NUL (nor could PostgreSQL compare one: an error, a 500).
        if "\x00" not in username:
            kept = _people.get(
                (client.organisation_id, username),
                generation,
                lambda: _load_person(username, client.organisation_id),
            )
            # A copy a request: what the request's code keeps on the account object (the
            # policy's answers, Django's permission cache) stays with the request.
            person = copy.copy(kept) if kept is not None else None
        if person is None or not policy.is_active_user(person):
            raise exceptions.PermissionDenied(
                _("The acting person is not an active account of the client's organisation.")
            )
        return person

    def authenticate_header(self, request):
        return 'Bearer realm="samverkan"'


class ClientScopes(permissions.BasePermission):
    """The view's ``required_scope`` is in the token and still granted to the client; an
    acting person is named where the view needs one (``acting_person``)."""

    def has_permission(self, request, view) -> bool:
        caller = request.auth
        if not isinstance(caller, Caller):
            raise exceptions.NotAuthenticated()
        scope = getattr(view, "required_scope", None)
        if scope is None or scope not in caller.scopes:
            raise exceptions.PermissionDenied(
                _("The client's token does not carry the scope this operation needs.")
            )
        if getattr(view, "acting_person", True) and caller.person is None:
            raise exceptions.PermissionDenied(
                _("This operation needs the acting person (the Samverkan-Acting-User header).")
            )
        return True


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """Requests per client (its own rate, else API_RATE_LIMIT), in the shared cache."""

    scope = "client"

    def allow_request(self, request, view):
        caller = request.auth
        if isinstance(caller, Caller) and caller.client.rate_limit:
            self.rate = caller.client.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        caller = request.auth
        if not isinstance(caller, Caller):
            return None  # refused by the authentication anyway
        return self.cache_format % {"scope": self.scope, "ident": caller.client.pk}
