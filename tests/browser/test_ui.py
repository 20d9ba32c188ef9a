"""The real UI in a real browser: log in, land on the start page, switch language, log out.

Chromium (Debian's ``/usr/bin/chromium``) talks to pytest-django's live server, which
serves the static files (viewflow's Material CSS and JS) from the app finders.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD

# The live server runs in another thread and sees committed data only. The flush after
# each transactional test would remove the role groups that the migrations create;
# serialized_rollback puts them back for the tests that follow.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LOGIN = "/konto/logga-in/"
INBOX = "/arenden/inbox/"
STATISTICS = "/statistik/"
SCREENSHOT = "/tmp/samverkan-inbox.png"  # noqa: S108 - a fixed path to look at after a run


def path_of(page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def log_in(page, username: str, password: str = DEMO_PASSWORD):
    """Fill the login form field by field, as a person would, and submit it."""
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(password)
    page.get_by_role("button", name="Logga in").click()


def assert_styled(page, problems):
    """viewflow's Material stylesheet loaded and applies: the page is not bare HTML."""
    stylesheets = [
        (status, url) for status, url in problems.responses if url.endswith("viewflow.min.css")
    ]
    assert stylesheets, "viewflow.min.css was never requested"
    assert all(status in (200, 304) for status, _ in stylesheets), stylesheets
    # The stylesheet, not the browser default, decides how a Material button looks.
    font = page.evaluate("getComputedStyle(document.querySelector('.mdc-button')).fontFamily")
    assert "Roboto" in font, font


def test_social_worker_logs_in_through_the_form_and_lands_on_the_inbox(page, problems):
    page.goto("/")

    expect(page).to_have_url(re.compile(re.escape(LOGIN) + r"\?next=/$"))
    expect(page).to_have_title(re.compile("^Logga in"))
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    assert_styled(page, problems)
    problems.assert_none()

    log_in(page, "anna.social")

    expect(page).to_have_url(re.compile(re.escape(INBOX) + "$"))
    expect(page.get_by_role("heading", name="Inkorg")).to_be_visible()
    expect(page.locator(".vf-page__menu-title")).to_have_text("Anna Social")
    expect(page.locator(f'a.mdc-list-item--selected[href="{INBOX}"]')).to_have_text(
        re.compile(r"^\s*inbox\s+Inkorg\s+0\s*$")  # icon ligature, label, count
    )
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert_styled(page, problems)
    problems.assert_none()


def test_wrong_password_is_refused_in_swedish_on_the_login_page(page, problems):
    page.goto(LOGIN)

    log_in(page, "anna.social", "fel-lösenord")

    error = page.locator("form.vf-form").get_by_text("Ange ett korrekt användarnamn och lösenord")
    expect(error).to_be_visible()
    expect(page.get_by_label("Användarnamn")).to_have_value("anna.social")
    assert path_of(page) == LOGIN
    page.goto(INBOX)
    expect(page).to_have_url(re.compile(re.escape(LOGIN) + r"\?next="))
    problems.assert_none()


def test_steering_group_lands_on_statistics_and_is_refused_the_inbox(page, problems):
    page.goto("/")
    log_in(page, "stig.styrgrupp")

    expect(page).to_have_url(re.compile(re.escape(STATISTICS) + "$"))
    expect(page.get_by_role("heading", name="Statistik för styrgruppen")).to_be_visible()

    response = page.goto(INBOX)

    assert response.status == 403
    expect(page).to_have_title(re.compile("^Åtkomst nekad"))
    expect(page.get_by_text("Åtkomst nekad").first).to_be_visible()
    expect(page.get_by_text("Inkorg")).to_have_count(0)
    # The browser reports the 403 document itself as a failed load: that one only.
    assert problems.error_document_messages == [
        f"Failed to load resource: the server responded with a status of 403 (Forbidden) "
        f"({response.url})"
    ]
    problems.assert_none()

    page.get_by_role("link", name="Till startsidan").click()

    expect(page).to_have_url(re.compile(re.escape(STATISTICS) + "$"))
    problems.assert_none()


def assert_readable_on_toolbar(page, locator):
    """The control's text colour is not the toolbar's background colour."""
    colours = locator.evaluate(
        """element => [
            getComputedStyle(element).color,
            getComputedStyle(element.closest('.mdc-top-app-bar')).backgroundColor,
        ]"""
    )
    text, background = colours
    assert text != background, f"invisible: text {text} on background {background}"


def change_language(page, code: str):
    # By value: the option labels are translated ("Engelska" on a Swedish page).
    page.locator("#samverkan-language-select").select_option(value=code)
    page.locator("form.samverkan-language button[type=submit]").click()


def test_language_switch_on_the_login_page_carries_into_the_inbox(page, problems):
    page.goto("/")

    change_language(page, "en")

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(re.escape(LOGIN) + r"\?next=/$"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill("anna.social")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(INBOX) + "$"))
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_text("Inkorg")).to_have_count(0)
    problems.assert_none()


def test_language_switch_to_english_and_back_on_a_logged_in_page(page, problems):
    page.goto(LOGIN)
    log_in(page, "stig.styrgrupp")
    expect(page.get_by_role("heading", name="Statistik för styrgruppen")).to_be_visible()
    # The language form sits in the blue top bar: its button must not be blue on blue.
    button = page.get_by_role("button", name="Byt språk")
    expect(button).to_be_visible()
    assert_readable_on_toolbar(page, button)

    change_language(page, "en")

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Statistics for the steering group")).to_be_visible()
    assert path_of(page) == STATISTICS

    change_language(page, "sv")

    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("heading", name="Statistik för styrgruppen")).to_be_visible()
    assert path_of(page) == STATISTICS
    problems.assert_none()


def test_logging_out_through_the_side_menu_ends_the_session(page, problems):
    page.goto(LOGIN)
    log_in(page, "anna.social")
    expect(page).to_have_url(re.compile(re.escape(INBOX) + "$"))

    logout = page.get_by_role("button", name="Logga ut")
    expect(logout).to_be_hidden()
    # The user actions fold out under the user's name at the top of the side menu.
    page.locator(".vf-page__menu-header button.vf-page__menu-toggle-button").click()
    logout.click()

    expect(page).to_have_url(re.compile(re.escape(LOGIN) + "$"))
    expect(page.get_by_role("button", name="Logga in")).to_be_visible()
    page.goto(INBOX)
    expect(page).to_have_url(re.compile(re.escape(LOGIN) + r"\?next=" + re.escape(INBOX)))
    problems.assert_none()
