"""The acting person's tasks: list them, and complete those that are a simple decision.

- ``GET /api/v1/tasks/`` lists what the person's task inbox shows (``casework.views``'s
  inbox: the open tasks assigned to them), newest first; ``?box=queue`` what their queue
  shows (the tasks they may take). Per task: its flow and step, title, status, dates,
  the case (number, state, version) where it works on a case the person may see, and
  the choices where the API can complete it. Like the pages' lists it decrypts nothing
  and records no reading.
- ``POST /api/v1/tasks/{id}/complete/`` completes a step that is a simple decision — one
  a programme registers (``casework.programmes.Decision``; e.g. SIG's approval of the
  plan) — as the step's page does: under the flow's lock, the task taken from the queue
  if it is there, started, and finished by the same services. A task that is not the
  person's (in their inbox or queue) is a 404; one they may no longer do a 403; one that
  is not a simple decision or no longer open a 409; a stale If-Match a 412.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from viewflow.fsm import TransitionNotAllowed
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework import policy, programmes
from casework.api import schema
from casework.api.http import Pages, etag, expected_version, idempotent
from casework.api.problems import Problem, bad_input, forbidden, not_found
from casework.api.views import ApiView
from casework.views import attach_processes, case_of, user_inbox, user_queue

OPEN = (STATUS.NEW, STATUS.ASSIGNED)
# The task lists a person has: what ``?box=`` names.
BOXES = {"inbox": user_inbox, "queue": user_queue}
REASON_LIMIT = 2_000


def _conflict(kind: str, title, detail) -> Problem:
    return Problem(status.HTTP_409_CONFLICT, kind, title, detail)


def _not_open() -> Problem:
    return _conflict(
        "task-not-open",
        _("The task is no longer open"),
        _("This task is already done, was cancelled or was taken by someone else."),
    )


def _no_inbox() -> Problem:
    return forbidden(_("The acting person has no task inbox."))


def _not_theirs_now() -> Problem:
    return forbidden(_("The acting person may not do this step now."))


# --- What a task shows -------------------------------------------------------------------------


class ChoiceOut(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    reason_required = serializers.BooleanField()


class DecisionOut(serializers.Serializer):
    choices = ChoiceOut(many=True)


class TaskCaseOut(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    reference = serializers.CharField()
    programme = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    version = serializers.IntegerField()


class TaskOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    flow = serializers.SerializerMethodField()
    flow_title = serializers.SerializerMethodField()
    step = serializers.CharField(source="flow_task.name")
    title = serializers.CharField()
    status = serializers.CharField()
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)
    case = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    def get_flow(self, task) -> str:
        return task.flow_task.flow_class.instance.flow_label

    def get_flow_title(self, task) -> str:
        return str(task.flow_task.flow_class.process_title)

    @extend_schema_field(TaskCaseOut(allow_null=True))
    def get_case(self, task) -> dict | None:
        """The case where the task works on one the person may see (no decrypted data)."""
        case = case_of(task)
        person = self.context["person"]
        if case is None or not policy.case_access(person, case, any_ground=True):
            return None
        return TaskCaseOut(case).data

    @extend_schema_field(DecisionOut(allow_null=True))
    def get_decision(self, task) -> dict | None:
        decision = programmes.api_decision(task.flow_task)
        if decision is None or task.status not in OPEN:
            return None
        return DecisionOut(
            {
                "choices": [
                    {"value": c.value, "label": str(c.label), "reason_required": c.reason_required}
                    for c in decision.choices
                ]
            }
        ).data


class TaskPageOut(serializers.Serializer):
    """One page of a task list (``casework.api.http.Pages``)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TaskOut(many=True)


class OpenTaskOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    step = serializers.CharField(source="flow_task.name")
    status = serializers.CharField()


class CompletedOut(serializers.Serializer):
    task = TaskOut()
    next_tasks = OpenTaskOut(many=True)


class CompleteIn(serializers.Serializer):
    choice = serializers.CharField(max_length=50)
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=REASON_LIMIT, default=""
    )


# --- The list --------------------------------------------------------------------------------


BOX = OpenApiParameter(
    "box",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    enum=list(BOXES),
    description="inbox (default): the tasks assigned to the person; queue: those they may take.",
)
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
]


class TaskListView(ApiView):
    """The acting person's open tasks as their task inbox lists them (``?box=queue``: as
    their queue does), newest first; a case only where the person may see it. Nothing is
    decrypted and, as on the page, no reading is recorded."""

    required_scope = "tasks:read"
    purpose = _("API: listing one's tasks")

    @extend_schema(
        operation_id="task_list",
        summary="The acting person's open tasks (their inbox, or their queue)",
        parameters=[schema.ACTING_USER, BOX, *PAGE_PARAMETERS],
        responses={
            200: OpenApiResponse(TaskPageOut, description="One page of tasks, newest first."),
            **schema.problems(400, 401, 403, 404, 429),
        },
    )
    def get(self, request):
        person = self.person
        if not policy.can_use_task_inbox(person):
            raise _no_inbox()
        box = request.query_params.get("box", "inbox")
        if box not in BOXES:
            raise bad_input({"box": [_("Choose inbox or queue.")]})
        flows = programmes.flow_classes()
        tasks = (
            BOXES[box](flows, person).select_related("process", "owner").order_by("-created", "-pk")
        )
        pages = Pages()
        shown = list(pages.paginate_queryset(tasks, request, view=self))
        attach_processes(shown, flows)
        return pages.get_paginated_response(
            TaskOut(shown, many=True, context={"person": person}).data
        )


