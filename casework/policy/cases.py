"""Who may see a case, and what of it: team, coordinator, break-the-glass, the consent or
legal basis an organisation outside the owner needs (``consents``), the programmes' own
access rules (from the registry), GVI's groups."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import router
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from casework import programmes, roles
from casework.compiled import RawRows, run_together
from casework.models import (
    BreakGlassAccess,
    Case,
    CaseMembership,
    Organisation,
)
from casework.policy.absences import absent_for, deputy_membership
from casework.policy.accounts import can_use_task_inbox, is_active_user, kept_on_user
from casework.policy.consents import (
    DEFAULT_PURPOSE,
    ConsentState,
    consent_state,
    statutory_basis,
    uncovered_purpose,
)

# --- Cases ---------------------------------------------------------------------------
#
# Identified case data is for the case team, the programme coordinator and an
# active break-the-glass access; for a user of another organisation than the
# case's owner (police, school, leisure) only under a valid consent covering that
# organisation or a recorded legal basis that allows the disclosure. Nobody
# else: the steering group, auditors and administrators never get case data.


@dataclass(frozen=True)
class CaseAccess:
    """The answer to "may this user see this case, and on what ground?"."""

    allowed: bool
    via: str = ""  # "team", "coordinator", "deputy", "break_glass"
    legal_basis: str = ""  # code of the basis for disclosure to the user's organisation
    denial: str = ""  # why not (for the access log)
    # The ``Consent.Purpose`` the reading was for, when the consent did not cover it.
    uncovered_purpose: str = ""
    deputy_for: int | None = None  # via "deputy": the absent member's user id
    # Refused for want of consent while givers' consents are missing (``ConsentState.missing``:
    # "self", "guardian", "guardian:<id>" - e.g. a new guardian's), for the access log.
    consent_missing: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


def is_police(user) -> bool:
    return bool(user.organisation_id) and user.organisation.kind == Organisation.Kind.POLICE


def coordinator_permission(code: str) -> str:
    """The permission of the coordinators of programme ``code``'s cases: the programme's
    own where it registered one, else the programme coordinator's (samordnare)."""
    programme = programmes.get(code)
    if programme is not None and programme.coordinator_permission:
        return programme.coordinator_permission
    return roles.PERM_COORDINATE


def coordinates_a_programme(user) -> bool:
    """A programme coordinator of any programme (the coordinators' queue is theirs)."""
    return is_active_user(user) and any(
        user.has_perm(permission)
        for permission in {roles.PERM_COORDINATE}
        | {coordinator_permission(code) for code in Case.Programme.values}
    )


def coordinates(user, case) -> bool:
    """The coordinator of the case's programme (:func:`coordinator_permission`)."""
    return user.has_perm(coordinator_permission(case.programme))


def _request_memo(case) -> dict | None:
    """A per-request memo on the case instance: valid while the request and version last.

    Only inside a request (the view's case instance lives as long as it), and
    only for the version of the case the instance holds: every service that
    changes the team locks the row and bumps the version, which empties it.
    """
    from audit import context

    request = context.current().request
    if request is None:
        return None
    memo = case.__dict__.get("_policy_memo")
    if memo is None or memo["request"] is not request or memo["version"] != case.version:
        memo = {"request": request, "version": case.version, "team": {}}
        case.__dict__["_policy_memo"] = memo
    return memo


def remember_team(case, team: list[CaseMembership]) -> None:
    """Record the case's current team (read by the caller) for the rest of the request."""
    memo = _request_memo(case)
    if memo is not None:
        memo["members"] = {m.user_id: m for m in reversed(team)}


