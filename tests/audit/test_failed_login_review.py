"""Log review: bursts of failed sign-ins, by account name and by address (issue 16).

The access log records every failed login (``audit.signals``, name tried and address);
the rule lists an account name or address with ``AUDIT_FAILED_LOGIN_BURST`` or more in
one local hour, and the auditor's review page shows it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from audit import review

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

STOCKHOLM = ZoneInfo("Europe/Stockholm")
MORNING = dt.datetime(2026, 3, 4, 10, 5, tzinfo=STOCKHOLM)


def _fail(username: str, address: str) -> None:
    Client().post(
        "/konto/logga-in/",
        {"username": username, "password": "fel-1234-hemligt"},
        REMOTE_ADDR=address,
    )


def test_bursts_of_failed_sign_ins_are_listed_by_account_and_by_address(demo, settings):
    settings.AUDIT_FAILED_LOGIN_BURST = 5
    with time_machine.travel(MORNING, tick=False) as now:
        for _ in range(7):  # guessing one account (locked after five; still logged)
            _fail("anna.social", "198.51.100.7")
            now.shift(dt.timedelta(seconds=20))
        for number in range(5):  # one password over many names, from one address
            _fail(f"konto{number}", "203.0.113.9")
        for _ in range(4):  # a user who mistypes: below the threshold
            _fail("per.polis", "198.51.100.8")
        report = review.build_report(
            start=MORNING - dt.timedelta(hours=1), end=MORNING + dt.timedelta(hours=1), seed=1
        )
        rows = {(row.kind, row.name): row.count for row in report.failed_login_bursts}
        assert rows == {
            ("account", "anna.social"): 7,
            ("address", "198.51.100.7"): 7,
            ("address", "203.0.113.9"): 5,
        }
        (anna,) = [r for r in report.failed_login_bursts if r.name == "anna.social"]
        assert anna.hour == MORNING.replace(minute=0)
        assert anna.last - anna.first == dt.timedelta(seconds=120)

        auditor = Client()
        auditor.force_login(demo["greta.granskare"])
        page = auditor.get(
            "/granskning/loggkontroll/",
            {"date_from": "2026-03-04", "date_to": "2026-03-04", "seed": 1},
        ).content.decode()
    assert 'data-rule="failed-login-bursts"' in page
    assert 'data-burst-account="anna.social"' in page
    assert 'data-burst-address="203.0.113.9"' in page
    assert 'data-burst-account="per.polis"' not in page
    assert "fel-1234-hemligt" not in page
