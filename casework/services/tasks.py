"""Releasing and reassigning a task (a viewflow task of any flow): the coordinators' tool
for a step whose owner is missing or gone. Each change is an access-log event."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from audit.services import record_event, record_refusal
from casework import policy

AuditAction = AccessEvent.Action


class TaskDenied(Exception):
    """The user may not manage this task (the view answers 403)."""


def _case(task):
    return getattr(task.coerced_process, "case", None)


def _event(*, user, task, purpose: str, what: str, outcome=AccessEvent.Outcome.ALLOWED, **details):
    case = _case(task)
    common = {
        "user": user,
        "object_type": "viewflow.task",
        "object_id": str(task.pk),
        "person_id": getattr(case, "person_id", None),
        "fields": ["owner"],
        "purpose": purpose,
        "details": {
            "task_action": what,
            "step": task.flow_task.name,
            "case": str(case.pk) if case is not None else "",
            **details,
        },
    }
    if outcome == AccessEvent.Outcome.ALLOWED:
        record_event(action=AuditAction.CHANGE, **common)
    else:
        # A refusal survives the rollback of the request that tried (ADR 0015).
        record_refusal(**common)


def _require(user, task, purpose: str, what: str) -> None:
    if not policy.may_manage_task(user, task):
        _event(user=user, task=task, purpose=purpose, what=what, outcome=AccessEvent.Outcome.DENIED)
        raise TaskDenied


def release_task(*, user, task, purpose: str) -> None:
    """Hand an assigned task back to its queue (a coordinator of its programme)."""
    _require(user, task, purpose, "release")
    with transaction.atomic(), task.activation() as activation:
        if task.status != STATUS.ASSIGNED:
            raise ValidationError(_("The task is not assigned to anyone."))
        previous = task.owner_id
        activation.unassign()
        _event(user=user, task=task, purpose=purpose, what="release", previous_owner=previous)


def reassign_task(*, user, task, owner, purpose: str) -> None:
    """Give ``task`` to ``owner`` (one of :func:`casework.policy.task_candidates`). For a
    step of a team role, ``owner`` is put on the case's team in that role first."""
    _require(user, task, purpose, "reassign")
    if owner.pk not in {candidate.pk for candidate in policy.task_candidates(task)}:
        raise ValidationError({"owner": ValidationError(_("This user cannot do the step."))})
    with transaction.atomic(), task.activation() as activation:
        if task.status not in (STATUS.NEW, STATUS.ASSIGNED):
            raise ValidationError(_("The task is no longer open."))
        role = getattr(task.flow_task, "team_role", None)
        case = _case(task)
        if role and not policy.holds_team_role(owner, case, role):
            from casework.services.cases import add_member

            add_member(user=user, case=case, purpose=purpose, member=owner, role=role)
        previous = task.owner_id
        if task.status == STATUS.ASSIGNED:
            activation.unassign()
        activation.assign(owner)
        _event(
            user=user,
            task=task,
            purpose=purpose,
            what="reassign",
            owner=owner.pk,
            previous_owner=previous,
        )


# --- Tasks following a team change (``casework.services.team_changes``) -----------------------


def open_tasks_of(*, case=None, owner=None) -> list:
    """The open human tasks of ``case``'s processes (every registered programme's flow whose
    process works on a case), or those ``owner`` holds, or both narrowed together."""
    from viewflow.workflow.models import Task

    from casework import programmes

    tasks = Task.objects.filter(
        flow_task_type="HUMAN", status__in=[STATUS.NEW, STATUS.ASSIGNED]
    ).select_related("process", "owner")
    if owner is not None:
        tasks = tasks.filter(owner=owner, status=STATUS.ASSIGNED)
    if case is not None:
        process_ids = []
        for flow_class in programmes.flow_classes():
            model = flow_class.process_class
            if any(f.name == "case" for f in model._meta.fields):
                process_ids += model.objects.filter(case_id=case.pk).values_list("pk", flat=True)
        tasks = tasks.filter(process_id__in=process_ids)
    return list(tasks.order_by("pk"))


def follow_team(*, user, task, owner, purpose: str, cause: str) -> None:
    """Move an open ``task`` after its case's team changed (the caller decided it may, and
    holds the case's lock): to ``owner``, or back to its queue (``owner`` ``None``). An
    access-log event on the task names the previous and the new owner and the ``cause``."""
    with task.activation() as activation:
        previous = task.owner_id
        if previous == getattr(owner, "pk", None):
            return
        if task.status == STATUS.ASSIGNED:
            activation.unassign()
        if owner is not None:
            activation.assign(owner)
        _event(
            user=user,
            task=task,
            purpose=purpose,
            what="reassign" if owner is not None else "release",
            owner=getattr(owner, "pk", None),
            previous_owner=previous,
            cause=cause,
        )
