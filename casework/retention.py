"""The retention arithmetic (gallring): when a case's record set is due to be culled.

Pure functions of dates and a rule's terms; no database, no clock (the caller passes
``today``), so every rule is tested on its own (docs/adr/0024-retention.md).

- **Social services** (SoL; the default rule ``last_entry``, 5 years, by the end of the
  following year, research exception): a personal file is culled 5 years after the last
  entry, finished by the end of the following year. The years are counted from the
  calendar year of the last entry: a last entry in 2020 has run its 5 years during 2025,
  so the file is culled in 2026 — from 1 January (``due``) and by 31 December
  (``deadline``). Culling on the first day of that year keeps the file its full 5 years
  (1 January 2026 is after every date of 2025) and leaves the daily timer the whole year.
- **Research exception**: a person born on the 5th, 15th or 25th of a month is kept
  (``due`` is ``None``: never culled by the rule).
- **Police** (the default rule ``closed``, 3 years, no year-end rounding): due on the
  day the given years have passed since the case was closed (29 February → 28
  February), deadline the same day.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

LAST_ENTRY = "last_entry"
CLOSED = "closed"
RESEARCH_DAYS = frozenset({5, 15, 25})


@dataclass(frozen=True)
class Terms:
    """What a rule says about time: counted from ``event`` (``last_entry`` or
    ``closed``), kept ``years``, culled in the year after (``end_of_following_year``),
    and whether persons born on the 5th, 15th or 25th are kept (``research_exception``)."""

    event: str
    years: int
    end_of_following_year: bool = False
    research_exception: bool = False


@dataclass(frozen=True)
class Due:
    """When a record set may be culled (``due``) and when it must be gone (``deadline``),
    counted from ``start`` (the date of the rule's event)."""

    start: datetime.date
    due: datetime.date
    deadline: datetime.date


def add_years(day: datetime.date, years: int) -> datetime.date:
    """``day`` ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def research_kept(birth_date: datetime.date | None) -> bool:
    """Born on the 5th, 15th or 25th: kept for research (SoL). Unknown: not kept."""
    return birth_date is not None and birth_date.day in RESEARCH_DAYS


def last_entry(*moments: datetime.date | datetime.datetime | None) -> datetime.date | None:
    """The latest of a case's dated entries (``None`` ignored): the last entry's day.

    Datetimes must already be in local time (the caller converts them): a case note
    written at 00:30 on 1 January in Stockholm is an entry of the new year.
    """
    days = [m.date() if isinstance(m, datetime.datetime) else m for m in moments if m is not None]
    return max(days, default=None)


def due_dates(
    terms: Terms,
    *,
    last_entry: datetime.date | None,
    closed: datetime.date | None,
    birth_date: datetime.date | None = None,
) -> Due | None:
    """When the record set is culled under ``terms``; ``None`` when it is not (yet) at
    all: the counting event has not happened (an open case under a ``closed`` rule, a
    case without entries) or the research exception keeps the person."""
    if terms.years < 1:
        raise ValueError("a retention rule keeps a record set at least one year")
    if terms.event not in (LAST_ENTRY, CLOSED):
        raise ValueError(f"unknown retention event {terms.event!r}")
    start = last_entry if terms.event == LAST_ENTRY else closed
    if start is None:
        return None
    if terms.research_exception and research_kept(birth_date):
        return None
    if terms.end_of_following_year:
        year = start.year + terms.years + 1
        return Due(start, datetime.date(year, 1, 1), datetime.date(year, 12, 31))
    day = add_years(start, terms.years)
    return Due(start, day, day)


def is_due(due: Due | None, *, today: datetime.date) -> bool:
    return due is not None and due.due <= today


def due_before(terms: Terms, *, today: datetime.date) -> datetime.date:
    """The latest start (event day) whose record set is due on ``today`` under
    ``terms`` (ignoring the research exception): a database query selects candidates
    with ``start <= due_before(...)`` and :func:`due_dates` decides each one."""
    if terms.end_of_following_year:
        # Due from 1 January of start.year + years + 1: every start up to the end of
        # today.year - years - 1.
        return datetime.date(today.year - terms.years - 1, 12, 31)
    # add_years(start, years) <= today  ⇔  start <= today - years (28 Feb for 29 Feb).
    back = add_years(today, -terms.years)
    if (today.month, today.day) == (2, 28) and _leap(back.year) and not _leap(today.year):
        return back.replace(day=29)
    return back


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
