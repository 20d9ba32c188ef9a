"""Who owns a workflow step, whose queue it is in, who releases and reassigns it."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from casework import roles
from casework.models import (
    CaseMembership,
    User,
)
from casework.policy.accounts import can_use_task_inbox, is_active_user
from casework.policy.cases import case_access, is_police, team_membership

# --- Tasks (viewflow): who owns a step, whose queue it is in, who releases it ------------------
#
# Every human step has an owner or a queue. A step of a named team role (the lead social
# worker, the police contact officer) is taken only by that role on the case's team; any
# other step by the holders of its queue permission (``.Permission(...)``) whom the
# step's own rule admits. A task without an owner and without a queue is nobody's:
# it is in no queue, and only the programme's coordinators see it (to reassign it).
# The coordinators of a flow (``coordinator_permission`` on the flow class) release
# and reassign its tasks.


def flow_coordinator_permission(flow_class) -> str:
    return getattr(flow_class, "coordinator_permission", roles.PERM_COORDINATE)


def coordinates_flow(user, flow_class) -> bool:
    """A coordinator of the programme whose flow ``flow_class`` is."""
    return can_use_task_inbox(user) and user.has_perm(flow_coordinator_permission(flow_class))


def may_see_flow_overview(user, flow_class) -> bool:
    """viewflow's dashboard and lists of a flow's processes and tasks (case numbers and
    states): the flow's coordinators who may open every case of it. A police coordinator
    may not (the police see a case only once consent or a legal basis covers them), so
    they work from their inbox, queue and case list, which are narrowed case by case."""
    return coordinates_flow(user, flow_class) and not is_police(user)


def may_see_task(user, task) -> bool:
    """A task's pages (its index and detail): whoever may see its process (its case)."""
    flow = task.flow_task.flow_class.instance
    return can_use_task_inbox(user) and bool(flow.has_view_permission(user, task.process.coerced))


def _task_case(task):
    return getattr(task.coerced_process, "case", None)


def holds_team_role(user, case, role: str) -> bool:
    """``user`` is on ``case``'s team now, in ``role``."""
    if case is None or not is_active_user(user):
        return False
    membership = team_membership(user, case)
    return membership is not None and membership.role == role


def may_do_step(user, task) -> bool:
    """May ``user`` own ``task`` (take it, be given it)? The step's team role or rule, or
    else the step's queue permission."""
    if not (is_active_user(user) and can_use_task_inbox(user)):
        return False
    node = task.flow_task
    role = getattr(node, "team_role", None)
    if role:
        return holds_team_role(user, _task_case(task), role)
    rule = getattr(node, "performer", None)
    if rule is not None:
        return bool(rule(user, task))
    return bool(task.owner_permission) and user.has_perm(task.owner_permission)


def _takes_by_rule(node) -> bool:
    """A step taken by whom its role or rule admits, not by a queue permission alone."""
    return bool(getattr(node, "team_role", None)) or getattr(node, "performer", None) is not None


def may_take_task(user, task) -> bool:
    """May ``user`` take ``task`` from the queue (assign it to themselves)?"""
    from viewflow.workflow.status import STATUS

    if task.status != STATUS.NEW or task.owner_id is not None:
        return False
    node = task.flow_task
    if _takes_by_rule(node):
        # The role or the step's rule decides (a rule includes the queue permission
        # where the step needs it: the threat review, the GVI participants).
        return may_do_step(user, task)
    perm = task.owner_permission
    return bool(perm) and is_active_user(user) and user.has_perm(perm) and may_do_step(user, task)


def ruled_steps(flow_classes) -> list:
    """The human steps of ``flow_classes`` whose queue is decided per task (role or rule)."""
    return [
        node
        for flow_class in flow_classes
        for node in flow_class.instance.nodes()
        if _takes_by_rule(node)
    ]


