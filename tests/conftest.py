"""Shared fixtures: the demo organisations and one user per role."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import get_resolver

DEMO_PASSWORD = "samverkan-demo"


@pytest.fixture(autouse=True)
def _load_urlconf():
    """Viewflow names its node URLs only once the URLconf is loaded."""
    get_resolver().url_patterns  # noqa: B018


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(db, settings):
    """Run ``seed_demo`` and return the users by username."""
    from casework.models import User

    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return {user.username: user for user in User.objects.all()}


@pytest.fixture
def login(client):
    """Log ``username`` in through the real login form; return the final response."""

    def _login(username: str, password: str = DEMO_PASSWORD, **extra):
        return client.post(
            "/konto/logga-in/", {"username": username, "password": password}, follow=True, **extra
        )

    return _login
