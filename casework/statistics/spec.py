"""How a programme describes its statistics: plain-column SQL expressions, no code.

A programme module (``workflows/sig_statistics.py``) builds one :class:`ProgrammeStatistics`;
``registry.PROGRAMMES`` lists them. The engine (``summary``, ``tables``) does the
rest: counting by month in the database, the tables of a period, suppression,
trends, charts and exports are the same for every programme.

The expressions are trusted code of the programme module (never user input) and
may name only plain columns of the ``source`` tables: nothing encrypted is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

Label = str | Promise

AGE, GENDER, AREA = "age", "gender", "area"
ALL_DIMENSIONS = (AGE, GENDER, AREA)


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
class Plain:
    """Breakdown columns of rows without a person (e.g. SSPF's anonymised discussions):
    SQL giving the age band's index (``-1``: not stated), the gender and the area."""

    age_band: str = "-1"
    gender: str = "'unknown'"
    area: str = "''"


@dataclass(frozen=True)
class Detail:
    """A table of a count by the value of ``expression``, with the row labels of ``choices``."""

    expression: str
    label: Label
    choices: Sequence[tuple[str, Label]]


NO_DETAIL = Detail("''", "", ())


@dataclass(frozen=True)
class Rows:
    """What an :class:`Event` and a :class:`Stock` have alike: a ``key``, a ``label``, an
    optional :class:`Detail` table.

    By default a count is over the programme's rows (one per case). A count of
    something that can happen several times to a case (a re-routing), or that is
    not about a case at all (an incident, a sanction), names its own ``source`` and
    ``where``; ``person`` then gives its breakdown columns (a :class:`Person` over
    the aliases of ``source``, a :class:`Plain`, or ``None``: no breakdown), and
    ``dimensions`` which of age band, gender and area are published for it.
    """

    key: str
    label: Label
    _: KW_ONLY
    detail: Detail = NO_DETAIL
    source: str = ""
    where: str = "TRUE"
    person: Person | Plain | None = None
    dimensions: Sequence[str] | None = None


@dataclass(frozen=True)
class Event(Rows):
    """A count of what happened in the period: ``at`` is the moment (a timestamp column)."""

    at: str


@dataclass(frozen=True)
class Stock(Rows):
    """A count at the end of the period: cases with ``start`` before it and ``end`` after
    (or none). ``published=False`` for a stock the engine only uses internally.

    With rows of its own, e.g. GVI's groups by the state they are in: one row per
    state a group has been in, from when to when.
    """

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

    def own_rows(self, item: Rows) -> bool:
        """Whether ``item`` is counted over rows of its own (not the programme's)."""
        return bool(item.source)

    def breakdown(self, item: Rows) -> Person | Plain | None:
        """The breakdown columns of ``item``'s rows."""
        return item.person if item.source else self.person

    def dimensions_of(self, item: Rows) -> tuple[str, ...]:
        """The breakdowns (age band, gender, area) published for ``item``."""
        if self.breakdown(item) is None:
            return ()
        return tuple(item.dimensions if item.dimensions is not None else ALL_DIMENSIONS)

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


# --- Building blocks of a case programme's description ------------------------------------
# A case programme counts over its own case table (alias ``s``) joined to the shared case
# (``c``) and its person (``p``).


def case_source(table: str) -> str:
    """The FROM clause of a case programme: its case table ``table`` (``s``), the shared
    case (``c``) and the person (``p``)."""
    return (
        f"{table} AS s"
        " JOIN casework_case AS c ON c.id = s.case_ptr_id"
        " JOIN casework_person AS p ON p.id = c.person_id"
    )


def person_columns(age_at: str = "c.opened_at") -> Person:
    """The person's plain columns (alias ``p``); the age band is the age at ``age_at``."""
    return Person(
        birth_year="p.birth_year",
        gender="p.gender",
        area="p.area",
        protected_identity="p.protected_identity",
        age_at=age_at,
    )


def start_of_day(column: str) -> str:
    """An :class:`Event`'s moment for rows dated by a day (a date column ``column``, not a
    timestamp): the start of that day in the statistics' time zone."""
    return f"({column}::timestamp AT TIME ZONE %(tz)s)"


def referral_events(referred_label: Label, refused_label: Label) -> list[Event]:
    """Referrals (the shared case's ``opened_at``), then consents given and refused (the
    case table's ``consented_at`` and ``consent_refused_at``)."""
    return [
        Event("referred", referred_label, "c.opened_at"),
        Event("consent_given", _("Consents given"), "s.consented_at"),
        Event("consent_refused", refused_label, "s.consent_refused_at"),
    ]


def closed_event(label: Label, choices: Sequence[tuple[str, Label]] | None = None) -> Event:
    """Closures (the shared case's ``closed_at``) by close reason (a table headed ``label``
    with the rows ``choices``; by default every close reason of a case)."""
    if choices is None:
        from casework.models import Case

        choices = Case.CloseReason.choices
    return Event(
        "closed", _("Closures"), "c.closed_at", detail=Detail("c.close_reason", label, choices)
    )


def open_stock() -> Stock:
    """The cases open at the end of the period, for the engine only (a selection's size)."""
    return Stock("open", _("Open"), "c.opened_at", "c.closed_at", published=False)


def case_programme(code: str, label: Label, table: str, **options) -> ProgrammeStatistics:
    """The statistics of case programme ``code``, counted over its case table ``table``
    (see :func:`case_source`) with the person's breakdowns; a selection's size is the
    cases open at its start (the stock ``open``) plus its referrals (the event
    ``referred``, see :func:`referral_events`)."""
    options.setdefault("person", person_columns())
    return ProgrammeStatistics(
        code=code,
        label=label,
        source=case_source(table),
        where=f"c.programme = '{code}'",
        entry="referred",
        open_stock="open",
        **options,
    )
