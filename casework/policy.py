"""Who may see what: every access decision of Samverkan is made here.

Deny by default. Views, viewflow applications, exports and the admin ask these
functions and never decide on group names or flags themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from casework import roles
from casework.models import (
    BreakGlassAccess,
    Case,
    CaseLegalBasis,
    CaseMembership,
    Consent,
    LegalBasis,
    Organisation,
    User,
)


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def can_use_task_inbox(user) -> bool:
    """Case workers: tasks and cases. Needs the role *and* an organisation to act for.

    Asked dozens of times a page (menus, views, policy): the answer is kept on the
    user object for as long as Django's permission cache of that object (dropping
    that cache drops this answer too).
    """
    if not (_active(user) and user.organisation_id is not None):
        return False
    cached = getattr(user, "_samverkan_task_inbox", None)
    perms = getattr(user, "_perm_cache", None)
    if cached is not None and perms is not None and cached[0] is perms:
        return cached[1]
    allowed = user.has_perm(roles.PERM_TASK_INBOX)
    user._samverkan_task_inbox = (getattr(user, "_perm_cache", None), allowed)
    return allowed


def can_view_statistics(user) -> bool:
    """The steering group: anonymised statistics only."""
    return _active(user) and user.has_perm(roles.PERM_STATISTICS)


def can_view_access_log(user) -> bool:
    """Auditors: the access log and its integrity, nothing else."""
    return _active(user) and user.has_perm(roles.PERM_ACCESS_LOG)


def case_team_person_ids(*, user_id: int, start: datetime, end: datetime) -> frozenset[UUID]:
    """The persons in cases whose team had ``user_id`` as a member at some time in [start, end).

    The log review's "access outside own cases" rule asks this.
    A membership counts while it grants the team's access: it ends when the case closes
    (``casework.services.cases.transition``) or the coordinator ends it, and for a user
    outside the police a defector case handed over before ``start`` is no longer theirs
    (``defector_local_access_cut``), whatever its memberships say.
    """
    memberships = CaseMembership.objects.filter(user_id=user_id, valid_from__lt=end).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=start)
    )
    police = User.objects.filter(pk=user_id, organisation__kind=Organisation.Kind.POLICE).exists()
    if not police:
        memberships = memberships.exclude(case__defectorcase__handed_over_at__lte=start)
    return frozenset(memberships.values_list("case__person_id", flat=True))


def can_manage_users(user) -> bool:
    """Administrators: users and organisations in the admin, never case data."""
    return _active(user) and user.is_staff


def can_lift_sign_in_locks(user) -> bool:
    """Administrators lift a sign-in lock (no four eyes: it grants nothing, ADR 0016)."""
    return can_manage_users(user) and user.has_perm("axes.delete_accessattempt")


# --- Four eyes on power (docs/adr/0014-four-eyes-on-power.md) --------------------------
#
# Which roles one administrator may hand out alone is decided from the
# permissions a role (group) carries, never from its name, and deny by default:
# a role that carries any permission outside ``UNGUARDED_PERMISSIONS`` (case
# data, the access log, account management, anything added later) is granted
# only when a second administrator approves.

CASE_DATA_PERMISSIONS = frozenset(
    {
        roles.PERM_TASK_INBOX,
        roles.PERM_COORDINATE,
        roles.PERM_COORDINATE_DEFECTOR,
        roles.PERM_BREAK_GLASS,
        roles.PERM_ERASE_PERSON,
        "workflows.take_part_in_gvi",
    }
)
ACCESS_LOG_PERMISSIONS = frozenset({roles.PERM_ACCESS_LOG})
UNGUARDED_PERMISSIONS = frozenset({roles.PERM_STATISTICS})
# The model permission an administrator needs for each kind of change request.
_CHANGE_REQUEST_PERMISSIONS = {
    "grant_role": "casework.change_user",
    "password_link": "casework.change_user",
    "legal_basis": "casework.change_legalbasis",
    "organisation_kind": "casework.change_organisation",
    # Single sign-on (docs/adr/0018-single-sign-on.md).
    "identity_provider": "casework.change_identityprovider",
    "external_identity": "casework.change_externalidentity",
}


def role_permissions(group) -> frozenset[str]:
    """The permissions of a role as ``app_label.codename``."""
    return frozenset(
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    )


def gives_case_data(permissions) -> bool:
    """Does this set of permissions open case data (any flow's permission does too)?"""
    return any(
        perm in CASE_DATA_PERMISSIONS or perm.split(".", 1)[0] in ("workflows", "viewflow")
        for perm in permissions
    )


def gives_access_log(permissions) -> bool:
    return bool(ACCESS_LOG_PERMISSIONS & set(permissions))


def role_needs_four_eyes(group) -> bool:
    """Granting this role waits for a second administrator (deny by default)."""
    return not role_permissions(group) <= UNGUARDED_PERMISSIONS


def roles_conflict(permissions) -> bool:
    """One account never holds both a case role and the auditor's access log."""
    return gives_case_data(permissions) and gives_access_log(permissions)


def account_permissions(user, *, extra_groups=()) -> frozenset[str]:
    """What ``user`` would hold with ``extra_groups`` added: its roles, its own
    permissions and, for a superuser, every permission there is."""
    if user.is_superuser:
        return frozenset({*CASE_DATA_PERMISSIONS, *ACCESS_LOG_PERMISSIONS})
    perms = set(
        f"{app_label}.{codename}"
        for app_label, codename in user.user_permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    from django.contrib.auth.models import Permission

    groups = [g.pk for g in extra_groups]
    group_perms = Permission.objects.filter(
        Q(group__user=user) | Q(group__pk__in=groups)
    ).values_list("content_type__app_label", "codename")
    perms.update(f"{app_label}.{codename}" for app_label, codename in group_perms)
    return frozenset(perms)


def can_request_admin_change(user, kind: str) -> bool:
    """Administrators ask for a change of power (it waits for a second one)."""
    perm = _CHANGE_REQUEST_PERMISSIONS.get(kind)
    return (
        can_manage_users(user)
        and perm is not None
        and user.has_perm("casework.add_adminchangerequest")
        and user.has_perm(perm)
    )


def can_decide_admin_change(user, kind: str) -> bool:
    """May ``user`` approve or reject a request of this kind (never their own: the
    service refuses that with a message of its own)."""
    perm = _CHANGE_REQUEST_PERMISSIONS.get(kind)
    return (
        can_manage_users(user)
        and perm is not None
        and user.has_perm("casework.decide_adminchangerequest")
        and user.has_perm(perm)
    )


def can_view_change_requests(user) -> bool:
    """Administrators (in the admin) and auditors (read-only, in the audit pages)."""
    return (
        can_manage_users(user) and user.has_perm("casework.view_adminchangerequest")
    ) or can_view_access_log(user)


def can_process_person_data(user) -> bool:
    """Registering, finding and reading persons: case workers acting for an organisation.

    The case-team rules (need to know per case, consent, legal basis for police)
    narrow this when cases exist; until then a person's data is open to case roles
    only, and every read is in the access log.
    """
    return can_use_task_inbox(user)


def can_erase_person(user) -> bool:
    """Erasure (crypto-shredding) from the UI: only with the explicit permission.

    No role group has it yet; operators erase with ``manage.py erase_person``.
    """
    return _active(user) and user.has_perm(roles.PERM_ERASE_PERSON)


def start_url(user) -> str | None:
    """The page a user lands on after logging in, or ``None`` for a user with no role."""
    if can_use_task_inbox(user):
        return reverse("arenden:inbox")
    if can_view_statistics(user):
        return reverse("statistik:index")
    if can_view_access_log(user):
        return reverse("granskning:index")
    if can_manage_users(user):
        return reverse("admin:index")
    return None


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
    via: str = ""  # "team", "coordinator", "break_glass"
    legal_basis: str = ""  # code of the basis for disclosure to the user's organisation
    denial: str = ""  # why not (for the access log)

    def __bool__(self) -> bool:
        return self.allowed


def is_police(user) -> bool:
    return bool(user.organisation_id) and user.organisation.kind == Organisation.Kind.POLICE


def coordinates_a_programme(user) -> bool:
    """A programme coordinator of any programme (the coordinators' queue is theirs)."""
    return _active(user) and (
        user.has_perm(roles.PERM_COORDINATE) or user.has_perm(roles.PERM_COORDINATE_DEFECTOR)
    )


def coordinates(user, case) -> bool:
    """The programme coordinator: SIG/SSPF (samordnare), defector (avhopparsamordnare)."""
    if case.programme == Case.Programme.DEFECTOR:
        return user.has_perm(roles.PERM_COORDINATE_DEFECTOR)
    return user.has_perm(roles.PERM_COORDINATE)


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


def consent_state(case, *, today: date | None = None, consents=None) -> ConsentState:
    """Whether the required consents are in place, and which organisations they all cover.

    Required: the person's own consent, and while the person is under 18 the
    consent of every registered guardian (at least one). A refusal or a
    withdrawal anywhere means no valid consent. ``consents``: the case's
    consents with their organisations prefetched, when the caller has read them.
    """
    today = today or timezone.localdate()
    if consents is None:
        consents = case.consents.all().prefetch_related("organisations")
    # A withdrawal ends the consent for good: an older consent of the same giver
    # must not take the withdrawn one's place.
    withdrawn = any(c.withdrawn_at is not None for c in consents)
    consents = [
        c
        for c in consents
        if c.withdrawn_at is None and (c.valid_until is None or c.valid_until >= today)
    ]
    refused = any(c.decision == Consent.Decision.REFUSED for c in consents)
    given = [c for c in consents if c.decision == Consent.Decision.GIVEN]
    own = [c for c in given if c.giver == Consent.Giver.SELF]
    required = list(own[-1:])
    youngest, oldest = _age_bounds(case.person, on=today)
    missing = [] if own or not _own_consent_required(case, oldest) else ["self"]
    if case.programme == Case.Programme.SSPF:
        # SSPF: the guardians' consent counts only in writing.
        given = [
            c for c in given if c.giver == Consent.Giver.SELF or c.form == Consent.Form.WRITTEN
        ]
    if youngest < 18:
        prefetched = getattr(case.person, "_prefetched_objects_cache", {}).get("guardians")
        if prefetched is not None:
            guardians = [guardian.pk for guardian in prefetched]
        else:
            guardians = list(case.person.guardians.values_list("id", flat=True))
        if not guardians:
            missing.append("guardian")
        for guardian_id in guardians:
            theirs = [c for c in given if c.guardian_id == guardian_id]
            if theirs:
                required.append(theirs[-1])
            else:
                missing.append(f"guardian:{guardian_id}")
    covered: set[int] | None = None
    for consent in required:
        orgs = {org.pk for org in consent.organisations.all()}
        covered = orgs if covered is None else covered & orgs
    complete = not refused and not missing and not withdrawn
    return ConsentState(
        complete=complete,
        refused=refused,
        missing=tuple(missing),
        organisations=frozenset(covered or ()) if complete else frozenset(),
    )


def _age_bounds(person, *, on: date) -> tuple[int, int]:
    """The youngest and the oldest the person can be on ``on``, for the age rules.

    The same age twice while the person's data can be read. An erased person's date
    of birth is gone with the data key: only the plain birth year is left, which
    leaves two possible ages. Each rule then takes the stricter one (guardians'
    consent while the person may still be under 18, own consent once they may be
    old enough, a statute with an age limit only while they are surely under it),
    so an erasure never widens what anyone may see (docs/adr/0004, addendum).
    """
    if person.erased_at is not None:
        oldest = on.year - person.birth_year
        return oldest - 1, oldest
    from casework.selectors.persons import person_age

    age = person_age(person, on=on)
    return age, age


def _own_consent_required(case, age: int) -> bool:
    """SIG (and every other programme): always. SSPF: from the configured age."""
    if case.programme == Case.Programme.SSPF:
        return age >= settings.SAMVERKAN["SSPF_OWN_CONSENT_AGE"]
    return True


@dataclass(frozen=True)
class ConsentState:
    complete: bool
    refused: bool
    missing: tuple[str, ...]
    organisations: frozenset[int]


def statutory_basis(case, organisation, *, today: date | None = None) -> LegalBasis | None:
    """A recorded legal basis (other than consent) allowing disclosure to ``organisation``."""
    today = today or timezone.localdate()
    recorded = (
        CaseLegalBasis.objects.filter(case=case, revoked_at__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("legal_basis")
    )
    for entry in recorded:
        basis = entry.legal_basis
        if not basis.is_active or basis.kind != LegalBasis.Kind.STATUTE:
            continue
        if basis.discloser_kinds and case.owner_organisation.kind not in basis.discloser_kinds:
            continue
        if basis.recipient_kinds and organisation.kind not in basis.recipient_kinds:
            continue
        if basis.max_age is not None and _age_bounds(case.person, on=today)[1] >= basis.max_age:
            continue
        return basis
    return None


def disclosure_basis(case, organisation, *, today: date | None = None, consents=None) -> str:
    """The code of the basis on which ``organisation`` may see data the case's owner holds.

    ``""`` when there is none. Consent first (what the person agreed to), then
    a recorded statute. ``consents``: as for :func:`consent_state`.
    """
    if organisation.pk in consent_state(case, today=today, consents=consents).organisations:
        return "consent"
    basis = statutory_basis(case, organisation, today=today)
    return basis.code if basis else ""


def case_access(
    user, case, *, now: datetime | None = None, consents=None, any_ground: bool = False
) -> CaseAccess:
    """May ``user`` see the identified data of ``case``? Deny by default.

    ``consents``: the case's consents with their organisations prefetched, when
    the caller has read them (the case page), so they are not read twice.
    ``any_ground``: the caller does not use ``via`` (a change, not a reading), so
    the coordinator's role (no query) is asked before the team (a query); the
    answer is the same.
    """
    if not can_use_task_inbox(user):
        return CaseAccess(False, denial="no case role")
    if defector_local_access_cut(user, case):
        return CaseAccess(False, denial="handed over from the local programme")
    if any_ground and coordinates(user, case):
        member = None
    else:
        member = team_membership(user, case, now=now)
    now = now or timezone.now()
    if member:
        via = "team"
    elif coordinates(user, case):
        via = "coordinator"
    elif active_break_glass(user, case, now=now):
        via = "break_glass"
    elif closed_case_lead(user, case, now=now):
        via = CLOSED_LEAD
    else:
        return CaseAccess(False, denial="not on the case team")
    if case.programme == Case.Programme.SSPF and is_police(user):
        # SSPF: the police take part only where the case says so, and only under the
        # consents' scope (no statutory basis stands in for the missing decision).
        if not sspf_police_participates(case):
            return CaseAccess(False, via=via, denial="no police participation decision")
        covered = consent_state(case, today=timezone.localdate(now), consents=consents)
        if user.organisation_id not in covered.organisations:
            return CaseAccess(False, via=via, denial="consent does not cover the police")
        return CaseAccess(True, via=via, legal_basis="consent")
    if user.organisation_id == case.owner_organisation_id:
        return CaseAccess(True, via=via)
    basis = disclosure_basis(
        case, user.organisation, today=timezone.localdate(now), consents=consents
    )
    if not basis:
        return CaseAccess(False, via=via, denial="no legal basis for disclosure")
    return CaseAccess(True, via=via, legal_basis=basis)


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


def cases_in_reach(user):
    """The cases a user may be able to open (team, coordinator, break-the-glass) — a queryset.

    The list still goes through :func:`case_access` for each case before
    anything identified is shown (consent and legal basis are per case).
    """
    if not can_use_task_inbox(user):
        return Case.objects.none()
    now = timezone.now()
    reach = Q(
        memberships__user=user,
        memberships__valid_from__lte=now,
    ) & (Q(memberships__valid_to__isnull=True) | Q(memberships__valid_to__gt=now))
    reach |= Q(break_glass__user=user, break_glass__expires_at__gt=now)
    days = closed_lead_days()
    if days:
        # The lead of a case closed within the documentation window (``closed_case_lead``).
        reach |= Q(
            closed_at__gt=now - timedelta(days=days),
            owner_organisation_id=user.organisation_id,
            memberships__user=user,
            memberships__role=CaseMembership.Role.LEAD,
            memberships__valid_to__gte=F("closed_at"),
        )
    programmes = []
    if user.has_perm(roles.PERM_COORDINATE):
        programmes += [Case.Programme.SIG, Case.Programme.SSPF]
    if user.has_perm(roles.PERM_COORDINATE_DEFECTOR):
        programmes.append(Case.Programme.DEFECTOR)
    if programmes:
        reach |= Q(programme__in=programmes)
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
    """Whether ``case`` (a Case or a DefectorCase) is a defector case handed over."""
    if case.programme != Case.Programme.DEFECTOR:
        return False
    if "handed_over_at" in case.__dict__:
        return case.__dict__["handed_over_at"] is not None
    return Case.objects.filter(pk=case.pk, defectorcase__handed_over_at__isnull=False).exists()


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


def sspf_police_participates(case) -> bool:
    """The newest police participation decision of an SSPF case says the police take part
    (the programme's rule, from the programme registry)."""
    from casework import programmes

    return programmes.get(Case.Programme.SSPF).police_take_part(case)


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
# SSPF school and leisure members: who the young person is, the commitment plan and the
# school's and leisure's actions (their own organisation's too) — not the concern, the risk
# assessment, the mapping conversation, police or social-services notes, decisions or
# legal bases.
SSPF_SCHOOL_LEISURE_PARTS = CaseParts(
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
        case.programme == Case.Programme.SSPF
        and user.organisation_id is not None
        and user.organisation.kind in (Organisation.Kind.SCHOOL, Organisation.Kind.LEISURE)
        and not coordinates(user, case)
    ):
        return SSPF_SCHOOL_LEISURE_PARTS
    return ALL_PARTS


# --- GVI (groups, members, call-ins, notifications, sanctions) ---------------------------
#
# GVI objects are not cases. Groups and their members are seen by the police, the
# GVI coordinator (``samordnare``) and the social-services participants named by
# the ``workflows.take_part_in_gvi`` permission (granted per user); school and
# leisure staff, the steering group, auditors and administrators see none of it.

PERM_GVI_PARTICIPANT = "workflows.take_part_in_gvi"


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
        and user.has_perm(PERM_GVI_PARTICIPANT)
    )


def gvi_access(user) -> CaseAccess:
    """May ``user`` see GVI groups and members? Deny by default."""
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


# --- Tasks (viewflow): who owns a step, whose queue it is in, who releases it ------------------
#
# Every human step has an owner or a queue. A step of a named team role (the lead social
# worker, the police contact officer) is taken only by that role on the case's team; any
# other step by the holders of its queue permission (``.Permission(...)``) whom the
# step's own rule admits. A task without an owner and without a queue is nobody's:
# it is in no queue, and only the programme's coordinators see it (to reassign it).
# The coordinators of a flow (``coordinator_permission`` on the flow class) release
# and reassign its tasks.


def flow_coordinator_permission(flow_class) -> str:
    return getattr(flow_class, "coordinator_permission", roles.PERM_COORDINATE)


def coordinates_flow(user, flow_class) -> bool:
    """A coordinator of the programme whose flow ``flow_class`` is."""
    return can_use_task_inbox(user) and user.has_perm(flow_coordinator_permission(flow_class))


def may_see_flow_overview(user, flow_class) -> bool:
    """viewflow's dashboard and lists of a flow's processes and tasks (case numbers and
    states): the flow's coordinators who may open every case of it. A police coordinator
    may not (the police see a case only once consent or a legal basis covers them), so
    they work from their inbox, queue and case list, which are narrowed case by case."""
    return coordinates_flow(user, flow_class) and not is_police(user)


def may_see_task(user, task) -> bool:
    """A task's pages (its index and detail): whoever may see its process (its case)."""
    flow = task.flow_task.flow_class.instance
    return can_use_task_inbox(user) and bool(flow.has_view_permission(user, task.process.coerced))


def _task_case(task):
    return getattr(task.coerced_process, "case", None)


def holds_team_role(user, case, role: str) -> bool:
    """``user`` is on ``case``'s team now, in ``role``."""
    if case is None or not _active(user):
        return False
    membership = team_membership(user, case)
    return membership is not None and membership.role == role


def may_do_step(user, task) -> bool:
    """May ``user`` own ``task`` (take it, be given it)? The step's team role or rule, or
    else the step's queue permission."""
    if not (_active(user) and can_use_task_inbox(user)):
        return False
    node = task.flow_task
    role = getattr(node, "team_role", None)
    if role:
        return holds_team_role(user, _task_case(task), role)
    rule = getattr(node, "performer", None)
    if rule is not None:
        return bool(rule(user, task))
    return bool(task.owner_permission) and user.has_perm(task.owner_permission)


def _takes_by_rule(node) -> bool:
    """A step taken by whom its role or rule admits, not by a queue permission alone."""
    return bool(getattr(node, "team_role", None)) or getattr(node, "performer", None) is not None


def may_take_task(user, task) -> bool:
    """May ``user`` take ``task`` from the queue (assign it to themselves)?"""
    from viewflow.workflow.status import STATUS

    if task.status != STATUS.NEW or task.owner_id is not None:
        return False
    node = task.flow_task
    if _takes_by_rule(node):
        # The role or the step's rule decides (a rule includes the queue permission
        # where the step needs it: the threat review, the GVI participants).
        return may_do_step(user, task)
    perm = task.owner_permission
    return bool(perm) and _active(user) and user.has_perm(perm) and may_do_step(user, task)


def ruled_steps(flow_classes) -> list:
    """The human steps of ``flow_classes`` whose queue is decided per task (role or rule)."""
    return [
        node
        for flow_class in flow_classes
        for node in flow_class.instance.nodes()
        if _takes_by_rule(node)
    ]


def takeable(user, candidates) -> list[int]:
    """The ids of ``candidates`` (new, unowned tasks of steps with a role or rule) that
    ``user`` may take. Team-role steps are decided on the user's current memberships,
    read once, and each flow's processes' cases, one query a flow: never a query a task."""
    if not candidates:
        return []
    now = timezone.now()
    team_role = [t for t in candidates if getattr(t.flow_task, "team_role", None)]
    taken = [t.pk for t in candidates if t not in team_role and may_take_task(user, t)]
    if team_role and _active(user):
        held = set(
            CaseMembership.objects.filter(user=user, valid_from__lte=now)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
            .values_list("case_id", "role")
        )
        by_flow: dict = {}
        for task in team_role:
            by_flow.setdefault(task.flow_task.flow_class, []).append(task)
        for flow_class, tasks in by_flow.items() if held else ():
            cases = dict(
                flow_class.process_class.objects.filter(
                    pk__in=[t.process_id for t in tasks]
                ).values_list("pk", "case_id")
            )
            taken += [
                t.pk for t in tasks if (cases.get(t.process_id), t.flow_task.team_role) in held
            ]
    return taken


def queue_filter(user, flow_classes, taken=()) -> Q:
    """The condition on ``viewflow_task`` rows of the tasks ``user`` may take: unowned and
    new, in a queue whose permission the user holds (steps without a role or rule), or, for
    a step with a role or rule, admitted by it (``taken``: their ids, :func:`takeable`)."""
    from viewflow.workflow.status import STATUS

    if not can_use_task_inbox(user):
        return Q(pk__in=[])
    ruled = ruled_steps(flow_classes)
    plain = Q(owner_permission__in=sorted(user.get_all_permissions()))
    if ruled:
        plain &= ~Q(flow_task__in=ruled)
    return Q(flow_task_type="HUMAN", status=STATUS.NEW, owner__isnull=True) & (
        plain | Q(pk__in=list(taken))
    )


def task_queue(user, tasks, flow_classes):
    """``tasks`` (a Task queryset) narrowed to those ``user`` may take."""
    from viewflow.workflow.status import STATUS

    if not can_use_task_inbox(user):
        return tasks.none()
    ruled = ruled_steps(flow_classes)
    candidates = []
    if ruled:
        candidates = list(
            tasks.filter(
                flow_task_type="HUMAN", status=STATUS.NEW, owner__isnull=True, flow_task__in=ruled
            ).select_related("process")
        )
    return tasks.filter(queue_filter(user, flow_classes, takeable(user, candidates)))


def may_release_task(user, task) -> bool:
    """Hand an assigned, open task back: its owner, or a coordinator of its programme who
    may see its process."""
    from viewflow.workflow.status import STATUS

    if task.owner_id is None or task.status != STATUS.ASSIGNED or not _active(user):
        return False
    if task.owner_id == user.pk:
        return can_use_task_inbox(user)
    return may_manage_task(user, task)


def may_manage_task(user, task) -> bool:
    """Release and reassign ``task``: a coordinator of its flow who may see its process;
    for a step only its performers manage (``managed_by_performers``: the threat review's
    police steps), a coordinator who could do it."""
    flow_class = task.flow_task.flow_class
    if not (coordinates_flow(user, flow_class) and may_see_task(user, task)):
        return False
    if getattr(task.flow_task, "managed_by_performers", False):
        return may_do_step(user, task)
    return True


def task_candidates(task):
    """The users ``task`` may be given: active case workers the step admits; for a team
    role, the users who may hold that role (they are put on the team)."""
    from casework.models import User

    node = task.flow_task
    users = (
        User.objects.filter(is_active=True, organisation__isnull=False)
        .select_related("organisation")
        .order_by("first_name", "last_name", "username")
    )
    role = getattr(node, "team_role", None)
    if role:
        group = TEAM_ROLE_GROUPS.get(role)
        if group is None:
            return []
        found = [u for u in users.filter(groups__name=group) if can_use_task_inbox(u)]
        if role == CaseMembership.Role.POLICE_CONTACT:
            found = [u for u in found if is_police(u)]
        return found
    return [u for u in users if may_do_step(u, task)]


# The group whose members may hold a team role a step is named by (as at screening).
TEAM_ROLE_GROUPS = {
    CaseMembership.Role.LEAD: roles.SOCIAL_WORKER,
    CaseMembership.Role.POLICE_CONTACT: roles.POLICE_CONTACT,
}


def may_report_plan_part(user, case, kind: str) -> bool:
    """SSPF: reports the ``kind`` (school, leisure) organisation's part of the plan — a
    team member of such an organisation who may open the case."""
    return (
        case is not None
        and _active(user)
        and user.organisation_id is not None
        and user.organisation.kind == kind
        and team_membership(user, case) is not None
        and bool(case_access(user, case))
    )


# --- Single sign-on (docs/adr/0018-single-sign-on.md) ----------------------------------


def sso_assurance_sufficient(*, levels: str, minimum: str, acr: str) -> bool:
    """Is the assurance level (``acr``) a provider sent at least the organisation's
    minimum? ``levels`` lists the provider's acr values from lowest to highest; with
    no list only the minimum itself passes. An unknown value never passes."""
    if not minimum:
        return True
    order = levels.split()
    if not order:
        return acr == minimum
    if minimum not in order or acr not in order:
        return False
    return order.index(acr) >= order.index(minimum)


# --- Second factor and step-up (docs/adr/0017-mfa-and-step-up.md) ----------------------------

# Set by the single sign-on (OIDC) sign-in: a dict with what the provider asserted, at least
# ``acr`` and ``amr``, and ``auth_time`` (Unix seconds of the provider's authentication).
# A session that carries it relies on the provider's assurance: no TOTP is asked.
SSO_SESSION_KEY = "samverkan_sso"
# Unix seconds of the latest strong check in this session: a second factor passed (sign-in,
# enrolment, step-up), or the password where the account has no second factor and MFA is off.
STEP_UP_SESSION_KEY = "samverkan_step_up_at"
# Whether the account had a confirmed device at sign-in (kept in the session so that a page
# does not query both device tables; enrolment and removal update it).
HAS_DEVICE_SESSION_KEY = "samverkan_mfa_device"


def mfa_required() -> bool:
    """Every password account must enrol and pass a second factor (production default)."""
    return bool(getattr(settings, "MFA_REQUIRED", False))


def sso_assertion(request) -> dict | None:
    """What the identity provider asserted for this session, or ``None`` (password sign-in)."""
    marker = getattr(request, "session", {}).get(SSO_SESSION_KEY)
    return marker if isinstance(marker, dict) and marker else None


def has_second_factor_device(request, *, refresh: bool = False) -> bool:
    """The signed-in account has a confirmed TOTP device or recovery codes."""
    from django_otp import user_has_device

    session = request.session
    if refresh or HAS_DEVICE_SESSION_KEY not in session:
        session[HAS_DEVICE_SESSION_KEY] = user_has_device(request.user)
    return bool(session[HAS_DEVICE_SESSION_KEY])


def second_factor_satisfied(request) -> bool:
    """The session has passed a second factor: a django-otp device verified it (TOTP or a
    recovery code), or the account signed in through single sign-on (the provider's
    assurance; the minimum per organisation is the SSO sign-in's own check)."""
    user = getattr(request, "user", None)
    if not _active(user):
        return False
    if sso_assertion(request) is not None:
        return True
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def second_factor_pending(request) -> str | None:
    """What the session must do before any other page: ``"verify"`` (the account has a
    second factor: always asked, whatever ``MFA_REQUIRED`` says), ``"enrol"`` (none yet,
    and MFA is required) or ``None``."""
    if not _active(getattr(request, "user", None)) or second_factor_satisfied(request):
        return None
    if has_second_factor_device(request):
        return "verify"
    return "enrol" if mfa_required() else None


def step_up_method(request) -> str:
    """How this session proves itself again before a grave action: ``"code"`` (TOTP or a
    recovery code), ``"password"`` (MFA off and no device: the password again, a real check
    though not a second factor), ``"sso"`` (sign in again at the identity provider) or
    ``"enrol"`` (MFA required and nothing to check with)."""
    if has_second_factor_device(request):
        return "code"
    if sso_assertion(request) is not None:
        return "sso"
    if not mfa_required() and request.user.has_usable_password():
        return "password"
    return "enrol"


def step_up_fresh(request, *, now: datetime | None = None) -> bool:
    """A strong check within ``STEP_UP_MINUTES`` in this session (docs/adr/0017)."""
    if not _active(getattr(request, "user", None)):
        return False
    now = now or timezone.now()
    stamps = [request.session.get(STEP_UP_SESSION_KEY)]
    assertion = sso_assertion(request)
    if assertion is not None:
        stamps.append(assertion.get("auth_time"))
    valid = [stamp for stamp in stamps if isinstance(stamp, int | float)]
    if not valid:
        return False
    age = now.timestamp() - max(valid)
    return -60 <= age <= settings.STEP_UP_MINUTES * 60
