"""API clients are made and their scopes granted with four eyes (ADR 0014 on issue 19).

One administrator makes or changes a client; it is used only once another approved
exactly that configuration. A new client's secret is made at that approval and shown
once, to the approver; the database keeps a hash. Taking power away (deactivating,
fewer scopes) is immediate.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from oauth2_provider.models import AccessToken, Application

from audit.models import AccessEvent
from casework.models import AdminChangeRequest, ApiClient, User
from casework.services import administration, api_clients
from tests.api.conftest import get_token, make_client

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

CASE = "/api/v1/cases/00000000-0000-0000-0000-000000000000/"
READ_ONLY = ["cases:read"]


@pytest.fixture
def social(demo):
    return demo["anna.social"].organisation


def _approved(client: ApiClient) -> bool:
    client.refresh_from_db()
    return api_clients.api_client_approved(client)


def _bearer(http, token: str, path: str = CASE):
    """A read as social services' coordinator: 404 (no such case) once authenticated."""
    return http.get(
        path, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_SAMVERKAN_ACTING_USER="sara.samordnare"
    )


def _change(user, api_client: ApiClient, **values):
    """Save ``api_client`` with ``values`` changed (the rest as it is)."""
    current = {
        "name": api_client.name,
        "organisation": api_client.organisation,
        "scopes": api_client.scopes,
        "rate_limit": api_client.rate_limit,
    }
    return api_clients.change_client(user=user, client=api_client, **{**current, **values})


def test_a_new_client_is_unusable_until_another_administrator_approves_it(
    adam, berit, social, client
):
    api_client = api_clients.create_client(
        user=adam, name="Verksamhetssystemet", organisation=social, scopes=READ_ONLY
    )
    assert api_client.application is None and not _approved(api_client)
    change_request = api_clients.request_approval(user=adam, client=api_client, reason="Nytt")
    # Nothing to authenticate with yet: no application, no secret.
    assert get_token(client, "Verksamhetssystemet", "gissning").status_code == 401

    with pytest.raises(ValidationError) as own:
        administration.approve(user=adam, request_id=change_request.pk)
    assert own.value.code == "own_request"
    assert not _approved(api_client) and api_client.application is None

    approval = administration.approve(user=berit, request_id=change_request.pk)

    assert _approved(api_client)
    application = api_client.application
    assert approval.client_id == application.client_id and approval.secret
    # The database holds a hash of the secret, never the secret.
    assert application.client_secret != approval.secret
    assert identify_hasher(application.client_secret)
    assert check_password(approval.secret, application.client_secret)
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    assert application.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    response = get_token(client, approval.client_id, approval.secret)
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "cases:read"
    # Nor in the access log or the change request.
    logged = json.dumps(list(AccessEvent.objects.values("details", "fields", "purpose")))
    assert approval.secret not in logged
    assert approval.secret not in json.dumps(AdminChangeRequest.objects.get().change)
    assert get_token(client, approval.client_id, "fel").status_code == 401


def test_a_change_voids_the_approval_and_a_stale_request_is_refused(adam, berit, social, client):
    api_client, client_id, secret = make_client(social, READ_ONLY)
    token = get_token(client, client_id, secret).json()["access_token"]
    assert _bearer(client, token).status_code == 404  # authenticated; no such case

    _change(adam, api_client, scopes=[*READ_ONLY, "referrals:write"])

    assert not _approved(api_client)
    assert get_token(client, client_id, secret).status_code == 401
    assert _bearer(client, token).status_code == 401  # the token too, at once
    stale = api_clients.request_approval(user=adam, client=api_client, reason="Remisser")
    _change(adam, api_client, scopes=[*READ_ONLY, "referrals:write"], rate_limit="60/min")
    with pytest.raises(ValidationError) as refused:
        administration.approve(user=berit, request_id=stale.pk)
    assert refused.value.code == "stale"
    assert not _approved(api_client)

    change_request = api_clients.request_approval(user=adam, client=api_client, reason="r")
    approval = administration.approve(user=berit, request_id=change_request.pk)

    assert not approval.secret  # the client keeps its secret
    assert _approved(api_client)
    granted = get_token(client, client_id, secret)
    assert granted.status_code == 200
    assert set(granted.json()["scope"].split()) == {"cases:read", "referrals:write"}
    # A token asks only for scopes granted and approved.
    assert get_token(client, client_id, secret, scope="gvi:write").status_code == 400
    assert get_token(client, client_id, secret, scope="cases:read").json()["scope"] == (
        "cases:read"
    )


