"""The auditor sees the administrators' change requests (four eyes), read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit.models import AccessEvent
from casework import roles
from casework.models import AdminChangeRequest, User
from casework.services import administration

PAGE = "/granskning/andringsbegaran/"


@pytest.fixture
def requests_(demo):
    adam, berit = demo["adam.admin"], demo["berit.admin"]
    newcomer = User.objects.create_user("ny.kollega")
    pending = administration.request_role_grant(
        user=adam,
        target=newcomer,
        group=Group.objects.get(name=roles.COORDINATOR),
        reason="Ny samordnare",
    )
    rejected = administration.request_password_link(
        user=adam, target=demo["anna.social"], reason="Glömt lösenordet"
    )
    administration.reject(user=berit, request_id=rejected.pk, reason="Ej styrkt identitet")
    return pending, rejected


def test_the_auditor_sees_pending_and_decided_requests(demo, client, requests_):
    pending, rejected = requests_
    client.force_login(demo["greta.granskare"])
    response = client.get(PAGE)
    assert response.status_code == 200
    content = response.content.decode()
    assert f'data-change-request="{pending.pk}" data-decision="pending"' in content
    assert f'data-change-request="{rejected.pk}" data-decision="rejected"' in content
    for text in ("Ny samordnare", "Ej styrkt identitet", "adam.admin", "berit.admin", "samordnare"):
        assert text in content
    assert "Administratörernas ändringsbegäranden" in content
    event = AccessEvent.objects.filter(user=demo["greta.granskare"], action="audit_read").last()
    assert event.details["page"] == "change_requests"


def test_the_auditor_filters_by_decision_and_bad_filters_show_all(demo, client, requests_):
    pending, rejected = requests_
    client.force_login(demo["greta.granskare"])
    content = client.get(PAGE, {"decision": "pending"}).content.decode()
    assert f'data-change-request="{pending.pk}"' in content
    assert f'data-change-request="{rejected.pk}"' not in content
    response = client.get(PAGE, {"decision": "<script>"})
    assert response.status_code == 200
    assert f'data-change-request="{rejected.pk}"' in response.content.decode()


def test_the_page_is_read_only(demo, client, requests_):
    pending, _rejected = requests_
    client.force_login(demo["greta.granskare"])
    response = client.post(PAGE, {"decision": "approve"})
    assert response.status_code == 405
    pending.refresh_from_db()
    assert pending.decision == AdminChangeRequest.Decision.PENDING
    assert b'value="approve"' not in client.get(PAGE).content


@pytest.mark.parametrize(
    "username",
    ["anna.social", "sara.samordnare", "lisa.skola", "stig.styrgrupp", "adam.admin"],
)
def test_nobody_else_sees_the_auditor_page(demo, client, requests_, username):
    client.force_login(demo[username])
    response = client.get(PAGE)
    assert response.status_code == 403
    assert b"Ny samordnare" not in response.content


def test_anonymous_users_are_sent_to_login(db, client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/konto/logga-in/")
