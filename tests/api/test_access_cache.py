"""The API keeps tokens and acting persons between requests while the access generation
stands (casework.access_cache): every change to who may do what raises it, whichever
way the change is written and whichever process writes it."""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken

from casework import roles
from casework.access_cache import access_generation
from casework.models import AccessGeneration, ApiClient, Organisation, User
from tests.conftest import COMMITTED_DB

STATUS = "/api/v1/statistics/"


@pytest.fixture
def generation(db):
    """The generation row (a flushed test database may have lost it)."""
    AccessGeneration.objects.get_or_create(id=1)
    return access_generation


def _reads_person(api, acting: str = "sara.samordnare") -> int:
    """The status of a request that needs the acting person's account and roles: the
    tasks list of the acting person."""
    return api.get("/api/v1/tasks/", acting=acting).status_code


@pytest.mark.parametrize(
    "change",
    [
        lambda user: user.groups.clear(),
        lambda user: User.objects.filter(pk=user.pk).update(is_active=False),
        lambda user: User.objects.filter(pk=user.pk).update(first_name="Ny"),
        lambda user: Group.objects.get(name=roles.COORDINATOR).permissions.clear(),
        lambda user: Organisation.objects.filter(pk=user.organisation_id).update(name="Ny"),
        lambda user: ApiClient.objects.update(rate_limit="5/s"),
        lambda user: AccessToken.objects.all().delete(),
    ],
    ids=[
        "roles",
        "bulk-deactivation",
        "account",
        "role-permissions",
        "organisation",
        "client",
        "token",
    ],
)
def test_every_change_to_access_raises_the_generation(generation, demo, social_api, change):
    before = generation()
    change(demo["sara.samordnare"])
    assert generation() > before


def test_a_sign_in_does_not_raise_it(generation, demo):
    before = generation()
    User.objects.filter(username="sara.samordnare").update(last_login=timezone.now())
    User.objects.filter(username="sara.samordnare").update(first_name=F_SAME)
    assert generation() == before


F_SAME = "Sara"  # the demo coordinator's first name, written again unchanged


def test_a_role_taken_away_counts_at_the_next_request(generation, demo, social_api):
    assert _reads_person(social_api) == 200
    assert _reads_person(social_api) == 200  # now from the cache
    demo["sara.samordnare"].groups.clear()
    assert _reads_person(social_api) == 403


def test_a_deactivated_person_is_refused_at_the_next_request(generation, demo, social_api):
    assert _reads_person(social_api) == 200
    User.objects.filter(username="sara.samordnare").update(is_active=False)
    assert _reads_person(social_api) == 403


def test_a_revoked_token_and_a_deactivated_client_count_at_once(generation, social_api):
    assert social_api.get(STATUS).status_code == 200
    AccessToken.objects.filter(application=social_api.client.application).update(
        expires=timezone.now()
    )
    assert social_api.get(STATUS).status_code == 401


def test_the_kept_person_is_a_copy_per_request(generation, demo, social_api):
    """What one request keeps on the account object never reaches the next."""
    from casework.api import auth

    assert _reads_person(social_api) == 200
    (kept,) = [user for _generation, user in auth._people._entries.values()]
    assert not hasattr(kept, "_samverkan_task_inbox")


@COMMITTED_DB
def test_a_change_committed_by_another_process_counts_at_the_next_request(api_for, demo):
    """Another process (here a connection of its own) takes the role away and commits:
    this process reads the raised generation and refuses."""
    AccessGeneration.objects.get_or_create(id=1)
    api = api_for(demo["sara.samordnare"].organisation.name)
    assert _reads_person(api) == 200
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute(
            "DELETE FROM casework_user_groups WHERE user_id = %s", [demo["sara.samordnare"].pk]
        )
    assert _reads_person(api) == 403