# --- Completing a simple decision ----------------------------------------------------------


class TaskCompleteView(ApiView):
    """Complete a task of the acting person's inbox or queue that is a simple decision
    (its ``decision`` in the task list): one of its choices, with a reason where the
    choice needs one. As on the step's page: the same services, the same access-log
    events, the flow moved on. If-Match names the case's version (its ETag)."""

    required_scope = "tasks:write"
    purpose = _("API: completing a task")

    def own_task(self, task_id: int) -> Task:
        """The task ``task_id`` if it is in the person's inbox or queue, or was (theirs and
        done); else a 404: another person's task is not revealed."""
        person = self.person
        flows = [f for f in programmes.flow_classes() if f.instance.has_view_permission(person)]
        task = (
            Task.objects.filter(pk=task_id, flow_task_type="HUMAN", process__flow_class__in=flows)
            .select_related("process", "owner")
            .first()
        )
        if task is None or not (
            # Theirs, or the absent owner's whose deputy they are today (as in their
            # inbox: ``casework.views.user_inbox``), or in their queue.
            policy.may_execute_task(person, task) or policy.may_take_task(person, task)
        ):
            raise not_found()
        return task

    @extend_schema(
        operation_id="task_complete",
        summary="Complete a task that is a simple decision (e.g. approve or return a plan)",
        request=CompleteIn,
        parameters=[schema.ACTING_USER, schema.IDEMPOTENCY_KEY, schema.IF_MATCH],
        responses={
            200: OpenApiResponse(CompletedOut, description="The step is done."),
            **schema.problems(400, 401, 403, 404, 409, 412, 422, 428, 429),
        },
    )
    @idempotent
    def post(self, request, task_id):
        person = self.person
        if not policy.can_use_task_inbox(person):
            raise _no_inbox()
        task = self.own_task(task_id)
        if task.status not in OPEN:
            raise _not_open()
        if not (policy.may_see_task(person, task) and self.may_do(person, task)):
            raise _not_theirs_now()
        decision = programmes.api_decision(task.flow_task)
        if decision is None:
            raise _conflict(
                "not-a-decision",
                _("Not a simple decision"),
                _("This step is done on its page in Samverkan, not through the API."),
            )
        data = self.validated(CompleteIn)
        self.check_choice(decision, data)
        try:
            activation = self.complete(task, decision, data)
        except TransitionNotAllowed:
            raise _not_open() from None
        task = activation.task
        case = case_of(task)
        headers = {"ETag": etag(case.version)} if case is not None else {}
        next_tasks = (
            activation.process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
            .exclude(pk=task.pk)
            .order_by("pk")
        )
        body = {
            "task": TaskOut(task, context={"person": person}).data,
            "next_tasks": OpenTaskOut(next_tasks, many=True).data,
        }
        return Response(body, headers=headers)

    @staticmethod
    def may_do(person, task) -> bool:
        """The step is the person's to do: theirs by its role, rule or queue — or, for an
        absent owner's task, the deputy's today (the step's page admits the deputy by
        ``Step.can_execute`` alike; ADR 0026)."""
        if task.owner_id is not None and task.owner_id != person.pk:
            return policy.may_execute_task(person, task)
        return policy.may_do_step(person, task)

    @staticmethod
    def check_choice(decision: programmes.Decision, data: dict) -> None:
        """One of the decision's choices, with a reason where it needs one (400)."""
        chosen = next((c for c in decision.choices if c.value == data["choice"]), None)
        if chosen is None:
            raise bad_input({"choice": [_("Choose one of the step's choices (the task list's).")]})
        if chosen.reason_required and not data["reason"].strip():
            raise bad_input({"reason": [_("Give the reason for this choice.")]})

    def complete(self, task: Task, decision: programmes.Decision, data: dict):
        """As the step's page: under the flow's lock, the task (re-read) taken from the
        queue if it is there and started; the case's version checked against If-Match;
        then the decision's services finish it. Returns the activation."""
        person, request = self.person, self.request
        with task.activation() as activation:
            task = activation.task
            node = task.flow_task
            if task.status == STATUS.NEW:
                if not node.can_assign(person, task):
                    raise _not_theirs_now()
                activation.assign(person)
            if task.status != STATUS.ASSIGNED or not policy.may_execute_task(person, task):
                # Done, cancelled or taken by someone else meanwhile (or the absence whose
                # deputy the person is has ended).
                raise _not_open()
            if not node.can_execute(person, task):
                raise _not_theirs_now()
            case = getattr(activation.process, "case", None)
            version = expected_version(request, case.version) if case is not None else None
            activation.start(request._request)
            decision.complete(
                user=person,
                activation=activation,
                choice=data["choice"],
                reason=data["reason"].strip(),
                expected_version=version,
                purpose=str(decision.purpose),
            )
        return activation
