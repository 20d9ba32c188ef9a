"""Each role lands on its own start page and is refused on the others'."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from casework import roles

INBOX = "/arenden/inbox/"
STATISTICS = "/statistik/"
ACCESS_LOG = "/granskning/"
ADMIN = "/admin/"
EXTRACTS = "/registerutdrag/"

START_PAGES = {
    "anna.social": INBOX,
    "per.polis": INBOX,
    "sara.samordnare": INBOX,
    "alex.avhopp": INBOX,
    "lisa.skola": INBOX,
    "fredrik.fritid": INBOX,
    "stig.styrgrupp": STATISTICS,
    "greta.granskare": ACCESS_LOG,
    "dina.dataskydd": EXTRACTS,
    "adam.admin": ADMIN,
    "berit.admin": ADMIN,
}
ALL_START_PAGES = sorted(set(START_PAGES.values()))


@pytest.mark.parametrize(("username", "start_page"), START_PAGES.items())
def test_each_role_logs_in_and_lands_on_its_start_page(demo, login, username, start_page):
    response = login(username)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == start_page
    assert response.wsgi_request.user.username == username
    assert b'lang="sv"' in response.content


@pytest.mark.parametrize("username", START_PAGES)
@pytest.mark.parametrize("page", ALL_START_PAGES)
def test_each_role_is_refused_on_the_other_roles_start_pages(demo, client, username, page):
    client.force_login(demo[username])
    response = client.get(page)
    if page == START_PAGES[username]:
        assert response.status_code == 200
    elif page == ADMIN:
        # The admin sends non-staff users to its login page.
        assert response.status_code == 302
        assert "login" in response["Location"]
    else:
        assert response.status_code == 403
        assert "Åtkomst nekad".encode() in response.content


@pytest.mark.parametrize(
    "page",
    ["/", INBOX, "/arenden/queue/", "/arenden/archive/", STATISTICS, ACCESS_LOG, EXTRACTS, ADMIN],
)
def test_anonymous_users_are_redirected_to_login(db, client, page):
    response = client.get(page, follow=True)
    assert response.redirect_chain
    assert response.redirect_chain[-1][0].startswith("/konto/logga-in/?next=")
    assert response.status_code == 200
    assert b"Logga in" in response.content


def test_inbox_lists_the_users_tasks_and_queue(demo, client):
    client.force_login(demo["anna.social"])
    for page in (INBOX, "/arenden/queue/", "/arenden/archive/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert b"Inkorg" in response.content


def test_steering_group_and_auditor_see_no_case_pages(demo, client):
    for username in ("stig.styrgrupp", "greta.granskare", "dina.dataskydd", "adam.admin"):
        client.force_login(demo[username])
        for page in (INBOX, "/arenden/queue/", "/arenden/archive/", "/arenden/flows/"):
            assert client.get(page).status_code == 403, (username, page)


def test_case_worker_without_organisation_gets_no_inbox(demo, client):
    user = demo["anna.social"]
    user.organisation = None
    user.save()
    client.force_login(user)
    assert client.get(INBOX).status_code == 403


def test_user_without_role_gets_a_clear_page(demo, client, django_user_model):
    user = django_user_model.objects.create_user("utan.roll", password="x" * 16)
    client.force_login(user)
    response = client.get("/", follow=True)
    assert response.status_code == 403
    assert b"Ditt konto har ingen roll" in response.content


def test_wrong_password_is_a_form_error_in_swedish(demo, login):
    response = login("anna.social", "fel-lösenord")
    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert "Ange ett korrekt användarnamn och lösenord".encode() in response.content


def test_inactive_user_cannot_log_in(demo, login):
    user = demo["per.polis"]
    user.is_active = False
    user.save()
    response = login("per.polis")
    assert not response.wsgi_request.user.is_authenticated


def test_logout_ends_the_session(demo, client, login):
    login("anna.social")
    response = client.post("/konto/logga-ut/", follow=True)
    assert not response.wsgi_request.user.is_authenticated
    assert client.get(INBOX).status_code == 302


def test_english_can_be_selected(demo, client):
    client.force_login(demo["anna.social"])
    response = client.post("/i18n/setlang/", {"language": "en", "next": INBOX}, follow=True)
    assert response.status_code == 200
    assert b'lang="en"' in response.content
    assert b"Inbox" in response.content


def test_role_groups_are_created_by_migration_with_their_permissions(db):
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions")}
    assert set(roles.ALL_ROLES) <= set(groups)

    def perms(name):
        return {f"{p.content_type.app_label}.{p.codename}" for p in groups[name].permissions.all()}

    extra = {
        roles.COORDINATOR: {roles.PERM_COORDINATE, roles.PERM_BREAK_GLASS},
        roles.DEFECTOR_COORDINATOR: {roles.PERM_COORDINATE_DEFECTOR, roles.PERM_BREAK_GLASS},
        roles.POLICE_CONTACT: {roles.PERM_BREAK_GLASS},
    }
    for role in roles.CASE_ROLES:
        assert perms(role) == {roles.PERM_TASK_INBOX, *extra.get(role, set())}
    assert perms(roles.STEERING_GROUP) == {roles.PERM_STATISTICS}
    assert perms(roles.AUDITOR) == {roles.PERM_ACCESS_LOG}
    admin_perms = perms(roles.ADMINISTRATOR)
    assert "casework.change_user" in admin_perms
    assert not admin_perms & {roles.PERM_TASK_INBOX, roles.PERM_STATISTICS, roles.PERM_ACCESS_LOG}


def test_no_demo_user_exists_without_seed_demo(db, django_user_model):
    assert not django_user_model.objects.exists()
