"""The task inbox's compiled reads (``casework.views.InboxView``, ADR 0036 session 17): the
filter drawer's grouped read and the first page's tasks run the statements the ORM's
querysets run, with the same parameters, and give the same rows; a deputy's inbox, a
query string and later pages keep the ORM's queryset; the inbox's statements are pinned."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework import policy, views
from casework.form_markup import form_fields
from casework.models import Absence, User
from casework.views import CaseworkApp, TaskColumns, TaskListFilter, user_inbox
from tests.workflows.conftest import BOTH_DATABASES, colleague

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

INBOX = "/arenden/inbox/"


@pytest.fixture
def seeded(demo_cases):
    return demo_cases


def _flows():
    from config.urls import site

    return next(app for app in site.viewsets if isinstance(app, CaseworkApp)).flow_classes


def _own_flows(user):
    return tuple(f for f in _flows() if f.instance.has_view_permission(user))


def _statements(run):
    with CaptureQueriesContext(connection) as queries:
        found = run()
    return found, [query["sql"] for query in queries.captured_queries]


def test_the_compiled_reads_are_the_orm_s_statements_and_rows(seeded):
    checked = 0
    for user in User.objects.filter(is_active=True).order_by("username"):
        flows = _own_flows(user)
        if not flows:
            continue
        tasks = TaskColumns._with_cases(user_inbox(_flows(), user, absent=[]))
        expected, orm = _statements(lambda tasks=tasks: list(TaskListFilter.groups(tasks)))
        got, compiled = _statements(
            lambda flows=flows, user=user: views._inbox_groups(flows).run(user=user.pk)
        )
        assert compiled == orm, user.username  # the same text, the same values
        assert got == [tuple(row) for row in expected], user.username
        for size in (1, 6, 25):
            expected, orm = _statements(lambda tasks=tasks, size=size: list(tasks[:size]))
            got, compiled = _statements(
                lambda flows=flows, user=user, size=size: [
                    views._coerced(t) for t in views._inbox_page(flows, size).run(user=user.pk)
                ]
            )
            assert compiled == orm, (user.username, size)
            assert [(type(t), t.pk, t.process_id, t.flow_task) for t in got] == [
                (type(t), t.pk, t.process_id, t.flow_task) for t in expected
            ]
            assert [t.process.flow_class for t in got] == [t.process.flow_class for t in expected]
            checked += len(got)
    assert checked > 10  # the demo's users have tasks in their inboxes


def test_the_inbox_page_reads_its_tasks_compiled_and_in_few_statements(seeded, client):
    """anna.social's inbox: the session with the access generation, the absences with the
    drawer's grouped read and the page's tasks (one execution), their processes (every
    flow's in one round trip), the side menu's counts with its ruled steps' tasks (one
    execution) — nothing compiled by the ORM per request."""
    client.force_login(seeded["anna.social"])
    client.get(INBOX)
    views._inbox_groups.cache_clear()
    views._inbox_page.cache_clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(INBOX)
    assert response.status_code == 200
    assert len(queries.captured_queries) <= 4, [q["sql"][:80] for q in queries.captured_queries]
    tasks = list(response.context["page_obj"].object_list)
    assert tasks
    expected = TaskColumns._with_cases(user_inbox(_flows(), seeded["anna.social"]))
    assert [t.pk for t in tasks] == [t.pk for t in expected[: len(tasks)]]
    assert views._inbox_groups.cache_info().currsize == 1
    assert views._inbox_page.cache_info().currsize == 1


def test_the_inbox_s_reads_are_prepared_once_a_database_session(seeded, client):
    """The absences with the drawer and the first page, and the tasks' processes: prepared
    with their first use on the connection, only executed after (ADR 0036, session 21); the
    same page either way."""
    client.force_login(seeded["anna.social"])
    first = client.get(INBOX)
    with CaptureQueriesContext(connection) as queries:
        again = client.get(INBOX)
    assert first.status_code == again.status_code == 200
    assert [t.pk for t in first.context["page_obj"].object_list] == [
        t.pk for t in again.context["page_obj"].object_list
    ]
    reads = [q["sql"] for q in queries.captured_queries if "samverkan_read_" in q["sql"]]
    # The absences' execution with the drawer, the page and the menu's counts (session
    # 22), the processes'.
    assert len(reads) >= 2, [q["sql"][:80] for q in queries.captured_queries]
    assert all(sql.lstrip().startswith("EXECUTE samverkan_read_") for sql in reads), [
        sql[:80] for sql in reads
    ]
    assert not any("PREPARE" in q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize("more", [0, 19, 20, 24, 40])
def test_the_first_page_read_with_the_drawer_is_the_paginators(seeded, client, more):
    """The first page's tasks, read with the drawer's groups as the longest slice the
    page can take and cut to the paginator's: the ORM paginator's first page, for inboxes
    shorter than a page, around a page's length and its orphans, and longer."""
    from django.core.paginator import Paginator
    from viewflow.workflow.status import STATUS

    anna = seeded["anna.social"]
    flows = _own_flows(anna)
    others = (
        views.Task.objects.filter(
            status__in=[STATUS.NEW, STATUS.ASSIGNED],
            process__flow_class__in=flows,
            flow_task_type="HUMAN",
        )
        .exclude(owner=anna)
        .values_list("pk", flat=True)[:more]
    )
    views.Task.objects.filter(pk__in=list(others)).update(owner=anna, status=STATUS.ASSIGNED)
    client.force_login(anna)
    response = client.get(INBOX)
    assert response.status_code == 200
    view = response.context["view"]
    tasks = TaskColumns._with_cases(user_inbox(_flows(), anna))
    first = Paginator(tasks, view.paginate_by, orphans=view.get_paginate_orphans()).page(1)
    expected = [t.pk for t in first.object_list]
    assert [t.pk for t in response.context["page_obj"].object_list] == expected
    assert response.context["paginator"].count == tasks.count()
    if more == 40:
        assert len(expected) == view.paginate_by


