"""viewflow's own pages: only those that go through ``casework.policy`` are mounted.

Finding 2 of issue 14: school staff posting ``select_all=1`` to the bulk assign and
unassign pages got a page listing every task of every flow. The bulk pages now list
and touch only the tasks the user may act on; viewflow's cancel, undo, revive and
process-cancel pages (nobody may use them) are not mounted at all.
"""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

BULK = ("/arenden/queue/assign/", "/arenden/inbox/unassign/")


@pytest.fixture
def two_cases(users):
    """A referral waiting in the coordinators' queue and a case whose consent task is
    the lead's (anna.social)."""
    driver = FlowDriver(users)
    waiting = driver.build("screen:new")
    consent = driver.build("consent")
    return waiting, consent


def _references(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("username", ["lisa.skola", "fredrik.fritid", "per.polis"])
def test_bulk_pages_show_no_task_of_others(users, client, two_cases, username):
    """Finding 2: ``select_all`` lists no case the user has no task in."""
    waiting, consent = two_cases
    client.force_login(users[username])
    for url in BULK:
        response = client.post(url, {"select_all": "1"})
        assert response.status_code in (200, 302, 403), url
        body = _references(response)
        for flow_case in (waiting, consent):
            assert flow_case.case.reference not in body, (url, username)


def _select_all_and_confirm(client, url, *, listed, unlisted):
    """ "Select all" on the bulk action ``url``: its confirmation page lists the case of
    ``listed``, not that of ``unlisted``; confirmed, the action redirects."""
    page = client.post(url, {"select_all": "1"})
    assert page.status_code == 200
    assert listed.case.reference in page.content.decode()
    assert unlisted.case.reference not in page.content.decode()
    done = client.post(url, {"select_all": "1", "_confirm": "1"})
    assert done.status_code == 302


def test_bulk_assign_lists_and_takes_only_the_users_queue(users, client, two_cases):
    waiting, consent = two_cases
    client.force_login(users["sara.samordnare"])
    _select_all_and_confirm(client, "/arenden/queue/assign/", listed=waiting, unlisted=consent)
    assert waiting.task("screen").owner == users["sara.samordnare"]
    assert consent.task("consent").owner == users["anna.social"]


def test_bulk_unassign_lists_and_releases_only_the_users_own_tasks(users, client, two_cases):
    waiting, consent = two_cases
    client.force_login(users["anna.social"])
    _select_all_and_confirm(client, "/arenden/inbox/unassign/", listed=consent, unlisted=waiting)
    task = consent.task("consent")
    assert task.owner_id is None and task.status == STATUS.NEW


def test_bulk_assign_of_a_task_outside_the_queue_is_refused(users, client, two_cases):
    """Naming a task by id does not widen the list: it is not taken, nothing is."""
    waiting, _consent = two_cases
    client.force_login(users["lisa.skola"])
    task = waiting.task("screen")
    response = client.post(
        "/arenden/queue/assign/", {"pk": [task.pk], "_confirm": "1"}, follow=False
    )
    assert response.status_code in (302, 403)
    task.refresh_from_db()
    assert task.owner_id is None


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


# viewflow's view classes that are still mounted, each behind a policy check
# (``docs/adr/0013-our-own-pages-and-task-owners.md`` lists them).
MOUNTED_VIEWFLOW_VIEWS = {
    "IndexTaskView",
    "UserIndexTaskView",
    "DetailTaskView",
    "AssignTaskView",
    "UnassignTaskView",
    "BulkAssignTasksActionView",
    "BulkUnassignTasksActionView",
    "DashboardView",
    "DetailProcessView",
    "FlowChartView",
    "_IndexRedirectView",
}


def test_only_guarded_viewflow_pages_are_mounted():
    """Cancel, undo, revive and process cancel are not mounted (nobody may use them);
    a viewflow page class not named above makes this fail until it is classified."""
    found = set()
    for route, pattern in _walk(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        module = getattr(view_class or pattern.callback, "__module__", "")
        if module.startswith("viewflow."):
            name = (view_class or pattern.callback).__name__
            found.add(name)
            assert name in MOUNTED_VIEWFLOW_VIEWS, route
    assert {"CancelTaskView", "UndoTaskView", "ReviveTaskView", "CancelProcessView"}.isdisjoint(
        found
    )


@pytest.mark.parametrize("name", ["cancel", "undo", "revive"])
def test_task_actions_are_not_mounted(users, two_cases, name):
    _waiting, consent = two_cases
    task = consent.task("consent")
    with pytest.raises(NoReverseMatch):
        task.flow_task.reverse(name, args=[task.process_id, task.pk])


def test_process_cancel_is_not_mounted():
    with pytest.raises(NoReverseMatch):
        reverse("arenden:flows:sig:process_cancel", args=[1])


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("anna.social", {200, 302}),
        ("sara.samordnare", {200, 302}),
        ("lisa.skola", {403}),
        ("fredrik.fritid", {403}),
        ("alex.avhopp", {403}),
    ],
)
def test_task_pages_need_access_to_the_case(users, client, two_cases, username, expected):
    """A task's index (a redirect) and detail page: only with access to its case."""
    _waiting, consent = two_cases
    task = consent.task("consent")
    client.force_login(users[username])
    for name in ("index", "detail"):
        url = task.flow_task.reverse(name, args=[task.process_id, task.pk])
        assert client.get(url).status_code in expected, (name, username)


@pytest.mark.parametrize("username", ["lisa.skola", "fredrik.fritid", "alex.avhopp"])
def test_process_pages_need_access_to_the_case(users, client, two_cases, username):
    _waiting, consent = two_cases
    client.force_login(users[username])
    process = consent.process
    for name in ("process_detail", "process_chart"):
        url = reverse(f"arenden:flows:sig:{name}", args=[process.pk])
        assert client.get(url).status_code == 403, name


def test_anonymous_gets_no_viewflow_page(client, users, two_cases):
    _waiting, consent = two_cases
    task = consent.task("consent")
    urls = [
        *BULK,
        task.flow_task.reverse("detail", args=[task.process_id, task.pk]),
        reverse("arenden:flows:sig:process_detail", args=[consent.process.pk]),
    ]
    for url in urls:
        response = client.post(url, {"select_all": "1"}) if url in BULK else client.get(url)
        assert response.status_code in (302, 403), url
        assert consent.case.reference not in response.content.decode()


def test_tasks_in_the_database_are_unchanged_by_refusals(users, client, two_cases):
    before = list(Task.objects.order_by("pk").values_list("pk", "status", "owner_id"))
    client.force_login(users["lisa.skola"])
    for url in BULK:
        client.post(url, {"select_all": "1", "_confirm": "1"})
    after = list(Task.objects.order_by("pk").values_list("pk", "status", "owner_id"))
    assert before == after
