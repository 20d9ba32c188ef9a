from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from casework.models import Organisation, User


def test_seed_demo_is_idempotent(demo):
    counts = (Organisation.objects.count(), User.objects.count())
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (Organisation.objects.count(), User.objects.count()) == counts
    # one per role, a police defector coordinator and a second administrator (four eyes)
    assert counts[1] == 11
    assert all(user.groups.count() == 1 for user in User.objects.all())


def test_seed_demo_creates_the_agreements_organisations(demo):
    kinds = sorted(Organisation.objects.values_list("kind", flat=True))
    assert kinds.count("school") == 2
    assert kinds.count("leisure") == 2
    assert {"police", "social_services"} <= set(kinds)


def test_seed_demo_uses_the_demo_password(db, settings, client):
    settings.DEMO_PASSWORD = "ett-annat-lösenord"
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert client.login(username="per.polis", password="ett-annat-lösenord")


def test_demo_administrator_is_staff_but_not_superuser(demo):
    admin = demo["adam.admin"]
    assert admin.is_staff and not admin.is_superuser
    admins = {"adam.admin", "berit.admin"}  # two: one requests, the other approves
    assert demo["berit.admin"].is_staff and not demo["berit.admin"].is_superuser
    assert not any(u.is_staff for name, u in demo.items() if name not in admins)


def test_seed_demo_refuses_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="produktion"):
        call_command("seed_demo")
    assert not User.objects.exists()
