"""Absence and deputies: who stands in for whom, today.

A user names a deputy of the same organisation who holds every case role the absent
user holds (``casework.services.absences``). From the first to the last day of the
absence (local dates, both included) the deputy does the absent user's tasks and opens
the cases whose team the absent user is on (``casework.policy.case_access``: ``via`` =
``deputy``); before and after the period, and once either account loses its role or
organisation, nothing. Asked afresh on every request: nothing of it is kept in a
session or a cache.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q
from django.utils import timezone

from casework import roles
from casework.compiled import RawRows, run_together
from casework.models import Absence, CaseMembership, User
from casework.policy.accounts import can_use_task_inbox


def case_roles(user) -> frozenset[str]:
    """The case roles (groups) ``user`` holds."""
    return frozenset(user.groups.filter(name__in=roles.CASE_ROLES).values_list("name", flat=True))


def may_deputise(absent, deputy) -> bool:
    """May ``deputy`` stand in for ``absent``: another active case worker of the same
    organisation, holding every case role ``absent`` holds."""
    if absent is None or deputy is None or absent.pk == deputy.pk:
        return False
    if not (can_use_task_inbox(absent) and can_use_task_inbox(deputy)):
        return False
    if absent.organisation_id != deputy.organisation_id:
        return False
    needed = case_roles(absent)
    return bool(needed) and needed <= case_roles(deputy)


# The users a deputy stands in for on a day (the absences not cancelled).
_ABSENT_IDS = RawRows(
    f"SELECT user_id FROM {Absence._meta.db_table}"  # noqa: S608 (a table name, no input)
    " WHERE deputy_id = %(deputy)s AND starts_on <= %(on)s AND ends_on >= %(on)s"
    " AND cancelled_at IS NULL"
)


def absent_ids_read(deputy, on: date) -> tuple[RawRows, dict]:
    """The read of the ids of the users ``deputy`` stands in for on ``on``, to run with
    others (``casework.compiled.run_together``); :func:`absent_among` takes its rows."""
    return _ABSENT_IDS, {"deputy": deputy.pk, "on": on}


def absent_among(deputy, rows) -> frozenset[int]:
    """:func:`absent_for`'s answer from the rows of :func:`absent_ids_read`."""
    absent_ids = {row[0] for row in rows}
    if not absent_ids:
        return frozenset()
    absent = User.objects.select_related("organisation").in_bulk(absent_ids)
    return frozenset(pk for pk, user in absent.items() if may_deputise(user, deputy))


def absent_for(deputy, *, on: date | None = None) -> frozenset[int]:
    """The ids of the users ``deputy`` stands in for on ``on`` (today)."""
    if not can_use_task_inbox(deputy):
        return frozenset()
    # The absent users' ids first (one small query, asked on every task and case list):
    # most users stand in for no one, and only then are accounts read.
    # A statement of fixed text: the ORM's filter would be built and compiled every time.
    [rows] = run_together(absent_ids_read(deputy, on or timezone.localdate()))
    return absent_among(deputy, rows)


def deputy_membership(
    user, case, *, now: datetime | None = None, absent: frozenset[int] | None = None
) -> CaseMembership | None:
    """The team membership of someone ``user`` stands in for today, on ``case``."""
    now = now or timezone.now()
    if absent is None:
        absent = absent_for(user, on=timezone.localdate(now))
    if not absent:
        return None
    return (
        CaseMembership.objects.filter(case=case, user_id__in=absent, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .order_by("pk")
        .first()
    )


def may_execute_task(user, task) -> bool:
    """Does ``user`` do ``task`` now: its owner, or the owner's deputy today."""
    if task.owner_id is None:
        return False
    if task.owner_id == user.pk:
        return True
    return can_use_task_inbox(user) and task.owner_id in absent_for(user)
