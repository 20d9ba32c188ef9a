"""The side menu's counts of case work: the tasks in the user's inbox and those the user
may take, read in one execution on every page (docs/adr/0036-fast-pages.md, sessions 12
and 21)."""

from __future__ import annotations

import functools

from django.utils import timezone
from django.utils.functional import cached_property
from viewflow.workflow.fields import get_flow_ref, get_task_ref
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework import policy
from casework.compiled import CompiledQuery, RawRows, run_together


def visible_flows(flow_classes, user) -> tuple:
    """The flows of ``flow_classes`` whose tasks ``user`` may see (viewflow's
    ``has_view_permission``: the menu's counts and the inbox's list)."""
    return tuple(f for f in flow_classes if f.instance.has_view_permission(user))


@functools.cache
def _flow_ref(flow_class) -> str:
    return get_flow_ref(flow_class)


@functools.cache
def _menu_reads(flow_classes: tuple) -> tuple[list[str], list[str], CompiledQuery | None]:
    """What the side menu's counts read for a user who may see ``flow_classes``: the
    flows' references, their ruled steps' references (``policy.ruled_steps``) and the
    read of those steps' new, unowned tasks with their processes (``None`` without ruled
    steps), compiled once a process for each set of flows. Counted, not listed: no
    ordering."""
    ruled = policy.ruled_steps(flow_classes)
    candidates = None
    if ruled:
        candidates = CompiledQuery(
            lambda: (
                Task._default_manager.filter(
                    flow_task_type="HUMAN",
                    status=STATUS.NEW,
                    owner__isnull=True,
                    flow_task__in=ruled,
                    process__flow_class__in=flow_classes,
                )
                .select_related("process")
                .order_by()
            )
        )
    return [_flow_ref(f) for f in flow_classes], [_task_ref(node) for node in ruled], candidates


class MenuCounts:
    """The side menu's two counts — tasks assigned to the user (inbox) and tasks the
    user may take (queue, ``casework.policy.task_queue``) — read in one query, and only
    when the menu shows them. The new, unowned tasks of steps whose queue is decided per
    task (a team role, a rule of the step) are read in the same execution and checked
    with ``policy.takeable``. A page may read them with its own reads instead
    (:meth:`reads`, :meth:`take`: the case page, with the case's rows); either way the
    reads are prepared once a database session (docs/adr/0036-fast-pages.md, session 21)."""

    def __init__(self, flow_classes, user):
        self._flow_classes = flow_classes
        self._user = user

    # One statement of fixed text (a list is one array parameter): the menu is on every
    # page. Its meaning is the task lists' querysets', which a test holds it to.
    # The inbox counts the tasks of the users the user stands in for today too (their
    # absences' deputy, of the same organisation; ``casework.policy.absent_for``).
    _SQL = (
        "SELECT count(*) FILTER (WHERE t.status = %(assigned)s AND (t.owner_id = %(user)s"
        " OR t.owner_id IN (SELECT a.user_id FROM casework_absence a"
        " JOIN casework_user u ON u.id = a.user_id JOIN casework_user d ON d.id = a.deputy_id"
        " WHERE a.deputy_id = %(user)s AND a.cancelled_at IS NULL AND a.starts_on <= %(today)s"
        " AND a.ends_on >= %(today)s AND u.is_active AND u.organisation_id = d.organisation_id"
        "))),"
        " count(*) FILTER (WHERE t.flow_task_type = 'HUMAN' AND t.status = %(new)s"
        " AND t.owner_id IS NULL AND t.owner_permission = ANY(%(permissions)s)"
        " AND NOT (t.flow_task = ANY(%(ruled)s)))"
        " FROM viewflow_task t JOIN viewflow_process p ON p.id = t.process_id"
        " WHERE p.flow_class = ANY(%(flows)s)"
        # Every row a count can take (the user's, an absent colleague's, an unowned task),
        # so that the tasks are read by their owner's index, not all of them (a national
        # task table: 10,000 tasks read for each page; docs/adr/0037, session 17).
        " AND (t.owner_id = %(user)s OR t.owner_id IS NULL OR t.owner_id = ANY(ARRAY("
        "SELECT a.user_id FROM casework_absence a WHERE a.deputy_id = %(user)s)))"
    )
    _COUNTS = RawRows(_SQL)

    # What the counts are for a user who does not use the task inbox (read: nothing).
    _NONE = {"inbox": 0, "queue": 0}

    def reads(self) -> list[tuple]:
        """The counts' reads (``(read, values)`` pairs: the counts' statement, and the new,
        unowned tasks of ruled steps when the visible flows have such steps), for a page to
        run with its own reads in one execution (``run_together``) and hand the rows to
        :meth:`take`; none for a user who does not use the task inbox."""
        user = self._user
        if not policy.can_use_task_inbox(user):
            return []
        flow_classes = visible_flows(self._flow_classes, user)
        flows, ruled, candidates = _menu_reads(flow_classes)
        reads = [
            (
                self._COUNTS,
                {
                    "user": user.pk,
                    "today": timezone.localdate(),
                    "assigned": STATUS.ASSIGNED,
                    "new": STATUS.NEW,
                    "permissions": sorted(user.get_all_permissions()),
                    "ruled": ruled,
                    "flows": flows,
                },
            )
        ]
        if candidates is not None:
            reads.append((candidates, {}))
        return reads

    def take(self, found: list) -> None:
        """The counts from the rows of :meth:`reads` (read with a page's reads, in their
        order): the menu then reads nothing."""
        self.__dict__["_counts"] = self._answer(found)

    def _answer(self, found: list) -> dict[str, int]:
        if not found:
            return dict(self._NONE)
        [(inbox, queue)], *candidates = found
        if candidates and candidates[0]:
            queue += len(policy.takeable(self._user, candidates[0]))
        return {"inbox": inbox, "queue": queue}

    @cached_property
    def _counts(self) -> dict[str, int]:
        reads = self.reads()
        # Prepared once a database session (the menu is on every page; docs/adr/0036,
        # session 21).
        return self._answer(run_together(*reads, prepared=True) if reads else [])

    @property
    def inbox(self) -> int:
        return self._counts["inbox"]

    @property
    def queue(self) -> int:
        return self._counts["queue"]


def _task_ref(node) -> str:
    return get_task_ref(node)


def page_menu_counts(request) -> MenuCounts | None:
    """The side menu's counts of the page ``request`` asks for, from the application the
    page is under (``CaseworkApp.menu_counts``: one ``MenuCounts`` a request), for a page
    to read with its own reads; ``None`` under no such application."""
    app = getattr(request.resolver_match, "app", None)
    counts = getattr(app, "menu_counts", None)
    return counts(request) if counts is not None else None
