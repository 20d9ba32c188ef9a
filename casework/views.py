"""Thin views of the case-work side: the start page, the task lists and their menu, statistics."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Count
from django.forms import ModelChoiceField
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_filters import ChoiceFilter, FilterSet
from django_filters.constants import EMPTY_VALUES
from viewflow.utils import viewprop
from viewflow.views.list import BaseColumn, DataSourceColumn
from viewflow.workflow.fields import get_task_ref
from viewflow.workflow.flow import WorkflowAppViewset
from viewflow.workflow.flow import views as flow_views
from viewflow.workflow.flow.viewset import NestedFlowsApp
from viewflow.workflow.managers import coerce_to_related_instance
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import STATUS

from casework import policy, programmes
from casework.addresses import SAMPLE_INT, SAMPLE_UUID, row_address
from casework.compiled import CompiledQuery, CompiledRows, among_ids, run_together
from casework.date_ranges import ArchiveListFilter, LocalDateRangeFilter
from casework.form_markup import form_fields
from casework.menu_counts import MenuCounts, page_menu_counts, visible_flows
from casework.selectors.cases import status_label
from casework.task_views import TaskManageView, TasksToManageView


class PolicyRequiredMixin:
    """Refuse the view (403) unless ``policy_check(user)`` allows it."""

    policy_check = None

    def dispatch(self, request, *args, **kwargs):
        check = type(self).policy_check
        if check is None or not check(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def home(request):
    """Send each user to the start page of their role."""
    url = policy.start_url(request.user)
    if url is None:
        return TemplateResponse(request, "samverkan/no_role.html", status=403)
    return redirect(url)


def case_of(task):
    """The case a task works on (``None`` for a process without one)."""
    process = task.coerced_process
    return getattr(process, "case", None)


def _case_address(case_id) -> str:
    return reverse("arenden:case", kwargs={"case_id": case_id})


def _subject_brief(task):
    """What a process works on when it is not a case (a programme's ``TaskSubject``): its
    texts, linked to its page; "—" for a process with none. No name: nothing is
    decrypted for a task list."""
    process = task.coerced_process
    for subject in programmes.task_subjects():
        found = getattr(process, subject.field, None)
        if found is not None:
            url, first, second = subject.describe(found)
            return format_html('<a href="{}" data-turbo="false">{} · {}</a>', url, first, second)
    return "—"


class TaskColumns:
    """The task lists' columns: the task (a link to it), its case (number and state), dates.

    viewflow's own columns are labelled from attribute names ("Brief", "Created")
    outside gettext, and its brief repeats the task title. The case column shows the
    case number and state only: never the person's name, which would need decrypting
    (and logging) for every row.
    """

    def task_link(self, task):
        node = task.flow_task
        url = row_address(
            node,
            lambda process, pk: node.reverse("index", args=[process, pk]),
            (SAMPLE_INT, SAMPLE_INT + 1),
            (task.process_id, task.pk),
        )
        return format_html('<a href="{}" data-turbo="false">{}</a>', url, task.title)

    task_link.short_description = _("Task")

    def case_brief(self, task):
        case = case_of(task)
        if case is None:
            return _subject_brief(task)
        return format_html(
            '<a href="{}" data-turbo="false">{} · {}</a>',
            row_address("case", _case_address, (SAMPLE_UUID,), (case.pk,)),
            case.reference,
            status_label(case),
        )

    case_brief.short_description = _("Case")

    def created(self, task):
        return task.created

    created.short_description = _("Created")

    def finished(self, task):
        return task.finished

    finished.short_description = _("Finished")

    @staticmethod
    def _with_cases(queryset):
        """Newest first, with each task's process row; what each process works on (its
        case, a GVI subject) is read for the shown page only (``paginate_queryset``). Not
        the owner's account: no column shows it (ADR 0036, session 22)."""
        return queryset.select_related("process").order_by("-created", "-pk")

    def get_paginator(self, queryset, *args, **kwargs):
        """The list's length without a count statement when the filter drawer read it
        (``TaskListFilter.unfiltered_count``: the list is not narrowed)."""
        paginator = super().get_paginator(queryset, *args, **kwargs)
        count = getattr(self.filterset, "unfiltered_count", None)
        searched = self.search_enabled() and self.get_search_term() is not None
        if count is not None and not searched:
            paginator.count = count
        return paginator

    def _page_tasks(self, tasks) -> list:
        """The shown page's tasks (``tasks``: the paginator's slice of the list)."""
        return list(tasks)

    def paginate_queryset(self, queryset, page_size):
        paginator, page, tasks, is_paginated = super().paginate_queryset(queryset, page_size)
        tasks = self._page_tasks(tasks)
        attach_processes(tasks, self.flow_classes)
        page.object_list = tasks
        return paginator, page, tasks, is_paginated


