"""API fixtures: client systems of the demo organisations, their tokens, and calls."""

from __future__ import annotations

import base64
import itertools
import uuid

import pytest
from django.conf import settings
from oauth2_provider.models import Application

from casework.models import ApiClient, Organisation, User
from casework.services import administration, api_clients

ALL_SCOPES = tuple(settings.API_SCOPES)
_names = itertools.count(1)


def make_client(
    organisation: Organisation, scopes=ALL_SCOPES, *, approved: bool = True, rate_limit: str = ""
) -> tuple[ApiClient, str, str]:
    """An API client of ``organisation`` with an OAuth application; returns the client,
    its client id and its secret (known only here: the database keeps a hash). Approved
    (``approved``) as in production: adam.admin asks, berit.admin approves (the demo's
    administrators: the ``demo`` fixture)."""
    secret = uuid.uuid4().hex
    application = Application.objects.create(
        name=f"test-client-{next(_names)}",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    client = ApiClient.objects.create(
        name=application.name,
        organisation=organisation,
        application=application,
        scopes=" ".join(scopes),
        rate_limit=rate_limit,
    )
    if approved:
        change_request = api_clients.request_approval(
            user=User.objects.get(username="adam.admin"), client=client, reason="Testklient"
        )
        administration.approve(
            user=User.objects.get(username="berit.admin"), request_id=change_request.pk
        )
        client.refresh_from_db()
    return client, application.client_id, secret


def get_token(http, client_id: str, secret: str, scope: str | None = None):
    """POST /api/v1/token/ (client credentials, HTTP Basic): the token response."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return http.post("/api/v1/token/", data, HTTP_AUTHORIZATION=f"Basic {basic}")


class Api:
    """Calls of one client, with its token, optionally acting for a person."""

    def __init__(self, http, token: str, client: ApiClient) -> None:
        self.http, self.token, self.client = http, token, client

    def headers(self, acting: str | None, **extra) -> dict:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        if acting:
            headers["HTTP_SAMVERKAN_ACTING_USER"] = acting
        for name, value in extra.items():
            headers["HTTP_" + name.upper().replace("-", "_")] = value
        return headers

    def get(self, path: str, *, acting: str | None = None, **extra):
        return self.http.get(path, **self.headers(acting, **extra))

    def post(
        self, path: str, body: dict, *, acting: str | None = None, key: str | None = None, **extra
    ):
        if key is None:
            key = uuid.uuid4().hex
        if key:
            extra["Idempotency-Key"] = key
        return self.http.post(
            path, body, content_type="application/json", **self.headers(acting, **extra)
        )


@pytest.fixture
def api_for(demo, client):
    """``api_for(organisation_name, scopes=…)``: an :class:`Api` of a new client of that
    demo organisation, with a fresh token."""

    def make(organisation_name: str, scopes=ALL_SCOPES, **options) -> Api:
        organisation = Organisation.objects.get(name=organisation_name)
        api_client, client_id, secret = make_client(organisation, scopes, **options)
        response = get_token(client, client_id, secret)
        assert response.status_code == 200, response.content
        return Api(client, response.json()["access_token"], api_client)

    return make


@pytest.fixture
def social_api(api_for, demo):
    """A client of social services (anna.social's and sara.samordnare's organisation)."""
    return api_for(demo["sara.samordnare"].organisation.name)


@pytest.fixture
def police_api(api_for, demo):
    return api_for(demo["per.polis"].organisation.name)
