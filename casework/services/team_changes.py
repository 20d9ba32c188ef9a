"""Changing a case's team while it runs: replace the holder of a seat (the lead social
worker, the police contact officer), add a member, end a membership — each with a
reason — and an account that is closed leaving every team it was on.

One call per intention. The coordinator of the case's programme changes any seat; the
lead social worker a seat of their own organisation (``casework.policy.may_change_team``).
Every change locks the case row, checks the version the user saw, writes the timeline
entry (its reason sealed under the case's data key) and the access-log event, and
moves the case's open tasks in the same transaction
(``casework.services.tasks.follow_team``): a task of someone who left goes to the new
holder of its seat, or back to its queue; a waiting task of a seat goes to the seat's
new holder. Nothing is half-written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.status import STATUS

from audit.services import Action as AuditAction
from audit.services import record_event
from casework import policy
from casework.models import Case, CaseEvent, CaseMembership, Reminder, User
from casework.selectors.persons import require_purpose
from casework.services.case_changes import (
    REASON_LIMIT,
    case_change,
    clean_text,
    deny_case,
    require_access,
    timeline_event,
)
from casework.services.tasks import follow_team, open_tasks_of

if TYPE_CHECKING:
    from collections.abc import Callable

# The roles a member is added in from the team page (the coordinator's seat is the
# programme's permission, not a membership given here).
ADDABLE_ROLES = tuple(r for r in CaseMembership.Role.values if r != CaseMembership.Role.COORDINATOR)


def _open(case: Case):
    now = timezone.now()
    return (
        CaseMembership.objects.filter(case=case, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user", "user__organisation")
    )


def _check_member(case: Case, member: User, role: str) -> None:
    """Bad input, as form errors: a role that is no choice, a member without a case role,
    a seat given to someone of the wrong organisation."""
    if role not in ADDABLE_ROLES:
        raise ValidationError({"role": ValidationError(_("Select a valid choice."), "invalid")})
    if not policy.can_use_task_inbox(member):
        raise ValidationError(
            {"member": ValidationError(_("This user has no case role or no organisation."))}
        )
    group = policy.TEAM_ROLE_GROUPS.get(role)
    if group is not None and not member.groups.filter(name=group).exists():
        raise ValidationError(
            {"member": ValidationError(_("This user does not have the role the seat needs."))}
        )
    if role == CaseMembership.Role.POLICE_CONTACT and not policy.is_police(member):
        raise ValidationError(
            {"member": ValidationError(_("The police contact officer must work for the police."))}
        )
    if role == CaseMembership.Role.LEAD and member.organisation_id != case.owner_organisation_id:
        raise ValidationError(
            {
                "member": ValidationError(
                    _("The lead social worker must work for the organisation that leads the case.")
                )
            }
        )


def _require_may_change(*, user, case: Case, purpose: str, what: str, organisations) -> None:
    """Refuse (logged) unless ``user`` may change the team at all; a form error when the
    lead touches a seat of another organisation."""
    require_access(user=user, case=case, purpose=purpose, what=what, any_ground=True)
    if not policy.may_change_team(user, case):
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason="role")
    if not all(policy.may_change_team(user, case, org) for org in organisations):
        raise ValidationError(
            {
                "member": ValidationError(
                    _("You can change only the members of your own organisation."),
                    "organisation",
                )
            }
        )


def _change(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    expected_version: int | None,
    what: str,
    label: str,
    pick: Callable[[list[CaseMembership]], tuple[list[CaseMembership], tuple | None]],
    organisations: Iterable[int | None] = (),
) -> CaseMembership | None:
    """The one write of every team change: ``pick(team)`` (under the case's lock) says
    which memberships end and what (member, role) is put on the team."""
    purpose = require_purpose(purpose)
    _require_may_change(
        user=user, case=case, purpose=purpose, what=what, organisations=list(organisations)
    )
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        if Case.objects.filter(pk=case.pk, closed_at__isnull=False).exists():
            raise ValidationError(_("The case is closed."), code="closed")
        team = list(_open(case))
        ending, put = pick(team)
        organisations = {m.user.organisation_id for m in ending}
        if put is not None:
            organisations.add(put[0].organisation_id)
        # Checked again on the team as it is under the lock (a seat may have changed hands).
        _require_may_change(
            user=user, case=case, purpose=purpose, what=what, organisations=organisations
        )
        now = timezone.now()
        left = [m.user for m in ending]
        CaseMembership.objects.filter(pk__in=[m.pk for m in ending]).update(valid_to=now)
        membership = None
        if put is not None:
            member, role = put
            # Someone already on the team in another role takes the new one.
            CaseMembership.objects.filter(case=case, user=member, valid_to__isnull=True).update(
                valid_to=now
            )
            membership = CaseMembership.objects.create(
                case=case, user=member, role=role, added_by=user, valid_from=now
            )
        change.record(
            CaseEvent.Kind.TEAM,
            label,
            fields=["team"],
            reason=reason,
            member=put[0].pk if put else None,
            role=put[1] if put else "",
            ended=[m.user_id for m in ending],
        )
        _tasks_follow(
            case=case,
            user=user,
            purpose=purpose,
            left={u.pk for u in left} - ({put[0].pk} if put else set()),
            seat=put[1] if put and put[1] in policy.SEATS else None,
            cause=label,
        )
    return membership


def _tasks_follow(*, case: Case, user, purpose: str, left: set[int], seat, cause: str) -> None:
    """The case's open tasks after the change: those of members who left go to the new
    holder of their step's seat, or back to the queue; a seat's waiting tasks go to its
    new holder."""
    for task in open_tasks_of(case=case):
        role = getattr(task.flow_task, "team_role", None)
        if task.owner_id in left:
            holder = policy.seat_holder(case, role) if role else None
            follow_team(user=user, task=task, owner=holder, purpose=purpose, cause=cause)
        elif seat and role == seat and task.status == STATUS.NEW and task.owner_id is None:
            holder = policy.seat_holder(case, role)
            if holder is not None:
                follow_team(user=user, task=task, owner=holder, purpose=purpose, cause=cause)


# The three intentions below take the keywords of every team change — ``user``, ``case``,
# ``purpose``, ``reason`` (required) and ``expected_version`` (the case's version the
# user saw) — as ``**change``, and hand them to :func:`_change`.


def replace_member(*, role: str, member: User, **change) -> CaseMembership:
    """Give the seat ``role`` (lead social worker, police contact officer) to ``member``:
    whoever holds it now leaves the team; their open tasks go to ``member``."""
    if role not in policy.SEATS:
        raise ValidationError({"role": ValidationError(_("Select a valid choice."), "invalid")})
    _check_member(change["case"], member, role)

    def pick(team):
        if any(m.user_id == member.pk and m.role == role for m in team):
            raise ValidationError(
                {"member": ValidationError(_("The user already holds this role on the team."))}
            )
        return [m for m in team if m.role == role], (member, role)

    organisations = [member.organisation_id]
    return _change(
        what="team:replace",
        label=f"replace:{role}",
        pick=pick,
        organisations=organisations,
        **change,
    )


def add_team_member(*, member: User, role: str, **change) -> CaseMembership:
    """Put ``member`` on the team in ``role``; a vacant seat's waiting tasks go to them."""
    _check_member(change["case"], member, role)

    def pick(team):
        if any(m.user_id == member.pk for m in team):
            raise ValidationError(
                {"member": ValidationError(_("The user is already on the team."))}
            )
        if role in policy.SEATS and any(m.role == role for m in team):
            message = _("Someone already holds this role: replace them instead.")
            raise ValidationError({"role": ValidationError(message)})
        return [], (member, role)

    organisations = [member.organisation_id]
    return _change(
        what="team:add", label=f"add:{role}", pick=pick, organisations=organisations, **change
    )


def end_team_membership(*, membership_id: int, **change) -> None:
    """End a member's membership: they lose access to the case at once; their open tasks
    go to another holder of their seat, or back to the queue."""
    found = CaseMembership.objects.filter(pk=membership_id, case=change["case"]).first()
    organisations = [found.user.organisation_id] if found is not None else []

    def pick(team):
        ending = [m for m in team if m.pk == membership_id]
        if not ending:
            message = _("That member is no longer on the team.")
            raise ValidationError({"membership_id": ValidationError(message)})
        return ending, None

    _change(what="team:remove", label="remove", pick=pick, organisations=organisations, **change)


# --- An account closed: it leaves every team ----------------------------------------------


def account_changed(*, user, account_id: int) -> list:
    """An administrator saved an account: if it can no longer work on cases (deactivated,
    or its last case role ended), it leaves its teams (:func:`leave_all_teams`). Returns
    the ids of the cases it left."""
    account = User.objects.select_related("organisation").get(pk=account_id)
    if policy.can_use_task_inbox(account):
        return []
    cause = "deactivated" if not account.is_active else "no_case_role"
    return leave_all_teams(user=user, account=account, cause=cause)


def leave_all_teams(*, user, account: User, cause: str) -> list:
    """``account`` was deactivated or lost its last case role (``cause``): end its open
    memberships, return its open tasks to their queues and remind the coordinators of
    each case it left (a reminder, e-mailed without case data where e-mail is set up).

    ``user`` is the administrator who closed the account: nothing of a case is read or
    decrypted (the timeline entry has no reason; the access-log event names the account
    and the cause). Returns the ids of the cases left. In the caller's transaction.
    """
    from casework.services.transitions import bump

    today = timezone.localdate()
    now = timezone.now()
    purpose = str(_("The account was closed: it leaves its case teams"))
    left = []
    with transaction.atomic():
        memberships = list(
            CaseMembership.objects.filter(user=account, valid_to__isnull=True)
            .select_related("case")
            .order_by("case_id")
        )
        reminders = []
        for membership in memberships:
            case = Case.objects.select_for_update().get(pk=membership.case_id)
            CaseMembership.objects.filter(pk=membership.pk).update(valid_to=now)
            bump(case)
            timeline_event(
                case=case, user=user, kind=CaseEvent.Kind.TEAM, transition="account_closed"
            )
            record_event(
                action=AuditAction.CHANGE,
                user=user,
                obj=case,
                person_id=case.person_id,
                fields=["team"],
                purpose=purpose,
                details={"ended": [account.pk], "cause": cause, "role": membership.role},
            )
            _tasks_follow(
                case=case, user=user, purpose=purpose, left={account.pk}, seat=None, cause=cause
            )
            left.append(case.pk)
            reminders += [
                Reminder(
                    kind=Reminder.Kind.TEAM_MEMBER_LEFT,
                    object_id=f"{case.pk}:{account.pk}:{coordinator.pk}",
                    date=today,
                    case=case,
                    recipient=coordinator,
                )
                for coordinator in policy.case_coordinators(case)
                if coordinator.pk != account.pk
            ]
        # Tasks outside the cases (a GVI step the account held) go back to their queues.
        for task in open_tasks_of(owner=account):
            follow_team(user=user, task=task, owner=None, purpose=purpose, cause=cause)
        Reminder.objects.bulk_create(reminders, ignore_conflicts=True)
        recipients = {r.recipient_id for r in reminders}
        if recipients:
            transaction.on_commit(lambda: _tell(today, recipients))
    return left


def _tell(today, recipients: set[int]) -> None:
    from casework.services.reminders import deliver_reminders

    # A failed mail server leaves the reminders for the next ``send_reminders``.
    with contextlib.suppress(OSError):
        deliver_reminders(today=today, recipients=recipients)
