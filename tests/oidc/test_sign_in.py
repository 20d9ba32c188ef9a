"""Single sign-on through a real OpenID Connect provider (ADR 0018).

The relying party is Samverkan under the Django test client; the provider is
panva's oidc-provider on 127.0.0.1 (``conftest.py``). Sign-in never creates an
account: an identity signs in only as an existing account it is matched to.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.core.exceptions import SuspiciousOperation

from audit.models import AccessEvent
from casework.models import (
    ExternalIdentity,
    IdentityProvider,
    IdentityProviderOrganisation,
    Organisation,
    User,
)
from casework.services import administration, sso
from tests.oidc.conftest import (
    CLIENT_ID,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    OTHER_REDIRECT_URI,
    SECRET_ENV,
    authorize,
    callback_parts,
)

pytestmark = pytest.mark.django_db

NO_ACCOUNT = "Inget konto i Samverkan är kopplat till den identitet du loggade in med"
TOO_WEAK = "Inloggningen hade inte den tillitsnivå som din organisation kräver"
FAILED = "Inloggningen kunde inte slutföras"


def approve(obj):
    """What an approved change request does (the four-eyes path has tests of its own)."""
    kind = (
        administration.Kind.IDENTITY_PROVIDER
        if isinstance(obj, IdentityProvider)
        else administration.Kind.EXTERNAL_IDENTITY
    )
    obj.approved_digest = administration.state_digest(administration._target_state(kind, obj))
    obj.save(update_fields=["approved_digest"])
    return obj


@pytest.fixture
def organisation():
    return Organisation.objects.create(name="Exempelkommunen", kind="social_services")


@pytest.fixture
def make_provider(organisation):
    def _make(running, *, slug="kommunen", minimum_acr="", endpoints_of=None, **fields):
        provider = IdentityProvider.objects.create(
            slug=slug,
            name="Kommunens inloggning",
            issuer=running.issuer,
            client_id=CLIENT_ID,
            client_secret_env=SECRET_ENV,
            scopes="openid profile hsa",
            acr_levels="loa2 loa3 loa4",
            **(
                {
                    "authorization_endpoint": endpoints_of.url("/auth"),
                    "token_endpoint": endpoints_of.url("/token"),
                    "userinfo_endpoint": endpoints_of.url("/me"),
                    "jwks_uri": endpoints_of.url("/jwks"),
                }
                if endpoints_of is not None
                else {}
            ),
            **fields,
        )
        IdentityProviderOrganisation.objects.create(
            provider=provider, organisation=organisation, minimum_acr=minimum_acr
        )
        return approve(provider)

    return _make


@pytest.fixture
def anna(organisation):
    return User.objects.create_user("anna.handlaggare", organisation=organisation)


def link(user, provider, subject):
    return approve(ExternalIdentity.objects.create(user=user, provider=provider, subject=subject))


def start(client, slug="kommunen", **query):
    response = client.get(f"/konto/sso/logga-in/{slug}/", query)
    assert response.status_code == 302, response.content
    return response["Location"]


def sign_in(client, slug="kommunen", *, login, acr="loa3", amr="pwd"):
    path, query = callback_parts(authorize(start(client, slug), login=login, acr=acr, amr=amr))
    return client.get(path, query)


def refusals(reason=None):
    events = AccessEvent.objects.filter(action="login_failed", outcome="denied")
    if reason is not None:
        events = events.filter(details__reason=reason)
    return list(events)


def signed_in_user(client):
    return client.session.get(AUTH_SESSION_KEY)


# --- a matched account signs in ------------------------------------------------------------


def test_matched_account_signs_in_and_the_assurance_is_recorded(
    client, oidc_provider, make_provider, anna
):
    provider = make_provider(oidc_provider)
    link(anna, provider, "anna-sub-1")

    response = sign_in(client, login="anna-sub-1", acr="loa3", amr="pwd,otp")

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_user(client) == str(anna.pk)
    expected = {"provider": "kommunen", "acr": "loa3", "amr": ["pwd", "otp"]}
    marker = client.session[sso.SESSION_KEY]
    # When the provider authenticated the person: step-up counts from it (ADR 0017).
    assert isinstance(marker.pop("auth_time"), int)
    assert marker == expected
    login = AccessEvent.objects.get(action="login", user=anna)
    assert isinstance(login.details["sso"].pop("auth_time"), int)
    assert login.details == {"sso": expected}
    assert client.get("/").wsgi_request.user == anna  # the session is signed in


def test_the_next_page_survives_the_round_trip(client, oidc_provider, make_provider, anna):
    link(anna, make_provider(oidc_provider), "anna-sub-1")
    url = start(client, next="/granskning/")
    path, query = callback_parts(authorize(url, login="anna-sub-1"))
    assert client.get(path, query)["Location"] == "/granskning/"


def test_an_account_matched_by_a_configured_claim_signs_in(
    client, oidc_provider, make_provider, organisation
):
    """An HSA-id claim equal to the account's username (no link needed)."""
    make_provider(oidc_provider, match_claim="hsa_id", account_field="username")
    kalle = User.objects.create_user("SE2321000016-kalle", organisation=organisation)

    response = sign_in(client, login="kalle")

    assert response.status_code == 302
    assert signed_in_user(client) == str(kalle.pk)