def team_membership(user, case, *, now: datetime | None = None) -> CaseMembership | None:
    memo = _request_memo(case) if now is None else None
    if memo is not None:
        if "members" in memo:
            return memo["members"].get(user.pk)
        if user.pk in memo["team"]:
            return memo["team"][user.pk]
    at = now or timezone.now()
    membership = (
        CaseMembership.objects.filter(case=case, user=user, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .first()
    )
    if memo is not None:
        memo["team"][user.pk] = membership
    return membership


def active_break_glass(user, case, *, now: datetime | None = None) -> BreakGlassAccess | None:
    now = now or timezone.now()
    return BreakGlassAccess.objects.filter(case=case, user=user, expires_at__gt=now).first()


def can_break_glass(user) -> bool:
    return can_use_task_inbox(user) and user.has_perm(roles.PERM_BREAK_GLASS)


def case_access(
    user,
    case,
    *,
    now: datetime | None = None,
    consents=None,
    any_ground: bool = False,
    purpose: str = DEFAULT_PURPOSE,
    known: KnownReach | None = None,
) -> CaseAccess:
    """May ``user`` see the identified data of ``case`` for ``purpose`` (a
    ``Consent.Purpose``: what the page or answer shows)? Deny by default.

    A user of another organisation than the case's owner sees it only on a consent
    covering both the organisation and the purpose, or a recorded statute; a consent
    that covers the organisation but not the purpose is refused with the purpose named
    (``uncovered_purpose``, in the access log's denial).

    ``consents``: the case's consents with their organisations prefetched, when
    the caller has read them (the case page), so they are not read twice.
    ``any_ground``: the caller does not use ``via`` (a change, not a reading), so
    the coordinator's role (no query) is asked before the team (a query); the
    answer is the same.
    ``known``: the user's team seats, deputy seats, break-the-glass accesses and
    closed-case leads, read once for many cases (:func:`known_reach`, the case list);
    the answer is the one the per-case queries give at ``known.now``.
    """
    if not can_use_task_inbox(user):
        return CaseAccess(False, denial="no case role")
    if defector_local_access_cut(user, case):
        return CaseAccess(False, denial="handed over from the local programme")
    if known is not None:
        now = known.now
    if any_ground and coordinates(user, case):
        member = None
    elif known is not None:
        member = known.members.get(case.pk)
    else:
        member = team_membership(user, case, now=now)
    now = now or timezone.now()
    deputy_for = None
    if member:
        via = "team"
    elif known.coordinates(user, case) if known is not None else coordinates(user, case):
        via = "coordinator"
    elif (
        stands_in := known.deputies.get(case.pk)
        if known is not None
        else deputy_membership(user, case, now=now)
    ) is not None:
        # The deputy of an absent member, for the absence's period only.
        via, deputy_for = "deputy", stands_in.user_id
    elif (
        case.pk in known.break_glass
        if known is not None
        else active_break_glass(user, case, now=now)
    ):
        via = "break_glass"
    elif (
        known.closed_lead(user, case)
        if known is not None
        else closed_case_lead(user, case, now=now)
    ):
        via = CLOSED_LEAD
    else:
        return CaseAccess(False, denial="not on the case team")
    if police_rule(case) and is_police(user):
        # The police take part only where the case says so (SSPF), and only under the
        # consents' scope (no statutory basis stands in for the missing decision).
        if not sspf_police_participates(case):
            return CaseAccess(False, via=via, denial="no police participation decision")
        covered = consent_state(case, today=timezone.localdate(now), consents=consents)
        if not covered.covers(user.organisation_id, purpose):
            if uncovered := uncovered_purpose(covered, user.organisation_id, purpose):
                return CaseAccess(False, via=via, denial=uncovered, uncovered_purpose=purpose)
            if covered.missing and not covered.refused:
                return _consent_missing(via, covered)
            return CaseAccess(False, via=via, denial="consent does not cover the police")
        return CaseAccess(True, via=via, legal_basis="consent", deputy_for=deputy_for)
    if user.organisation_id == case.owner_organisation_id:
        return CaseAccess(True, via=via, deputy_for=deputy_for)
    today = timezone.localdate(now)
    state = consent_state(case, today=today, consents=consents)
    if state.covers(user.organisation_id, purpose):
        return CaseAccess(True, via=via, legal_basis="consent", deputy_for=deputy_for)
    basis = statutory_basis(case, user.organisation, today=today)
    if basis is not None:
        return CaseAccess(True, via=via, legal_basis=basis.code, deputy_for=deputy_for)
    if uncovered := uncovered_purpose(state, user.organisation_id, purpose):
        return CaseAccess(False, via=via, denial=uncovered, uncovered_purpose=purpose)
    if state.missing and not state.refused:
        return _consent_missing(via, state)
    return CaseAccess(False, via=via, denial="no legal basis for disclosure")


@dataclass(frozen=True)
class KnownReach:
    """What :func:`case_access` reads of one user and one case, read once for many cases
    (:func:`known_reach`): the answers of ``team_membership``, ``deputy_membership``,
    ``active_break_glass`` and ``closed_case_lead`` at ``now``."""

    now: datetime
    members: dict[UUID, CaseMembership]
    deputies: dict[UUID, CaseMembership]
    break_glass: frozenset[UUID]
    # The user's ended lead seats, by case: (valid_from, valid_to).
    ended_leads: dict[UUID, list[tuple[datetime, datetime]]]
    # The answers of :func:`coordinates`, by programme (asked once a programme).
    coordinated: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def coordinates(self, user, case) -> bool:
        """:func:`coordinates` — a permission check through the authentication backends
        — once a programme, not once a case (the coordinator's list asked it a hundred
        times: docs/adr/0036-fast-pages.md, session 18)."""
        answer = self.coordinated.get(case.programme)
        if answer is None:
            answer = self.coordinated[case.programme] = coordinates(user, case)
        return answer

    def closed_lead(self, user, case) -> bool:
        """:func:`closed_case_lead` from the seats read."""
        closed_at = getattr(case, "closed_at", None)
        days = closed_lead_days()
        if closed_at is None or days == 0 or user.organisation_id != case.owner_organisation_id:
            return False
        if self.now >= closed_at + timedelta(days=days):
            return False
        return any(start < closed_at <= end for start, end in self.ended_leads.get(case.pk, ()))


def known_reach(
    user, case_ids, *, now: datetime | None = None, absent: frozenset[int] | None = None
) -> KnownReach:
    """The user's seats on ``case_ids`` in one statement (and one more for the seats of the
    users they stand in for, when there are any; one for the absences, unless ``absent``
    — :func:`absent_for` on ``now``'s day — is given), whatever their number: for
    :func:`case_access` over a list of cases."""
    now = now or timezone.now()
    case_ids = list(case_ids)
    members: dict[UUID, CaseMembership] = {}
    ended_leads: dict[UUID, list[tuple[datetime, datetime]]] = {}
    break_glass: set[UUID] = set()
    # The user's current seats, (within the closed-case window) ended lead seats and
    # open break-the-glass accesses in one statement; ``team_membership`` takes the
    # first current seat by primary key.
    lead_days = closed_lead_days()
    for kind, values in _own_reach(user.pk, case_ids, now, lead_days):
        if kind == "glass":
            break_glass.add(values[_SEAT_FIELDS.index("case_id")])
            continue
        seat = CaseMembership.from_db(CaseMembership.objects.db, _SEAT_FIELDS, values)
        if seat.valid_from <= now and (seat.valid_to is None or seat.valid_to > now):
            members.setdefault(seat.case_id, seat)
        if lead_days and seat.role == CaseMembership.Role.LEAD and seat.valid_to is not None:
            ended_leads.setdefault(seat.case_id, []).append((seat.valid_from, seat.valid_to))
    deputies: dict[UUID, CaseMembership] = {}
    if absent is None:
        absent = absent_for(user, on=timezone.localdate(now))
    if absent:
        current = Q(valid_from__lte=now) & (Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        for seat in CaseMembership.objects.filter(
            current, case_id__in=case_ids, user_id__in=absent
        ).order_by("pk"):
            deputies.setdefault(seat.case_id, seat)
    return KnownReach(now, members, deputies, frozenset(break_glass), ended_leads)


_SEAT_FIELDS = [field.attname for field in CaseMembership._meta.concrete_fields]


def _own_reach(user_id: int, case_ids: list[UUID], now: datetime, lead_days: int):
    """``("seat", values)`` (``_SEAT_FIELDS``) for each of the user's seats on ``case_ids``
    that is current (``valid_from <= now < valid_to``) or, when ``lead_days``, an ended
    lead seat, by primary key; ``("glass", (case_id, …))`` for each break-the-glass access
    of the user to one of them that has not expired. One statement of fixed text (two
    forms), with the meaning of the ORM filters on ``CaseMembership`` and
    ``BreakGlassAccess`` it replaces."""
    if not case_ids:
        return []
    seats = CaseMembership._meta
    columns = ", ".join(f"m.{field.column}" for field in seats.concrete_fields)
    case_column = seats.get_field("case").column
    by_pk = 2 + [field.column for field in seats.concrete_fields].index(seats.pk.column)
    wanted = "(m.valid_from <= %(now)s AND (m.valid_to IS NULL OR m.valid_to > %(now)s))"
    if lead_days:
        wanted = f"({wanted} OR (m.role = %(lead)s AND m.valid_to IS NOT NULL))"
    sql = (
        f"SELECT 'seat', {columns} FROM {seats.db_table} m"  # noqa: S608 (names, no input)
        f" WHERE m.user_id = %(user)s AND m.{case_column} = ANY(%(cases)s) AND {wanted}"
        f" UNION ALL SELECT 'glass', {_glass_first(seats.concrete_fields, case_column)}"
        f" FROM {BreakGlassAccess._meta.db_table} b"
        " WHERE b.user_id = %(user)s AND b.case_id = ANY(%(cases)s) AND b.expires_at > %(now)s"
        f" ORDER BY 1 DESC, {by_pk}"
    )
    # Prepared once per database session, as the pages' reads (docs/adr/0036, session 22).
    [rows] = run_together(
        (
            _own_reach_read(sql, router.db_for_read(CaseMembership)),
            {"user": user_id, "cases": case_ids, "now": now, "lead": CaseMembership.Role.LEAD},
        ),
        prepared=True,
    )
    return [(row[0], row[1:]) for row in rows]


@functools.cache
def _own_reach_read(sql: str, using: str) -> RawRows:
    return RawRows(sql, using)


def _glass_first(fields, case_column: str) -> str:
    """The break-the-glass branch's columns: its case id where the seat's is, NULL
    elsewhere."""
    return ", ".join("b.case_id" if f.column == case_column else "NULL" for f in fields)


def _consent_missing(via: str, state: ConsentState) -> CaseAccess:
    """Refused because a giver's consent is missing (a new guardian's, the person's own
    from 18): sharing on consent waits for it (ADR 0028, "A new guardian")."""
    return CaseAccess(
        False, via=via, denial="consent incomplete: missing", consent_missing=state.missing
    )


# The lead social worker's reading of a case after it closed (documentation duty).
CLOSED_LEAD = "closed_lead"


def closed_lead_days() -> int:
    return max(0, int(settings.SAMVERKAN.get("CLOSED_CASE_LEAD_READ_DAYS", 0)))


def closed_case_lead(user, case, *, now: datetime | None = None) -> bool:
    """The lead social worker of a closed case, within the documentation window.

    A close ends every membership (``valid_to`` = the close). The user who was the lead
    at that moment, working for the organisation that led the case, keeps *reading* it
    for ``SAMVERKAN["CLOSED_CASE_LEAD_READ_DAYS"]`` after the close, so the social
    services' own journal can be completed (SoL 11 kap.). Every reading is a ``CONSULT``
    event with ``via`` = ``closed_lead``; no change is allowed on this ground
    (``casework.services.cases.require_access``). ADR 0012.
    """
    closed_at = getattr(case, "closed_at", None)
    days = closed_lead_days()
    if closed_at is None or days == 0 or user.organisation_id != case.owner_organisation_id:
        return False
    now = now or timezone.now()
    if now >= closed_at + timedelta(days=days):
        return False
    return CaseMembership.objects.filter(
        case=case,
        user=user,
        role=CaseMembership.Role.LEAD,
        valid_from__lt=closed_at,
        valid_to__gte=closed_at,
    ).exists()


def cases_in_reach(user, *, now: datetime | None = None, absent: frozenset[int] | None = None):
    """The cases a user may be able to open (team, coordinator, break-the-glass) — a queryset.
    ``absent``: :func:`absent_for` on ``now``'s day, if already read.

    The list still goes through :func:`case_access` for each case before
    anything identified is shown (consent and legal basis are per case).
    """
    if not can_use_task_inbox(user):
        return Case.objects.none()
    now = now or timezone.now()
    if absent is None:
        absent = absent_for(user, on=timezone.localdate(now))
    days = closed_lead_days()
    return reach_of(
        user_id=user.pk,
        organisation_id=user.organisation_id,
        now=now,
        absent=absent,
        closed_since=now - timedelta(days=days) if days else None,
        coordinated=coordinated_programmes(user),
    )


def coordinated_programmes(user) -> tuple[str, ...]:
    """The programmes whose every case ``user`` coordinates."""
    return tuple(
        code for code in Case.Programme.values if user.has_perm(coordinator_permission(code))
    )


def reach_of(
    *,
    user_id,
    organisation_id,
    now: datetime,
    absent=(),
    closed_since: datetime | None = None,
    coordinated: tuple[str, ...] = (),
):
    """:func:`cases_in_reach`'s queryset from its parts: ``closed_since``, the start of the
    closed-case lead's window (``None``: no window); ``coordinated``, the programmes the
    user coordinates."""
    reach = Q(
        memberships__user_id=user_id,
        memberships__valid_from__lte=now,
    ) & (Q(memberships__valid_to__isnull=True) | Q(memberships__valid_to__gt=now))
    reach |= Q(break_glass__user_id=user_id, break_glass__expires_at__gt=now)
    if absent:
        # The cases of the members the user stands in for today (``policy.absences``).
        reach |= Q(memberships__user_id__in=absent, memberships__valid_from__lte=now) & (
            Q(memberships__valid_to__isnull=True) | Q(memberships__valid_to__gt=now)
        )
    if closed_since is not None:
        # The lead of a case closed within the documentation window (``closed_case_lead``).
        reach |= Q(
            closed_at__gt=closed_since,
            owner_organisation_id=organisation_id,
            memberships__user_id=user_id,
            memberships__role=CaseMembership.Role.LEAD,
            memberships__valid_to__gte=F("closed_at"),
        )
    if coordinated:
        reach |= Q(programme__in=coordinated)
    return Case.objects.filter(reach).distinct()


# --- Defector programme -------------------------------------------------------------
#
# A defector case that left the local programme (handed over to the police region
# or the national programme) is closed to every local user: only police handlers
# keep it. Local users keep the fact of the hand-over (``hand_over_notice``) and
# social services' linked support case, which is a case of its own. Policy, not
# deletion: nothing is removed, and a case returned to the local programme after
# an approved lowering is open to its team again.

# Team roles that make a user a named handler of a person with protected identity.
NAMED_HANDLER_ROLES = (
    CaseMembership.Role.LEAD,
    CaseMembership.Role.POLICE_CONTACT,
    CaseMembership.Role.COORDINATOR,
)


def defector_handed_over(case) -> bool:
    """Whether ``case`` (a Case or a programme's case) left the local programme: its
    programme's ``handed_over`` rule (the defector programme's) says so."""
    programme = programmes.get(case.programme)
    return (
        programme is not None and programme.handed_over is not None and programme.handed_over(case)
    )


def defector_local_access_cut(user, case) -> bool:
    """A handed-over defector case is for police handlers only."""
    return defector_handed_over(case) and not is_police(user)


def named_handler(user, case, *, team: list[CaseMembership] | None = None) -> bool:
    """A named handler of the case: on its team now as lead, police contact or coordinator.

    Only they see the address, phone and area of a person with protected identity
    in a defector case.
    """
    if team is not None:
        return any(m.user_id == user.pk and m.role in NAMED_HANDLER_ROLES for m in team)
    membership = team_membership(user, case)
    return membership is not None and membership.role in NAMED_HANDLER_ROLES


# --- SSPF: police participation and what each role sees ---------------------------------------


def police_rule(case) -> bool:
    """The case's programme decides case by case whether the police take part (SSPF)."""
    programme = programmes.get(case.programme)
    return programme is not None and programme.police_take_part is not None


def sspf_police_participates(case) -> bool:
    """The police take part in ``case``: its programme's rule says so (SSPF: the newest
    police participation decision), or the programme has no such rule."""
    programme = programmes.get(case.programme)
    if programme is None or programme.police_take_part is None:
        return True
    return programme.police_take_part(case)


@dataclass(frozen=True)
class CaseParts:
    """Which parts of a case page a user sees (the case page selector honours it).

    ``None`` means all: the default for every programme and role but those below.
    """

    person_fields: tuple[str, ...] | None = None
    case_texts: tuple[str, ...] | None = None
    action_kinds: frozenset[str] | None = None  # organisation kinds whose actions are shown
    guardians: bool = True
    decisions: bool = True
    legal_bases: bool = True
    event_reasons: bool = True
    link_reasons: bool = True
    programme_records: bool = True  # SSPF: risk assessments, police decisions, meeting decisions

    @property
    def full(self) -> bool:
        return self == CaseParts()


ALL_PARTS = CaseParts()
# School and leisure members of a programme that limits them (SSPF): who the young person
# is, the commitment plan and the school's and leisure's actions (their own organisation's
# too) — not the concern, the risk assessment, the mapping conversation, police or
# social-services notes, decisions or legal bases.
LIMITED_PARTS = CaseParts(
    person_fields=("name", "birth_date"),
    case_texts=("plan_goals",),
    action_kinds=frozenset({Organisation.Kind.SCHOOL, Organisation.Kind.LEISURE}),
    guardians=False,
    decisions=False,
    legal_bases=False,
    event_reasons=False,
    link_reasons=False,
    programme_records=False,
)


def case_parts(user, case) -> CaseParts:
    """The parts of ``case`` that ``user`` (who has access to it) sees."""
    if (
        (programme := programmes.get(case.programme)) is not None
        and programme.limits_school_and_leisure
        and user.organisation_id is not None
        and user.organisation.kind in (Organisation.Kind.SCHOOL, Organisation.Kind.LEISURE)
        and not coordinates(user, case)
    ):
        return LIMITED_PARTS
    return ALL_PARTS


def _team_seats(start: datetime, end: datetime):
    """The team seats that counted at some time in [start, end).

    A membership counts while it grants the team's access: it ends when the case closes
    (``casework.services.cases.transition``) or the coordinator ends it, and for a user
    outside the police a defector case handed over before ``start`` is no longer theirs
    (``defector_local_access_cut``), whatever its memberships say.
    """
    seats = CaseMembership.objects.filter(valid_from__lt=end).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=start)
    )
    for programme in programmes.registered():
        if programme.handed_over_cases is not None:
            seats = seats.exclude(
                ~Q(user__organisation__kind=Organisation.Kind.POLICE)
                & Q(case_id__in=programme.handed_over_cases(start))
            )
    return seats


