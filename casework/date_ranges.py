"""The task lists' "created" and "finished" filters in the local day.

django-filter's ``DateRangeFilter`` (which viewflow's list filters use) takes the day, month
and year of ``now()`` in UTC and compares a ``DateTimeField`` with naive dates: between
midnight and one or two o'clock in Stockholm its "today" is yesterday, and "past 7 days"
is a naive datetime (a ``RuntimeWarning`` at every use). These filters offer the same
choices with the same meaning, in the local calendar (``TIME_ZONE``): each choice is the
half-open range ``[local midnight of its first day, local midnight after its last day)``,
which is also one index range rather than three date-part extractions.
"""

from __future__ import annotations

import datetime
import functools

from django.utils import timezone
from django_filters import DateRangeFilter
from viewflow.workflow.flow.views import filters as flow_filters


def local_days(choice: str, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first day of ``choice`` and the day after its last, ``today`` the local day."""
    if choice == "today":
        return today, today + datetime.timedelta(days=1)
    if choice == "yesterday":
        return today - datetime.timedelta(days=1), today
    if choice == "week":  # the past 7 days and today, as django-filter's
        return today - datetime.timedelta(days=7), today + datetime.timedelta(days=1)
    if choice == "month":
        first = today.replace(day=1)
        return first, (first + datetime.timedelta(days=32)).replace(day=1)
    if choice == "year":
        return today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    raise ValueError(f"unknown date range: {choice!r}")


def _midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _within(choice: str, queryset, name: str):
    first, after = local_days(choice, timezone.localdate())
    return queryset.filter(**{f"{name}__gte": _midnight(first), f"{name}__lt": _midnight(after)})


_LOCAL_FILTERS = {
    choice: functools.partial(_within, choice) for choice, _ in DateRangeFilter.choices
}


class LocalDateRangeFilter(DateRangeFilter):
    """``DateRangeFilter``'s choices in the local calendar."""

    filters = _LOCAL_FILTERS


class LocalNullDateRangeFilter(flow_filters.NullDateRangeFilter):
    """viewflow's "finished" filter (unfinished only, unless a status is chosen) with its
    choices in the local calendar."""

    filters = _LOCAL_FILTERS


class ArchiveListFilter(flow_filters.FlowArchiveListFilter):
    created = LocalDateRangeFilter()
    finished = LocalDateRangeFilter()


class DashboardTaskListFilter(flow_filters.DashboardTaskListViewFilter):
    created = LocalDateRangeFilter()
    finished = LocalNullDateRangeFilter()


class DashboardProcessListFilter(flow_filters.DashboardProcessListViewFilter):
    created = LocalDateRangeFilter()
    finished = LocalNullDateRangeFilter()
