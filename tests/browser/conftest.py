"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

The project never downloads a browser (no ``playwright install``): it drives
``/usr/bin/chromium`` from the Debian package. Without it the browser tests skip
on a developer machine, and fail in CI (``CI`` set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""
# Every step waits at most this long (ms): a stuck page fails fast instead of hanging CI.
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium: skip without it on a developer machine, fail in CI."""
    if not CHROMIUM.exists():
        message = (
            f"browser tests need Debian's Chromium at {CHROMIUM} "
            "(apt-get install chromium); the project never downloads a browser"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@dataclass
class PageProblems:
    """What went wrong while the page was open: console errors and failed requests."""

    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    page_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    responses: list[tuple[int, str]] = field(default_factory=list)
    error_documents: dict[str, int] = field(default_factory=dict)  # url -> status
    page: Any = None

    def _is_error_document(self, text: str, url: str) -> bool:
        # Chromium logs "Failed to load resource: ... 403 (Forbidden)" for every page
        # that answers with an error status, including our own 403 page. Whether that
        # status is right is asserted by the test that opens the page; it is not a
        # script error.
        return text.startswith("Failed to load resource") and url in self.error_documents

    @property
    def csp_violations(self) -> list[str]:
        """What the Content-Security-Policy refused (Chromium logs each as a console error;
        ``securitypolicyviolation`` events are logged too, by the init script below)."""
        return [
            f"{text} ({url})"
            for text, url in self.console_errors
            if "Content Security Policy" in text or text.startswith("CSP violation")
        ]

    @property
    def script_errors(self) -> list[str]:
        return [
            f"{text} ({url})"
            for text, url in self.console_errors
            if not self._is_error_document(text, url)
        ]

    @property
    def error_document_messages(self) -> list[str]:
        return [
            f"{text} ({url})"
            for text, url in self.console_errors
            if self._is_error_document(text, url)
        ]

    def assert_none(self):
        if self.page is not None:
            # Every script and stylesheet of the page has run or loaded.
            self.page.wait_for_load_state("load")
        assert self.csp_violations == [], "the Content-Security-Policy refused something"
        assert self.script_errors == [], "JavaScript console errors"
        assert self.page_errors == [], "uncaught JavaScript exceptions"
        assert self.failed_requests == [], "requests that got no answer"
        assert self.failed_responses == [], "static files or scripts' requests that failed"


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(chromium, live_server, demo, problems) -> Iterator:
    """A fresh browser (no cookies) on the live server, with the demo users.

    Playwright's sync API keeps an asyncio event loop running in this thread while it
    is started. Django then treats the thread as async: the ORM refuses to run
    (SynchronousOnlyOperation), and lifting that guard is worse, because database
    connections then live in per-context storage and the test would use another
    connection than pytest-django's (the flush after the test would skip the
    serialized rollback and drop the role groups the migrations create). So Playwright
    runs only for the browser part of each test: set up data in fixtures that come
    before ``page`` (``def test_x(my_data, page)``), never in the test body.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            base_url=live_server.url, locale="sv-SE", viewport={"width": 1280, "height": 800}
        )
        # A CSP violation anywhere (an inline script or handler, a foreign source) is
        # logged as a console error, which fails the journey (docs/adr/0016).
        context.add_init_script(CSP_REPORTER)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        problems.page = page

        def on_console(message):
            if message.type == "error":
                problems.console_errors.append((message.text, message.location.get("url", "")))

        def on_response(response):
            problems.responses.append((response.status, response.url))
            # A 403 page is the application answering; a static asset (or any other
            # sub-request) answering 4xx/5xx means the page is broken.
            if response.status >= 400:
                if response.request.resource_type == "document":
                    problems.error_documents[response.url] = response.status
                else:
                    problems.failed_responses.append(f"{response.status} {response.url}")

        def on_request_failed(request):
            # The browser cancels its own favicon fetch when a form post navigates away
            # before it is answered: a navigation, not a request the app left unanswered.
            if request.failure == "net::ERR_ABORTED" and request.url.endswith("/favicon.png"):
                return
            problems.failed_requests.append(f"{request.failure} {request.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
        page.on("response", on_response)
        page.on("requestfailed", on_request_failed)
        try:
            yield page
        finally:
            browser.close()
        if problems.csp_violations:
            pytest.fail(f"CSP violations: {problems.csp_violations}", pytrace=False)
