"""Pages keep the signed-in account with its roles between requests while the access
generation stands (casework.access_cache, casework.auth.RoleBackend): a role taken
away, an account switched off or a password changed counts at the next request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from casework import roles
from casework.models import AccessGeneration, User

STATISTICS = "/statistik/"


@pytest.fixture
def steering(demo, client):
    """stig.styrgrupp signed in, his statistics page read once (his account now kept)."""
    AccessGeneration.objects.get_or_create(id=1)
    client.force_login(demo["stig.styrgrupp"])
    assert client.get(STATISTICS).status_code == 200
    return demo["stig.styrgrupp"]


def _signed_out(response) -> bool:
    return response.status_code == 302 and "logga-in" in response["Location"]


def test_a_role_taken_away_counts_at_the_next_page(steering, client):
    """A change of roles ends the session (ADR 0016); signed in again, the role is gone."""
    assert client.get(STATISTICS).status_code == 200  # from the cache
    steering.groups.remove(Group.objects.get(name=roles.STEERING_GROUP))
    assert _signed_out(client.get(STATISTICS))
    client.force_login(steering)
    assert client.get(STATISTICS).status_code == 403


def test_a_role_granted_counts_at_the_next_page(steering, client):
    assert client.get("/granskning/").status_code == 403
    steering.groups.add(Group.objects.get(name=roles.AUDITOR))
    assert _signed_out(client.get("/granskning/"))
    client.force_login(steering)
    assert client.get("/granskning/").status_code != 403


def test_a_switched_off_account_is_signed_out_at_the_next_page(steering, client):
    User.objects.filter(pk=steering.pk).update(is_active=False)
    assert _signed_out(client.get(STATISTICS))


def test_a_changed_password_ends_the_other_sessions(steering, client):
    steering.set_password("ett-helt-nytt-lösenord-2026")
    steering.save(update_fields=["password"])
    assert _signed_out(client.get(STATISTICS))
