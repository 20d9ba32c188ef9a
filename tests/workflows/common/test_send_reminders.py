"""``manage.py send_reminders``: fires the follow-up timer on the review date, reminds once a day.

Time does not move in tests: "the review date has come" is a case whose review
date (and the follow-up timer's due moment) is set in the past with a
queryset update.
"""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone, translation
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework.models import Case, Reminder
from casework.services import cases as case_services
from tests.workflows.conftest import BOTH_DATABASES, PURPOSE
from workflows.common.nodes import review_time
from workflows.sig.demo import Slot, build_case
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _run(*args) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("send_reminders", *args, stdout=out)
    return out.getvalue()


def _send(*args) -> dict[str, tuple[int, ...]]:
    """Run the command; return its summary as {line label: numbers}."""
    summary = {}
    for line in _run(*args).splitlines():
        label, _sep, rest = line.partition(":")
        summary[label] = tuple(int(n) for n in re.findall(r"\d+", rest))
    return summary


def _counts(summary, kind) -> tuple[int, int]:
    """(due, new) of a reminder kind."""
    with translation.override("en"):
        return summary[str(kind.label)]


def _active_case(key: str, *, index: int = 0) -> SigCase:
    return build_case(Slot(key, 19, "approve"), index=index)


def _open(case: SigCase, node):
    process = SigProcess.objects.get(case=case)
    return process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED]).filter(
        flow_task=node
    )


def _review_came(case: SigCase, *, days_ago: int) -> None:
    """Time travel: the case's review date, and its timer's due moment, ``days_ago`` back."""
    review = timezone.localdate() - datetime.timedelta(days=days_ago)
    Case.objects.filter(pk=case.pk).update(review_date=review)
    case.refresh_from_db()
    timer = _open(case, SigFlow.wait_for_review).get()
    with timer.activation() as activation:
        scheduled = review_time(activation)
    Task.objects.filter(pk=timer.pk).update(scheduled=scheduled)


def test_the_follow_up_task_appears_on_the_review_date(users):
    anna = users["anna.social"]
    case = _active_case("reminders-review")
    assert case.status == Status.ACTIVE
    timer = _open(case, SigFlow.wait_for_review).get()
    assert timer.status == STATUS.SCHEDULED

    # Before the review date: nothing fires, nothing is due.
    summary = _send()
    assert summary["Timers fired"] == (0,)
    assert not _open(case, SigFlow.follow_up).exists()
    assert _counts(summary, Reminder.Kind.REVIEW_OVERDUE) == (0, 0)

    # The review date has come: the timer fires, the follow-up task is the lead's.
    _review_came(case, days_ago=1)
    summary = _send()
    assert summary["Timers fired"] == (1,)
    follow_up = _open(case, SigFlow.follow_up).get()
    assert follow_up.owner == anna
    assert follow_up.status == STATUS.ASSIGNED
    assert Task.objects.get(pk=timer.pk).status == STATUS.DONE
    assert follow_up in Task.objects.inbox([SigFlow], anna)
    # The review is overdue (it was yesterday): the lead is reminded.
    assert _counts(summary, Reminder.Kind.REVIEW_OVERDUE) == (1, 1)
    reminder = Reminder.objects.get(kind=Reminder.Kind.REVIEW_OVERDUE)
    assert (reminder.case_id, reminder.recipient, reminder.date) == (
        case.pk,
        anna,
        timezone.localdate(),
    )

    # The lead can now begin the follow-up (the guard sees the review date reached).
    case.refresh_from_db()
    case_services.transition(user=anna, case=case, name="begin_follow_up", purpose=PURPOSE)
    assert case.status == Status.FOLLOW_UP


def test_a_second_run_the_same_day_sends_nothing_new(users):
    case = _active_case("reminders-twice")
    _review_came(case, days_ago=3)
    first = _send()
    assert first["Timers fired"] == (1,)
    assert _counts(first, Reminder.Kind.REVIEW_OVERDUE) == (1, 1)
    reminders = Reminder.objects.count()
    tasks = Task.objects.count()

    second = _send()
    assert second["Timers fired"] == (0,)
    assert _counts(second, Reminder.Kind.REVIEW_OVERDUE) == (1, 0)
    assert Reminder.objects.count() == reminders
    assert Task.objects.count() == tasks
    assert _open(case, SigFlow.follow_up).count() == 1

    # The next day, what is still overdue is reminded of again.
    Reminder.objects.update(date=timezone.localdate() - datetime.timedelta(days=1))
    assert _counts(_send(), Reminder.Kind.REVIEW_OVERDUE) == (1, 1)


