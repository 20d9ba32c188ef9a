"""The page shell's kept parts (``{% shellpart %}``, docs/adr/0036-fast-pages.md session 16):
rendered once a process per user, permissions, language and script prefix, under the
access generation the user was read under. What a user sees changes on the very next
request after a role is given or withdrawn, a permission is taken from a role, the
account or its organisation changes, or the language is switched; no user ever gets
another's menu; and a page from the kept parts is the page rendered afresh."""

from __future__ import annotations

import gc
import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from casework import roles
from casework.templatetags import samverkan as tags
from config.wsgi import FreezeAfterWarmUp

pytestmark = pytest.mark.django_db

REMINDERS = "/arenden/paminnelser/"
SETTINGS = "/konto/installningar/"


def _page(client: Client, path: str = REMINDERS) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def _menu(client: Client, path: str = REMINDERS) -> str:
    """The side menu of the page (the ``<aside>``), its CSRF token taken out."""
    page = _page(client, path)
    aside = page[page.index('<aside class="vf-page__menu') : page.index("</aside>")]
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", aside)


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _processes_link() -> str:
    return f'href="{reverse("arenden:flows:index")}"'


def test_a_role_given_shows_on_the_very_next_request(demo):
    anna = demo["anna.social"]
    client = _signed_in(anna)
    before = _menu(client)
    assert _menu(client) == before  # the kept menu
    assert _processes_link() not in before
    anna.groups.add(Group.objects.get(name=roles.COORDINATOR))
    client.force_login(anna)  # a role change ends the user's sessions (casework.services.sessions)
    after = _menu(client)
    assert _processes_link() in after
    assert reverse("arenden:tasks_to_manage") in after


def test_a_role_withdrawn_shows_on_the_very_next_request(demo):
    anna = demo["anna.social"]
    coordinator = Group.objects.get(name=roles.COORDINATOR)
    anna.groups.add(coordinator)
    client = _signed_in(anna)
    assert _processes_link() in _menu(client)
    anna.groups.remove(coordinator)
    client.force_login(anna)
    assert _processes_link() not in _menu(client)


def test_a_permission_withdrawn_from_a_role_shows_on_the_very_next_request(demo):
    sara = demo["sara.samordnare"]
    client = _signed_in(sara)
    assert _processes_link() in _menu(client)
    Group.objects.get(name=roles.COORDINATOR).permissions.remove(
        Permission.objects.get(content_type__app_label="casework", codename="coordinate_cases")
    )
    client.force_login(sara)  # in case the change ended the role's sessions
    assert _processes_link() not in _menu(client)


def test_a_change_to_the_account_shows_on_the_very_next_request(demo):
    anna = demo["anna.social"]
    client = _signed_in(anna)
    assert "Annika Nyname" not in _menu(client)
    anna.first_name, anna.last_name = "Annika", "Nyname"
    anna.save(update_fields=["first_name", "last_name"])
    assert "Annika Nyname" in _menu(client)  # the menu's header, a kept part


def test_a_language_switch_shows_on_the_very_next_request(demo):
    client = _signed_in(demo["anna.social"])
    swedish = _menu(client)
    assert "Ärendelista" in swedish and "Byt språk" in _page(client)
    response = client.post("/i18n/setlang/", {"language": "en", "next": REMINDERS})
    assert response.status_code == 302
    english = _menu(client)
    assert "Case list" in english and "Ärendelista" not in english
    assert "Change language" in _page(client) and "Byt språk" not in _page(client)
    assert 'lang="en" selected' in _page(client)
    client.post("/i18n/setlang/", {"language": "sv", "next": REMINDERS})
    assert _menu(client) == swedish


def test_two_users_never_see_each_others_menu(demo):
    anna, sara = _signed_in(demo["anna.social"]), _signed_in(demo["sara.samordnare"])
    for _ in range(2):  # rendered, then kept
        annas, saras = _menu(anna), _menu(sara)
        assert _processes_link() not in annas and _processes_link() in saras
        assert "Anna" in annas and "Anna" not in saras
        assert "Sara" in saras and "Sara" not in annas


@pytest.mark.parametrize(
    "username", ["anna.social", "sara.samordnare", "per.polis", "greta.granskare", "lisa.skola"]
)
def test_a_page_from_the_kept_parts_is_the_page_rendered_afresh(demo, username):
    client = _signed_in(demo[username])
    pages = [SETTINGS, "/konto/tvasteg/"]
    if username != "greta.granskare":  # her start page, the access log, grows with each view
        pages += ["/", "/arenden/inbox/", "/arenden/fall/", REMINDERS]

    def rendered() -> list[str]:
        out = []
        for path in pages:
            response = client.get(path, follow=True)
            text = response.content.decode()
            text = re.sub(r'(csrfmiddlewaretoken" value|data-csrf-token)="[^"]+"', "", text)
            # The session's end and idle time (a first request renews it, the next not).
            out.append(re.sub(r'data-(ends-at|idle-seconds)="\d+"|\d\d:\d\d', "", text))
        return out

    rendered()  # the session renewed, the task pages' names loaded
    tags._parts.clear()
    fresh = rendered()
    assert tags._parts._entries  # the parts are kept…
    kept = rendered()
    for path, a, b in zip(pages, fresh, kept, strict=True):
        assert a == b, path  # …and give the same pages


def test_a_kept_part_follows_the_language_and_its_keys():
    template = Template(
        '{% load i18n samverkan %}{% shellpart "t" who %}{{ who }} {% translate "Inbox" %}'
        "{% endshellpart %}"
    )
    with translation.override("sv"):
        assert template.render(Context({"who": "a"})) == "a Inkorg"
        assert template.render(Context({"who": "b"})) == "b Inkorg"
        assert template.render(Context({"who": "a"})) == "a Inkorg"
    with translation.override("en"):
        assert template.render(Context({"who": "a"})) == "a Inbox"


def test_a_part_of_a_signed_in_user_is_kept_under_the_users_access_generation(demo):
    template = Template('{% load samverkan %}{% shellpart "g" %}{{ n }}{% endshellpart %}')
    user = demo["anna.social"]

    class Request:
        pass

    request = Request()
    request.user = user
    user._access_generation = 7
    assert template.render(Context({"request": request, "n": 1})) == "1"
    assert template.render(Context({"request": request, "n": 2})) == "1"  # kept
    user._access_generation = 8
    assert template.render(Context({"request": request, "n": 3})) == "3"  # a newer generation


def test_a_shellpart_needs_a_quoted_name():
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        Template("{% load samverkan %}{% shellpart name %}{% endshellpart %}")


def test_the_wsgi_entry_freezes_once_after_its_warm_up():
    calls = []

    def app(environ, start_response):
        calls.append(environ)
        return [b"ok"]

    wrapped = FreezeAfterWarmUp(app, requests=3)
    frozen = gc.get_freeze_count()
    try:
        for n in range(3):
            assert wrapped({"n": n}, None) == [b"ok"]
            assert gc.get_freeze_count() == frozen
        assert wrapped({"n": 3}, None) == [b"ok"]
        after = gc.get_freeze_count()
        assert after > frozen
        wrapped({"n": 4}, None)
        assert gc.get_freeze_count() == after  # once
        assert wrapped.remaining < 0
        assert [c["n"] for c in calls] == [0, 1, 2, 3, 4]
    finally:
        gc.unfreeze()