def test_the_login_page_offers_approved_providers_only(client, oidc_provider, make_provider):
    provider = make_provider(oidc_provider)
    IdentityProvider.objects.create(
        slug="ej-godkand", name="Ej godkänd", issuer="https://x.test", client_id="x"
    )

    page = client.get("/konto/logga-in/").content.decode()

    assert "Logga in med Kommunens inloggning" in page
    assert f"/konto/sso/logga-in/{provider.slug}/" in page
    assert "Ej godkänd" not in page
    assert 'name="password"' in page  # the demo keeps password sign-in


# --- sign-in never creates an account ------------------------------------------------------


def test_an_unmatched_identity_is_refused_and_no_account_is_made(
    client, oidc_provider, make_provider, anna
):
    make_provider(oidc_provider)
    accounts = User.objects.count()

    response = sign_in(client, login="stranger-sub")

    assert response.status_code == 403
    assert NO_ACCOUNT in response.content.decode()
    assert signed_in_user(client) is None
    assert sso.SESSION_KEY not in client.session
    assert User.objects.count() == accounts
    (event,) = refusals("no_account")
    assert event.details["provider"] == "kommunen"
    assert event.details["identity"] == "stranger-sub"


def test_a_link_no_second_administrator_approved_signs_nobody_in(
    client, oidc_provider, make_provider, anna
):
    provider = make_provider(oidc_provider)
    ExternalIdentity.objects.create(user=anna, provider=provider, subject="anna-sub-1")

    response = sign_in(client, login="anna-sub-1")

    assert response.status_code == 403
    assert signed_in_user(client) is None
    assert refusals("no_account")


def test_an_account_of_an_organisation_the_provider_does_not_serve_is_refused(
    client, oidc_provider, make_provider
):
    provider = make_provider(oidc_provider)
    police = Organisation.objects.create(name="Polisen", kind="police")
    officer = User.objects.create_user("polis", organisation=police)
    link(officer, provider, "polis-sub")

    response = sign_in(client, login="polis-sub")

    assert response.status_code == 403
    assert NO_ACCOUNT in response.content.decode()
    assert signed_in_user(client) is None
    (event,) = refusals("account_not_served")
    assert event.username == "polis"


def test_a_deactivated_account_is_refused(client, oidc_provider, make_provider, anna):
    link(anna, make_provider(oidc_provider), "anna-sub-1")
    anna.is_active = False
    anna.save()

    assert sign_in(client, login="anna-sub-1").status_code == 403
    assert signed_in_user(client) is None


def test_an_assurance_below_the_organisations_minimum_is_refused(
    client, oidc_provider, make_provider, anna
):
    link(anna, make_provider(oidc_provider, minimum_acr="loa3"), "anna-sub-1")

    weak = sign_in(client, login="anna-sub-1", acr="loa2")
    assert weak.status_code == 403
    assert TOO_WEAK in weak.content.decode()
    assert signed_in_user(client) is None
    assert refusals("assurance")

    strong = sign_in(client, login="anna-sub-1", acr="loa4")
    assert strong.status_code == 302
    assert signed_in_user(client) == str(anna.pk)
    assert client.session[sso.SESSION_KEY]["acr"] == "loa4"


def test_a_provider_changed_since_its_approval_is_not_used(
    client, oidc_provider, make_provider, anna
):
    provider = make_provider(oidc_provider)
    link(anna, provider, "anna-sub-1")
    IdentityProvider.objects.filter(pk=provider.pk).update(match_claim="preferred_username")

    response = client.get("/konto/sso/logga-in/kommunen/")

    assert response.status_code == 403
    assert "inte tillgänglig" in response.content.decode()
    assert refusals("provider_not_approved")
    assert "Kommunens inloggning" not in client.get("/konto/logga-in/").content.decode()


