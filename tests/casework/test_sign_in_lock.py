"""Guessing is stopped (issue 16): failed sign-ins locked per account name and per address.

django-axes counts the failures (``casework.signin``); after ``AXES_FAILURE_LIMIT`` (5)
for one name, or ``LOGIN_ADDRESS_FAILURE_LIMIT`` from one address, sign-in is refused for
``LOGIN_LOCK_MINUTES`` — the right password too — with one answer whatever the name.
Time is moved with time-machine, never slept. docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from audit.models import AccessEvent
from casework.services import signin
from tests.conftest import DEMO_PASSWORD

# Failed logins and locks write their events on the second connection ("audit").
pytestmark = pytest.mark.django_db(databases=["default", "audit"])

LOGIN = "/konto/logga-in/"
ADDRESS = "192.0.2.10"
OTHER_ADDRESS = "192.0.2.99"


def _sign_in(client, username, password, address=ADDRESS):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def _alert(response) -> str:
    match = re.search(
        r'<p class="errorlist" role="alert" data-sign-in-locked>(.*?)</p>',
        response.content.decode(),
        re.S,
    )
    return match[1] if match else ""


@pytest.fixture
def now():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_the_sixth_attempt_is_refused_even_with_the_right_password_until_the_lock_ends(
    demo, now, settings
):
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        response = _sign_in(client, "anna.social", "fel-lösenord")
        assert not _signed_in(client)
    # The sixth: the right password, refused.
    response = _sign_in(client, "anna.social", DEMO_PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)
    assert "inloggningen är spärrad" in _alert(response).lower()
    # Still locked a minute before the end, from another address too (the account is locked).
    now.shift(dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES - 1))
    assert _sign_in(Client(), "anna.social", DEMO_PASSWORD, OTHER_ADDRESS).status_code == 429
    # The lock ends after its time: the right password works again.
    now.shift(dt.timedelta(minutes=1, seconds=1))
    response = _sign_in(client, "anna.social", DEMO_PASSWORD)
    assert response.status_code == 302
    assert _signed_in(client)


def test_five_failures_then_the_right_password_once_less_is_not_locked(demo, now, settings):
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "anna.social", "fel-lösenord")
    assert _sign_in(client, "anna.social", DEMO_PASSWORD).status_code == 302
    # A successful sign-in clears the account's count.
    assert not AccessAttempt.objects.filter(username="anna.social").exists()


def test_an_unknown_account_gets_the_same_answer_as_a_real_one(demo, now, settings):
    answers = {}
    for username in ("anna.social", "finns.inte"):
        client = Client()
        first = _sign_in(client, username, "fel-lösenord")
        for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
            _sign_in(client, username, "fel-lösenord")
        locked = _sign_in(client, username, "fel-lösenord")
        answers[username] = (first.status_code, locked.status_code, _alert(locked))
    assert answers["anna.social"] == answers["finns.inte"]
    assert answers["anna.social"][1] == 429
    assert answers["anna.social"][2]
    assert "anna" not in answers["anna.social"][2] and "finns" not in answers["finns.inte"][2]


def test_one_address_is_locked_after_its_own_limit_whatever_the_names(demo, now, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    client = Client()
    for number in range(8):  # a spray: one wrong password each for eight names
        _sign_in(client, f"namn{number}", "fel-lösenord")
    # A real account with its right password, from that address: refused.
    response = _sign_in(client, "per.polis", DEMO_PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)
    # From another address it works (the account itself is not locked).
    other = Client()
    assert _sign_in(other, "per.polis", DEMO_PASSWORD, OTHER_ADDRESS).status_code == 302
    # And the address's lock ends after its time.
    now.shift(dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES, seconds=1))
    assert _sign_in(client, "per.polis", DEMO_PASSWORD).status_code == 302


def test_the_lock_and_each_failure_are_in_the_access_log(demo, now, settings):
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        _sign_in(client, "anna.social", "fel-lösenord")
    failed = AccessEvent.objects.filter(
        action=AccessEvent.Action.LOGIN_FAILED, username="anna.social"
    )
    assert failed.count() == settings.AXES_FAILURE_LIMIT + 1
    locked = AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCESS_DENIED,
        username="anna.social",
        details__sign_in_locked=True,
    )
    assert locked.exists()
    assert {event.client_address for event in failed} == {ADDRESS}
    for event in (*failed, *locked):
        assert "fel-lösenord" not in str(event.details)


def test_an_administrator_lifts_a_lock_alone_and_it_is_logged(demo, now, settings):
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "anna.social", "fel-lösenord")
        _sign_in(client, "anna.social", "fel-lösenord", OTHER_ADDRESS)
    assert _sign_in(client, "anna.social", DEMO_PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(demo["adam.admin"])
    page = admin.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "anna.social" in page.content.decode()
    one = AccessAttempt.objects.filter(username="anna.social").first()
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "lift_locks", "_selected_action": [one.pk], "index": 0},
    )
    assert response.status_code == 302
    # Lifted whole (both addresses), without a second administrator.
    assert not AccessAttempt.objects.filter(username="anna.social").exists()
    events = AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCOUNT_CHANGE, details__step="lift_sign_in_lock"
    )
    assert events.count() == 2
    assert {event.username for event in events} == {"adam.admin"}
    assert {event.details["account"] for event in events} == {"anna.social"}
    assert _sign_in(client, "anna.social", DEMO_PASSWORD).status_code == 302


@pytest.mark.parametrize("username", ["anna.social", "greta.granskare", "stig.styrgrupp"])
def test_nobody_else_lifts_a_lock(demo, now, settings, username):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(Client(), "per.polis", "fel-lösenord")
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    with pytest.raises(PermissionDenied):
        signin.lift_locks(user=demo[username], attempt_ids=ids)
    assert AccessAttempt.objects.count() == len(ids)
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCESS_DENIED,
        username=username,
        details__step="lift_sign_in_lock",
    ).exists()
    client = Client()
    client.force_login(demo[username])
    assert client.get("/admin/axes/accessattempt/").status_code in (302, 403)
