"""The API's foundation: tokens, the acting person, a referral and its reading."""

from __future__ import annotations

import pytest

from audit.models import AccessEvent
from casework.models import Case
from casework.personnummer import with_check_digit
from tests.api.conftest import get_token, make_client

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])


def _valid_referral(**changes):
    """A SIG referral of a synthetic 17-year-old (the check digit computed, no one real)."""
    return {
        "personnummer": "20" + with_check_digit("090815098"),
        "name": "Test Testsson",
        "area": "other",
        "reason": "Orolig för kriminalitet.",
        **changes,
    }


def test_token_then_referral_then_read(social_api, demo):
    response = social_api.post("/api/v1/sig/referrals/", _valid_referral(), acting="anna.social")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["programme"] == "sig" and body["status"] == "referred"
    case = Case.objects.get(pk=body["id"])
    # The referrer is not on the team: reading the new case is refused, as a 404.
    refused = social_api.get(f"/api/v1/cases/{case.pk}/", acting="anna.social")
    assert refused.status_code == 404
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["detail"] and refused.json()["detail_en"]
    # The coordinator reads it; the event names the client.
    read = social_api.get(f"/api/v1/cases/{case.pk}/", acting="sara.samordnare")
    assert read.status_code == 200, read.content
    assert read.json()["reference"] == case.reference
    assert read["ETag"] == f'"v{case.version}"'
    event = AccessEvent.objects.filter(action="consult", object_id=str(case.pk)).last()
    assert event.username == "sara.samordnare"
    assert event.details["api_client"] == social_api.client.name


def test_no_token_is_a_401_problem(client):
    response = client.get("/api/v1/cases/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unapproved_client_gets_no_token(demo, client):
    organisation = demo["anna.social"].organisation
    _client, client_id, secret = make_client(organisation, approved=False)
    response = get_token(client, client_id, secret)
    assert response.status_code in (400, 401)
