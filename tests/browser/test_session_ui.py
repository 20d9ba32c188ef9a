"""The session rules in the browser (issue 16): the idle warning appears before the end,
"Fortsätt vara inloggad" keeps the session, and without an answer the page goes to the
login page. The browser's clock is moved (Playwright's clock), never slept; the page runs
under the Content-Security-Policy (no violation: ``conftest.py``). docs/adr/0016.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from tests.browser.journey import log_in, sv

# As every browser test: serialized_rollback puts back the role groups the flush removes.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LOGIN = "/konto/logga-in/"


def test_the_idle_warning_can_be_answered_and_otherwise_signs_out(page, problems, settings):
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    warning = dt.timedelta(seconds=settings.SESSION_WARNING_SECONDS)
    page.clock.install()
    page.goto(LOGIN)
    log_in(page, "anna.social")
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_have_count(0)

    page.clock.fast_forward(int((idle - warning + dt.timedelta(seconds=1)).total_seconds() * 1000))
    expect(dialog).to_contain_text(
        sv("You will soon be signed out because nothing has happened for a while.")
    )
    with page.expect_response(re.compile(r"/konto/session/forlang/$")) as answer:
        dialog.get_by_role("button", name=sv("Stay signed in")).click()
    assert answer.value.status == 200
    expect(dialog).to_have_count(0)

    # No answer this time: the page goes to the login page at the end.
    page.clock.fast_forward(int((idle - warning + dt.timedelta(seconds=1)).total_seconds() * 1000))
    expect(dialog).to_be_visible()
    page.clock.fast_forward(int((warning + dt.timedelta(seconds=1)).total_seconds() * 1000))
    expect(page).to_have_url(re.compile(re.escape(LOGIN) + r"\?next="))
    problems.assert_none()
