"""Steps shared by the programmes' browser journeys, taken in the Swedish UI.

The journeys run in Swedish, the language the users work in. A text is named by its
English msgid and looked up with :func:`sv`, which fails when the catalogue has no
Swedish for it: a page that shows English (a string outside gettext, a missing
translation) then fails the locator that looks for the Swedish text.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from django.utils import translation
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD

# The msgids whose Swedish is spelled the same (names and abbreviations).
SAME_IN_SWEDISH = frozenset({"SSPF", "SIG", "GVI", "Status", "Form", "Organisation"})


def sv(msgid: str, **params) -> str:
    """The Swedish UI text of ``msgid`` (interpolated with ``params``); fails if untranslated."""
    with translation.override("sv"):
        text = str(translation.gettext(msgid))
    assert text != msgid or msgid in SAME_IN_SWEDISH, f"no Swedish for {msgid!r}"
    return text % params if params else text


# The journeys' screenshots (``/tmp/<prefix>-<name>.png``, to look at) are taken only when
# asked for (``BROWSER_SCREENSHOTS=1``): they assert nothing and a full page costs ~0.2 s.
SCREENSHOTS = bool(os.environ.get("BROWSER_SCREENSHOTS"))


def shot(page, prefix: str, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=f"/tmp/{prefix}-{name}.png", full_page=True)  # noqa: S108


def visit(page, link) -> None:
    """Click ``link`` and wait until its page has come back in full (status 200, body read).

    Already on that page (the start page is the inbox), its content is there before Turbo's
    visit has come back: a click now would abort that request, which the page's problems
    count as unanswered. Waiting for that one answer is enough (not for the network to be
    idle for half a second)."""
    path = urlsplit(link.get_attribute("href")).path
    with page.expect_response(
        lambda response: response.request.method == "GET" and urlsplit(response.url).path == path
    ) as answer:
        link.click()
    assert answer.value.status == 200, (answer.value.status, answer.value.url)
    answer.value.finished()


def menu(page):
    """The side menu: the current application's links, then the applications."""
    return page.locator(".vf-page__menu-primary")


def log_in(page, username: str) -> None:
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    expect(page.get_by_role("button", name="Logga in")).to_have_count(0)
    # The start page has loaded before the next step navigates away (a click while it
    # still loads aborts its request, which the page's problems count as unanswered).
    page.wait_for_load_state("load")


def log_out(page) -> None:
    page.wait_for_load_state("load")
    page.locator(".vf-page__menu-header button.vf-page__menu-toggle-button").click()
    page.get_by_role("button", name="Logga ut").click()
    expect(page.get_by_role("button", name="Logga in")).to_be_visible()


def as_user(page, username: str) -> None:
    log_out(page)
    log_in(page, username)


def open_task(page, reference: str, task: str, *, queue: bool = False) -> None:
    """Open a task from the inbox (or the queue): the row of the case, the task's link."""
    list_name = sv("Queue") if queue else sv("Inbox")
    visit(page, menu(page).get_by_role("link", name=list_name))
    expect(page.get_by_role("heading", name=list_name)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=reference)
    expect(row).to_have_count(1)
    row.get_by_role("link", name=sv(task), exact=True).click()


def take_from_queue(page, reference: str, task: str) -> None:
    """A queue task: assign it to oneself on viewflow's assign page, then open it."""
    open_task(page, reference, task, queue=True)
    page.get_by_role("button", name=sv("Assign"), exact=True).click()
    expect(page.get_by_role("heading", name=sv("Queue"))).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=reference)).to_have_count(0)
    open_task(page, reference, task)
    expect(page.get_by_role("heading", name=sv(task), level=1)).to_be_visible()


def assign_and_open(page, reference: str, task: str) -> None:
    """On viewflow's assign page of a queue task (from an object's page): take it, then
    open it from the inbox."""
    page.get_by_role("button", name=sv("Assign"), exact=True).click()
    expect(page.get_by_role("button", name=sv("Assign"), exact=True)).to_have_count(0)
    page.wait_for_load_state()
    open_task(page, reference, task)
    expect(page.get_by_role("heading", name=sv(task), level=1)).to_be_visible()


def step(page, name: str):
    """One of a task page's forms (they share the page)."""
    return page.locator(f"section.samverkan-step--{name}")


def folded(page, summary: str):
    """A case page's folded-out form (``<details>``), opened by its summary."""
    details = page.locator("details.samverkan-step").filter(
        has=page.locator("summary", has_text=re.compile(rf"^\s*{re.escape(summary)}\s*$"))
    )
    details.locator("summary").click()
    return details


def banner(page, text: str) -> None:
    expect(page.locator(".samverkan-banner--success")).to_contain_text(text)


def status(page, label: str) -> None:
    expect(page.locator(".samverkan-summary .samverkan-status")).to_have_text(label)
