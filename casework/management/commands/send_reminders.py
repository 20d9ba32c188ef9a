"""Fire due workflow timers and remind of due and overdue work (idempotent; run from cron).

1. Fires every due viewflow timer (``viewflow.workflow.timers.fire_due_timers``):
   this is how a SIG case's follow-up task appears in the lead social worker's
   inbox on the morning of its review date.
2. Lists the work that is due or overdue and records a :class:`Reminder` for
   each item it has not reminded of today — the core's kinds, and each registered
   programme's own (``casework.programmes``, ``Programme.reminders``):

   * ``review_overdue`` — SIG cases in ``active``/``follow_up`` whose review
     date has passed (the lead social worker is reminded);
   * ``task_overdue`` — human tasks open longer than
     ``SAMVERKAN["TASK_REMINDER_DAYS"]`` days (``--days``): the owner is
     reminded, or the queue when nobody has taken the task;
   * ``break_glass_unreviewed`` — break-the-glass accesses no auditor has
     reviewed yet (each auditor but the breaker is reminded);
   * ``reassessment_overdue`` — defector cases whose threat assessment in force
     is past its next reassessment date (the defector coordinators' list);
   * ``gvi_follow_up_overdue`` — GVI notification and call-in follow-ups past due;
   * ``gvi_referral_overdue`` — accepted GVI offers of help whose referral social
     services have not taken up in time (the task's owner, or the participants' queue);
   * ``consent_expiring``, ``turned_18``, ``age_range_left`` — a consent expiring within
     30 days, a person who turned 18 during the case, a person who left the programme's
     age range (``casework.services.consent_reminders``): the lead social worker is
     reminded once per event, not once a day.

3. E-mails each recipient once a day about their new reminders — counts per
   kind and a link to the reminders page, never a case number — when e-mail is
   configured (``EMAIL_URL``); the app shows them on the reminders page anyway.

Reminders are unique per (kind, object, recipient, day), so running the command twice the
same day reminds of nothing new; the next day an item still open is reminded
of again. The output is one line per kind with counts only — never a name, a
case number or any other personal data. Nothing is decrypted but dates of birth, to
apply the age rules (never shown).
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS
from viewflow.workflow.timers import fire_due_timers

from casework import programmes
from casework.models import BreakGlassAccess, Reminder
from casework.services import alerts, consent_reminders
from casework.services.reminders import deliver_reminders


def _overdue_tasks(today: datetime.date, days: int) -> list[Reminder]:
    """Human tasks open longer than ``days`` days, each with the case its process works on
    (every registered programme says which: ``casework.programmes.task_cases``)."""
    cutoff = timezone.now() - datetime.timedelta(days=days)
    tasks = list(
        Task.objects.filter(
            flow_task_type="HUMAN",
            status__in=[STATUS.NEW, STATUS.ASSIGNED],
            created__lt=cutoff,
        ).values_list("pk", "process_id", "owner_id")
    )
    cases = programmes.task_cases({process for _pk, process, _owner in tasks})
    return [
        Reminder(
            kind=Reminder.Kind.TASK_OVERDUE,
            object_id=str(pk),
            date=today,
            case_id=cases.get(process),
            recipient_id=owner,
        )
        for pk, process, owner in tasks
    ]


def _unreviewed_break_glass(today: datetime.date) -> list[Reminder]:
    """Each break-the-glass access no auditor has reviewed, for every auditor but the
    one who broke the glass (``casework.services.alerts.auditor_ids``)."""
    accesses = BreakGlassAccess.objects.filter(reviewed_at__isnull=True).values_list(
        "pk", "case_id", "user_id"
    )
    auditors = alerts.auditor_ids()
    rows = [
        (pk, case_id, auditor)
        for pk, case_id, breaker in accesses
        for auditor in auditors
        if auditor != breaker
    ]
    return programmes.make_reminders(Reminder.Kind.BREAK_GLASS_UNREVIEWED, today, rows)


def due_reminders(today: datetime.date, days: int) -> list[tuple[str, list[Reminder]]]:
    """(kind, the items due) of the core's kinds and every registered programme's, in the
    order of ``Reminder.Kind``."""
    sources = [
        (Reminder.Kind.TASK_OVERDUE, lambda today: _overdue_tasks(today, days)),
        (Reminder.Kind.BREAK_GLASS_UNREVIEWED, _unreviewed_break_glass),
        *consent_reminders.SOURCES,
        *((source.kind, source.due) for source in programmes.reminder_sources()),
    ]
    order = list(Reminder.Kind)
    sources.sort(key=lambda source: order.index(source[0]))
    return [(Reminder.Kind(kind), due(today)) for kind, due in sources]


def record_reminders(candidates: list[Reminder]) -> int:
    """Save the reminders not yet recorded today (a kind of ``Reminder.ONCE_PER_EVENT``:
    not yet recorded at all); return how many are new."""
    if not candidates:
        return 0
    kind = candidates[0].kind
    with transaction.atomic():
        recorded = Reminder.objects.filter(
            kind=kind, object_id__in=[r.object_id for r in candidates]
        )
        if kind not in Reminder.ONCE_PER_EVENT:
            recorded = recorded.filter(date=candidates[0].date)
        existing = set(recorded.values_list("object_id", "recipient_id"))
        new = [r for r in candidates if (r.object_id, r.recipient_id) not in existing]
        # A concurrent run may have recorded some meanwhile: the unique key decides.
        Reminder.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


class Command(BaseCommand):
    help = (
        "Fires due workflow timers (SIG follow-ups) and records reminders of overdue reviews, "
        "tasks and unreviewed break-the-glass accesses. Idempotent: run it from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="remind of tasks open longer than this many days "
            "(default: SAMVERKAN['TASK_REMINDER_DAYS'])",
        )

    def handle(self, *args, days: int | None = None, **options):
        days = settings.SAMVERKAN["TASK_REMINDER_DAYS"] if days is None else days
        if days < 0:
            raise CommandError(_("--days cannot be negative."))
        fired = fire_due_timers()
        self.stdout.write(_("Timers fired: %(count)d") % {"count": fired})
        today = timezone.localdate()
        for kind, candidates in due_reminders(today, days):
            new = record_reminders(candidates)
            self.stdout.write(
                _("%(kind)s: %(due)d due, %(new)d new reminders")
                % {"kind": kind.label, "due": len(candidates), "new": new}
            )
        if settings.EMAIL_ENABLED:
            sent = deliver_reminders(today=today)
            self.stdout.write(_("E-mails sent: %(count)d") % {"count": sent})
        else:
            self.stdout.write(_("E-mail is not configured (EMAIL_URL): no e-mails sent."))
