"""Viewflow's overviews of all SIG processes are for the coordinators; inboxes for everyone."""

from __future__ import annotations

import pytest

from tests.workflows.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

OVERVIEWS = ("/arenden/flows/sig/", "/arenden/flows/sig/flows/", "/arenden/flows/sig/tasks/")


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("anna.social", 403),
        ("per.polis", 403),
        ("lisa.skola", 403),
        ("alex.avhopp", 403),
        ("sara.samordnare", 200),
    ],
)
def test_flow_overviews_are_for_coordinators(demo, client, username, expected):
    client.force_login(demo[username])
    for url in OVERVIEWS:
        assert client.get(url).status_code == expected, url
    assert client.get("/arenden/inbox/").status_code == 200