def attach_processes(tasks, flow_classes) -> None:
    """Read each flow's processes of ``tasks`` with their case or other subject, one query
    a flow, all in one round trip (``casework.compiled.run_together``), and hand them to
    the tasks (``task.coerced_process`` then reads no more).

    One query joining every flow's process and subject grew past what PostgreSQL's
    planner searches cheaply: with the GVI referral task it took ~1.8 s a page.
    """
    by_flow: dict = {}
    for task in tasks:
        by_flow.setdefault(task.process.flow_class, []).append(task)
    reads = []
    for flow_class, flow_tasks in by_flow.items():
        model = flow_class.process_class
        if not model._meta.parents:
            continue
        related = [f.name for f in model._meta.fields if f.name == "case"]
        for subject in programmes.task_subjects():
            if any(f.name == subject.field for f in model._meta.fields):
                related += list(subject.related) or [subject.field]
        reads.append((model, flow_tasks, _process_read(model, tuple(related))))
    if not reads:
        return
    found = run_together(
        *(
            (read, {"ids": [t.process_id for t in flow_tasks]})
            for _model, flow_tasks, read in reads
        ),
        prepared=True,
    )
    for (model, flow_tasks, _read), rows in zip(reads, found, strict=True):
        processes = {process.pk: process for process in rows}
        try:
            link = type(flow_tasks[0].process)._meta.get_field(model._meta.model_name)
        except FieldDoesNotExist:  # not a direct child of Process: read as before
            continue
        for task in flow_tasks:
            process = processes.get(task.process_id)
            if process is not None:
                link.set_cached_value(task.process, process)


@functools.cache
def _process_read(model, related: tuple[str, ...]) -> CompiledQuery:
    """A flow's processes by id with their case or subject (``attach_processes``), compiled
    once a process (``casework.compiled``): the ids are one array parameter."""
    return CompiledQuery(
        lambda ids: model.objects.select_related(*related).filter(pk__in=among_ids(ids)).order_by(),
        ids=("no process",),
    )


