"""``casework.auth.RoleBackend``: Django's model backend, with the roles read once.

The permissions it answers must be exactly the model backend's; the access log's
roles come from the same query; the request's user arrives with its organisation.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AccessEvent
from audit.services import Action, record_event
from casework.auth import RoleBackend
from casework.models import User

pytestmark = pytest.mark.django_db


def _fresh(username: str) -> User:
    return User.objects.get(username=username)


@pytest.mark.parametrize(
    "username",
    ["anna.social", "per.polis", "sara.samordnare", "stig.styrgrupp", "greta.granskare"],
)
def test_the_same_permissions_as_the_model_backend(demo, username):
    ours, django = _fresh(username), _fresh(username)
    assert RoleBackend().get_all_permissions(ours) == ModelBackend().get_all_permissions(django)
    assert RoleBackend().get_group_permissions(ours) == ModelBackend().get_group_permissions(
        _fresh(username)
    )


def test_a_permission_granted_to_the_user_counts_too(demo):
    anna = _fresh("anna.social")
    anna.user_permissions.add(
        Permission.objects.get(content_type__app_label="workflows", codename="take_part_in_gvi")
    )
    assert _fresh("anna.social").has_perm("workflows.take_part_in_gvi")
    assert not _fresh("per.polis").has_perm("workflows.take_part_in_gvi")


def test_an_inactive_user_has_no_permissions(demo):
    anna = _fresh("anna.social")
    anna.is_active = False
    assert RoleBackend().get_all_permissions(anna) == set()
    assert not anna.has_perm("casework.use_task_inbox")


def test_the_log_names_the_roles_without_a_query_of_its_own(demo):
    per = _fresh("per.polis")
    assert per.has_perm("casework.use_task_inbox")  # the roles are read here
    with CaptureQueriesContext(connection) as queries:
        event = record_event(action=Action.CONSULT, user=per, purpose="test")
    assert not any("auth_group" in q["sql"] for q in queries.captured_queries)
    names = sorted(per.groups.values_list("name", flat=True))
    assert AccessEvent.objects.get(pk=event.pk).roles == ",".join(names)


def test_the_requests_user_comes_with_the_organisation(demo):
    anna = _fresh("anna.social")
    user = RoleBackend().get_user(anna.pk)
    with CaptureQueriesContext(connection) as queries:
        assert user.organisation.pk == anna.organisation_id
    assert queries.captured_queries == []


def test_no_user_for_an_unknown_or_inactive_id(demo):
    assert RoleBackend().get_user(10**9) is None
    anna = _fresh("anna.social")
    User.objects.filter(pk=anna.pk).update(is_active=False)
    assert RoleBackend().get_user(anna.pk) is None


def _settings_page(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/konto/installningar/")
    assert response.status_code == 200
    return response, [q["sql"] for q in queries.captured_queries]


def test_the_session_read_brings_the_access_generation(demo, client):
    """``casework.auth.AuthenticationMiddleware``: a signed-in request reads its session and
    the access generation in one statement, and the user's kept account under it; a change
    to the account raises the generation and shows on the very next request."""
    from casework.access_cache import access_generation

    anna = _fresh("anna.social")
    client.force_login(anna)
    client.get("/konto/installningar/")
    response, statements = _settings_page(client)
    assert "casework_accessgeneration" in statements[0]
    assert "django_session" in statements[0]
    assert not any(s.startswith("SELECT value FROM casework_accessgeneration") for s in statements)
    assert response.wsgi_request.user._access_generation == access_generation()
    before = access_generation()
    User.objects.filter(pk=anna.pk).update(first_name="Annika")  # raises the generation
    assert access_generation() != before
    response, _statements = _settings_page(client)
    assert response.wsgi_request.user._access_generation == access_generation()
    assert response.wsgi_request.user.first_name == "Annika"


def test_another_session_store_reads_the_generation_itself(demo, client, settings):
    """With a session store that does not bring the generation (Django's own database
    store), the user is read under a generation read on its own, as before."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from casework.access_cache import access_generation
    from casework.auth import _get_user

    anna = _fresh("anna.social")
    client.force_login(anna)
    request = RequestFactory().get("/")
    request.session = SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value)
    with CaptureQueriesContext(connection) as queries:
        user = _get_user(request)
    statements = [q["sql"] for q in queries.captured_queries]
    assert user.pk == anna.pk
    assert user._access_generation == access_generation()
    assert any(s.startswith("SELECT value FROM casework_accessgeneration") for s in statements)