def test_a_query_string_or_a_deputy_keeps_the_orm_s_list(seeded, client):
    """With a query string (a filter, a page) the first page is the ORM's slice; a deputy's
    inbox (their own tasks and the absent colleague's) is the ORM's queryset throughout:
    the own inbox's reads, run with the absences, are dropped."""
    anna = seeded["anna.social"]
    client.force_login(anna)
    views._inbox_page.cache_clear()
    assert client.get(INBOX, {"page": "1"}).status_code == 200
    assert views._inbox_page.cache_info().currsize == 0
    ebba = _away_today(seeded, anna)
    assert policy.absent_for(ebba) == {anna.pk}
    client.force_login(ebba)
    response = client.get(INBOX)
    assert response.status_code == 200
    view = response.context["view"]
    assert view._own_rows is None
    assert view._own_flows is None
    assert view._first_page is None
    shown = [t.pk for t in response.context["page_obj"].object_list]
    assert shown  # anna.social's tasks, in her deputy's inbox
    assert shown == [t.pk for t in TaskColumns._with_cases(user_inbox(_flows(), ebba))][:25]


def test_the_listed_tasks_processes_are_read_in_one_round_trip(seeded):
    """``attach_processes``: every flow's processes of the listed tasks (with their cases)
    in one execution, each task's ``coerced_process`` then the process of its own flow's
    model, with its case, and nothing more read for them."""
    tasks = list(views.Task.objects.filter(status="NEW").select_related("process")[:50])
    tasks += list(views.Task.objects.filter(status="ASSIGNED").select_related("process")[:50])
    flows = {task.process.flow_class for task in tasks}
    assert len(flows) > 1  # the demo's tasks are in several programmes' flows
    with CaptureQueriesContext(connection) as queries:
        views.attach_processes(tasks, _flows())
    assert len(queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        for task in tasks:
            process = task.coerced_process
            assert type(process) is task.process.flow_class.process_class
            assert process.pk == task.process_id
            case = getattr(process, "case", None)
            if case is not None:
                assert case.pk == type(process).objects.get(pk=process.pk).case_id
    reads = [q["sql"] for q in queries.captured_queries]
    assert len(reads) == sum(1 for t in tasks if getattr(t.coerced_process, "case", None))
    views.attach_processes([], _flows())  # nothing listed: nothing read


def _away_today(seeded, anna):
    """ebba.social, anna.social's colleague, stands in for her from yesterday to tomorrow."""
    ebba = colleague(seeded, "anna.social", "ebba.social")
    today = timezone.localdate()
    Absence.objects.create(
        user=anna,
        deputy=ebba,
        starts_on=today - datetime.timedelta(days=1),
        ends_on=today + datetime.timedelta(days=1),
    )
    return ebba


def _page_text(response) -> str:
    """The page without what differs from one request to the next: the CSRF token and the
    session's end."""
    text = response.content.decode()
    text = re.sub(r'(csrfmiddlewaretoken" value=|data-csrf-token=)"[^"]+"', r'\1"-"', text)
    text = re.sub(r'data-(ends-at|idle-seconds|text-end)="[^"]*"', r'data-\1="-"', text)
    text = re.sub(r'nonce="[^"]+"', 'nonce="-"', text)
    # Indentation (the bulk checkbox is one include for the header and the rows): runs of
    # white space as one, none between tags.
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", text))


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_inbox_template_writes_what_viewflow_s_list_template_wrote(
    seeded, client, monkeypatch, language
):
    """``workflows/inbox.html`` (the rows' cells made in Python, the start dialog kept once a
    process per account and permissions): the same page as viewflow's task list template,
    for a case worker, a coordinator and a deputy, with and without a query string."""
    anna = seeded["anna.social"]
    ebba = _away_today(seeded, anna)
    client.cookies["django_language"] = language
    compared = 0
    for user in (anna, seeded["sara.samordnare"], ebba):
        client.force_login(user)
        for query in ("", "?page=2", "?flow_task=workflows/sig.flow.SigFlow.consent", "?process=0"):
            ours = client.get(INBOX + query)
            monkeypatch.setattr(
                views.InboxView, "template_name", "viewflow/workflow/workflow_tasks_list.html"
            )
            viewflow = client.get(INBOX + query)
            monkeypatch.undo()
            assert ours.status_code == viewflow.status_code
            if ours.status_code == 200:
                assert _page_text(ours) == _page_text(viewflow), (user.username, query)
                compared += bool(ours.context["inbox_rows"])
    assert compared >= 6  # pages with rows, for every user


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_drawer_s_fields_are_viewflow_s_form_markup(seeded, language):
    """``casework.form_markup.form_fields``: the unbound drawer written in Python is what
    viewflow's form renderer writes for it, for every demo user's inbox (processes and steps
    with non-ASCII labels, none at all); a bound form is the renderer's own."""
    from django.test import RequestFactory
    from django.utils import translation
    from viewflow.forms.renderers import FormLayout

    written = 0
    with translation.override(language):
        for user in User.objects.filter(is_active=True).order_by("username"):
            tasks = TaskColumns._with_cases(user_inbox(_flows(), user, absent=[]))
            for data in (None, {"flow_task": "bogus"}, {"process": "0", "created": "week"}):
                request = RequestFactory().get(INBOX, data or {})
                request.user = user
                drawer = TaskListFilter(data=data, queryset=tasks, request=request)
                assert form_fields(drawer.form) == FormLayout().render(drawer.form), user.username
                written += data is None
    assert written > 10


@pytest.mark.parametrize("username", ["anna.social", "sara.samordnare", "per.polis"])
def test_the_menu_counts_read_with_the_inbox_are_the_counts_read_alone(seeded, client, username):
    """The side menu's counts read in the inbox's first execution (session 22) are what
    ``MenuCounts`` reads on its own for the same user and flows, the menu reads nothing
    more, and the inbox takes one statement fewer than with the counts read apart."""
    from casework.menu_counts import MenuCounts

    user = seeded[username]
    client.force_login(user)
    client.get(INBOX)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(INBOX)
    assert response.status_code == 200
    shown = response.context["menu_counts"]
    assert "_counts" in vars(shown)  # taken from the inbox's execution, before the menu
    alone = MenuCounts(shown._flow_classes, user)
    assert (shown.inbox, shown.queue) == (alone.inbox, alone.queue)
    # The session, the absences with the drawer, the page and the counts, the processes.
    assert len(queries.captured_queries) <= 3, [q["sql"][:80] for q in queries.captured_queries]
