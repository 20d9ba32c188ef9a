"""Flow nodes shared by every programme's flow."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.activation import Activation
from viewflow.workflow.flow import utils
from viewflow.workflow.lock import lock_scope, select_for_update_lock
from viewflow.workflow.models import Process
from viewflow.workflow.nodes.start import StartHandleActivation
from viewflow.workflow.signals import flow_started, task_started
from viewflow.workflow.status import STATUS

from casework import policy
from casework.compiled import CompiledQuery


def _finished_steps_lead_to_the_case(flow_task, view):
    """A step posted again after it was done (a second tab, a double click, the back
    button) takes the user to the case with a message, rather than to a bare 403.

    Only for a user who may see the case; everyone else gets the 403 (and its
    access-log event) as before. A flow whose process has no case says where its done
    steps lead with ``done_step_url(process, user)`` (``None``: the 403).
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied:
            task = (
                flow_task.flow_class.task_class.objects.filter(
                    pk=kwargs.get("task_pk"), process_id=kwargs.get("process_pk")
                )
                .select_related("process")
                .first()
            )
            if task is None or task.status not in (STATUS.DONE, STATUS.CANCELED):
                raise
            url = _done_step_url(flow_task, task.coerced_process, request.user)
            if url is None:
                raise
            messages.info(request, _("This step has already been done."))
            return redirect(url)

    return wrapped


def _done_step_url(flow_task, process, user) -> str | None:
    own = getattr(flow_task.flow_class.instance, "done_step_url", None)
    if own is not None:
        return own(process, user)
    case = getattr(process, "case", None)
    if case is None or not policy.case_access(user, case):
        return None
    return reverse("arenden:case", kwargs={"case_id": case.pk})


class Step(flow.View):
    """A human step of a flow (``flow.View``) whose page, once the step is done, leads
    back to its case.

    Who takes, releases and is given it is ``casework.policy``'s decision: ``team_role``
    names the case-team role that does the step (the task goes to that member, and back
    to that role's queue), ``performer(user, task)`` a rule of its own; otherwise the
    step's queue permission decides. viewflow's cancel, undo and revive pages are not
    mounted (``workflows.common.viewsets``).
    """

    def __init__(self, view, *, team_role: str | None = None, performer=None, **kwargs):
        super().__init__(view, **kwargs)
        self.team_role = team_role
        if performer is not None:
            self.performer = performer

    def _ready(self):
        # Without a queue permission of its own the step waits in the flow's coordinators'
        # queue (viewflow readies every node when it sets up the flow).
        if self._owner_permission is None:
            self.Permission(self.flow_class.coordinator_permission)
        super()._ready()

    def can_assign(self, user, task) -> bool:
        return policy.may_take_task(user, task)

    def can_execute(self, user, task) -> bool:
        # Its owner, or the owner's deputy during an absence (``casework.policy.absences``).
        return policy.may_execute_task(user, task)

    def can_unassign(self, user, task) -> bool:
        return policy.may_release_task(user, task)

    @property
    def view_path(self):
        return path(
            f"<int:process_pk>/{self.name}/<int:task_pk>/execute/",
            _finished_steps_lead_to_the_case(self, utils.wrap_view(self, self.view)),
            name="execute",
        )


def team_member(case, role: str):
    """Who a step of ``role`` is assigned to (``casework.policy.seat_holder``)."""
    return policy.seat_holder(case, role)


def member_in(role: str):
    """A step's ``Assign``: the newest active member of the case's team in ``role``."""

    def owner(activation):
        return team_member(activation.process.case, role)

    return owner


def step(view, title, then, *, role=None, assign=None, permission=None, node=Step, **options):
    """A human step (a ``node``: :class:`Step` or a subclass, with its ``options``): the
    task view ``view`` titled ``title``, followed by ``then``. With ``role`` the
    case-team member in that role does it (``member_in``); ``assign`` names its owner
    by a rule of its own. Its queue is that of ``permission``, by default the flow's
    coordinators' (``coordinator_permission``)."""
    built = node(view, team_role=role, **options).Annotation(title=title)
    owner = assign or (member_in(role) if role else None)
    if owner is not None:
        built = built.Assign(owner)
    if permission is not None:
        built = built.Permission(permission)
    return built.Next(then)


def referral_start(view, title, then):
    """A case flow's start page: the referral (or concern) form ``view``, titled ``title``,
    open to everyone who works in the task inbox; followed by ``then``."""
    return flow.Start(view).Annotation(title=title).Permission("casework.use_task_inbox").Next(then)


def next_if(condition, then, otherwise=this.end):
    """A flow's ``If``: on to ``then`` when ``condition(activation)`` holds, else to
    ``otherwise`` (the end)."""
    return flow.If(condition).Then(then).Else(otherwise)


def in_state(*states):
    """A flow's ``If`` condition: the case is in one of ``states``."""
    return lambda activation: activation.process.case.status in states


