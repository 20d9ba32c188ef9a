"""The case page's reads of a case's rows, each compiled once a process
(``casework.compiled``): the same statements and instances as the querysets they are
built from, without the ORM compiling them on every page.

Each read returns the rows with the case (or the person) set as their related object,
as the related manager the page used before sets it; the consents' organisations and the
person's guardians are put where ``prefetch_related`` puts them.

The case page's reads run together are prepared on the server once per database session
(``run_together(..., prepared=True)``): the server parses and plans them once a session,
not at every page (docs/adr/0036-fast-pages.md, session 21).
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from casework import policy
from casework.compiled import CompiledQuery, run_together
from casework.models import (
    Action,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseLink,
    CaseMembership,
    Consent,
    Guardian,
    Person,
)

# Stand-ins of the compiled reads: no row has these ids, and no team seat starts or
# ends at this instant.
_ANY_ID = uuid.UUID("00000000-5e1e-c7ed-0000-00000000000a")
_ANY_ORGANISATION = -5_120_000_001
_ANY_TIME = datetime.datetime(1901, 2, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)

# The current team of a case, with the accounts and their organisations, in order.
_team_read = CompiledQuery(
    lambda case_id, now: (
        CaseMembership.objects.filter(case_id=case_id, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user", "user__organisation")
        .order_by("role", "valid_from")
    ),
    case_id=_ANY_ID,
    now=_ANY_TIME,
)


def current_team(case: Case, *, now: datetime.datetime | None = None) -> list[CaseMembership]:
    """The case's team seats current at ``now`` (by role, then since when), each with
    its account and the account's organisation read, and the case as its ``case``."""
    team = _team_read.run(case_id=case.pk, now=now or timezone.now())
    for membership in team:
        membership.case = case
    return team


_consents = CompiledQuery(
    lambda case_id: Consent.objects.filter(case_id=case_id).select_related("guardian"),
    case_id=_ANY_ID,
)
# The organisations each consent covers, in the order ``prefetch_related`` reads them
# (``Organisation``'s ordering, by name).
_consent_organisations = CompiledQuery(
    lambda case_id: (
        Consent.organisations.through.objects.filter(consent__case_id=case_id)
        .select_related("organisation")
        .order_by("organisation__name")
    ),
    case_id=_ANY_ID,
)
_guardians = CompiledQuery(
    lambda person_id: Guardian.objects.filter(person_id=person_id), person_id=_ANY_ID
)
# The same guardians by the case's id (its person's): read with the case itself.
_case_guardians = CompiledQuery(
    lambda case_id: Guardian.objects.filter(
        person_id__in=Case.objects.filter(pk=case_id).values("person_id")
    ),
    case_id=_ANY_ID,
)
_actions = CompiledQuery(
    lambda case_id, organisation_id: (
        Action.objects.filter(case_id=case_id)
        .select_related("organisation", "actor")
        .filter(Q(visibility=Action.Visibility.TEAM) | Q(organisation_id=organisation_id))
    ),
    case_id=_ANY_ID,
    organisation_id=_ANY_ORGANISATION,
)
_decisions = CompiledQuery(
    lambda case_id: CaseDecision.objects.filter(case_id=case_id).select_related(
        "decided_by", "organisation"
    ),
    case_id=_ANY_ID,
)
_legal_bases = CompiledQuery(
    lambda case_id: CaseLegalBasis.objects.filter(case_id=case_id).select_related(
        "legal_basis", "recorded_by"
    ),
    case_id=_ANY_ID,
)
_links = CompiledQuery(
    lambda case_id: CaseLink.objects.filter(
        Q(from_case_id=case_id) | Q(to_case_id=case_id)
    ).select_related("from_case__person", "to_case"),
    case_id=_ANY_ID,
)
_events = CompiledQuery(
    lambda case_id: CaseEvent.objects.filter(case_id=case_id).select_related("actor"),
    case_id=_ANY_ID,
)


def _of_case(rows: list, case: Case) -> list:
    for row in rows:
        row.case = case
    return rows


def consents(case: Case) -> list[Consent]:
    """The case's consents with their guardians, and the organisations each covers
    (``consent.organisations.all()`` reads no more)."""
    found = _of_case(_consents.run(case_id=case.pk), case)
    if found:
        _put_organisations(found, _consent_organisations.run(case_id=case.pk))
    return found


def _put_organisations(consents: list[Consent], covering: list) -> None:
    covered: dict = {consent.pk: [] for consent in consents}
    for row in covering:
        covered[row.consent_id].append(row.organisation)
    for consent in consents:
        _prefetched(consent, "organisations", consent.organisations, covered[consent.pk])


def guardians(person: Person) -> None:
    """The person's guardians, put where ``person.guardians.all()`` finds them."""
    _put_guardians(person, _guardians.run(person_id=person.pk))


def _put_guardians(person: Person, found: list[Guardian]) -> None:
    for guardian in found:
        guardian.person = person
    _prefetched(person, "guardians", person.guardians, found)


