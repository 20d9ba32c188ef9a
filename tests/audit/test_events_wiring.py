"""Logins, denied access and account changes reach the access log for the whole site."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit.models import AccessEvent
from audit.services import Action

DEMO_PASSWORD = "samverkan-demo"


def _events(action: str):
    return AccessEvent.objects.filter(action=action).order_by("id")


def test_login_and_logout_are_logged(demo, login, client):
    response = login("per.polis", headers={"X-Request-ID": "req-login-000001"})
    assert response.status_code == 200
    event = _events(Action.LOGIN).get()
    assert (event.username, event.user_id) == ("per.polis", demo["per.polis"].pk)
    assert event.roles == "kontaktpolis"
    assert event.organisation_name == "Lokalpolisområde Örebro"
    assert event.request_id == "req-login-000001"
    assert event.client_address == "127.0.0.1"
    client.post("/konto/logga-ut/")
    assert _events(Action.LOGOUT).get().user_id == demo["per.polis"].pk


def test_a_failed_login_keeps_the_name_tried_but_never_the_password(demo, login):
    login("per.polis", password="Gissning-1234")
    login("ingen.sådan\nadmin inloggad", password="Gissning-5678")
    first, second = _events(Action.LOGIN_FAILED)
    assert (first.username, first.user_id, first.outcome) == ("per.polis", None, "denied")
    assert second.username == "ingen.sådan\\nadmin inloggad"
    dump = str(list(AccessEvent.objects.values_list()))
    assert "Gissning" not in dump


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("anna.social", "/granskning/"),
        ("stig.styrgrupp", "/arenden/inbox/"),
        ("greta.granskare", "/statistik/"),
    ],
)
def test_every_403_is_logged_with_path_and_reason_but_no_query(demo, client, username, path):
    client.force_login(demo[username])
    response = client.get(
        path + "?personnummer=19121212-1212", headers={"X-Request-ID": "req-deny-0001"}
    )
    assert response.status_code == 403
    assert "access log" in response.content.decode() or "åtkomstlogg" in response.content.decode()
    event = _events(Action.ACCESS_DENIED).get()
    assert event.user_id == demo[username].pk
    assert event.outcome == "denied"
    assert event.details["path"] == path
    assert event.details["method"] == "GET"
    assert "reason" in event.details
    assert "19121212" not in str(event.details)
    assert event.request_id == "req-deny-0001"


def test_a_403_from_a_view_keeps_its_reason(demo, client, settings):
    client.force_login(demo["lisa.skola"])
    response = client.get("/granskning/export.csv")
    assert response.status_code == 403
    assert _events(Action.ACCESS_DENIED).get().details["reason"] == "PermissionDenied"


def test_a_user_without_a_role_is_refused_and_logged(demo, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("utan.roll"))
    assert client.get("/").status_code == 403
    assert _events(Action.ACCESS_DENIED).get().username == "utan.roll"


def test_csrf_failures_are_logged_as_denied(demo):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/konto/logga-in/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    event = _events(Action.ACCESS_DENIED).get()
    assert event.user_id is None
    assert event.details["path"] == "/konto/logga-in/"


def test_granting_a_role_in_the_admin_names_the_administrator(demo, client):
    admin, target = demo["adam.admin"], demo["lisa.skola"]
    client.force_login(admin)
    before = _events(Action.ACCOUNT_CHANGE).count()
    # A role that opens nothing but statistics: granted in the admin's form (roles
    # that open case data wait for a second administrator, tests/casework/test_four_eyes.py).
    steering = Group.objects.get(name="styrgrupp")
    response = client.post(
        f"/admin/casework/user/{target.pk}/change/",
        {
            "username": target.username,
            "first_name": target.first_name,
            "last_name": target.last_name,
            "email": target.email,
            "organisation": demo["per.polis"].organisation_id,
            "groups": [steering.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            # is_active left out: the account is deactivated
        },
    )
    assert response.status_code == 302
    events = list(_events(Action.ACCOUNT_CHANGE)[before:])
    assert {e.user_id for e in events} == {admin.pk}
    assert {e.object_id for e in events} == {str(target.pk)}
    details = [e.details for e in events]
    flags = next(d for d in details if "changes" in d)["changes"]
    assert flags["is_active"] == {"from": True, "to": False}
    assert flags["organisation_id"]["to"] == demo["per.polis"].organisation_id
    assert {"account": "lisa.skola", "roles_removed": ["skola"]} in details
    assert {"account": "lisa.skola", "roles_added": ["styrgrupp"]} in details


def test_account_creation_password_resets_and_group_side_changes_are_logged(demo):
    from casework.models import User

    user = User.objects.create_user("ny.kollega")
    created = _events(Action.ACCOUNT_CHANGE).filter(object_id=str(user.pk)).get()
    assert created.details["created"] is True
    assert created.user_id is None  # no request: a command or the shell
    user.set_password("ett-nytt-lösenord-1")
    user.save()
    assert (
        _events(Action.ACCOUNT_CHANGE)
        .filter(object_id=str(user.pk), details__changes__password_changed=True)
        .exists()
    )
    Group.objects.get(name="granskare").user_set.add(user)
    assert (
        _events(Action.ACCOUNT_CHANGE)
        .filter(object_id=str(user.pk), details__roles_added=["granskare"])
        .exists()
    )
    user.groups.clear()
    assert (
        _events(Action.ACCOUNT_CHANGE)
        .filter(object_id=str(user.pk), details__roles_removed=["granskare"])
        .exists()
    )
    assert "ett-nytt" not in str(list(AccessEvent.objects.values_list()))


def test_a_login_does_not_count_as_an_account_change(demo, login):
    before = _events(Action.ACCOUNT_CHANGE).count()
    login("anna.social")
    assert _events(Action.ACCOUNT_CHANGE).count() == before


def test_a_failing_log_write_still_refuses_with_403(demo, client, monkeypatch, caplog):
    from django.db import DatabaseError

    from audit import services

    def broken(**kwargs):
        raise DatabaseError("the log is unreachable")

    monkeypatch.setattr(services, "record_denied_access", broken)
    client.force_login(demo["anna.social"])
    assert client.get("/granskning/").status_code == 403
    assert "could not record a denied access" in caplog.text