class TaskListFilter(FilterSet):
    """The inbox's and the queue's filter drawer: a task's process, its step, when it was
    created — viewflow's ``FlowUserTaskListFilter``, with its choices read in one
    statement.

    viewflow reads the steps with one query and lists the processes with another (each
    a model instance, labelled by ``Process.__str__``), and the paginator counts the
    list with a third. Here one grouped read of the listed tasks gives the processes
    (labelled as ``Process.__str__`` labels them, newest first as ``Process`` orders
    them), the steps (in the order of their stored reference, labelled as viewflow
    labels them) and, summed, the list's length, which the paginator takes when no
    filter narrows the list (``unfiltered_count``). A process is chosen among the
    listed tasks' processes, as before: a value that is not one of them is refused.
    """

    process = ChoiceFilter(
        # The message of viewflow's process filter (a model choice): a refused value is
        # not repeated back.
        error_messages={"invalid_choice": ModelChoiceField.default_error_messages["invalid_choice"]}
    )
    flow_task = ChoiceFilter()
    created = LocalDateRangeFilter()

    class Meta:
        model = Task
        fields = ("process", "flow_task", "created")

    def __init__(self, *args, groups=None, **kwargs):
        """``groups``: :meth:`groups` of the list's queryset, when the caller read them."""
        super().__init__(*args, **kwargs)
        processes, steps, count = {}, {}, 0
        if groups is None:
            groups = self.groups(self.queryset)
        for process_id, flow_class, created, flow_task, tasks in groups:
            if process_id not in processes:
                # Labelled by ``Process.__str__`` itself, on a stand-in of the two fields
                # it reads (a model instance a process took ~20 µs to make).
                label = Process.__str__(SimpleNamespace(pk=process_id, flow_class=flow_class))
                processes[process_id] = (created, label)
            steps.setdefault(flow_task, None)
            count += tasks
        newest_first = sorted(processes.items(), key=lambda item: item[1][0], reverse=True)
        self.filters["process"].field.choices = [
            (str(pk), label) for pk, (_, label) in newest_first
        ]
        self.filters["flow_task"].field.choices = [
            (get_task_ref(node), f"{node.flow_class.process_title}/{node.name.title()}")
            for node in steps
        ]
        self._count = count

    @staticmethod
    def groups(tasks):
        """The listed tasks grouped by process and step, with a count each."""
        return (
            tasks.order_by("flow_task")
            .values_list("process_id", "process__flow_class", "process__created", "flow_task")
            .annotate(tasks=Count("pk"))
        )

    @property
    def unfiltered_count(self) -> int | None:
        """How many tasks the list holds when no filter narrows it, else ``None``."""
        if self.is_bound and any(
            value not in EMPTY_VALUES for value in self.form.cleaned_data.values()
        ):
            return None
        return self._count