# --- the protocol's own checks -------------------------------------------------------------


def test_a_wrong_state_is_refused(client, oidc_provider, make_provider, anna):
    link(anna, make_provider(oidc_provider), "anna-sub-1")
    path, query = callback_parts(authorize(start(client), login="anna-sub-1"))

    forged = client.get(path, {**query, "state": secrets.token_urlsafe(24)})

    assert forged.status_code == 403
    assert FAILED in forged.content.decode()
    assert signed_in_user(client) is None
    assert refusals("state")


def test_a_callback_in_another_browser_is_refused(client, oidc_provider, make_provider, anna):
    """Login CSRF: a code and state of someone else's flow do not sign this browser in."""
    from django.test import Client

    link(anna, make_provider(oidc_provider), "anna-sub-1")
    path, query = callback_parts(authorize(start(client), login="anna-sub-1"))

    victim = Client()
    assert victim.get(path, query).status_code == 403
    assert victim.session.get(AUTH_SESSION_KEY) is None


def test_a_replayed_code_is_refused(client, oidc_provider, make_provider, anna):
    link(anna, make_provider(oidc_provider), "anna-sub-1")
    path, query = callback_parts(authorize(start(client), login="anna-sub-1"))
    assert client.get(path, query).status_code == 302
    client.logout()

    # The same callback again: its state was used up.
    again = client.get(path, query)
    assert again.status_code == 403
    assert refusals("state")
    # The used code with the state of a new flow: the provider refuses the code.
    fresh_state = parse_qs(urlparse(start(client)).query)["state"][0]
    replayed = client.get(path, {**query, "state": fresh_state})

    assert replayed.status_code == 403
    assert FAILED in replayed.content.decode()
    assert signed_in_user(client) is None
    assert refusals("token_request")


def test_a_token_from_another_issuer_is_refused(
    client, oidc_provider, other_oidc_provider, make_provider, anna
):
    """The provider's record names one issuer, but its endpoints lead to another
    instance (a mix-up, or a tampered configuration): that instance's tokens, signed
    with its own published key, are refused."""
    link(anna, make_provider(oidc_provider, endpoints_of=other_oidc_provider), "anna-sub-1")
    path, query = callback_parts(authorize(start(client), login="anna-sub-1"))
    assert query["iss"] == other_oidc_provider.issuer

    # The authorization response names the other issuer (RFC 9207) ...
    named = client.get(path, query)
    assert named.status_code == 403
    assert refusals("authorization_response_issuer")

    # ... and without that name, the ID token's own issuer is checked.
    path, query = callback_parts(authorize(start(client), login="anna-sub-1"))
    del query["iss"]
    response = client.get(path, query)

    assert response.status_code == 403
    assert FAILED in response.content.decode()
    assert signed_in_user(client) is None
    assert refusals("id_token_issuer")


def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _id_token_for_other_client(running, nonce):
    """A real ID token of the same provider, issued to another client."""
    verifier, challenge = _pkce()
    query = urlencode(
        {
            "client_id": OTHER_CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": OTHER_REDIRECT_URI,
            "state": "s",
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    back = authorize(f"{running.issuer}/auth?{query}", login="anna-sub-1")
    code = parse_qs(urlparse(back).query)["code"][0]
    tokens = requests.post(
        running.url("/token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": OTHER_REDIRECT_URI,
            "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_CLIENT_SECRET,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    tokens.raise_for_status()
    return tokens.json()["id_token"]


def test_a_token_with_a_wrong_audience_is_refused(oidc_provider, make_provider):
    provider = make_provider(oidc_provider)
    token = _id_token_for_other_client(oidc_provider, nonce="n-1")

    with pytest.raises(SuspiciousOperation, match="audience"):
        sso.ProviderClient(provider).verify_token(token, nonce="n-1")

    # The same token is good for the client it was issued to (the check is the audience).
    provider.client_id = OTHER_CLIENT_ID
    assert sso.ProviderClient(provider).verify_token(token, nonce="n-1")["sub"] == "anna-sub-1"


def test_a_provider_error_is_refused_without_a_500(client, oidc_provider, make_provider):
    make_provider(oidc_provider)
    state = parse_qs(urlparse(start(client)).query)["state"][0]

    response = client.get("/konto/sso/svar/", {"state": state, "error": "access_denied"})

    assert response.status_code == 403
    assert refusals("provider_error")


def test_a_callback_without_anything_is_refused(client, db):
    assert client.get("/konto/sso/svar/").status_code == 403
    assert client.get("/konto/sso/logga-in/finns-inte/").status_code == 403
