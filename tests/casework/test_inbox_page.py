"""The task inbox's page, ADR 0036 session 22: the card's header and, without a query
string, the table's head kept once a process (``{% shellpart %}``) around the bulk
actions' CSRF token, which stays the request's own."""

from __future__ import annotations

import re

import pytest

from casework import views
from tests.casework.test_inbox_reads import INBOX, _page_text
from tests.workflows.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def seeded(demo_cases):
    return demo_cases


def _viewflow_s(client, monkeypatch, path):
    monkeypatch.setattr(
        views.InboxView, "template_name", "viewflow/workflow/workflow_tasks_list.html"
    )
    response = client.get(path)
    monkeypatch.undo()
    return response


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_kept_parts_give_viewflow_s_page_again(seeded, client, monkeypatch, language):
    """The second and later requests (the header and the head from the kept parts) write
    the page viewflow's template writes, after a filtered page (the header with the drawer's
    form changed) and before it, for a case worker and a coordinator."""
    client.cookies["django_language"] = language
    for username in ("anna.social", "sara.samordnare"):
        client.force_login(seeded[username])
        for path in (INBOX, INBOX + "?process=0", INBOX, INBOX + "?page=1", INBOX):
            ours = client.get(path)
            assert ours.status_code == 200, (username, path)
            assert _page_text(ours) == _page_text(_viewflow_s(client, monkeypatch, path)), (
                username,
                path,
            )


def test_the_bulk_actions_token_is_the_request_s_own(seeded, client):
    """The table's head is kept, its form's CSRF token is not: each response carries one
    token throughout (the page's other forms' too), a new one each request."""
    client.force_login(seeded["anna.social"])
    seen = []
    for _ in range(3):
        response = client.get(INBOX)
        assert response.status_code == 200
        tokens = set(_TOKEN.findall(response.content.decode()))
        assert len(tokens) == 1, tokens  # the bulk actions' form and the shell's forms
        seen += tokens
        assert 'class="vf-list__action-form"' in response.content.decode()
    assert len(set(seen)) == 3
