"""The task lists' date filters count in the local calendar (``casework.date_ranges``):
django-filter's took the day of ``now()`` in UTC and compared with naive dates."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from viewflow.workflow.models import Task

from casework.date_ranges import LocalDateRangeFilter, LocalNullDateRangeFilter, local_days
from tests.workflows.conftest import BOTH_DATABASES

D = datetime.date


@pytest.mark.parametrize(
    ("choice", "today", "first", "after"),
    [
        ("today", D(2026, 12, 31), D(2026, 12, 31), D(2027, 1, 1)),
        ("yesterday", D(2027, 1, 1), D(2026, 12, 31), D(2027, 1, 1)),
        ("week", D(2027, 1, 3), D(2026, 12, 27), D(2027, 1, 4)),
        ("month", D(2026, 12, 15), D(2026, 12, 1), D(2027, 1, 1)),
        ("month", D(2027, 2, 28), D(2027, 2, 1), D(2027, 3, 1)),
        ("month", D(2027, 1, 31), D(2027, 1, 1), D(2027, 2, 1)),
        ("year", D(2026, 12, 31), D(2026, 1, 1), D(2027, 1, 1)),
    ],
)
def test_each_choice_is_its_local_days(choice, today, first, after):
    assert local_days(choice, today) == (first, after)


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="unknown date range"):
        local_days("fortnight", D(2026, 12, 7))


def _local(day: datetime.date, hour: int, minute: int) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


@pytest.mark.django_db(databases=BOTH_DATABASES)
@pytest.mark.parametrize("filter_class", [LocalDateRangeFilter, LocalNullDateRangeFilter])
def test_a_task_is_in_the_range_of_its_local_day(demo_cases, filter_class):
    """Tasks created just after and just before local midnight, a week ago and in the
    local month before this one, each in exactly the choices its local day is in."""
    today = timezone.localdate()
    last_month = today.replace(day=1) - datetime.timedelta(days=1)
    created = {
        "after midnight": _local(today, 0, 1),
        "before midnight": _local(today - datetime.timedelta(days=1), 23, 59),
        "a week ago": _local(today - datetime.timedelta(days=7), 0, 1),
        "eight days ago": _local(today - datetime.timedelta(days=8), 23, 59),
        "last month": _local(last_month, 12, 0),
    }
    tasks = list(Task.objects.order_by("pk").values_list("pk", flat=True)[: len(created)])
    assert len(tasks) == len(created)
    named = dict(zip(tasks, created, strict=True))
    for pk, name in named.items():
        Task.objects.filter(pk=pk).update(created=created[name])
    listed = Task.objects.filter(pk__in=tasks)
    # The "finished" variant filters only with a choice made (its empty choice is viewflow's).
    found = {
        choice: {
            named[pk]
            for pk in filter_class(field_name="created")
            .filter(listed, choice)
            .values_list("pk", flat=True)
        }
        for choice in ("today", "yesterday", "week", "month")
    }
    assert found["today"] == {"after midnight"}
    assert found["yesterday"] == {"before midnight"}
    assert found["week"] == {"after midnight", "before midnight", "a week ago"}
    this_month = {
        name for name, at in created.items() if timezone.localdate(at) >= today.replace(day=1)
    }
    assert found["month"] == this_month


@pytest.mark.django_db(databases=BOTH_DATABASES)
@pytest.mark.parametrize("choice", ["today", "yesterday", "week", "month", "year"])
def test_the_task_lists_filter_by_each_choice(demo_cases, client, choice):
    """Every list with a date filter answers each choice (a naive datetime was a
    ``RuntimeWarning``, an error in the tests)."""
    client.force_login(demo_cases["sara.samordnare"])
    pages = [
        f"/arenden/inbox/?created={choice}",
        f"/arenden/queue/?created={choice}",
        f"/arenden/archive/?created={choice}&finished={choice}",
        f"/arenden/flows/sig/flows/?created={choice}&finished={choice}",
        f"/arenden/flows/sig/tasks/?created={choice}&finished={choice}",
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page
