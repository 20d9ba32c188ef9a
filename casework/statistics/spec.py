"""How a programme describes its statistics: plain-column SQL expressions, no code.

A programme module (``programmes/sig.py``) builds one :class:`ProgrammeStatistics`;
``registry.PROGRAMMES`` lists them. The engine (``summary``, ``tables``) does the
rest: counting by month in the database, the tables of a period, suppression,
trends, charts and exports are the same for every programme.

The expressions are trusted code of the programme module (never user input) and
may name only plain columns of the ``source`` tables: nothing encrypted is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.functional import Promise

Label = str | Promise


@dataclass(frozen=True)
class Event:
    """A count of what happened in the period: ``at`` is the moment (a timestamp column).

    ``detail`` (an expression) adds a table of the event by that value, with the
    row labels of ``detail_choices``.
    """

    key: str
    label: Label
    at: str
    detail: str = ""
    detail_label: Label = ""
    detail_choices: Sequence[tuple[str, Label]] = ()


@dataclass(frozen=True)
class Stock:
    """A count at the end of the period: cases with ``start`` before it and ``end`` after
    (or none). ``published=False`` for a stock the engine only uses internally."""

    key: str
    label: Label
    start: str
    end: str
    published: bool = True


@dataclass(frozen=True)
class Duration:
    """Days from ``start`` to ``end``, for cases whose ``end`` falls in the period (a median)."""

    key: str
    label: Label
    start: str
    end: str


@dataclass(frozen=True)
class Person:
    """The plain person columns the breakdowns use (``None``: the programme has no person)."""

    birth_year: str
    gender: str
    area: str
    protected_identity: str
    # The age band is the age in the year of ``age_at`` (usually the referral).
    age_at: str


@dataclass(frozen=True)
class ProgrammeStatistics:
    code: str
    label: Label
    source: str  # FROM clause (tables and joins)
    where: str = "TRUE"  # which rows of ``source`` are the programme's (lets indexes be used)
    events: Sequence[Event] = ()
    stocks: Sequence[Stock] = ()
    durations: Sequence[Duration] = ()
    person: Person | None = None
    # Inclusive (low, high) ages; None is open-ended.
    age_bands: Sequence[tuple[int | None, int | None]] = ()
    # A selection's size: cases in ``open_stock`` at the period's start plus ``entry`` events.
    entry: str = ""
    open_stock: str = ""
    chart_measures: Sequence[str] = field(default_factory=tuple)

    def age_band_labels(self) -> list[str]:
        from django.utils.translation import gettext

        labels = []
        for low, high in self.age_bands:
            if low is None:
                labels.append(gettext("%(high)d and younger") % {"high": high})
            elif high is None:
                labels.append(gettext("%(low)d and older") % {"low": low})
            else:
                labels.append(f"{low}-{high}")
        return labels
