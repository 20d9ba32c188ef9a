"""Fixtures of the SSPF tests."""

from __future__ import annotations

import pytest

from casework.models import Organisation
from tests.workflows.conftest import colleague


@pytest.fixture
def everyone(users):
    """The demo users and other.skola: a school user at another school, on no team."""
    navet = Organisation.objects.get(name="Navets skola")
    return {
        **users,
        "other.skola": colleague(users, "lisa.skola", "other.skola", organisation=navet),
    }
