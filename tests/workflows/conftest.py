"""Fixtures for the process tests: demo users, both databases, a SIG case at any state."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
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
