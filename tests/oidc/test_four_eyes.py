"""Who may sign in as whom is under four eyes (ADR 0018, on ADR 0014's change requests).

A provider's configuration and an identity linked to an account are edited by one
administrator (each save in the access log) and used for sign-in only once
another administrator approved exactly that; any later change voids the approval.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AccessEvent
from casework.models import (
    ExternalIdentity,
    IdentityProvider,
    IdentityProviderOrganisation,
    Organisation,
)
from casework.selectors.sso import sign_in_providers
from casework.services import administration


@pytest.fixture
def provider(db):
    provider = IdentityProvider.objects.create(
        slug="kommunen",
        name="Kommunens inloggning",
        issuer="https://idp.example.test",
        client_id="samverkan",
    )
    organisation = Organisation.objects.create(name="Exempelkommunen", kind="social_services")
    IdentityProviderOrganisation.objects.create(provider=provider, organisation=organisation)
    return provider


def test_a_provider_is_used_only_once_a_second_administrator_approved_it(adam, berit, provider):
    assert sign_in_providers() == []

    change_request = administration.request_identity_provider(
        user=adam, provider=provider, reason="Kommunens Entra ID"
    )
    with pytest.raises(ValidationError) as refused:
        administration.approve(user=adam, request_id=change_request.pk)
    assert refused.value.code == "own_request"
    assert sign_in_providers() == []

    administration.approve(user=berit, request_id=change_request.pk)

    provider.refresh_from_db()
    assert administration.sso_approved(provider)
    assert sign_in_providers() == [provider]
    assert change_request.change["issuer"] == "https://idp.example.test"
    assert change_request.change["organisations"] == [
        {"organisation": "Exempelkommunen", "minimum_acr": ""}
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"match_claim": "email"},
        {"jwks_uri": "https://evil.example.test/jwks"},
        {"client_secret_env": "SAMVERKAN_OIDC_SECRET_OTHER"},
        {"issuer": "https://other.example.test"},
    ],
)
def test_any_change_after_the_approval_takes_the_provider_out_of_use(adam, berit, provider, change):
    request = administration.request_identity_provider(user=adam, provider=provider, reason="r")
    administration.approve(user=berit, request_id=request.pk)

    IdentityProvider.objects.filter(pk=provider.pk).update(**change)

    assert sign_in_providers() == []


def test_serving_another_organisation_needs_a_new_approval(adam, berit, provider):
    request = administration.request_identity_provider(user=adam, provider=provider, reason="r")
    administration.approve(user=berit, request_id=request.pk)
    police = Organisation.objects.create(name="Polisen", kind="police")

    IdentityProviderOrganisation.objects.create(provider=provider, organisation=police)
    assert sign_in_providers() == []

    # A request made before a change is stale when approved after it.
    request = administration.request_identity_provider(user=adam, provider=provider, reason="r")
    IdentityProviderOrganisation.objects.filter(organisation=police).update(minimum_acr="loa4")
    with pytest.raises(ValidationError) as refused:
        administration.approve(user=berit, request_id=request.pk)
    assert refused.value.code == "stale"
    assert sign_in_providers() == []


def test_a_link_is_approved_by_another_administrator_and_never_for_oneself(
    adam, berit, provider, demo
):
    worker = demo["anna.social"]
    identity = ExternalIdentity.objects.create(user=worker, provider=provider, subject="abc-123")
    change_request = administration.request_external_identity(
        user=adam, identity=identity, reason="Ny medarbetare"
    )
    assert not administration.sso_approved(identity)
    administration.approve(user=berit, request_id=change_request.pk)
    identity.refresh_from_db()
    assert administration.sso_approved(identity)

    # Moved to another account afterwards: no longer approved.
    ExternalIdentity.objects.filter(pk=identity.pk).update(user=adam)
    identity.refresh_from_db()
    assert not administration.sso_approved(identity)

    own = ExternalIdentity.objects.create(user=adam, provider=provider, subject="adam-sub")
    with pytest.raises(ValidationError):
        administration.request_external_identity(user=adam, identity=own, reason="r")
    for_adam = ExternalIdentity.objects.create(user=adam, provider=provider, subject="adam-2")
    request = administration.request_external_identity(user=berit, identity=for_adam, reason="r")
    with pytest.raises(ValidationError):
        administration.approve(user=adam, request_id=request.pk)  # his own account


def test_the_admin_saves_are_in_the_access_log_and_the_request_page_works(
    adam, berit, provider, client
):
    client.force_login(adam)
    url = f"/admin/casework/identityprovider/{provider.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert "Begär godkännande" in page.content.decode()

    data = {
        "name": provider.name,
        "slug": provider.slug,
        "is_active": "on",
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret_env": "SAMVERKAN_OIDC_SECRET_KOMMUNEN",
        "scopes": "openid",
        "authorization_endpoint": "",
        "token_endpoint": "",
        "userinfo_endpoint": "",
        "jwks_uri": "",
        "match_claim": "sub",
        "account_field": "linked",
        "acr_levels": "",
        "identityproviderorganisation_set-TOTAL_FORMS": "0",
        "identityproviderorganisation_set-INITIAL_FORMS": "0",
    }
    # A secret is named, never given: only SAMVERKAN_OIDC_SECRET_* variables.
    bad = client.post(url, {**data, "client_secret_env": "SECRET_KEY"})
    assert bad.status_code == 200
    assert IdentityProvider.objects.get(pk=provider.pk).client_secret_env == ""

    saved = client.post(url, data)
    assert saved.status_code == 302
    event = AccessEvent.objects.filter(
        action="change", object_type="casework.identityprovider", user=adam
    ).get()
    assert "client_secret_env" in event.fields
    assert event.details == {"sso": True, "approved": False}

    request_url = f"/admin/casework/identityprovider/{provider.pk}/begar-godkannande/"
    assert client.post(request_url, {"reason": "Ny klient"}).status_code == 302
    change_request = administration.AdminChangeRequest.objects.get(kind="identity_provider")
    client.force_login(berit)
    decided = client.post(
        f"/admin/casework/adminchangerequest/{change_request.pk}/change/",
        {"decision": "approve"},
    )
    assert decided.status_code == 302
    provider.refresh_from_db()
    assert administration.sso_approved(provider)
