"""Reporting periods: whole calendar months, quarters and years in local time.

A period is named by a short key (``2025``, ``2025-Q3``, ``2025-09``); no other
date range can be asked for, so no two periods differ by a few days. The
current period may be chosen (the agreement's follow-up is in November and
December of the running year): it is marked preliminary and counts up to now.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONTH, QUARTER, YEAR = "month", "quarter", "year"
KINDS = {MONTH: _("Month"), QUARTER: _("Quarter"), YEAR: _("Year")}
_MONTHS_IN = {MONTH: 1, QUARTER: 3, YEAR: 12}
_KEY = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>0[1-9]|1[0-2]))?$")
# How far back the period chooser and the trends reach.
FIRST_YEAR = 2000


class PeriodError(ValueError):
    """A period key that names no whole period (or one that has not begun)."""


def month_index(day: datetime.date) -> int:
    return day.year * 12 + day.month - 1


def month_start(index: int) -> datetime.date:
    return datetime.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, order=True)
class Period:
    """``first`` and ``last`` are month indexes (year * 12 + month - 1), inclusive."""

    first: int
    kind: str

    @property
    def last(self) -> int:
        return self.first + _MONTHS_IN[self.kind] - 1

    @property
    def start(self) -> datetime.date:
        return month_start(self.first)

    @property
    def end(self) -> datetime.date:
        """The first day after the period."""
        return month_start(self.last + 1)

    @property
    def key(self) -> str:
        year = self.first // 12
        if self.kind == YEAR:
            return f"{year}"
        if self.kind == QUARTER:
            return f"{year}-Q{self.first % 12 // 3 + 1}"
        return f"{year}-{self.first % 12 + 1:02d}"

    @property
    def label(self) -> str:
        return self.key

    def previous(self, count: int) -> list[Period]:
        """The ``count`` periods of the same kind up to and including this one, oldest first."""
        step = _MONTHS_IN[self.kind]
        return [
            Period(self.first - step * back, self.kind)
            for back in range(count - 1, -1, -1)
            if self.first - step * back >= FIRST_YEAR * 12
        ]

    def is_current(self, *, today: datetime.date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.first <= month_index(today) <= self.last

    def __str__(self) -> str:
        return self.key


def parse(key: str, *, today: datetime.date | None = None) -> Period:
    """The period named by ``key``; refuses malformed keys and periods not yet begun."""
    match = _KEY.match((key or "").strip())
    if not match:
        raise PeriodError(_("Choose a year, a quarter or a month."))
    year = int(match["year"])
    if match["quarter"]:
        period = Period(year * 12 + (int(match["quarter"]) - 1) * 3, QUARTER)
    elif match["month"]:
        period = Period(year * 12 + int(match["month"]) - 1, MONTH)
    else:
        period = Period(year * 12, YEAR)
    today = today or timezone.localdate()
    if year < FIRST_YEAR or period.first > month_index(today):
        raise PeriodError(_("There are no statistics for that period."))
    return period


def current(kind: str, *, today: datetime.date | None = None) -> Period:
    today = today or timezone.localdate()
    index = month_index(today)
    if kind == YEAR:
        return Period(today.year * 12, YEAR)
    if kind == QUARTER:
        return Period(index - index % 3, QUARTER)
    return Period(index, MONTH)


def choices(kind: str, *, count: int, today: datetime.date | None = None) -> list[Period]:
    """The latest ``count`` periods of ``kind``, newest first."""
    return list(reversed(current(kind, today=today).previous(count)))


def key_pattern(*, today: datetime.date | None = None) -> str:
    """A regular expression of exactly the keys :func:`parse` accepts today (whole
    periods from ``FIRST_YEAR`` that have begun): for a description of the parameter."""
    today = today or timezone.localdate()
    earlier = "|".join(str(year) for year in range(FIRST_YEAR, today.year))
    suffix = r"(?:-Q[1-4]|-(?:0[1-9]|1[0-2]))?"
    quarters = f"1-{(today.month - 1) // 3 + 1}"
    months = "|".join(f"{month:02d}" for month in range(1, today.month + 1))
    running = f"{today.year}(?:-Q[{quarters}]|-(?:{months}))?"
    return f"^(?:(?:{earlier}){suffix}|{running})$" if earlier else f"^(?:{running})$"
