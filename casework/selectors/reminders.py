"""The reminders a user sees: ids, kinds, dates and case numbers, nothing decrypted."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from casework import policy
from casework.models import Reminder, User

# Reminders stay on the page this many days (then the next run reminds again anyway).
SHOWN_DAYS = 7


@dataclass(frozen=True)
class ReminderRow:
    reminder: Reminder
    case_url: str | None


def reminders_for(user: User, *, today: datetime.date | None = None) -> QuerySet[Reminder]:
    """The user's reminders of the last days: addressed to them, or — for a
    coordinator — tasks nobody has taken from the queue (for the GVI participants and
    coordinator: accepted offers whose referral nobody has taken up)."""
    today = today or timezone.localdate()
    mine = Q(recipient=user)
    if policy.coordinates_a_programme(user):
        # Tasks nobody took, and the consent reminders of cases without a lead.
        mine |= Q(
            recipient__isnull=True,
            kind__in=[Reminder.Kind.TASK_OVERDUE, *Reminder.ONCE_PER_EVENT],
        )
    if policy.gvi_participant(user) or policy.coordinates_gvi(user):
        # An accepted GVI offer whose referral still waits in the participants' queue.
        mine |= Q(recipient__isnull=True, kind=Reminder.Kind.GVI_REFERRAL_OVERDUE)
    return (
        Reminder.objects.filter(mine, date__gt=today - datetime.timedelta(days=SHOWN_DAYS))
        .select_related("case")
        .order_by("-date", "kind")
    )


def reminder_rows(*, user: User, today: datetime.date | None = None) -> list[ReminderRow]:
    """The reminders page: each reminder with a link to its case where the user may open it."""
    rows = []
    for reminder in reminders_for(user, today=today):
        case = reminder.case
        url = None
        if case is not None and policy.case_access(user, case):
            url = reverse("arenden:case", kwargs={"case_id": case.pk})
        rows.append(ReminderRow(reminder, url))
    return rows