def case_team_person_ids(*, user_id: int, start: datetime, end: datetime) -> frozenset[UUID]:
    """The persons in cases whose team had ``user_id`` as a member at some time in
    [start, end) (:func:`_team_seats`)."""
    seats = _team_seats(start, end).filter(user_id=user_id)
    return frozenset(seats.values_list("case__person_id", flat=True))


def own_case_access(start: datetime, end: datetime) -> Exists:
    """For a query over access-log events: true where the event's user was on the team of
    a case of the event's person at some time in [start, end) (:func:`_team_seats`) — for
    every user of the period at once, inside the statement (the log review's "access
    outside own cases", one query for a month however many users it has)."""
    return Exists(
        _team_seats(start, end).filter(
            user_id=OuterRef("user_id"), case__person_id=OuterRef("person_id")
        )
    )


# --- GVI (groups, members, call-ins, notifications, sanctions) ---------------------------
#
# GVI objects are not cases. Groups and their members are seen by the police, the
# GVI coordinator (``samordnare``) and the social-services participants named by
# the programme's participant permission (granted per user); school and
# leisure staff, the steering group, auditors and administrators see none of it.


def coordinates_gvi(user) -> bool:
    """The GVI coordinator: the programme coordinator of SIG, SSPF and GVI."""
    return can_use_task_inbox(user) and user.has_perm(roles.PERM_COORDINATE)


