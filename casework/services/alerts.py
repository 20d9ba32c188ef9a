"""Alerts: a reminder recorded when something happens, e-mailed at once, without case data.

An alert is a :class:`casework.models.Reminder` of an alert kind, one per recipient
(so it shows on the recipient's reminders page: the case-work one, or the audit
app's for an auditor), delivered by e-mail after the transaction that caused it
commits — the same message as the daily reminders: counts per kind and a link,
never a name, a personnummer, a case number or a note
(``casework.services.reminders``). A failed send leaves the alert undelivered for
the next ``send_reminders`` run of the day.

- a break-the-glass access → every active auditor (``granskare``) but the breaker;
- a lowered threat level awaiting approval → the police defector coordinators
  (``avhopparsamordnare`` of the assessor's police organisation) but the assessor —
  the programme calls :func:`lowering_awaits_approval` (the core knows no programme);
- a task given to someone by someone else (a flow's assignment, a coordinator's
  reassignment) → its new owner, only if they asked for it (``User.alert_new_tasks``,
  on their settings page, :func:`set_task_alerts`). Once per task and owner.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from audit import context
from audit.services import Action as AuditAction
from audit.services import record_event
from casework import programmes, roles
from casework.models import Organisation, Reminder, User
from casework.services.reminders import deliver

logger = logging.getLogger(__name__)
Kind = Reminder.Kind


def alert(
    *, kind: str, object_id: object, recipient_ids: Iterable[int], case_id: UUID | None = None
) -> int:
    """Record the alert ``kind`` about ``object_id`` for each recipient (once a day each)
    and e-mail them after the commit. Returns how many recipients there are."""
    recipient_ids = sorted(set(recipient_ids))
    if not recipient_ids:
        return 0
    today = timezone.localdate()
    rows = [(object_id, case_id, recipient_id) for recipient_id in recipient_ids]
    Reminder.objects.bulk_create(
        programmes.make_reminders(kind, today, rows), ignore_conflicts=True
    )
    # After the commit: every alert of the day not yet delivered to these recipients, so
    # that the alerts of one transaction (a flow assigning several steps) make one e-mail.
    selection = Q(kind__in=Reminder.ALERTS, date=today, recipient_id__in=recipient_ids)
    transaction.on_commit(lambda: _send(selection))
    return len(recipient_ids)


def _send(selection: Q) -> None:
    try:
        deliver(selection)
    except (smtplib.SMTPException, OSError) as error:
        # The alert stays undelivered: the day's ``send_reminders`` tries again.
        logger.warning("alert e-mail not sent: %s", type(error).__name__)


def _active(group: str) -> Q:
    return Q(is_active=True, groups__name=group)


def auditor_ids(*, exclude: int | None = None) -> list[int]:
    """The active auditors (``granskare``), but ``exclude``."""
    users = User.objects.filter(_active(roles.AUDITOR)).exclude(pk=exclude)
    return list(users.values_list("pk", flat=True).distinct())


def break_glass_opened(*, access) -> int:
    """A break-the-glass access: to every auditor but the one who broke the glass."""
    return alert(
        kind=Kind.BREAK_GLASS_OPENED,
        object_id=access.pk,
        recipient_ids=auditor_ids(exclude=access.user_id),
        case_id=access.case_id,
    )


def lowering_awaits_approval(*, case, assessment, organisation: Organisation | None) -> int:
    """A lowered threat level awaits approval: to the defector coordinators of the police
    ``organisation`` (the assessor's) but the assessor, who may not approve it."""
    if organisation is None or organisation.kind != Organisation.Kind.POLICE:
        return 0
    users = User.objects.filter(
        _active(roles.DEFECTOR_COORDINATOR), organisation=organisation
    ).exclude(pk=assessment.assessed_by_id)
    return alert(
        kind=Kind.LOWERING_AWAITS_APPROVAL,
        object_id=assessment.pk,
        recipient_ids=users.values_list("pk", flat=True).distinct(),
        case_id=case.pk,
    )


def task_assigned(*, task) -> int:
    """A task given to its owner by someone else: to the owner, if they asked for it."""
    owner_id = task.owner_id
    acting = context.current().user
    if owner_id is None or (acting is not None and acting.pk == owner_id):
        return 0  # no owner, or the owner took it themselves
    if not User.objects.filter(pk=owner_id, is_active=True, alert_new_tasks=True).exists():
        return 0
    if Reminder.objects.filter(
        kind=Kind.TASK_ASSIGNED, object_id=str(task.pk), recipient_id=owner_id
    ).exists():
        return 0  # once per task and owner, whatever the day
    case_id = programmes.task_cases({task.process_id}).get(task.process_id)
    return alert(
        kind=Kind.TASK_ASSIGNED, object_id=task.pk, recipient_ids=[owner_id], case_id=case_id
    )


@receiver(post_save, sender=Task, dispatch_uid="casework_alerts_task_assigned")
def _task_saved(sender, instance, raw: bool = False, **kwargs) -> None:
    # Human steps only; every save of an assigned task comes here, ``task_assigned``
    # alerts once per task and owner.
    if not raw and instance.flow_task_type == "HUMAN" and instance.status == STATUS.ASSIGNED:
        task_assigned(task=instance)


def set_task_alerts(*, user, enabled: bool) -> None:
    """The user's own choice: alerts about tasks given to them, or none."""
    if not (user.is_authenticated and user.is_active):
        raise PermissionDenied
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(alert_new_tasks=bool(enabled))
        user.alert_new_tasks = bool(enabled)
        record_event(
            action=AuditAction.ACCOUNT_CHANGE,
            user=user,
            obj=user,
            fields=["alert_new_tasks"],
            purpose="own settings",
            details={"alert_new_tasks": bool(enabled)},
        )