class InboxView(TaskColumns, flow_views.WorkflowInboxListView):
    """The user's task inbox. For a user who stands in for no one (most users, most days)
    the filter drawer's grouped read and, without a query string, the first page's tasks
    are compiled reads (``casework.compiled``): the same statements the ORM builds for
    the list's queryset, compiled once a process for each set of flows the user may see,
    instead of once a request (ADR 0036, session 17)."""

    columns = ("task_link", "case_brief", "created")
    filterset_class = TaskListFilter
    template_name = "workflows/inbox.html"

    @cached_property
    def _absent(self) -> frozenset[int]:
        """The users the user stands in for today (``policy.absent_for``'s answer). For a
        case worker their ids are read in one execution with the reads of an own inbox
        (:meth:`_own_reads`), kept for :meth:`get_filterset` when the user stands in for
        no one and dropped otherwise (a deputy's inbox is the ORM's list)."""
        user = self.request.user
        if not policy.can_use_task_inbox(user):
            return frozenset()
        flows = self._visible_flows
        own = self._own_reads(flows) if flows else []
        # The side menu's counts in the same execution (as the case page reads them).
        menu = page_menu_counts(self.request)
        menu_reads = menu.reads() if menu is not None else []
        rows, *found = run_together(
            policy.absent_ids_read(user, timezone.localdate()), *own, *menu_reads, prepared=True
        )
        if menu_reads:
            menu.take(found[len(own) :])
        found = found[: len(own)]
        absent = policy.absent_among(user, rows)
        if not absent and found:
            self._own_rows = found
        return absent

    @viewprop
    def queryset(self):
        return self._with_cases(user_inbox(self.flow_classes, self.request.user, self._absent))

    @cached_property
    def _visible_flows(self) -> tuple:
        """The flows the user may see (``filter_available``'s)."""
        return visible_flows(self.flow_classes, self.request.user)

    @cached_property
    def _own_flows(self) -> tuple | None:
        """The flows the user's inbox lists, when the inbox holds the user's own tasks
        only; ``None`` for a deputy or a user who may see no flow (the ORM's queryset
        then)."""
        if self._absent:
            return None
        return self._visible_flows or None  # no flow: the ORM's empty queryset reads nothing

    # The rows of ``_own_reads``, when read with the absences (``_absent``).
    _own_rows: list | None = None
    # The first page's tasks read with the drawer's groups (``get_filterset``): the
    # longest slice the first page can take (its length and orphans), and the tasks.
    _first_page: tuple[int, list] | None = None

    def _own_reads(self, flows: tuple) -> list:
        """The compiled reads of an own inbox over ``flows``: the drawer's grouped read and,
        without a query string, the first page's tasks (the longest slice it can take)."""
        user = self.request.user.pk
        reads = [(_inbox_groups(flows), {"user": user})]
        longest = self._first_page_longest()
        if longest is not None:
            reads.append((_inbox_page(flows, longest), {"user": user}))
        return reads

    def get_filterset(self, filterset_class, queryset):
        kwargs = self.get_filterset_kwargs(filterset_class)
        flows = self._own_flows
        if flows is not None:
            found = self._own_rows or run_together(*self._own_reads(flows), prepared=True)
            kwargs["groups"], *first_page = found
            if first_page:
                self._first_page = (self._first_page_longest(), first_page[0])
        return filterset_class(queryset=queryset, **kwargs)

    def drawer_fields(self) -> str:
        """The filter drawer's fields (``casework.form_markup.form_fields``)."""
        return form_fields(self.filterset.form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["inbox_rows"] = self.row_cells(context["object_list"])
        context["list_checkbox"] = _list_checkbox()
        return context

    def row_cells(self, tasks) -> list[tuple[int, str]]:
        """Each shown task's id and its table cells, as viewflow's list template wrote them
        (``{% for column, value in row %}<td …>{{ value }}</td>{% endfor %}``), made in
        Python once a row: each value as viewflow's ``get_page_data`` gives it, escaped as
        ``{{ value }}`` escaped it (:meth:`_cell_writer`: what viewflow decides per cell —
        the column's kind, source, type and link — decided once a page)."""
        writers = [self._cell_writer(column) for column in self.list_columns.values()]
        return [
            (task.pk, mark_safe("".join([write(task) for write in writers])))  # noqa: S308
            for task in tasks
        ]

    def _cell_writer(self, column):
        """A function writing ``column``'s cell of a task: ``<td class=…>`` and the value of
        viewflow's ``format_value(task, column, column.get_value(task))``, escaped. A column
        of this view's own methods (``DataSourceColumn``, not boolean) calls the method and
        formats as viewflow's ``BaseColumn``; any other column is viewflow's own."""
        start = f'<td class="vf-list__table-cell-{escape(column.column_type())}">'
        method = getattr(self, column.attr_name, None)
        if (
            type(column) is DataSourceColumn
            and column.data_source is self
            and callable(method)
            and not column._get_attr_boolean()
        ):
            empty = column._get_attr_empty_value()
            linked = column.attr_name in self.get_object_link_columns

            def value(task):
                found = method(task)
                shown = BaseColumn.format_value(column, task, empty if found is None else found)
                url = self.get_object_url(task) if linked else None
                return format_html('<a href="{}">{}</a>', url, shown) if url else shown

        else:

            def value(task):
                return self.format_value(task, column, column.get_value(task))

        return lambda task: f"{start}{conditional_escape(value(task))}</td>"

    def _first_page_longest(self) -> int | None:
        """The most tasks the first page of an inbox without a query string can show (its
        length and orphans: the paginator's first slice is never longer), when that page
        is read compiled (``_page_tasks``); else ``None``."""
        if self.request.GET or self.kwargs.get(self.page_kwarg):
            return None
        length = self.get_paginate_by(None)
        if not length:
            return None
        longest = length + self.get_paginate_orphans()
        return longest if longest <= MAX_COMPILED_PAGE else None

    def _page_tasks(self, tasks) -> list:
        """The first page of an unfiltered, unsearched, unsorted inbox (no query string)
        by its compiled read, run with the drawer's (the same statement with the longest
        slice the page can take, cut to the paginator's); any other page as the ORM's
        slice."""
        query = tasks.query
        filterset = getattr(self, "filterset", None)
        if (
            self._own_flows is None
            or self.request.GET
            or (filterset is not None and filterset.is_bound)
            or query.low_mark != 0
            or not query.high_mark
            or query.high_mark > MAX_COMPILED_PAGE
        ):
            return list(tasks)
        if self._first_page is not None and query.high_mark <= self._first_page[0]:
            read = self._first_page[1][: query.high_mark]
        else:
            read = _inbox_page(self._own_flows, query.high_mark).run(user=self.request.user.pk)
        return [_coerced(task) for task in read]


# The largest first page read compiled (the list's page size and orphans; a slice is
# compiled once a process for each length up to it).
MAX_COMPILED_PAGE = 100


@functools.cache
def _list_checkbox() -> str:
    """The bulk actions' checkbox of the inbox's header and rows: static markup, rendered
    once a process."""
    return render_to_string("workflows/includes/list_checkbox.html")


# A user id no account has, standing in for the user's when the reads are compiled.
_NO_USER = -1


def _own_tasks(flows, user):
    """``Task.objects.inbox(flows, user)`` for flows the user may see, by the user's id."""
    return Task._default_manager.coerce_for(flows).filter(owner_id=user, status=STATUS.ASSIGNED)


@functools.cache
def _inbox_groups(flows: tuple) -> CompiledRows:
    """The filter drawer's grouped read of an own inbox over ``flows``, compiled."""
    return CompiledRows(lambda user: TaskListFilter.groups(_own_tasks(flows, user)), user=_NO_USER)


@functools.cache
def _inbox_page(flows: tuple, size: int) -> CompiledQuery:
    """The first ``size`` tasks of an own inbox over ``flows``, as the list reads them."""
    return CompiledQuery(
        lambda user: TaskColumns._with_cases(_own_tasks(flows, user))[:size], user=_NO_USER
    )


def _coerced(task):
    """A task as viewflow's ``TaskIterable`` gives it from a coerced queryset."""
    if isinstance(task, Task):
        return coerce_to_related_instance(task, task.flow_task.flow_class.task_class)
    return task


class QueueView(TaskColumns, flow_views.WorkflowQueueListView):
    """The tasks the user may take (``casework.policy.task_queue``), not viewflow's queue
    (where a task without a queue permission is everyone's)."""

    columns = ("task_link", "case_brief", "created")
    filterset_class = TaskListFilter

    @viewprop
    def queryset(self):
        return self._with_cases(user_queue(self.flow_classes, self.request.user))


def user_queue(flow_classes, user):
    manager = Task._default_manager
    return policy.task_queue(user, manager.filter_available(flow_classes, user), flow_classes)


def own_inbox(flow_classes, user):
    return Task._default_manager.inbox(flow_classes, user)


def user_inbox(flow_classes, user, absent=None):
    """The tasks assigned to ``user``, and during an absence those of the absent user they
    stand in for (``casework.policy.absences``; ``absent``: their ids, when read)."""
    if absent is None:
        absent = policy.absent_for(user)
    if not absent:
        return Task._default_manager.inbox(flow_classes, user)
    return Task._default_manager.filter_available(flow_classes, user).filter(
        owner_id__in=[user.pk, *absent], status=STATUS.ASSIGNED
    )


class _OwnTasksAction(PolicyRequiredMixin):
    """viewflow's bulk pages over the user's own tasks only: ``tasks_of(flows, user)`` is
    both what is listed and what is acted on."""

    policy_check = staticmethod(policy.can_use_task_inbox)
    tasks_of = None
    done_message = ""

    def get_queryset(self):
        self.queryset = type(self).tasks_of(self.viewset.flow_classes, self.request.user)
        return super().get_queryset()

    def message_user(self):
        messages.success(self.request, self.done_message, fail_silently=True)


class BulkAssignView(_OwnTasksAction, flow_views.BulkAssignTasksActionView):
    """Take several tasks from the queue: only ever the user's queue is listed and taken
    (viewflow's page listed every task of every flow)."""

    tasks_of = staticmethod(user_queue)
    done_message = _("The tasks were assigned to you.")


class BulkUnassignView(_OwnTasksAction, flow_views.BulkUnassignTasksActionView):
    """Hand several of one's own tasks back: only the user's own tasks are listed and
    released (not those of an absent user they stand in for)."""

    tasks_of = staticmethod(
        lambda flow_classes, user: Task._default_manager.inbox(flow_classes, user)
    )
    done_message = _("The tasks were handed back.")


class ArchiveView(TaskColumns, flow_views.WorkflowArchiveListView):
    columns = ("task_link", "case_brief", "created", "finished")
    filterset_class = ArchiveListFilter

    @viewprop
    def queryset(self):
        return self._with_cases(
            self.model._default_manager.archive(self.flow_classes, self.request.user)
        )


class RemindersView(PolicyRequiredMixin, TemplateView):
    """The user's reminders (what ``send_reminders`` recorded): kinds, dates, case numbers."""

    template_name = "workflows/reminders.html"
    policy_check = staticmethod(policy.can_use_task_inbox)

    def get_context_data(self, **kwargs):
        from casework.selectors.reminders import SHOWN_DAYS, reminder_rows

        context = super().get_context_data(**kwargs)
        context["rows"] = reminder_rows(user=self.request.user)
        context["shown_days"] = SHOWN_DAYS
        return context


class CaseworkApp(WorkflowAppViewset):
    """Task inbox, queue and archive over every registered process flow."""

    title = _("Cases")
    icon = "assignment"
    app_name = "arenden"
    menu_template_name = "workflows/casework_menu.html"
    inbox_view_class = InboxView
    queue_view_class = QueueView
    archive_view_class = ArchiveView
    tasks_assign_view_class = BulkAssignView
    tasks_unassign_view_class = BulkUnassignView

    def __init__(self, **kwargs):
        # The programmes' flows, and their pages under this app (``arenden:…``).
        kwargs.setdefault("urlpatterns", programmes.casework_urls())
        super().__init__(flow_viewsets=programmes.flow_viewsets(), **kwargs)
        # The task pages live in viewflow's nested "Processes" app: they get this app's
        # side menu and title too, not a "Back" link and the coordinators' overviews.
        for child in self.menu_items():
            if isinstance(child, NestedFlowsApp):
                child.title = self.title
                child.menu_template_name = self.menu_template_name
                child.get_context_data = self.get_context_data

    def has_view_permission(self, user, obj=None):
        return policy.can_use_task_inbox(user)

    def menu_counts(self, request) -> MenuCounts:
        """The side menu's counts of this request's page: one ``MenuCounts`` a request and
        app, kept on the request, so that a page may read them with its own reads
        (``MenuCounts.reads``, ``take``) before the menu shows them."""
        kept = request.__dict__.setdefault("_samverkan_menu_counts", {})
        counts = kept.get(id(self))
        if counts is None:
            counts = kept[id(self)] = MenuCounts(self.flow_classes, request.user)
        return counts

    def get_context_data(self, request):
        """The side menu's counts, and the processes this user may start from it."""
        return {
            "menu_counts": self.menu_counts(request),
            # A callable: the template asks for it only when it renders the menu anew.
            "casework_start_nodes": lambda: [
                node
                for flow_class in self.flow_classes
                for node in flow_class.get_start_nodes(request.user)
            ],
        }

    tasks_to_manage_path = path("uppgifter/", TasksToManageView.as_view(), name="tasks_to_manage")
    task_manage_path = path(
        "uppgifter/<int:task_pk>/", TaskManageView.as_view(), name="task_manage"
    )
    reminders_path = path("paminnelser/", RemindersView.as_view(), name="reminders")