def takeable(user, candidates) -> list[int]:
    """The ids of ``candidates`` (new, unowned tasks of steps with a role or rule) that
    ``user`` may take. Team-role steps are decided on the user's current memberships,
    read once, and each flow's processes' cases, one query a flow: never a query a task."""
    if not candidates:
        return []
    now = timezone.now()
    team_role = [t for t in candidates if getattr(t.flow_task, "team_role", None)]
    taken = [t.pk for t in candidates if t not in team_role and may_take_task(user, t)]
    if team_role and is_active_user(user):
        held = set(
            CaseMembership.objects.filter(user=user, valid_from__lte=now)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
            .values_list("case_id", "role")
        )
        by_flow: dict = {}
        for task in team_role:
            by_flow.setdefault(task.flow_task.flow_class, []).append(task)
        for flow_class, tasks in by_flow.items() if held else ():
            cases = dict(
                flow_class.process_class.objects.filter(
                    pk__in=[t.process_id for t in tasks]
                ).values_list("pk", "case_id")
            )
            taken += [
                t.pk for t in tasks if (cases.get(t.process_id), t.flow_task.team_role) in held
            ]
    return taken


def queue_filter(user, flow_classes, taken=()) -> Q:
    """The condition on ``viewflow_task`` rows of the tasks ``user`` may take: unowned and
    new, in a queue whose permission the user holds (steps without a role or rule), or, for
    a step with a role or rule, admitted by it (``taken``: their ids, :func:`takeable`)."""
    from viewflow.workflow.status import STATUS

    if not can_use_task_inbox(user):
        return Q(pk__in=[])
    ruled = ruled_steps(flow_classes)
    plain = Q(owner_permission__in=sorted(user.get_all_permissions()))
    if ruled:
        plain &= ~Q(flow_task__in=ruled)
    return Q(flow_task_type="HUMAN", status=STATUS.NEW, owner__isnull=True) & (
        plain | Q(pk__in=list(taken))
    )


def task_queue(user, tasks, flow_classes):
    """``tasks`` (a Task queryset) narrowed to those ``user`` may take."""
    from viewflow.workflow.status import STATUS

    if not can_use_task_inbox(user):
        return tasks.none()
    ruled = ruled_steps(flow_classes)
    candidates = []
    if ruled:
        candidates = list(
            tasks.filter(
                flow_task_type="HUMAN", status=STATUS.NEW, owner__isnull=True, flow_task__in=ruled
            ).select_related("process")
        )
    return tasks.filter(queue_filter(user, flow_classes, takeable(user, candidates)))


def may_release_task(user, task) -> bool:
    """Hand an assigned, open task back: its owner, or a coordinator of its programme who
    may see its process."""
    from viewflow.workflow.status import STATUS

    if task.owner_id is None or task.status != STATUS.ASSIGNED or not is_active_user(user):
        return False
    if task.owner_id == user.pk:
        return can_use_task_inbox(user)
    return may_manage_task(user, task)


def may_manage_task(user, task) -> bool:
    """Release and reassign ``task``: a coordinator of its flow who may see its process;
    for a step only its performers manage (``managed_by_performers``: the threat review's
    police steps), a coordinator who could do it."""
    flow_class = task.flow_task.flow_class
    if not (coordinates_flow(user, flow_class) and may_see_task(user, task)):
        return False
    if getattr(task.flow_task, "managed_by_performers", False):
        return may_do_step(user, task)
    return True


def task_candidates(task):
    """The users ``task`` may be given: active case workers the step admits; for a team
    role, the users who may hold that role (they are put on the team)."""

    node = task.flow_task
    users = (
        User.objects.filter(is_active=True, organisation__isnull=False)
        .select_related("organisation")
        .order_by("first_name", "last_name", "username")
    )
    role = getattr(node, "team_role", None)
    if role:
        group = TEAM_ROLE_GROUPS.get(role)
        if group is None:
            return []
        found = [u for u in users.filter(groups__name=group) if can_use_task_inbox(u)]
        if role == CaseMembership.Role.POLICE_CONTACT:
            found = [u for u in found if is_police(u)]
        return found
    return [u for u in users if may_do_step(u, task)]


# The group whose members may hold a team role a step is named by (as at screening).
TEAM_ROLE_GROUPS = {
    CaseMembership.Role.LEAD: roles.SOCIAL_WORKER,
    CaseMembership.Role.POLICE_CONTACT: roles.POLICE_CONTACT,
}


def may_report_plan_part(user, case, kind: str) -> bool:
    """SSPF: reports the ``kind`` (school, leisure) organisation's part of the plan — a
    team member of such an organisation who may open the case."""
    return (
        case is not None
        and is_active_user(user)
        and user.organisation_id is not None
        and user.organisation.kind == kind
        and team_membership(user, case) is not None
        and bool(case_access(user, case))
    )