def gvi_police(user) -> bool:
    """A police officer with a case role: records incidents, legal assessments, deliveries."""
    return can_use_task_inbox(user) and is_police(user)


def gvi_participant(user) -> bool:
    """A named social-services participant."""
    return (
        can_use_task_inbox(user)
        and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES
        and any(user.has_perm(perm) for perm in programmes.participant_permissions())
    )


def gvi_access(user) -> CaseAccess:
    """May ``user`` see GVI groups and members? Deny by default. Asked several times a
    page (the menus, the task counts): kept on the user object (``kept_on_user``)."""
    if not can_use_task_inbox(user):
        return CaseAccess(False, denial="no case role")
    return kept_on_user(user, "_samverkan_gvi_access", _gvi_access)


def _gvi_access(user) -> CaseAccess:
    if not can_use_task_inbox(user):
        return CaseAccess(False, denial="no case role")
    if coordinates_gvi(user):
        return CaseAccess(True, via="coordinator")
    if gvi_police(user):
        return CaseAccess(True, via="police")
    if gvi_participant(user):
        return CaseAccess(True, via="participant")
    return CaseAccess(False, denial="not a GVI participant")


def may_record_sanction(user, sanction) -> bool:
    """Only the organisation whose lever it is records a sanction's steps."""
    return bool(gvi_access(user)) and user.organisation_id == sanction.organisation_id


def may_withdraw_sanction(user, sanction) -> bool:
    """A lever that will not be carried out: withdrawn by its own organisation or by the
    GVI coordinator (who decided the sanctions)."""
    return may_record_sanction(user, sanction) or coordinates_gvi(user)


def may_erase_gvi_group(user) -> bool:
    """Erasing a group (destroying its data key): the GVI coordinator only."""
    return coordinates_gvi(user)


def coordinates_gvi_or_police(user) -> bool:
    """Registers groups and members, requests notifications: the coordinator or police."""
    return coordinates_gvi(user) or gvi_police(user)