def parties(case: Case, *, now: datetime.datetime) -> tuple[list[CaseMembership], list[Consent]]:
    """What the access check and the page both need, in one round trip
    (``casework.compiled.run_together``): the current team (as :func:`current_team`),
    the consents with their guardians and organisations (as :func:`consents`), and the
    person's guardians (as :func:`guardians`: ``case.person.guardians.all()`` reads no
    more)."""
    found = run_together(
        (_team_read, {"case_id": case.pk, "now": now}),
        (_consents, {"case_id": case.pk}),
        (_consent_organisations, {"case_id": case.pk}),
        (_guardians, {"person_id": case.person.pk}),
        prepared=True,
    )
    got = _put_parties(case, now, *found)
    return got.team, got.consents


@dataclass(frozen=True)
class Parties:
    """:func:`parties` of the case ``case_id``, read at ``now`` with the case itself
    (:func:`case_and_parties`)."""

    case_id: uuid.UUID
    now: datetime.datetime
    team: list[CaseMembership]
    consents: list[Consent]


def case_and_parties(
    case_read: CompiledQuery, case_id: uuid.UUID, *, now: datetime.datetime
) -> tuple[Case | None, Parties | None]:
    """A case by ``case_read`` (a compiled read of one case by its ``case_id``, with its
    person: a case page's) and its :func:`parties` at ``now`` in the same execution — the
    person's guardians read by the case's id. ``(None, None)`` when there is no such case.
    Nothing is decrypted; the access check comes after, with these parties."""
    [*cases], *found = run_together(
        (case_read, {"case_id": case_id}),
        (_team_read, {"case_id": case_id, "now": now}),
        (_consents, {"case_id": case_id}),
        (_consent_organisations, {"case_id": case_id}),
        (_case_guardians, {"case_id": case_id}),
        prepared=True,
    )
    if not cases:
        return None, None
    return cases[0], _put_parties(cases[0], now, *found)


def parties_now(
    case: Case, read: Parties | None
) -> tuple[datetime.datetime, list[CaseMembership], list[Consent]]:
    """When and which team and consents a page of ``case`` shows: ``read`` if read for this
    case (:func:`case_and_parties`), else its :func:`parties` read now."""
    if read is not None and read.case_id == case.pk:
        return read.now, read.team, read.consents
    now = timezone.now()
    return now, *parties(case, now=now)


def _put_parties(case: Case, now, team, consents, covering, person_guardians) -> Parties:
    _of_case(team, case)
    _of_case(consents, case)
    _put_organisations(consents, covering)
    _put_guardians(case.person, person_guardians)
    return Parties(case_id=case.pk, now=now, team=team, consents=consents)


def _prefetched(obj, name: str, manager, rows: list) -> None:
    # As ``prefetch_related`` keeps a related manager's rows.
    queryset = manager.get_queryset()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    obj._prefetched_objects_cache = getattr(obj, "_prefetched_objects_cache", {})
    obj._prefetched_objects_cache[name] = queryset


def visible_actions(case: Case, organisation_id: int | None, action_kinds) -> list[Action]:
    """The case's actions the team sees, and its organisation's own; with
    ``action_kinds``, only those of organisations of these kinds (and its own)."""
    if organisation_id is None or action_kinds is not None:
        rows = case.actions.select_related("organisation", "actor").filter(
            Q(visibility=Action.Visibility.TEAM) | Q(organisation_id=organisation_id)
        )
        if action_kinds is not None:
            rows = rows.filter(
                Q(organisation__kind__in=action_kinds) | Q(organisation_id=organisation_id)
            )
        return list(rows)
    return _of_case(_actions.run(case_id=case.pk, organisation_id=organisation_id), case)


def decisions(case: Case) -> list[CaseDecision]:
    return _of_case(_decisions.run(case_id=case.pk), case)


def legal_bases(case: Case) -> list[CaseLegalBasis]:
    return _of_case(_legal_bases.run(case_id=case.pk), case)


def links(case: Case) -> list[CaseLink]:
    """The links from and to the case (the case it starts from with its person)."""
    return _links.run(case_id=case.pk)


def events(case: Case) -> list[CaseEvent]:
    return _of_case(_events.run(case_id=case.pk), case)


@dataclass(frozen=True)
class CaseRows:
    """The case page's rows of a case after its access check (:func:`case_rows`)."""

    actions: list[Action]
    decisions: list[CaseDecision]
    legal_bases: list[CaseLegalBasis]
    links: list[CaseLink]
    events: list[CaseEvent]
    # The rows of the caller's reads run with them (``also``), each read's list in order.
    also: list[list] = field(default_factory=list)


