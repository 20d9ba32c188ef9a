"""The programme registry: how the core reaches the programmes without importing them.

The core (``casework``) knows no programme. Each programme (``workflows``) describes
what the core needs from it in one :class:`Programme` and registers it from the
``workflows`` app config's ``ready()``; the task inbox, ``send_reminders``,
``seed_demo``, the statistics and the policy's programme-specific rules loop over
:func:`registered` or ask :func:`get`. See docs/adr/0019-programme-registry.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from casework.models import Reminder
    from casework.statistics.spec import ProgrammeStatistics


@dataclass(frozen=True)
class TaskSubject:
    """What a process works on when it is not a case (a GVI notification, a call-in …):
    the process's field, the rows to read with it for a task list, and its link in the
    list (``describe(subject)`` → (URL, first text, second text); nothing decrypted)."""

    field: str
    related: tuple[str, ...]
    describe: Callable[[Any], tuple[str, str, str]]


@dataclass(frozen=True)
class Choice:
    """One outcome of a :class:`Decision`: its value, its label, and whether the person
    must give a reason for it (a rejection, a plan returned)."""

    value: str
    label: Any  # a lazy translation
    reason_required: bool = False


@dataclass(frozen=True)
class Decision:
    """A step the integration API completes: a simple decision, one of ``choices`` with a
    reason (the step's page is essentially that choice).

    ``complete`` (keyword arguments ``user``, ``activation`` — the step's viewflow
    activation, taken and started by the caller under the flow's lock, as the step's page
    gets it — ``choice``, ``reason`` (``""`` when none), ``expected_version`` (the case's
    version the caller checked) and ``purpose``) calls the same services the step's page
    calls and finishes the task as the page does. ``purpose`` is the page's.
    """

    choices: tuple[Choice, ...]
    complete: Callable[..., None]
    purpose: Any  # a lazy translation


@dataclass(frozen=True)
class ReminderSource:
    """A programme's own kind of reminder: ``due(today)`` lists the items due today."""

    kind: str  # a ``casework.models.Reminder.Kind``
    due: Callable[[datetime.date], list[Reminder]]


@dataclass(frozen=True)
class Programme:
    """What the core needs from one programme. Every hook is optional."""

    code: str
    label: Any  # a lazy translation
    # Where its flows appear in the case-work menu (lower first).
    menu_position: int = 0
    # The flow viewsets the task inbox, queue and archive list (built once, on first use).
    flow_viewsets: Callable[[], list] | None = None
    # Its pages under the case-work app (``arenden:…``), as URL patterns.
    casework_urls: Callable[[], list] | None = None
    # Its case models (subclasses of ``casework.models.Case``, each with its ``status``),
    # the main one first.
    case_models: tuple[type, ...] = ()
    # Its operations in the integration API (``/api/v1/<code>/…``), as URL patterns.
    api_urls: Callable[[], list] | None = None
    # Its steps the integration API completes (``/api/v1/tasks/{id}/complete/``), keyed by
    # ``decision_key(node)`` ("<flow label>.<node name>").
    api_decisions: Callable[[], dict[str, Decision]] | None = None
    # What its processes work on when it is not a case (the task lists' subject column).
    task_subjects: tuple[TaskSubject, ...] = ()
    # The case each of the given processes works on: {process id: case id}.
    task_cases: Callable[[Iterable[int]], dict[int, UUID]] | None = None
    # Its own reminders (``send_reminders``).
    reminders: tuple[ReminderSource, ...] = ()
    # Creates its demo data (``seed_demo``); writes its one line to ``stdout``.
    seed_demo: Callable[[Any], None] | None = None
    # Its statistics description (``casework.statistics``).
    statistics: Callable[[], ProgrammeStatistics] | None = None
    # Access rule: do the police take part in this case? (SSPF: on a recorded decision.)
    police_take_part: Callable[[Any], bool] | None = None
    # Referral from another programme's case, linked to it (keyword arguments ``user``,
    # ``from_case``, ``kind``, ``reason``, ``purpose``): returns the new case.
    refer_linked: Callable[..., Any] | None = None
    # Referral from another programme's object that is not a case (keyword arguments
    # ``user``, ``person``, ``reason``, ``purpose``, ``source``): returns the new case.
    refer_from: Callable[..., Any] | None = None
    # Its case page (a view function called with ``case_id``): the shared case page
    # (``arenden:case``) serves a case of this programme with it.
    case_page_view: Callable[..., Any] | None = None
    # Access rule: may ``user`` add an action (insats) to ``case`` now? (SIG: the police
    # only while the plan is in force.) Asked by ``casework.services.cases.add_action``.
    may_add_action: Callable[[Any, Any], bool] | None = None
    # Access rules (``casework.policy``). The permission of its cases' coordinators (None:
    # the programme coordinator's, ``casework.roles.PERM_COORDINATE``).
    coordinator_permission: str | None = None
    # Has this case left the local programme (only the police keep it)?
    handed_over: Callable[[Any], bool] | None = None
    # The ids of its cases handed over at or before the given time (a queryset of ids).
    handed_over_cases: Callable[[datetime.datetime], Any] | None = None
    # A permission granted per user that names who takes part in it (GVI's social-services
    # participants); it opens case data, so granting it takes four eyes.
    participant_permission: str | None = None
    # Consent: a guardian's consent counts only when given in writing.
    written_guardian_consent: bool = False
    # Consent: the age from which the person's own consent is required (None: always).
    own_consent_age: Callable[[], int] | None = None
    # The ages its cases are for (youngest, oldest; both included); None: no age limit.
    # ``send_reminders`` reminds the team when the person of an open case leaves it.
    age_range: Callable[[], tuple[int, int]] | None = None
    # School and leisure members who do not coordinate see only ``policy.LIMITED_PARTS``.
    limits_school_and_leisure: bool = False
    # The data subject's register extract (docs/adr/0025-register-extract.md): the rows of
    # its own models about ``person`` that ``organisation`` is responsible for, beyond its
    # case rows (keyword arguments ``person``, ``organisation`` and ``cases``: its cases in
    # the extract), as model instances. Nothing is decrypted here: the core's extract
    # selector opens and shows every field. A row with a ``case_id`` is shown under its case.
    extract_rows: Callable[..., Iterable[Any]] | None = None
    # The models ``extract_rows`` gives rows of (the extract's completeness test).
    extract_models: tuple[type, ...] = ()


_registry: dict[str, Programme] = {}
_viewsets: list = []  # built once, on first use
_decisions: dict = {}  # built once, on first use


def register(programme: Programme) -> None:
    """Add ``programme`` (called from the programme's app config); twice is an error."""
    if programme.code in _registry:
        raise ValueError(f"programme {programme.code!r} is already registered")
    _registry[programme.code] = programme
    _viewsets.clear()
    _decisions.clear()


def registered() -> list[Programme]:
    """Every registered programme, in the order they registered."""
    return list(_registry.values())


def get(code: str) -> Programme | None:
    return _registry.get(code)


# --- What the core's loops ask ----------------------------------------------------------------


def flow_viewsets() -> list:
    """Every programme's flow viewsets, in menu order (the same objects every time)."""
    if not _viewsets:
        for programme in sorted(registered(), key=lambda p: p.menu_position):
            if programme.flow_viewsets is not None:
                _viewsets.extend(programme.flow_viewsets())
    return list(_viewsets)


def flow_classes() -> list:
    """The flows of every programme, in menu order."""
    return [viewset._flow_class for viewset in flow_viewsets()]


def casework_urls() -> list:
    return [
        pattern
        for programme in registered()
        if programme.casework_urls is not None
        for pattern in programme.casework_urls()
    ]


def api_urls() -> list:
    """Every programme's API operations, each under ``<programme code>/``."""
    from django.urls import include, path

    return [
        path(f"{programme.code}/", include(programme.api_urls()))
        for programme in registered()
        if programme.api_urls is not None
    ]


def decision_key(node) -> str:
    """The key of a flow node among the ``api_decisions``: "<flow label>.<node name>"."""
    return f"{node.flow_class.instance.flow_label}.{node.name}"


def api_decision(node) -> Decision | None:
    """The :class:`Decision` the integration API completes flow node ``node`` by, if any."""
    if not _decisions:
        for programme in registered():
            if programme.api_decisions is not None:
                _decisions.update(programme.api_decisions())
        _decisions[""] = None  # built (a registry without any decision)
    return _decisions.get(decision_key(node))


def case_models(code: str) -> tuple[type, ...]:
    """The case models of programme ``code``, the main one first (none: no such one)."""
    programme = get(code)
    return programme.case_models if programme is not None else ()


def task_subjects() -> list[TaskSubject]:
    return [subject for programme in registered() for subject in programme.task_subjects]


def task_cases(process_ids: Iterable[int]) -> dict[int, UUID]:
    """The case each process works on, where it works on one: {process id: case id}."""
    process_ids = set(process_ids)
    found: dict[int, UUID] = {}
    for programme in registered():
        if programme.task_cases is not None and process_ids:
            found.update(programme.task_cases(process_ids))
    return found


def process_cases(process_model) -> Callable[[Iterable[int]], dict[int, UUID]]:
    """A programme's ``task_cases`` hook where each process of ``process_model`` works on
    one case (its ``case`` field): {process id: case id}."""

    def task_cases(process_ids: Iterable[int]) -> dict[int, UUID]:
        return dict(process_model.objects.filter(pk__in=process_ids).values_list("pk", "case_id"))

    return task_cases


def make_reminders(
    kind: str, today: datetime.date, rows: Iterable[tuple[Any, UUID | None, int | None]]
) -> list[Reminder]:
    """One reminder of ``kind`` for ``today`` per (object id, case id, recipient id) in
    ``rows`` (a ``ReminderSource``'s list); a ``None`` case or recipient: none."""
    from casework.models import Reminder

    return [
        Reminder(
            kind=kind,
            object_id=str(object_id),
            date=today,
            case_id=case_id,
            recipient_id=recipient_id,
        )
        for object_id, case_id, recipient_id in rows
    ]


def participant_permissions() -> frozenset[str]:
    """The permissions the programmes name their participants by."""
    return frozenset(
        programme.participant_permission
        for programme in registered()
        if programme.participant_permission
    )


def extract_rows(*, person, organisation, cases) -> list:
    """Every programme's rows of ``person`` for the register extract of ``organisation``:
    the programme's case rows (its own model of each case in ``cases``) and its
    ``extract_rows``."""
    rows: list = []
    for programme in registered():
        own = [case.pk for case in cases if case.programme == programme.code]
        for model in programme.case_models:
            rows.extend(model.objects.filter(pk__in=own).order_by("opened_at"))
        if programme.extract_rows is not None:
            rows.extend(
                programme.extract_rows(
                    person=person,
                    organisation=organisation,
                    cases=[case for case in cases if case.programme == programme.code],
                )
            )
    return rows


def case_rows(*models: type) -> Callable[..., list]:
    """A programme's ``extract_rows`` hook where each of ``models`` hangs off a case (its
    ``case`` field): their rows of the cases in the extract."""

    def extract_rows(*, person, organisation, cases) -> list:
        ids = [case.pk for case in cases]
        return [row for model in models for row in model.objects.filter(case_id__in=ids)]

    return extract_rows


def extract_models() -> frozenset[type]:
    """The programmes' models the register extract covers (case models and extract rows)."""
    return frozenset(
        model
        for programme in registered()
        for model in (*programme.case_models, *programme.extract_models)
    )


def reminder_sources() -> list[ReminderSource]:
    return [source for programme in registered() for source in programme.reminders]


class NotRegistered(LookupError):
    """The programme asked for is not registered, or does not take that kind of referral."""


def _referral_hook(code: str, hook: str) -> Callable[..., Any]:
    programme = get(code)
    function = getattr(programme, hook, None) if programme is not None else None
    if function is None:
        raise NotRegistered(f"programme {code!r} takes no referral by {hook}")
    return function


def refer_linked(code: str, **kwargs: Any) -> Any:
    """Refer the person of one programme's case to programme ``code``, linked to that case
    (SSPF escalating to SIG, SIG closing into the defector programme)."""
    return _referral_hook(code, "refer_linked")(**kwargs)


def refer_from(code: str, **kwargs: Any) -> Any:
    """Refer a person to programme ``code`` from an object that is not a case (a GVI
    group member who accepted the offer of help)."""
    return _referral_hook(code, "refer_from")(**kwargs)
