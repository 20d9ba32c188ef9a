"""The case page's database work is pinned: a query count per role that must not grow.

The page is read by a police contact officer (consent covers the police: a
disclosure) and by the case's lead social worker (own organisation), on an
active case with actions of both agencies, a guardian, consents and a timeline.
The counts include every connection the request uses (default, keystore,
audit). Lower a number when a change removes queries; never raise it to make
a test pass without a reason in the commit.
"""

from __future__ import annotations

import os

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver, sig_case
from workflows.common.responses import case_url
from workflows.sig.models import Status

# username → queries of one GET of the case page (all connections). Before the
# page was tuned: 34 (police) and 31 (lead social worker); then +2 for the
# programme lookup of the case URL and the linked cases; then -2 (lead) and -1
# (police) when the step forms were folded away (their choices are read only when a
# form is unfolded); then -7 (police) and -6 (lead): the roles read with the
# permissions (one query, ``casework.auth``), the process with the case, the break-glass
# row only when the glass opens the case, the log's events in one statement and no
# transaction around them, the inbox role asked once; then -1: the side menu's two
# counts in one query (``casework.menu_counts.MenuCounts``); then -2: the user read with
# the organisation (``casework.auth.RoleBackend.get_user``) and the case's programme
# remembered by the case URL once read (it never changes); then +3: the session is saved
# on every request, so the idle timeout counts from the last one (a savepoint, the UPDATE
# and its release; docs/adr/0016-lockout-sessions-and-headers.md); then -2: the account
# with its roles kept while the access generation stands (one small query instead of
# the account and its permissions; docs/adr/0030-access-cache.md); then -3: the
# session's renewal is written only when it moves the idle end by more than a minute
# (``casework.sessions.SessionStore``; docs/adr/0036-fast-pages.md, session 12); then -7:
# the case's team, consents, their organisations and the guardians in one round trip, its
# actions, decisions, legal bases, links and events in another (``casework.compiled.
# run_together``; docs/adr/0036-fast-pages.md, session 16); then -1: the access generation
# read with the session (``casework.auth.AuthenticationMiddleware``; session 17); then
# -1: the case's team, consents, their organisations and the guardians read with the case
# itself (``casework.selectors.case_reads.case_and_parties``; session 20); then -1: the
# case's open tasks read with its rows, after the access check (``get_case_page``'s
# ``also``; session 20): a case without a process (these) had no such read; a case with
# one (``FLOW_EXPECTED``) reads its tasks in no execution of their own; then -1: the side
# menu's counts read with the case's rows (``CasePageView.read_with_case``, the reads
# prepared once a session; session 21).
EXPECTED = {
    "per.polis": 6,
    "anna.social": 5,
}
# The same page of a case whose process has two open tasks (the decisions'): one more
# execution than a case without, the absences' read of the tasks' links (who may take or
# do them; ``casework.policy.absences``); the tasks themselves are read with the case's
# rows (session 20: 9 and 10 before), and so are the menu's counts (session 21: 8 and 7
# before).
FLOW_EXPECTED = {
    "per.polis": 7,
    "anna.social": 6,
}


def _page_queries(client, url) -> tuple[int, list[str]]:
    contexts = [CaptureQueriesContext(connections[alias]) for alias in connections]
    for context in contexts:
        context.__enter__()
    try:
        response = client.get(url)
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)
    assert response.status_code == 200
    queries = [q["sql"] for context in contexts for q in context.captured_queries]
    return len(queries), queries


@pytest.mark.django_db(databases=[*BOTH_DATABASES, "audit"])
@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_case_page_query_count(users, username):
    case = sig_case(users, Status.ACTIVE)
    client = Client()
    client.force_login(users[username])
    url = case_url(case)
    client.get(url)  # warm: content types, permissions and translations cached per process
    count, queries = _page_queries(client, url)
    if os.environ.get("SHOW_QUERIES"):
        print(f"\n--- {username}: {count}")
        for sql in queries:
            print("  ", sql[:300])
    assert count == EXPECTED[username], "\n".join(queries)


@pytest.mark.django_db(databases=[*BOTH_DATABASES, "audit"])
@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_the_open_tasks_read_with_the_rows_are_the_tasks_read_alone(users, username):
    """A case with a process: its page's open tasks, read with the case's rows, take no
    execution of their own (``FLOW_EXPECTED``) and are what ``open_tasks`` reads on its
    own: the same tasks, each with the same link (or none) for this user."""
    from workflows.common.nodes import open_tasks

    flow_case = FlowDriver(users).build("decide")  # both decisions' tasks open
    client = Client()
    client.force_login(users[username])
    url = case_url(flow_case.case)
    client.get(url)
    count, queries = _page_queries(client, url)
    assert count == FLOW_EXPECTED[username], "\n".join(queries)
    response = client.get(url)
    assert response.status_code == 200
    alone = open_tasks([flow_case.process], users[username])
    assert len(alone) == 2
    assert [(task.pk, url) for task, url in response.context["tasks"]] == [
        (task.pk, url) for task, url in alone
    ]


@pytest.mark.django_db(databases=[*BOTH_DATABASES, "audit"])
@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_the_menu_counts_read_with_the_rows_are_the_counts_read_alone(users, username):
    """The side menu's counts read with the case's rows (session 21) are what
    ``MenuCounts`` reads on its own for the same user and flows, and the menu shows them."""
    from casework.menu_counts import MenuCounts

    flow_case = FlowDriver(users).build("decide")  # both decisions' tasks open
    client = Client()
    client.force_login(users[username])
    response = client.get(case_url(flow_case.case))
    assert response.status_code == 200
    shown = response.context["menu_counts"]
    assert "_counts" in vars(shown)  # taken from the rows' execution, before the menu
    alone = MenuCounts(shown._flow_classes, users[username])
    assert (shown.inbox, shown.queue) == (alone.inbox, alone.queue)
    assert alone.inbox + alone.queue >= 1
