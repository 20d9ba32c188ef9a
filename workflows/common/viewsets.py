"""The pages every programme's flow gets (``ProgrammeFlowViewset``).

Each programme hands its flow viewsets to the core's programme registry
(``casework.programmes``, e.g. ``workflows/sig/programme.py``); the shared task
inbox, queue and archive list the tasks of all of them.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path
from viewflow.utils import viewprop
from viewflow.workflow.flow import FlowViewset
from viewflow.workflow.flow import views as flow_views

from casework import policy
from casework.date_ranges import DashboardProcessListFilter, DashboardTaskListFilter


def _coordinators_only(view, flow_class):
    """Overviews of all processes (case numbers and states) are for the coordinators."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not policy.may_see_flow_overview(request.user, flow_class):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class _TaskVisible:
    """A task's index page (viewflow mounts it without a check): only for whoever may see
    the task's process (``casework.policy.may_see_task``)."""

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_see_task(request.user, request.activation.task):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class IndexTaskView(_TaskVisible, flow_views.IndexTaskView):
    pass


class UserIndexTaskView(_TaskVisible, flow_views.UserIndexTaskView):
    pass


GUARDED_INDEX_VIEWS = {
    flow_views.IndexTaskView: IndexTaskView,
    flow_views.UserIndexTaskView: UserIndexTaskView,
}


def mount_only_guarded_pages(flow_class) -> None:
    """Before the flow's URLs are built: no cancel, undo or revive page on any step (the
    flows allow them to nobody, ``has_manage_permission``), and each step's index page
    behind the task's policy check."""
    for node in flow_class.instance.nodes():
        for name in ("cancel_view_class", "undo_view_class", "revive_view_class"):
            if hasattr(node, name):
                setattr(node, name, None)
        index = getattr(node, "index_view_class", None)
        if index in GUARDED_INDEX_VIEWS:
            node.index_view_class = GUARDED_INDEX_VIEWS[index]


def _process_visible(view, flow_class):
    """A process's chart (its steps done and open) only with access to the process's case."""

    @wraps(view)
    def wrapped(request, *args, process_pk, **kwargs):
        process = get_object_or_404(flow_class.process_class, pk=process_pk)
        if not flow_class.instance.has_view_permission(request.user, process):
            raise PermissionDenied
        return view(request, *args, process_pk=process_pk, **kwargs)

    return wrapped


class ProcessListView(flow_views.DashboardProcessListView):
    """Newest first (viewflow's list is unordered, which paginates inconsistently); its
    date filters in the local calendar (``casework.date_ranges``)."""

    filterset_class = DashboardProcessListFilter

    def get_queryset(self):
        return super().get_queryset().order_by("-created", "-pk")


class TaskListView(flow_views.DashboardTaskListView):
    filterset_class = DashboardTaskListFilter

    def get_queryset(self):
        return super().get_queryset().order_by("-created", "-pk")


class ProgrammeFlowViewset(FlowViewset):
    """A flow's pages; its dashboards and process lists only for its coordinators; no
    process cancel page (nobody may cancel a process from viewflow's pages)."""

    process_list_view_class = ProcessListView
    task_list_view_class = TaskListView
    process_cancel_path = None

    def __init__(self, flow_class, **kwargs):
        mount_only_guarded_pages(flow_class)
        super().__init__(flow_class, **kwargs)

    @viewprop
    def dashboard_view(self):
        return _coordinators_only(
            self.dashboard_view_class.as_view(**self.get_dashboard_view_kwargs()),
            self._flow_class,
        )

    @viewprop
    def process_list_view(self):
        return _coordinators_only(
            self.process_list_view_class.as_view(**self.get_process_list_view_kwargs()),
            self._flow_class,
        )

    @property
    def flow_chart_path(self):
        return path(
            "<int:process_pk>/chart/",
            _process_visible(self.chart_view, self._flow_class),
            name="process_chart",
        )

    @viewprop
    def task_list_view(self):
        return _coordinators_only(
            self.task_list_view_class.as_view(**self.get_task_list_view_kwargs()),
            self._flow_class,
        )
