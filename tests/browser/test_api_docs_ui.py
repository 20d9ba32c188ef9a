"""The API's docs page (``/api/v1/docs/``) in Chromium: Swagger UI from the app's own static
files (drf-spectacular-sidecar, no CDN), under the site's Content-Security-Policy.

The page lists every operation of the OpenAPI document; nothing is fetched from another
origin, and the policy refuses nothing (no inline script without the nonce, no foreign
image such as Swagger's validator badge).
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import COMMITTED_DB

pytestmark = COMMITTED_DB

DOCS = "/api/v1/docs/"


@pytest.fixture
def operations(client):
    """(method, path, summary) of every operation in the document the page shows."""
    document = client.get("/api/v1/schema/?format=json").json()
    return [
        (method.upper(), path, operation.get("summary", ""))
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def requests_document(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/api/v1/schema/?format=json", timeout=10) as answer:  # noqa: S310
        return json.load(answer)


def test_the_docs_page_lists_every_operation_under_the_csp(operations, live_server, page, problems):
    response = page.goto(DOCS)

    assert response.status == 200
    # The site's policy, not a laxer one for this page: scripts from our origin only
    # (the split view serves its start-up script as a file, no inline script).
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe" not in policy.split("script-src")[1].split(";")[0]
    )
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Samverkan API")
    # The operations, then the events the API sends (the document's webhooks), each a block.
    document = requests_document(live_server.url)
    events = sum(len(methods) for methods in document.get("webhooks", {}).values())
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(operations) + events)
    for method, path, _summary in operations:
        block = page.locator(".opblock", has=page.locator(f'[data-path="{path}"]')).filter(
            has=page.locator(".opblock-summary-method", has_text=method)
        )
        expect(block).to_have_count(1)
    # An operation opens with its parameters (the acting person's header among them).
    blocks.first.locator(".opblock-summary").click()
    expect(blocks.first.get_by_text("Samverkan-Acting-User")).to_be_visible()
    page.screenshot(path="/tmp/api-docs.png", full_page=True)  # noqa: S108 - to look at
    # Everything came from the app itself: the live server's origin, or data: URLs.
    foreign = [
        url
        for _status, url in problems.responses
        if not url.startswith(live_server.url) and not url.startswith("data:")
    ]
    assert foreign == []
    problems.assert_none()