def morning_of(day: datetime.date) -> datetime.datetime:
    """When a task due on ``day`` appears (``SAMVERKAN["REVIEW_TASK_HOUR"]``)."""
    hour = settings.SAMVERKAN["REVIEW_TASK_HOUR"]
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def review_time(activation) -> datetime.datetime:
    """When a review (follow-up) task appears: the morning of the case's review date."""
    return morning_of(activation.process.case.review_date or timezone.localdate())


def _no_lock(flow_class, process_pk):
    return nullcontext()


class _CaseStartActivation(StartHandleActivation):
    """Starts a process for a case in the caller's transaction: the process row, the start
    task and the next node, without a savepoint and without taking the process's row lock
    (the row is inserted by this very transaction, which no other transaction sees before
    it commits). The callbacks viewflow defers to the end of a flow lock still run then."""

    @Activation.status.transition(source=STATUS.NEW)
    def execute(self):
        task_started.send(sender=self.flow_class, process=self.process, task=self.task)
        with transaction.atomic(savepoint=False):
            self.process.save()
            with lock_scope(_no_lock, self.flow_class, self.process.pk):
                self.complete()
                flow_started.send(sender=self.flow_class, process=self.process, task=self.task)
                self.activate_next()


class CaseStartHandle(flow.StartHandle):
    """``flow.StartHandle`` for a process started by a service (``start.run(case=case)``),
    inside the transaction that opened the case: see :class:`_CaseStartActivation`."""

    activation_class = _CaseStartActivation


class CaseFlow:
    """What the flow of every programme's case shares (mixed in before ``flow.Flow``):
    the process summary, the row lock, who sees the flow and its processes, and the
    start of a process for a case opened by a service (:class:`CaseStartHandle`)."""

    process_summary_template = (
        "{{ process.case.reference }} · {{ process.case.get_status_display }}"
    )
    lock_impl = select_for_update_lock

    def start_case(self, activation, case) -> Process:
        activation.process.case = case
        return activation.process

    def has_view_permission(self, user, obj=None):
        """Case workers see the flow (their inbox); a process only with access to its case."""
        if obj is not None:
            case = getattr(obj, "case", None)
            return case is not None and bool(policy.case_access(user, case))
        return policy.can_use_task_inbox(user)

    def has_manage_permission(self, user, obj=None):
        return False


# --- A step run by a service as its task view runs it --------------------------------------------


class StepRequest:
    """What a task activation reads of a request: the user."""

    def __init__(self, user) -> None:
        self.user = user


@functools.cache
def _open_task_read(task_model) -> CompiledQuery:
    """The task model's read of a process's open human tasks (with their owners), compiled
    once a process (``casework.compiled``); the stand-in is no process's id."""
    return CompiledQuery(
        lambda process_id: (
            task_model._default_manager.filter(process_id=process_id, flow_task_type="HUMAN")
            .exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
            .select_related("owner")
        ),
        process_id=-5_120_000_002,
    )


def open_tasks_read(process) -> tuple:
    """The read of ``process``'s open human tasks as a ``(read, values)`` pair, to run with
    other compiled reads (``casework.compiled.run_together``); its rows go to
    :func:`open_tasks` as ``read``."""
    return _open_task_read(process.task_set.model), {"process_id": process.pk}


def _open_human_tasks(process, found=None) -> list:
    if found is None:
        read, values = open_tasks_read(process)
        found = read.run(**values)
    for task in found:
        task.process = process
    return found


def open_tasks(processes, user, *, read=None) -> list[tuple]:
    """The open human tasks of ``processes``, each with the address of its page if ``user``
    may do or take it (``None`` otherwise); ``read``: the tasks of the one process, as
    :func:`open_tasks_read` read them (else they are read here)."""
    return [
        (
            task,
            task.flow_task.reverse("index", args=[task.process_id, task.pk])
            if task.flow_task.can_execute(user, task) or task.flow_task.can_assign(user, task)
            else None,
        )
        for process in processes
        for task in _open_human_tasks(process, read)
    ]


def open_task(process, node):
    """The open task of ``node`` in ``process`` (``DoesNotExist`` when there is none)."""
    return process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED]).get(flow_task=node)


@contextmanager
def task_step(task, node, user) -> Iterator:
    """Run one POST of ``node``'s task view as ``user``: yields the started activation.

    A queue task is claimed first (the "assign" action, its own transaction); then,
    under the flow's lock and in one transaction, the task is started as the view
    wrapper starts it (``PermissionDenied`` when ``user`` may not take or do it). The
    caller does the step's service calls with ``activation.process`` and calls
    ``activation.execute()`` when the step finishes the task (as ``StepView.finish`` does).
    Used by the demo data and by a service that records a step's work from outside its
    page (the integration API).
    """
    if task.owner_id is None:
        with task.activation() as activation:
            if not (activation.assign.can_proceed() and node.can_assign(user, activation.task)):
                raise PermissionDenied
            activation.assign(user)
    with node.flow_class.lock(task.process_id), transaction.atomic():
        task.refresh_from_db()
        if not node.can_execute(user, task):
            raise PermissionDenied
        activation = node.activation_class(task)
        activation.start(StepRequest(user))
        yield activation