def case_rows(
    case: Case,
    organisation_id: int | None,
    action_kinds,
    *,
    decided: bool,
    legal: bool,
    also: Sequence[tuple] = (),
) -> CaseRows:
    """The rows of the case the page shows, in one round trip
    (``casework.compiled.run_together``): the actions as :func:`visible_actions`, the
    decisions (``decided``) and legal bases (``legal``; else none read), the links and
    the timeline's events — and the caller's compiled reads ``also`` (``(read, values)``
    pairs of the same database: a page's open tasks). The SSPF school/leisure view of the
    actions (``action_kinds``) and a user without an organisation keep the ORM's query of
    the actions, on its own.
    """
    compiled_actions = organisation_id is not None and action_kinds is None
    reads: list = []
    if compiled_actions:
        reads.append((_actions, {"case_id": case.pk, "organisation_id": organisation_id}))
    if decided:
        reads.append((_decisions, {"case_id": case.pk}))
    if legal:
        reads.append((_legal_bases, {"case_id": case.pk}))
    reads += [(_links, {"case_id": case.pk}), (_events, {"case_id": case.pk}), *also]
    found = iter(run_together(*reads, prepared=True))
    actions = (
        _of_case(next(found), case)
        if compiled_actions
        else visible_actions(case, organisation_id, action_kinds)
    )
    return CaseRows(
        actions=actions,
        decisions=_of_case(next(found), case) if decided else [],
        legal_bases=_of_case(next(found), case) if legal else [],
        links=next(found),
        events=_of_case(next(found), case),
        also=list(found),
    )


# --- The case list ----------------------------------------------------------------------

# At most this many cases listed.
LISTED = 500
_ANY_USER = -5_120_000_003
_ANY_SINCE = datetime.datetime(1902, 3, 4, 5, 6, 7, 8, tzinfo=datetime.UTC)


def listed_cases(model: type[Case], reach, *, parties: bool = True):
    """The cases of ``model`` among ``reach`` (a queryset of ids), as the list shows them;
    with ``parties``, their person and owning organisation joined. Without, the case's own
    columns only: the list shows neither, and only the decisions on cases of other
    organisations need them (``casework.selectors.cases.list_cases`` reads them then) —
    a row of the coordinator's hundred-case list built three model instances, two of them
    for nothing (docs/adr/0036-fast-pages.md, session 18)."""
    cases = model.objects.filter(pk__in=reach)
    if parties:
        cases = cases.select_related("person", "owner_organisation")
    return cases.order_by("-opened_at")


@functools.cache
def _reach_read(
    model: type[Case], window: bool, coordinated: tuple[str, ...], parties: bool
) -> CompiledQuery:
    """The case list of a user who stands in for no one, for a case model, whether the
    closed-case lead's window is open, the programmes the user coordinates, and whether
    the cases' parties are joined."""
    stand_ins = {"organisation_id": _ANY_ORGANISATION, "closed_since": _ANY_SINCE}
    return CompiledQuery(
        lambda user_id, now, organisation_id=None, closed_since=None: listed_cases(
            model,
            policy.reach_of(
                user_id=user_id,
                organisation_id=organisation_id,
                now=now,
                closed_since=closed_since,
                coordinated=coordinated,
            ).values("pk"),
            parties=parties,
        )[:LISTED],
        user_id=_ANY_USER,
        now=_ANY_TIME,
        **(stand_ins if window else {}),
    )


def cases_in_reach(
    model: type[Case], user, *, now: datetime.datetime, parties: bool = True
) -> list[Case] | None:
    """The first :data:`LISTED` cases of ``model`` in ``policy.cases_in_reach`` of ``user``
    (who may use the task inbox and stands in for no one), newest first, with their
    ``parties`` joined or not (:func:`listed_cases`); ``None`` for a user of no
    organisation while the closed-case lead's window is open (the ORM's query then)."""
    reach = _reach(model, user, now=now, parties=parties)
    return None if reach is None else reach[0].run(**reach[1])


def absences_and_cases_in_reach(
    model: type[Case], user, *, now: datetime.datetime, parties: bool = True
) -> tuple[frozenset[int], list[Case] | None]:
    """``policy.absent_for(user)`` on ``now``'s local day and :func:`cases_in_reach` in
    one execution, for a user who may use the task inbox: the cases are read as for a
    user who stands in for no one, for the caller to use only when the absences are
    none (most users, most days)."""
    absences = policy.absent_ids_read(user, timezone.localdate(now))
    reach = _reach(model, user, now=now, parties=parties)
    if reach is None:
        [rows] = run_together(absences, prepared=True)
        return policy.absent_among(user, rows), None
    rows, cases = run_together(absences, reach, prepared=True)
    return policy.absent_among(user, rows), cases


def _reach(model: type[Case], user, *, now: datetime.datetime, parties: bool):
    """:func:`cases_in_reach`'s compiled read and its values, or ``None``."""
    days = policy.closed_lead_days()
    if days and user.organisation_id is None:
        return None
    coordinated = policy.coordinated_programmes(user)
    read = _reach_read(model, bool(days), coordinated, parties)
    if not days:
        return read, {"user_id": user.pk, "now": now}
    return read, {
        "user_id": user.pk,
        "now": now,
        "organisation_id": user.organisation_id,
        "closed_since": now - datetime.timedelta(days=days),
    }