def test_overdue_reviews_are_listed(users):
    overdue = _active_case("reminders-overdue", index=1)
    ahead = _active_case("reminders-ahead", index=2)
    following = _active_case("reminders-following", index=3)
    _review_came(overdue, days_ago=5)
    _review_came(following, days_ago=2)
    _send()  # fires both timers
    following.refresh_from_db()
    case_services.transition(
        user=users["anna.social"], case=following, name="begin_follow_up", purpose=PURPOSE
    )
    # A closed case is never reminded of, whatever its review date was.
    closed = _active_case("reminders-closed", index=4)
    case_services.close_case(
        user=users["anna.social"],
        case=closed,
        purpose=PURPOSE,
        reason=Case.CloseReason.MOVED,
    )
    Case.objects.filter(pk=closed.pk).update(review_date=timezone.localdate() - _days(9))
    Reminder.objects.all().delete()

    summary = _send()
    assert _counts(summary, Reminder.Kind.REVIEW_OVERDUE) == (2, 2)
    listed = set(
        Reminder.objects.filter(kind=Reminder.Kind.REVIEW_OVERDUE).values_list("case_id", flat=True)
    )
    assert listed == {overdue.pk, following.pk}
    assert ahead.pk not in listed and closed.pk not in listed


def _days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def test_tasks_open_too_long_are_reminded_to_their_owner_or_queue(users, settings):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "TASK_REMINDER_DAYS": 5}
    planning = build_case(Slot("reminders-plan", 20, "decide_police"), index=5)
    referred = build_case(Slot("reminders-queue", 20, "refer"), index=6)
    fresh = build_case(Slot("reminders-fresh", 20, "refer"), index=7)
    plan_task = _open(planning, SigFlow.draft_plan).get()
    screen_task = _open(referred, SigFlow.screen).get()
    old = timezone.now() - _days(6)
    Task.objects.filter(pk__in=[plan_task.pk, screen_task.pk]).update(created=old)

    summary = _send()
    assert _counts(summary, Reminder.Kind.TASK_OVERDUE) == (2, 2)
    reminders = {r.object_id: r for r in Reminder.objects.filter(kind=Reminder.Kind.TASK_OVERDUE)}
    assert reminders[str(plan_task.pk)].recipient == users["anna.social"]
    assert reminders[str(plan_task.pk)].case_id == planning.pk
    assert reminders[str(screen_task.pk)].recipient is None  # the coordinators' queue
    assert str(_open(fresh, SigFlow.screen).get().pk) not in reminders
    # --days overrides the setting.
    assert _counts(_send("--days", "7"), Reminder.Kind.TASK_OVERDUE) == (0, 0)


def test_unreviewed_break_the_glass_is_listed_until_reviewed(users):
    case = build_case(Slot("reminders-glass", 20, "refer"), index=8)
    access = case_services.break_glass(
        user=users["sara.samordnare"], case=case, reason="Akut hot mot personen i natt."
    )
    assert _counts(_send(), Reminder.Kind.BREAK_GLASS_UNREVIEWED) == (1, 1)
    reminder = Reminder.objects.get(kind=Reminder.Kind.BREAK_GLASS_UNREVIEWED)
    assert (reminder.object_id, reminder.case_id) == (str(access.pk), case.pk)
    case_services.review_break_glass(
        user=users["greta.granskare"],
        access=access,
        verdict="justified",
        note="Befogat.",
        purpose=PURPOSE,
    )
    assert _counts(_send(), Reminder.Kind.BREAK_GLASS_UNREVIEWED) == (0, 0)


def test_the_output_is_counts_only(users):
    case = _active_case("reminders-output")
    _review_came(case, days_ago=2)
    text = _run()
    assert case.reference not in text
    assert str(case.pk) not in text
    # One line for the timers, one per kind of reminder and one for the e-mails:
    # a label and counts.
    with translation.override("en"):
        expected = [
            "Timers fired: N",
            *(
                f"{kind.label}: N due, N new reminders"
                for kind in Reminder.Kind
                if kind not in Reminder.RECORDED_AT_ONCE  # recorded when it happens
            ),
            "E-mails sent: N",
        ]
    assert [re.sub(r"\d+", "N", line) for line in text.strip().splitlines()] == expected
