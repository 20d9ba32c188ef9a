"""Fixtures for the process tests: demo users, both databases, a SIG case at any state."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone, translation
from stdnum import luhn

BOTH_DATABASES = ["default", "keystore"]
PURPOSE = "Test av SIG-processen"


def personnummer(born: datetime.date, serial: str = "238") -> str:
    """A personnummer that validates (check digit from python-stdnum), synthetic serial."""
    digits = born.strftime("%y%m%d") + serial
    return f"{born:%Y%m%d}-{serial}{luhn.calc_check_digit(digits)}"


def born_years_ago(years: int, days: int = 40) -> datetime.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - datetime.timedelta(days=days)


@pytest.fixture
def users(demo):
    return demo


@pytest.fixture
def english():
    """The messages in English (their msgids, asserted as such), whatever ran before."""
    with translation.override("en"):
        yield


@pytest.fixture
def sig_url():
    def _url(name: str, task) -> str:
        return task.flow_task.reverse(name, args=[task.process_id, task.pk])

    return _url


def colleague(users, like: str, username: str, *, organisation=None):
    """A new user ``username`` with the roles (groups) of ``like`` and, unless
    ``organisation`` is given, its organisation."""
    from casework.models import User

    user = User.objects.create(
        username=username, organisation=organisation or users[like].organisation
    )
    user.groups.set(users[like].groups.all())
    return user


@pytest.fixture
def staff(users):
    """The demo users and a second coordinator, sven.samordnare (for the races)."""
    return {**users, "sven.samordnare": colleague(users, "sara.samordnare", "sven.samordnare")}


@pytest.fixture
def meet_at_the_lock(monkeypatch):
    """Hold each racer in front of the case's row lock until all have arrived (see
    ``racing.lock_meeting``): ``lock``, or the one-statement transition's ``_move``,
    which takes the lock with its UPDATE (docs/adr/0032)."""
    from casework.services import transitions
    from tests.workflows.racing import lock_meeting

    return lock_meeting(monkeypatch, transitions, "lock", "_move")
