"""Single sign-on with OpenID Connect: the relying party's side of the code flow.

mozilla-django-oidc does the protocol (authorization request with state, nonce
and PKCE; token request; JWKS; signature and nonce checks; userinfo). It is made
for one provider set in the settings; here each :class:`IdentityProvider` row
configures a client of its own, chosen per request. On top of the library:

- the ID token's issuer must be the provider's configured issuer and its
  audience our client id (``azp`` too when there are several audiences), with
  ``exp``/``iat`` required — the library checks neither issuer nor audience;
- the discovery document must name the configured issuer;
- a provider is used only while its configuration is the one a second
  administrator approved, and a linked identity likewise
  (``administration.sso_approved``);
- **sign-in never creates an account or grants a role**: the identity is matched
  to an existing, active account of an organisation the provider serves, and
  refused otherwise — or when the provider's assurance level (``acr``) is below
  the organisation's minimum (``policy.sso_assurance_sufficient``);
- every refusal is a ``login_failed`` access-log event that survives the request
  (the provider, the reason and the identity tried: never a token).

docs/adr/0018-single-sign-on.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import jwt
import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from audit.services import Action, Outcome, record_event, sanitize_text
from casework import policy
from casework.models import ExternalIdentity, IdentityProvider, User
from casework.services.administration import sso_approved

# {provider, acr, amr, auth_time}: read by policy.second_factor_satisfied and step_up_fresh
SESSION_KEY = policy.SSO_SESSION_KEY
STATES_KEY = "samverkan_sso_states"  # state -> provider id, beside the library's oidc_states
SIGN_ALGORITHM = "RS256"
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
# The library's switches that are not ours to loosen.
_FIXED_SETTINGS = {
    "OIDC_USE_NONCE": True,
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_ALLOW_UNSECURED_JWT": False,
    "OIDC_VERIFY_KID": True,
    "OIDC_STORE_ACCESS_TOKEN": False,
    "OIDC_STORE_ID_TOKEN": False,
    "OIDC_CREATE_USER": False,
    "OIDC_TOKEN_USE_BASIC_AUTH": False,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "sso_callback",
}

MESSAGES = {
    "no_account": _(
        "No Samverkan account is linked to the identity you signed in with. "
        "Ask your administrator to link your account."
    ),
    "assurance": _(
        "Your sign-in did not have the level of assurance your organisation requires. "
        "Sign in with a stronger e-identification."
    ),
    "unavailable": _("Sign-in through this identity provider is not available."),
    "failed": _("The sign-in could not be completed. Try again."),
}


class SignInRefused(Exception):
    """A refused single sign-on; ``reason`` is a code for the log, ``message`` for the user."""

    def __init__(self, reason: str, message_key: str = "failed", *, username: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.message = MESSAGES[message_key]
        self.username = username


@dataclass(frozen=True)
class SignIn:
    user: User
    sso: dict[str, Any]


def get_settings(attr, *args):
    if attr in _FIXED_SETTINGS:
        return _FIXED_SETTINGS[attr]
    return import_from_settings(attr, *args)


def _check_url(url: str) -> str:
    parsed = urlparse(url or "")
    allowed = ("https", "http") if settings.SAMVERKAN_OIDC_ALLOW_HTTP else ("https",)
    if parsed.scheme not in allowed or not parsed.netloc:
        raise SignInRefused("endpoint_url", "unavailable")
    return url


def usable_provider(slug_or_id, *, by_pk: bool = False) -> IdentityProvider:
    """The active provider with an approved configuration, or :class:`SignInRefused`."""
    lookup = {"pk": slug_or_id} if by_pk else {"slug": slug_or_id}
    provider = IdentityProvider.objects.filter(is_active=True, **lookup).first()
    if provider is None:
        raise SignInRefused("unknown_provider", "unavailable")
    if not sso_approved(provider):
        raise SignInRefused("provider_not_approved", "unavailable")
    return provider


def endpoints(provider: IdentityProvider) -> dict[str, str]:
    """The provider's endpoints: those configured, the rest from its discovery document
    (cached; the document must name the configured issuer)."""
    found = {name: getattr(provider, name) for name in _ENDPOINTS}
    if not all(found.values()):
        issuer = provider.issuer.rstrip("/")
        key = "sso-discovery:" + salted_hmac("sso", issuer, algorithm="sha256").hexdigest()
        document = cache.get(key)
        if document is None:
            try:
                response = requests.get(
                    _check_url(issuer + "/.well-known/openid-configuration"),
                    timeout=get_settings("OIDC_TIMEOUT", 10),
                    verify=get_settings("OIDC_VERIFY_SSL", True),
                )
                response.raise_for_status()
                document = response.json()
            except (requests.RequestException, ValueError):
                raise SignInRefused("discovery_failed", "unavailable") from None
            if not isinstance(document, dict) or document.get("issuer") != provider.issuer:
                raise SignInRefused("discovery_issuer", "unavailable")
            cache.set(key, document, settings.SAMVERKAN_OIDC_DISCOVERY_SECONDS)
        for name in _ENDPOINTS:
            found[name] = found[name] or str(document.get(name) or "")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _check_url(found[name])
    if found["userinfo_endpoint"]:
        _check_url(found["userinfo_endpoint"])
    return found


def client_secret(provider: IdentityProvider) -> str:
    """The client secret from the environment variable the provider names ('' if none)."""
    if not provider.client_secret_env:
        return ""
    secret = os.environ.get(provider.client_secret_env, "")
    if not secret:
        raise SignInRefused("client_secret_missing", "unavailable")
    return secret


class ProviderClient(OIDCAuthenticationBackend):
    """The library's code-flow client, configured from one :class:`IdentityProvider`.

    Not an authentication backend of the site: :func:`complete_sign_in` calls it and
    matches the identity itself; the session's user is loaded by ``RoleBackend``.
    """

    get_settings = staticmethod(get_settings)

    def __init__(self, provider: IdentityProvider):  # not super(): it reads one provider
        self.provider = provider
        found = endpoints(provider)
        self.OIDC_OP_AUTHORIZATION_ENDPOINT = found["authorization_endpoint"]
        self.OIDC_OP_TOKEN_ENDPOINT = found["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = found["userinfo_endpoint"]
        self.OIDC_OP_JWKS_ENDPOINT = found["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = client_secret(provider)
        self.OIDC_RP_SIGN_ALGO = SIGN_ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = User

    def _verify_jws(self, payload, key):
        """Signature (the library), and issuer, audience and lifetime (ours)."""
        try:
            header = jwt.get_unverified_header(payload)
        except jwt.InvalidTokenError:
            raise SuspiciousOperation("malformed ID token") from None
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("unexpected signing algorithm")
        try:
            claims = jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.provider.issuer,
                leeway=settings.SAMVERKAN_OIDC_LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidIssuerError:
            raise SuspiciousOperation("issuer") from None
        except jwt.InvalidAudienceError:
            raise SuspiciousOperation("audience") from None
        except jwt.InvalidTokenError as error:
            raise SuspiciousOperation(type(error).__name__) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("audience")
        return claims

    def authorization_params(self) -> dict[str, str]:
        return {"scope": self.provider.scopes, "client_id": self.OIDC_RP_CLIENT_ID}

    def exchange(self, request, *, code: str, nonce: str, code_verifier: str) -> dict[str, Any]:
        """Trade the code for tokens, verify the ID token, read userinfo; the claims."""
        self.request = request
        payload = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.build_absolute_uri(reverse("sso_callback")),
            "code_verifier": code_verifier,
        }
        if self.OIDC_RP_CLIENT_SECRET:
            payload["client_secret"] = self.OIDC_RP_CLIENT_SECRET
        token_info = self.get_token(payload)
        id_token = token_info.get("id_token")
        if not isinstance(id_token, str):
            raise SuspiciousOperation("no ID token")
        claims = self.verify_token(id_token, nonce=nonce)
        access_token = token_info.get("access_token")
        if self.OIDC_OP_USER_ENDPOINT and access_token:
            info = self.get_userinfo(access_token, id_token, claims)
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise SuspiciousOperation("userinfo subject")
            claims = {**info, **claims}  # the signed ID token's claims win
        return claims


def refuse(refusal: SignInRefused, *, provider: IdentityProvider | None, **details) -> None:
    """The access-log event of a refused sign-in (independent of the request)."""
    record_event(
        action=Action.LOGIN_FAILED,
        username=sanitize_text(refusal.username, max_length=150),
        object_type="casework.identityprovider",
        object_id=str(provider.pk) if provider is not None else "",
        outcome=Outcome.DENIED,
        details={
            "sso": True,
            "provider": provider.slug if provider is not None else "",
            "reason": refusal.reason,
            **{key: sanitize_text(str(value), max_length=255) for key, value in details.items()},
        },
        independent=True,
    )


def _assurance(claims: dict[str, Any]) -> tuple[str, list[str]]:
    acr = claims.get("acr")
    acr = acr[:200] if isinstance(acr, str) else ""
    amr = claims.get("amr")
    if not isinstance(amr, list):
        amr = []
    amr = [value[:50] for value in amr[:10] if isinstance(value, str)]
    return acr, amr


def match_account(provider: IdentityProvider, claims: dict[str, Any]) -> User:
    """The existing account this identity signs in as; never a new one."""
    value = claims.get(provider.match_claim)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise SignInRefused("no_matching_claim", "no_account")
    user = None
    if provider.account_field == IdentityProvider.AccountField.USERNAME:
        user = User.objects.select_related("organisation").filter(username=value).first()
    else:
        identity = (
            ExternalIdentity.objects.select_related("user__organisation")
            .filter(provider=provider, subject=value)
            .first()
        )
        if identity is not None and sso_approved(identity):
            user = identity.user
    if user is None:
        raise SignInRefused("no_account", "no_account")
    refusal = SignInRefused("account_not_served", "no_account", username=user.get_username())
    if not user.is_active or user.is_superuser or user.organisation_id is None:
        raise refusal
    served = provider.identityproviderorganisation_set.filter(
        organisation_id=user.organisation_id
    ).first()
    if served is None:
        raise refusal
    acr, _amr = _assurance(claims)
    if not policy.sso_assurance_sufficient(
        levels=provider.acr_levels, minimum=served.minimum_acr, acr=acr
    ):
        raise SignInRefused("assurance", "assurance", username=user.get_username())
    return user


def complete_sign_in(request, provider: IdentityProvider, *, code, nonce, code_verifier) -> SignIn:
    """Finish the code flow for ``provider``: the matched account and what to keep in the
    session, or :class:`SignInRefused` (already in the access log)."""
    claims: dict[str, Any] = {}
    try:
        if not isinstance(code, str) or not code:
            raise SignInRefused("no_code")
        try:
            claims = ProviderClient(provider).exchange(
                request, code=code, nonce=nonce, code_verifier=code_verifier
            )
        except SuspiciousOperation as error:
            raise SignInRefused(f"id_token_{error}"[:60]) from None
        except (requests.RequestException, ValueError, KeyError, TypeError):
            # The provider refused the code (used, expired, another client's, wrong
            # PKCE verifier) or answered nonsense: never a 500.
            raise SignInRefused("token_request") from None
        user = match_account(provider, claims)
    except SignInRefused as refusal:
        identity = claims.get(provider.match_claim) if claims else None
        refuse(refusal, provider=provider, **({"identity": identity} if identity else {}))
        raise
    acr, amr = _assurance(claims)
    # When the provider authenticated the person (Unix seconds): a step-up is fresh within
    # STEP_UP_MINUTES of it (policy.step_up_fresh, ADR 0017). A provider that does not send
    # ``auth_time`` authenticated for this sign-in: its time is now.
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        auth_time = int(time.time())
    sso = {"provider": provider.slug, "acr": acr, "amr": amr, "auth_time": auth_time}
    return SignIn(user=user, sso=sso)


def record_configuration_change(
    *, user, obj: IdentityProvider | ExternalIdentity, fields, created: bool
) -> None:
    """The access-log event of a provider or a linked identity saved in the admin (the
    field names, and whether the saved configuration is the approved one)."""
    record_event(
        action=Action.CREATE if created else Action.CHANGE,
        user=user,
        obj=obj,
        fields=fields,
        details={"sso": True, "approved": sso_approved(obj)},
    )