def test_fewer_scopes_take_effect_at_once_and_keep_the_approval(adam, social, client):
    api_client, client_id, secret = make_client(social, [*READ_ONLY, "referrals:write"])
    wide = get_token(client, client_id, secret).json()["access_token"]

    _change(adam, api_client, scopes=READ_ONLY)

    assert _approved(api_client)
    assert get_token(client, client_id, secret).json()["scope"] == "cases:read"
    # The older token named the removed scope: no longer honoured.
    refused = client.post(
        "/api/v1/sig/referrals/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {wide}",
        HTTP_SAMVERKAN_ACTING_USER="anna.social",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert refused.status_code == 403
    event = AccessEvent.objects.filter(object_type="casework.apiclient").last()
    assert event.details["step"] == "change" and event.details["reduced"] is True


def test_deactivation_stops_the_client_and_its_tokens_at_once(adam, social, client):
    api_client, client_id, secret = make_client(social, READ_ONLY)
    token = get_token(client, client_id, secret).json()["access_token"]

    assert api_clients.deactivate_client(user=adam, client=api_client) == 1

    assert not AccessToken.objects.filter(application=api_client.application).exists()
    assert _bearer(client, token).status_code == 401
    assert get_token(client, client_id, secret).status_code == 401
    event = AccessEvent.objects.filter(object_type="casework.apiclient").last()
    assert event.user == adam
    assert event.details["step"] == "deactivate" and event.details["tokens_revoked"] == 1
    # Switching it on again restores what was approved (logged, no second administrator).
    api_clients.activate_client(user=adam, client=api_client)
    assert get_token(client, client_id, secret).status_code == 200


def test_a_new_secret_is_approved_by_another_administrator_and_shown_once(
    adam, berit, social, client
):
    api_client, client_id, secret = make_client(social, READ_ONLY)
    token = get_token(client, client_id, secret).json()["access_token"]
    change_request = api_clients.request_new_secret(user=adam, client=api_client, reason="Läckt")
    assert get_token(client, client_id, secret).status_code == 200  # until approved
    with pytest.raises(ValidationError):
        administration.approve(user=adam, request_id=change_request.pk)

    approval = administration.approve(user=berit, request_id=change_request.pk)

    assert approval.secret and approval.secret != secret and approval.client_id == client_id
    assert get_token(client, client_id, secret).status_code == 401
    assert _bearer(client, token).status_code == 401
    assert get_token(client, client_id, approval.secret).status_code == 200
    assert _approved(api_client)
    # A client not yet approved has no secret to replace.
    new = api_clients.create_client(user=adam, name="Ny", organisation=social, scopes=READ_ONLY)
    with pytest.raises(ValidationError):
        api_clients.request_new_secret(user=adam, client=new, reason="r")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["cases:read", "allt"]}, "scopes"),
        ({"rate_limit": "många"}, "rate_limit"),
        ({"rate_limit": "0/min"}, "rate_limit"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(adam, social, values, field):
    with pytest.raises(ValidationError) as refused:
        api_clients.create_client(
            user=adam, **{"name": "Systemet", "organisation": social, "scopes": READ_ONLY, **values}
        )
    assert field in refused.value.error_dict
    assert not ApiClient.objects.exists()


def test_only_administrators_make_and_approve_clients(demo, adam, social):
    api_client = api_clients.create_client(
        user=adam, name="Systemet", organisation=social, scopes=READ_ONLY
    )
    change_request = api_clients.request_approval(user=adam, client=api_client, reason="r")
    for username in ("anna.social", "sara.samordnare", "greta.granskare", "stig.styrgrupp"):
        with pytest.raises(PermissionDenied):
            api_clients.create_client(
                user=demo[username], name="Eget", organisation=social, scopes=READ_ONLY
            )
        with pytest.raises(PermissionDenied):
            administration.approve(user=demo[username], request_id=change_request.pk)
        with pytest.raises(PermissionDenied):
            api_clients.deactivate_client(user=demo[username], client=api_client)
    assert ApiClient.objects.count() == 1 and not _approved(api_client)
    denied = AccessEvent.objects.filter(action="access_denied", details__kind="api_client")
    assert denied.count() == 12


def test_the_admin_pages_make_request_and_approve_a_client(adam, berit, social, client):
    client.force_login(adam)
    add = client.get("/admin/casework/apiclient/add/")
    assert add.status_code == 200
    assert b'type="checkbox" name="scopes" value="referrals:write"' in add.content
    bad = client.post(
        "/admin/casework/apiclient/add/",
        {"name": "Polisens system", "organisation": social.pk, "rate_limit": "fort"},
    )
    assert bad.status_code == 200 and not ApiClient.objects.exists()
    saved = client.post(
        "/admin/casework/apiclient/add/",
        {
            "name": "Socialtjänstens system",
            "organisation": social.pk,
            "scopes": ["cases:read", "referrals:write"],
            "rate_limit": "600/min",
        },
    )
    assert saved.status_code == 302
    api_client = ApiClient.objects.get()
    assert api_client.scope_set == {"cases:read", "referrals:write"}
    page = client.get(f"/admin/casework/apiclient/{api_client.pk}/change/").content.decode()
    assert "Begär godkännande" in page and "checked" in page

    asked = client.post(
        f"/admin/casework/apiclient/{api_client.pk}/begar-godkannande/", {"reason": "Nytt system"}
    )
    change_request = AdminChangeRequest.objects.get(kind="api_client")
    request_url = f"/admin/casework/adminchangerequest/{change_request.pk}/change/"
    assert asked.status_code == 302 and asked["Location"] == request_url
    own = client.post(request_url, {"decision": "approve"})
    assert own.status_code == 400 and not _approved(api_client)
    assert (
        f"#{change_request.pk}</a>"
        in client.get(f"/admin/casework/apiclient/{api_client.pk}/change/").content.decode()
    )

    listed = client.get("/admin/casework/apiclient/").content.decode()
    assert "Socialtjänstens system" in listed and "Begär godkännande" in listed

    client.force_login(berit)
    decided = client.post(request_url, {"decision": "approve"})

    assert decided.status_code == 200 and b"data-client-secret" in decided.content
    assert "no-store" in decided["Cache-Control"]
    api_client.refresh_from_db()
    client_id = api_client.application.client_id
    secret = re.search(
        r"<code>([^<]+)</code>", decided.content.decode().split("data-client-id")[1]
    )[1]
    assert check_password(secret, api_client.application.client_secret)
    assert get_token(client, client_id, secret).status_code == 200
    # Shown once: not on the page again, for either administrator.
    for admin in (berit, adam):
        client.force_login(admin)
        assert secret.encode() not in client.get(request_url).content


def test_the_admin_form_deactivates_at_once_and_asks_for_a_new_secret(adam, berit, social, client):
    api_client, client_id, secret = make_client(social, READ_ONLY)
    token = get_token(client, client_id, secret).json()["access_token"]
    client.force_login(adam)
    url = f"/admin/casework/apiclient/{api_client.pk}/change/"
    data = {"name": api_client.name, "organisation": social.pk, "scopes": READ_ONLY}
    assert client.post(url, {**data, "rate_limit": ""}).status_code == 302  # active unticked
    api_client.refresh_from_db()
    assert not api_client.is_active and _bearer(client, token).status_code == 401

    assert client.post(url, {**data, "is_active": "on"}).status_code == 302
    assert get_token(client, client_id, secret).status_code == 200
    asked = client.post(
        f"/admin/casework/apiclient/{api_client.pk}/begar-ny-hemlighet/", {"reason": "Läckt"}
    )
    assert asked.status_code == 302
    change_request = AdminChangeRequest.objects.filter(change__action="new_secret").get()
    client.force_login(berit)
    decided = client.post(
        f"/admin/casework/adminchangerequest/{change_request.pk}/change/", {"decision": "approve"}
    )
    assert decided.status_code == 200 and b"data-client-secret" in decided.content
    assert get_token(client, client_id, secret).status_code == 401


def test_non_administrators_are_refused_the_admin_pages(demo, social, client):
    api_client, _client_id, _secret = make_client(social, READ_ONLY)
    # A staff account without the administrator's role: 403 on every page.
    staff = User.objects.create_user("stina.stab", organisation=social, is_staff=True)
    pages = [
        "/admin/casework/apiclient/",
        "/admin/casework/apiclient/add/",
        f"/admin/casework/apiclient/{api_client.pk}/change/",
        f"/admin/casework/apiclient/{api_client.pk}/begar-godkannande/",
        f"/admin/casework/apiclient/{api_client.pk}/begar-ny-hemlighet/",
    ]
    for user in (staff, demo["anna.social"], demo["greta.granskare"]):
        client.force_login(user)
        for page in pages:
            for response in (client.get(page), client.post(page, {"reason": "x"})):
                assert response.status_code in (302, 403), (user, page, response.status_code)
                if response.status_code == 302:  # no staff: the admin's sign-in page
                    assert response["Location"].startswith("/admin/login/")
                assert api_client.name.encode() not in response.content
    client.force_login(staff)
    assert client.get(pages[0]).status_code == 403
    assert not AdminChangeRequest.objects.filter(requested_by=staff).exists()


def test_the_access_log_shows_both_administrators(adam, berit, social):
    api_client, _client_id, _secret = make_client(social, READ_ONLY)
    events = AccessEvent.objects.filter(action="account_change", details__kind="api_client")
    assert [(e.username, e.details["step"]) for e in events.order_by("id")] == [
        ("adam.admin", "request"),
        ("berit.admin", "approve"),
    ]
    change_request = AdminChangeRequest.objects.get(kind="api_client")
    assert change_request.requested_by == adam and change_request.decided_by == berit
    assert change_request.target_id == str(api_client.pk)
    assert change_request.change["scopes"] == READ_ONLY
    assert change_request.change["organisation"] == social.name


def test_seed_demo_makes_approved_demo_clients_with_the_known_secret(db, settings, client):
    settings.DEMO_API_CLIENTS = True
    settings.DEMO_API_SECRET = "känd-demohemlighet"
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 - idempotent

    assert ApiClient.objects.count() == 2
    requests = AdminChangeRequest.objects.filter(kind="api_client")
    assert requests.count() == 2
    assert {(r.requested_by.username, r.decided_by.username) for r in requests} == {
        ("adam.admin", "berit.admin")
    }
    for client_id in ("demo-socialtjanst", "demo-polisen"):
        response = get_token(client, client_id, "känd-demohemlighet")
        assert response.status_code == 200, response.content
        assert set(response.json()["scope"].split()) == set(settings.API_SCOPES)
    social = ApiClient.objects.get(application__client_id="demo-socialtjanst")
    assert social.name == "Samverkan demo – socialtjänsten"  # noqa: RUF001
    assert social.organisation.kind == "social_services"
