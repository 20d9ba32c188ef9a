"""Session rules (issue 16): idle timeout with an answerable warning, absolute lifetime,
and signing out everywhere when an account's power changes.

Time is moved with time-machine, never slept. docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AccessEvent
from casework import roles
from casework.models import User
from casework.services import administration
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

HOME = "/"
KEEP_ALIVE = "/konto/session/forlang/"


@pytest.fixture
def now():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _signed_in_client(username: str) -> Client:
    client = Client()
    response = client.post("/konto/logga-in/", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response
    return client


def _is_signed_in(client: Client) -> bool:
    response = client.get(HOME)
    return not (response.status_code == 302 and "/konto/logga-in/" in response["Location"])


def test_idle_timeout_signs_out_after_the_idle_time_without_a_request(demo, now, settings):
    client = _signed_in_client("anna.social")
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert idle == dt.timedelta(minutes=30)
    now.shift(idle - dt.timedelta(seconds=5))
    assert _is_signed_in(client)  # a request: the idle time starts again
    now.shift(idle - dt.timedelta(seconds=5))
    assert _is_signed_in(client)
    now.shift(idle + dt.timedelta(seconds=1))
    assert not _is_signed_in(client)


def test_answering_the_warning_keeps_the_session(demo, now, settings):
    client = _signed_in_client("anna.social")
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    now.shift(idle - dt.timedelta(minutes=2))  # the warning shows about now
    response = client.post(KEEP_ALIVE)
    assert response.status_code == 200
    assert response.json()["idle_seconds"] == settings.SESSION_COOKIE_AGE
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    now.shift(idle - dt.timedelta(seconds=5))  # long after the first idle end
    assert _is_signed_in(client)


def test_the_keep_alive_answers_nothing_to_a_stranger_and_only_to_a_post(demo, now):
    anonymous = Client()
    response = anonymous.post(KEEP_ALIVE)
    assert response.status_code == 302
    assert "/konto/logga-in/" in response["Location"]
    client = _signed_in_client("anna.social")
    assert client.get(KEEP_ALIVE).status_code == 405


def test_the_absolute_lifetime_ends_a_busy_session(demo, now, settings):
    client = _signed_in_client("anna.social")
    lifetime = dt.timedelta(seconds=settings.SESSION_MAX_AGE)
    assert lifetime == dt.timedelta(hours=8)
    elapsed = dt.timedelta()
    while elapsed < lifetime - dt.timedelta(minutes=20):
        now.shift(dt.timedelta(minutes=20))
        elapsed += dt.timedelta(minutes=20)
        assert _is_signed_in(client), elapsed
        client.post(KEEP_ALIVE)
    now.shift(lifetime - elapsed)
    assert not _is_signed_in(client)
    assert client.post(KEEP_ALIVE).status_code == 302
    # A new sign-in starts a new lifetime.
    client = _signed_in_client("anna.social")
    assert _is_signed_in(client)


def test_the_pages_carry_the_warning_settings(demo, now, settings):
    client = _signed_in_client("anna.social")
    page = client.get(HOME, follow=True).content.decode()
    assert 'name="samverkan-session"' in page
    assert f'data-idle-seconds="{settings.SESSION_COOKIE_AGE}"' in page
    assert 'src="/static/samverkan/session.js"' in page
    admin = _signed_in_client("adam.admin")
    assert 'name="samverkan-session"' in admin.get("/admin/").content.decode()
    login = Client().get("/konto/logga-in/").content.decode()
    assert 'name="samverkan-session"' not in login


def _stored_idle_end(client: Client) -> dt.datetime:
    return Session.objects.get(session_key=client.cookies["sessionid"].value).expire_date


def test_a_renewal_is_written_only_when_it_moves_the_idle_end_enough(demo, now, settings):
    # ADR 0036, session 12: the idle end moves with every request, but is written only
    # when it moves by more than SESSION_RENEW_SECONDS (one statement instead of three).
    client = _signed_in_client("anna.social")
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    renew = dt.timedelta(seconds=settings.SESSION_RENEW_SECONDS)
    assert renew == dt.timedelta(seconds=60)
    signed_in = timezone.now()
    assert _stored_idle_end(client) == signed_in + idle
    now.shift(renew - dt.timedelta(seconds=1))
    with CaptureQueriesContext(connection) as queries:
        assert _is_signed_in(client)
    assert not any("UPDATE" in q["sql"] and "django_session" in q["sql"] for q in queries)
    assert _stored_idle_end(client) == signed_in + idle  # not written
    now.shift(dt.timedelta(seconds=2))  # now renew + 1 s after the last write
    assert _is_signed_in(client)
    assert _stored_idle_end(client) == timezone.now() + idle  # written


def test_the_idle_end_is_never_later_than_the_idle_time_after_the_last_request(demo, now, settings):
    client = _signed_in_client("anna.social")
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    renew = dt.timedelta(seconds=settings.SESSION_RENEW_SECONDS)
    now.shift(renew / 2)
    assert _is_signed_in(client)  # not written: the session ends renew / 2 early
    last_request = timezone.now()
    now.shift(idle - renew / 2 - dt.timedelta(seconds=1))
    assert _is_signed_in(client)  # within the idle time of the last write: renewed
    last_request = timezone.now()
    now.shift(idle)
    assert not _is_signed_in(client)
    assert timezone.now() - last_request <= idle


def test_the_page_tells_the_idle_time_left(demo, now, settings):
    client = _signed_in_client("anna.social")
    client.get(HOME, follow=True)  # the inbox remembers itself in the session: a change
    now.shift(dt.timedelta(seconds=30))  # within the renewal step: the end did not move
    page = client.get(HOME, follow=True).content.decode()
    assert f'data-idle-seconds="{settings.SESSION_COOKIE_AGE - 30}"' in page
    now.shift(dt.timedelta(seconds=settings.SESSION_RENEW_SECONDS))  # renewed by this one
    page = client.get(HOME, follow=True).content.decode()
    assert f'data-idle-seconds="{settings.SESSION_COOKIE_AGE}"' in page


def test_the_keep_alive_always_renews_in_full(demo, now, settings):
    client = _signed_in_client("anna.social")
    now.shift(dt.timedelta(seconds=10))  # within the renewal step
    response = client.post(KEEP_ALIVE)
    assert response.json()["idle_seconds"] == settings.SESSION_COOKIE_AGE
    assert _stored_idle_end(client) == timezone.now() + dt.timedelta(
        seconds=settings.SESSION_COOKIE_AGE
    )


def test_a_changed_session_is_always_written(demo, now, settings):
    client = _signed_in_client("anna.social")
    full = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    session = client.session
    session["samverkan_test"] = "one"
    session["samverkan_list"] = ["one"]
    session.save()
    now.shift(dt.timedelta(seconds=5))
    session = client.session
    session["samverkan_test"] = "two"
    session.save()
    assert client.session["samverkan_test"] == "two"
    assert _stored_idle_end(client) == timezone.now() + full
    now.shift(dt.timedelta(seconds=5))
    session = client.session
    values = session["samverkan_list"]
    values.append("two")  # changed in place, then set: a change
    session["samverkan_list"] = values
    session.save()
    assert client.session["samverkan_list"] == ["one", "two"]
    assert _stored_idle_end(client) == timezone.now() + full
    now.shift(dt.timedelta(seconds=5))
    session = client.session
    session["samverkan_test"] = "two"  # the value it holds: nothing to write
    session.save()
    assert _stored_idle_end(client) == timezone.now() - dt.timedelta(seconds=5) + full


# --- Sign out everywhere ----------------------------------------------------------------


def _sessions_of(user: User) -> int:
    return sum(
        1
        for session in Session.objects.all()
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    )


def _save_in_the_admin(demo, user, **fields):
    """adam.admin saves ``user``'s change form in the admin: its name, e-mail, organisation
    and roles as they are, then ``fields`` (a checkbox not among them is unticked)."""
    admin = Client()
    admin.force_login(demo["adam.admin"])
    form = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "organisation": user.organisation_id,
        "groups": [g.pk for g in user.groups.all()],
    }
    return admin.post(f"/admin/casework/user/{user.pk}/change/", {**form, **fields})


def test_deactivating_an_account_in_the_admin_ends_all_its_sessions(demo, now):
    anna = demo["anna.social"]
    browsers = [_signed_in_client("anna.social") for _ in range(2)]
    other = _signed_in_client("per.polis")
    assert _sessions_of(anna) == 2
    # "Active" left unticked.
    response = _save_in_the_admin(demo, anna, is_staff="")
    assert response.status_code == 302, response.content.decode()[:2000]
    anna.refresh_from_db()
    assert not anna.is_active
    assert _sessions_of(anna) == 0
    assert not any(_is_signed_in(browser) for browser in browsers)
    assert _is_signed_in(other)
    event = AccessEvent.objects.get(
        action=AccessEvent.Action.ACCOUNT_CHANGE, details__sessions_ended__isnull=False
    )
    assert event.details["sessions_ended"] == 2
    assert event.details["reason"] == "deactivated"
    assert event.username == "adam.admin"


def test_removing_a_role_in_the_admin_ends_the_sessions(demo, now):
    anna = demo["anna.social"]
    browser = _signed_in_client("anna.social")
    response = _save_in_the_admin(demo, anna, groups=[], is_active="on")
    assert response.status_code == 302
    assert not anna.groups.exists()
    assert not _is_signed_in(browser)


def test_a_role_granted_by_four_eyes_approval_ends_the_sessions(demo, now):
    lisa = demo["lisa.skola"]
    browser = _signed_in_client("lisa.skola")
    admin = Client()
    admin.force_login(demo["adam.admin"])  # the approver's own session stays
    group = Group.objects.get(name=roles.STEERING_GROUP)
    change = administration.request_role_grant(
        user=demo["berit.admin"],
        target=lisa,
        group=Group.objects.get(name=roles.LEISURE),
        reason="Arbetar även på fritidsgården",
    )
    administration.approve(user=demo["adam.admin"], request_id=change.pk)
    assert lisa.groups.filter(name=roles.LEISURE).exists()
    assert not _is_signed_in(browser)
    assert _is_signed_in(admin)
    # A change of a role's permissions ends its members' sessions too.
    stig = _signed_in_client("stig.styrgrupp")
    group.permissions.remove(*group.permissions.all())
    assert not _is_signed_in(stig)


def test_nothing_ends_when_nothing_of_power_changes(demo, now):
    anna = demo["anna.social"]
    browser = _signed_in_client("anna.social")
    anna.first_name = "Annie"
    anna.save()
    anna.groups.set(list(anna.groups.all()))
    assert _is_signed_in(browser)


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("signed_in", [True, False])
def test_the_session_rules_tag_gives_the_template_s_markup(demo, now, language, signed_in):
    """``{% session_rules %}`` makes its markup in Python (ADR 0036, session 17): the same
    text ``samverkan/session_rules.html`` renders from the same values, in both languages,
    with a signed-in user and without; a late-evening end shows the local time."""
    from django.contrib.auth.models import AnonymousUser
    from django.middleware.csrf import get_token
    from django.template import Context, Template
    from django.template.loader import render_to_string
    from django.test import RequestFactory
    from django.utils import translation

    from casework.sessions import SIGNED_IN_AT
    from casework.templatetags.session_rules import session_rules_context

    now.move_to(dt.datetime(2026, 12, 7, 15, 59, 30, tzinfo=dt.UTC))  # ends 23:59 UTC+1
    request = RequestFactory().get(HOME)
    request.user = User.objects.get(username="anna.social") if signed_in else AnonymousUser()
    request.session = Client().session
    request.session[SIGNED_IN_AT] = timezone.now().timestamp()
    with translation.override(language):
        context = Context({"request": request, "csrf_token": get_token(request)})
        tag = Template("{% load session_rules %}{% session_rules %}").render(context)
        expected = render_to_string(
            "samverkan/session_rules.html", session_rules_context(Context(context.flatten()))
        )
    assert tag == expected
    assert ('name="samverkan-session"' in tag) is signed_in
    if signed_in:
        assert "00:59" in tag  # 23:59 UTC is 00:59 in Stockholm: local time, not UTC


def test_the_session_rules_tag_follows_the_script_prefix(demo, now):
    """The addresses kept once a process are kept per script prefix (a deployment under a
    path), as ``reverse`` gives them."""
    from django.template import Context, Template
    from django.test import RequestFactory
    from django.urls import get_script_prefix, set_script_prefix

    request = RequestFactory().get(HOME)
    request.user = User.objects.get(username="anna.social")
    request.session = Client().session
    request.session["samverkan_signed_in_at"] = timezone.now().timestamp()
    template = Template("{% load session_rules %}{% session_rules %}")
    before = get_script_prefix()
    try:
        for prefix in ("/", "/samverkan/", "/"):
            set_script_prefix(prefix)
            page = template.render(Context({"request": request, "csrf_token": "t"}))
            assert f'data-keep-alive-url="{prefix}konto/session/forlang/"' in page
            assert f'data-login-url="{prefix}konto/logga-in/"' in page
    finally:
        set_script_prefix(before)
