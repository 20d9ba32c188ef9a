"""Reads of cases: the case page and the case list.

``get_case_page`` decides access through ``casework.policy``, decrypts what the
user may see (the person under the person's data key, the case under its own: ADR
0023), and writes the access-log events of that one reading in one statement: a
consultation naming every field it decrypted; a disclosure when the data is shown to a
user of another organisation than the case's owner (with the legal basis); a combination when
police and social-services data are shown together. A refused reading writes
an ``ACCESS_DENIED`` event (that survives the request) and raises
:class:`CaseNotFound`, so a guessed URL learns nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_event, record_events, record_refusal
from casework import policy
from casework.crypto.records import open_value
from casework.labels import label
from casework.models import (
    BreakGlassAccess,
    Case,
    CaseEvent,
    CaseLink,
    CaseMembership,
    Consent,
    Organisation,
    Person,
)
from casework.selectors import case_reads
from casework.selectors.case_keys import case_and_person_key, case_keys
from casework.selectors.persons import (
    ERASED_LABEL,
    PersonDetails,
    person_age,
    require_purpose,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from casework.models import User


# What a protected identity hides of the person from all but the named handlers.
PROTECTED_CONTACT_FIELDS = ("address", "phone")
# How every page shows a culled case's texts and person (docs/adr/0024-retention.md).
CULLED_LABEL = _("(culled)")


class CaseNotFound(Exception):
    """No such case, or not one this user may see (the two are not told apart)."""


@dataclass(frozen=True)
class Opened:
    """A row with its decrypted text fields (``texts``); ``repr`` shows no personal data."""

    obj: Any
    texts: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> Any:
        texts = self.__dict__.get("texts", {})
        if name in texts:
            return texts[name]
        return getattr(self.__dict__["obj"], name)


@dataclass(frozen=True)
class LinkedCase:
    """A case this one led to (``outgoing``) or came from, as the case page shows it."""

    link: CaseLink
    other: Case
    outgoing: bool
    reason: str | None


@dataclass(frozen=True)
class ConsentRow:
    """One line of the case page's consents (``templates/workflows/_consents.html``): its
    texts made once here, not by filters and a queryset per line in the template."""

    consent: Consent
    giver: str
    decision: str
    form: str
    # The organisations it covers, by name, and its purposes' labels ("—": none).
    covers: str
    purposes: str
    # ``YYYY-MM-DD`` (local time for the withdrawal); "—" without an end, "" not withdrawn.
    valid_until: str
    withdrawn_on: str
    # In force and given: the page may offer its withdrawal.
    withdrawable: bool


def consent_rows(consents: list[Consent]) -> list[ConsentRow]:
    """The consents as the page lists them (labels in the active language)."""
    rows = []
    for consent in consents:
        withdrawn = consent.withdrawn_at
        rows.append(
            ConsentRow(
                consent=consent,
                giver=label(consent, "giver"),
                decision=label(consent, "decision"),
                form=label(consent, "form"),
                covers=", ".join(str(org) for org in consent.organisations.all()),
                purposes=", ".join(consent.purpose_labels) or "—",
                valid_until=(
                    "—" if consent.valid_until is None else consent.valid_until.isoformat()
                ),
                withdrawn_on=(
                    "" if withdrawn is None else timezone.localtime(withdrawn).date().isoformat()
                ),
                withdrawable=withdrawn is None and consent.decision == Consent.Decision.GIVEN,
            )
        )
    return rows


@dataclass(frozen=True)
class CasePage:
    case: Case
    access: policy.CaseAccess
    person: PersonDetails
    texts: dict[str, Any] = field(repr=False)
    guardians: list[Opened]
    consents: list[Consent]
    consent_state: policy.ConsentState
    team: list[CaseMembership]
    decisions: list[Opened]
    actions: list[Opened]
    legal_bases: list[Opened]
    timeline: list[Opened]
    break_glass: BreakGlassAccess | None
    # A protected identity: address, phone and guardians' contact details hidden.
    address_hidden: bool
    links: list[LinkedCase] = field(default_factory=list)
    # Defector cases: address, phone and area of a protected person, for non-handlers.
    location_hidden: bool = False
    parts: policy.CaseParts = policy.ALL_PARTS
    # Where the case came from when that is not a case: ids of GVI group members.
    gvi_members: list[str] = field(default_factory=list)
    # The rows of the caller's reads run with the case's rows (``get_case_page``'s ``also``).
    also: list[list] = field(default_factory=list)

    @functools.cached_property
    def consent_rows(self) -> list[ConsentRow]:
        """The consents as the page lists them (:func:`consent_rows`), made once."""
        return consent_rows(self.consents)


def deny_reading(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    what: str = "case:read",
    access: policy.CaseAccess | None = None,
) -> CaseNotFound:
    """Log the refused reading of ``what`` of the case (committed on its own) and return
    the error to raise; a refusal for a purpose the consent does not cover (``access``)
    names that purpose."""
    details = {"operation": what, "reason": reason}
    if access is not None and access.uncovered_purpose:
        details["consent_purpose"] = access.uncovered_purpose
    if access is not None and access.consent_missing:
        details["consent_missing"] = list(access.consent_missing)
    record_refusal(user=user, obj=case, person_id=case.person_id, purpose=purpose, details=details)
    return CaseNotFound()


def case_event(
    *,
    action: str,
    user,
    case: Case,
    purpose: str,
    fields: Iterable[str] = (),
    legal_basis: str = "",
    obj=None,
    **details: Any,
) -> dict[str, Any]:
    """``record_event``'s keywords for an access-log event on a case's data: on ``obj`` (a
    row of the case, whose details then name the case) or on the case, under its person."""
    if obj is not None:
        details = {"case": str(case.pk), **details}
    return {
        "action": action,
        "user": user,
        "obj": obj or case,
        "person_id": case.person_id,
        "fields": fields,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "details": details,
    }


def consult_case(**reading: Any) -> None:
    """The ``CONSULT`` event of one reading of the case's data (field names only):
    ``reading`` is :func:`case_event`'s keywords but the action."""
    record_event(**case_event(action=AuditAction.CONSULT, **reading))


def open_or_none(row, name: str, dek):
    """``row.name`` opened with ``dek``; ``None`` without a key (an erased person)."""
    return None if dek is None else open_value(row, name, dek)


def open_all(rows, names: tuple[str, ...], dek, read: list[str], prefix: str) -> list[Opened]:
    opened = []
    for row in rows:
        texts = {name: open_or_none(row, name, dek) for name in names}
        for name, value in texts.items():
            if value is not None:
                read.append(f"{prefix}.{name}")
        opened.append(Opened(row, texts))
    return opened


def get_case_page(
    *,
    user: User,
    purpose: str,
    case: Case,
    consent_purpose: str = policy.DEFAULT_PURPOSE,
    parties: case_reads.Parties | None = None,
    also: Sequence[tuple] = (),
) -> CasePage:
    """Everything the user may see of ``case`` (a programme case instance), decrypted.

    ``consent_purpose``: what the page shows the data for (a ``Consent.Purpose``; a
    user of another organisation sees it only if the consent covers that purpose, or
    on a statute). ``parties``: the case's team and consents as read with the case
    (``case_reads.case_and_parties``; the page is then as of their reading); without
    them (or for another case) they are read here. Raises :class:`CaseNotFound` after a
    denial event when the user may not see it. ``also``: the caller's compiled reads (``(read,
    values)``), run with the case's rows once access is granted; their rows are the page's
    ``also``.
    """
    purpose = require_purpose(purpose)
    # Read once, before the access check, which takes the user's membership and
    # the consents from them (nothing here is decrypted): the page shows both.
    now, team, consents = case_reads.parties_now(case, parties)
    policy.remember_team(case, team)
    person: Person = case.person
    # The person's identity under the person's key (``dek``), everything of the case
    # under the case's own (``case_dek``; ``None`` once culled: it reads as unreadable).
    dek = case_dek = None
    culled = case.culled_at is not None
    if (
        user.organisation_id != case.owner_organisation_id
        and person.erased_at is None
        and not culled
        and any(m.user_id == user.pk for m in team)
    ):
        # The consent rules of the access check need the age: one key-store read
        # for the check and the page.
        case_dek, dek = case_and_person_key(case)
        person_age(person, on=timezone.localdate(now), dek=dek)
    access = policy.case_access(user, case, consents=consents, purpose=consent_purpose)
    if not access:
        raise deny_reading(
            user=user, case=case, purpose=purpose, reason=access.denial, access=access
        )
    # An erased person's data key is gone: the page shows the case's plain facts and
    # "(erased)", nothing is opened, and the reading is logged as usual (no fields). A
    # culled case's key is gone too: "(culled)", nothing of the case or its person opened.
    erased = person.erased_at is not None or culled
    if case.owner_organisation_id == user.organisation_id and user.organisation_id is not None:
        # The same row as the user's organisation, read with the user already.
        type(case).owner_organisation.field.set_cached_value(case, user.organisation)
    # A protected identity hides the address, the phone and the guardians' contact
    # details from everyone but the named handlers (policy.sees_protected_contact); in a
    # defector case the area too (``location_hidden``). ADR 0027.
    address_hidden = bool(person.protected_identity) and not policy.sees_protected_contact(
        user, case, team=team
    )
    location_hidden = case.programme == Case.Programme.DEFECTOR and address_hidden
    # What this user's role sees of the case (SSPF school and leisure: a part of it).
    parts = policy.case_parts(user, case)
    person_fields = tuple(
        name
        for name in Person.ENCRYPTED_FIELDS
        if not (address_hidden and name in PROTECTED_CONTACT_FIELDS)
        and (parts.person_fields is None or name in parts.person_fields)
    )
    read: list[str] = []
    if not erased:
        if dek is None:
            case_dek, dek = case_and_person_key(case)
        # The consent rules below need the age: with this key, not a second unwrap.
        person_age(person, on=timezone.localdate(now), dek=dek)
    person_values = {name: open_or_none(person, name, dek) for name in person_fields}
    read += [f"person.{name}" for name, value in person_values.items() if value is not None]
    texts = {
        name: open_or_none(case, name, case_dek)
        for name in getattr(type(case), "ENCRYPTED_FIELDS", ())
        if parts.case_texts is None or name in parts.case_texts
    }
    read += [f"case.{name}" for name, value in texts.items() if value is not None]
    current_guardians = [g for g in person.guardians.all() if g.ended_at is None]
    if not parts.guardians or culled:
        guardians = []
    elif address_hidden:
        # Listed (the consent rules count them), their contact details not opened.
        guardians = [Opened(g, {"name": None, "phone": None}) for g in current_guardians]
    else:
        guardians = open_all(current_guardians, ("name", "phone"), dek, read, "guardian")
    if erased:
        # The guardians' contact data was sealed under the erased person's key.
        guardians = [Opened(g.obj, {"name": ERASED_LABEL, "phone": None}) for g in guardians]
    rows = case_reads.case_rows(
        case,
        user.organisation_id,
        parts.action_kinds,
        decided=bool(parts.decisions),
        legal=bool(parts.legal_bases),
        also=also,
    )
    actions = open_all(rows.actions, ("note",), case_dek, read, "action")
    decisions = (
        open_all(rows.decisions, ("note",), case_dek, read, "decision") if parts.decisions else []
    )
    legal_bases = (
        open_all(rows.legal_bases, ("justification",), case_dek, read, "legal_basis")
        if parts.legal_bases
        else []
    )
    links = []
    link_rows = rows.links
    # A link's reason is sealed under the key of the case it starts from.
    link_keys = (
        case_keys([row.from_case for row in link_rows if row.from_case_id != case.pk])
        if parts.link_reasons
        else {}
    )
    link_keys[case.pk] = case_dek
    for row in link_rows:
        reason = (
            open_or_none(row, "reason", link_keys.get(row.from_case_id))
            if parts.link_reasons
            else None
        )
        if reason is not None:
            read.append("link.reason")
        outgoing = row.from_case_id == case.pk
        other = row.to_case if outgoing else row.from_case
        links.append(LinkedCase(link=row, other=other, outgoing=outgoing, reason=reason))
    events = rows.events
    if parts.event_reasons:
        timeline = open_all(events, ("reason",), case_dek, read, "event")
    else:
        # Not opened: the reason reads as empty, never as its sealed value.
        timeline = [Opened(event, {"reason": None}) for event in events]

    # What was read, logged in one statement (all the events or none) before the
    # page is returned: no page without its log entries.
    def entry(action, details, *, fields=read, legal_basis=access.legal_basis):
        return {
            "action": action,
            "user": user,
            "obj": case,
            "person_id": person.pk,
            "fields": fields,
            "purpose": purpose,
            "legal_basis": legal_basis,
            "details": details,
        }

    _log_reading(entry, access=access, case=case, user=user, actions=actions, erased=erased)
    if culled:
        details = PersonDetails.of(person, fields=(), name=CULLED_LABEL)
    elif erased:
        details = PersonDetails.of_erased(person)
    else:
        details = PersonDetails.of(person, fields=person_fields, **person_values)
    return CasePage(
        case=case,
        access=access,
        person=details,
        texts=texts,
        guardians=guardians,
        consents=consents,
        consent_state=policy.consent_state(case, consents=consents),
        team=team,
        decisions=decisions,
        actions=actions,
        legal_bases=legal_bases,
        timeline=timeline,
        # The banner's end time: only when the glass is what opens the case.
        break_glass=(
            policy.active_break_glass(user, case) if access.via == "break_glass" else None
        ),
        address_hidden=address_hidden,
        links=links,
        location_hidden=location_hidden,
        parts=parts,
        also=rows.also,
        gvi_members=[
            event.obj.transition.split(":", 1)[1]
            for event in timeline
            if event.obj.kind == CaseEvent.Kind.LINK
            and event.obj.transition.startswith("gvi_member:")
        ],
    )


def reading_events(entry, *, access, case: Case, user, **consulted: Any) -> list[dict]:
    """One reading's ``CONSULT`` event (``via`` and ``consulted``), and its ``DISCLOSE``
    event when a legal basis gives the case to another organisation's user; ``entry``
    builds an event's arguments from its action and details."""
    if access.deputy_for is not None:
        # A deputy's reading: whom they stand in for (``casework.policy.absences``).
        consulted = {"deputy_for": access.deputy_for, **consulted}
    log = [entry(AuditAction.CONSULT, {"via": access.via, **consulted})]
    if access.legal_basis:
        log.append(
            entry(
                AuditAction.DISCLOSE,
                {
                    "from_organisation": case.owner_organisation_id,
                    "to_organisation": user.organisation_id,
                },
            )
        )
    return log


def _log_reading(entry, *, access, case: Case, user, actions: list[Opened], erased: bool) -> None:
    """The access-log events of one reading of a case page, in one statement.

    The case of an erased person is logged as any other reading (what was shown of
    the case, to whom, on what basis), marked ``person_erased``; nothing of the
    person was decrypted, so nothing was combined.
    """
    gone = {"case_culled": True} if case.culled_at else {"person_erased": True}
    log = reading_events(entry, access=access, case=case, user=user, **(gone if erased else {}))
    kinds = {case.owner_organisation.kind} | {a.obj.organisation.kind for a in actions}
    if not erased and {Organisation.Kind.POLICE, Organisation.Kind.SOCIAL_SERVICES} <= kinds:
        log.append(
            entry(
                AuditAction.COMBINE,
                {"organisations": sorted(kinds)},
                fields=["action.note", "person"],
                legal_basis=access.legal_basis or "consent",
            )
        )
    record_events(*log)


# The status labels of each case model in each language: ``get_status_display()`` builds
# the choices' dict anew on every call, translating every label of it (a case list of a
# hundred rows translated a thousand strings).
_status_labels: dict[tuple[type, str | None], dict[str, str]] = {}


def _status_labels_of(model: type) -> dict[str, str]:
    """The status labels of ``model`` in the active language (translated once)."""
    key = (model, translation.get_language())
    labels = _status_labels.get(key)
    if labels is None:
        field = model._meta.get_field("status")
        labels = {str(value): str(label) for value, label in field.flatchoices}
        _status_labels[key] = labels
    return labels


def status_label(case) -> str:
    """``case.get_status_display()``, from labels translated once a model and language."""
    return _status_labels_of(type(case)).get(case.status, case.status)


# How the user reaches a listed case (``CaseAccess.via``), as the case list names it; any
# other ground is break-the-glass.
_VIA_LABELS = {"team": _("Case team"), "coordinator": _("Coordinator")}
_BREAK_THE_GLASS = _("Break-the-glass")


@dataclass(frozen=True)
class CaseRow:
    """One line of the case list: nothing decrypted, nothing identifying. Its texts are
    made here, once a row, not by template tags (a list of a hundred rows rendered a
    few hundred date filters and translation tags)."""

    case: Case
    via: str

    @property
    def status_label(self) -> str:
        return status_label(self.case)

    @property
    def via_label(self) -> str:
        return str(_VIA_LABELS.get(self.via, _BREAK_THE_GLASS))

    @property
    def opened_on(self) -> str:
        """The day the case was opened (``YYYY-MM-DD``, local time)."""
        return _opened_on(self.case, timezone.get_current_timezone())

    @property
    def review_on(self) -> str:
        """The next review's day (``YYYY-MM-DD``), or "—"."""
        return _review_on(self.case)


def _opened_on(case: Case, zone) -> str:
    return case.opened_at.astimezone(zone).date().isoformat()


def _review_on(case: Case) -> str:
    return "—" if case.review_date is None else case.review_date.isoformat()


def case_row_texts(rows: list[CaseRow]) -> list[tuple[str, str, str, str]]:
    """Each row's ``(status_label, opened_on, review_on, via_label)``, as its properties
    give them, with the language's labels and the time zone looked up once for all the
    rows instead of once a row and text (the coordinator's list has a line for every
    case of the programme: docs/adr/0036-fast-pages.md, session 18)."""
    zone = timezone.get_current_timezone()
    labels: dict[type, dict[str, str]] = {}
    grounds: dict[str, str] = {}
    texts = []
    for row in rows:
        case = row.case
        model = type(case)
        statuses = labels.get(model)
        if statuses is None:
            statuses = labels[model] = _status_labels_of(model)
        ground = grounds.get(row.via)
        if ground is None:
            ground = grounds[row.via] = row.via_label
        texts.append(
            (
                statuses.get(case.status, case.status),
                _opened_on(case, zone),
                _review_on(case),
                ground,
            )
        )
    return texts


def list_cases(
    *, user: User, model: type[Case], person_id: uuid.UUID | None = None
) -> list[CaseRow]:
    """The cases of ``model`` that ``user`` may open now (no decryption, no event).

    The list holds case numbers, states and dates only; opening a case is the
    consultation that is logged.
    """
    # One instant and one reading of the absences the user stands in for, for both the
    # reach and the seats.
    now = timezone.now()
    # Cases are led by social services (``services.cases.social_services_office``): a
    # social services user's list is (nearly) all their own organisation's cases, read
    # without their person and owner; anyone else's is all other organisations' cases,
    # whose decisions need both: joined, as before. Either way each case that needs
    # them has them below; this only saves the statements or the instances.
    parties = not (
        user.organisation_id is not None
        and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES
    )
    cases = None
    if person_id is None and policy.can_use_task_inbox(user):
        # The absences and the list of a user who stands in for no one, read together;
        # a deputy's list is the ORM's query below.
        absent, cases = case_reads.absences_and_cases_in_reach(
            model, user, now=now, parties=parties
        )
        if absent:
            cases = None
    else:
        absent = policy.absent_for(user, on=timezone.localdate(now))
    if cases is None:
        reach = policy.cases_in_reach(user, now=now, absent=absent).values("pk")
        cases = case_reads.listed_cases(model, reach, parties=parties)
        if person_id is not None:
            cases = cases.filter(person_id=person_id)
        cases = list(cases[: case_reads.LISTED])
    # The access decision of every case from one reading of the user's seats (team,
    # deputy, break-the-glass, closed-case lead) instead of up to four queries a case;
    # the consents (and a minor's guardians) of the cases of other organisations, which
    # only they need, in two or three queries for all of them.
    known = policy.known_reach(user, [case.pk for case in cases], now=now, absent=absent)
    # The cases whose decision weighs consents, the person's age and the owner's kind:
    # those of other organisations (and, for the police, those whose programme rules on
    # police participation); their consents, the person's guardians and (unless joined
    # above) their person and owner are read here, in a statement each for all of them.
    # The others need none of it.
    police = policy.is_police(user)
    others = [
        case
        for case in cases
        if case.owner_organisation_id != user.organisation_id
        or (police and policy.police_rule(case))
    ]
    other_ids = {case.pk for case in others}
    if others:
        prefetch_related_objects(
            others,
            Prefetch("consents", queryset=Consent.objects.prefetch_related("organisations")),
            "person__guardians",
            "owner_organisation",
        )
    rows = []
    for case in cases:
        consents = case.consents.all() if case.pk in other_ids else None
        access = policy.case_access(user, case, known=known, consents=consents)
        if access:
            rows.append(CaseRow(case=case, via=access.via))
    return rows


# --- Referrals of persons already registered (ADR 0012) -----------------------------------


def person_registered(person_id: uuid.UUID, *, exclude_case: uuid.UUID | None = None) -> bool:
    """Whether the person has a place in the register besides ``exclude_case``: another
    case of any programme or a GVI group membership. Nothing decrypted, no event: the
    answer goes to the access log (a referral's ``person_registered`` flag) and, through
    :func:`screening_registration`, to the coordinator — never to the referrer.
    """
    memberships = Person._meta.get_field("gvi_memberships")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {Case._meta.db_table} "  # noqa: S608 (names, no input)
            "WHERE person_id = %s AND id IS DISTINCT FROM %s) OR EXISTS (SELECT 1 FROM "
            f"{memberships.related_model._meta.db_table} WHERE {memberships.field.column} = %s)",
            [person_id, exclude_case, person_id],
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class Registration:
    """What the screening coordinator learns of a person already in the register: that
    they are, and their other cases (programme, number, state) within the coordinator's
    own rights. Nothing else: no case outside those rights is named or counted."""

    registered: bool
    cases: list[Case] = field(default_factory=list)
    gvi_member: bool = False

    @property
    def programmes(self) -> list[str]:
        names = dict(Case.Programme.choices)
        seen = dict.fromkeys(str(names.get(c.programme, c.programme)) for c in self.cases)
        return list(seen)


def screening_registration(*, user: User, case: Case, purpose: str) -> Registration:
    """For the coordinator screening ``case``: whether its person was already registered,
    and in which of the coordinator's programmes (``casework.policy.case_access`` per
    case; GVI only with ``gvi_access``). The coordinator must have access to ``case``
    (the screening step is theirs); otherwise nothing is told. Writes one ``CONSULT``
    event naming the field ``registrations`` and the case ids shown (identifiers only).
    """
    purpose = require_purpose(purpose)
    if not (policy.coordinates(user, case) and policy.case_access(user, case)):
        return Registration(registered=False)
    if not person_registered(case.person_id, exclude_case=case.pk):
        return Registration(registered=False)
    others = (
        Case.objects.filter(person_id=case.person_id)
        .exclude(pk=case.pk)
        .select_related("owner_organisation")
        .order_by("opened_at")
    )
    visible = [other for other in others if policy.case_access(user, other)]
    gvi_member = (
        bool(policy.gvi_access(user))
        and Person.objects.filter(pk=case.person_id, gvi_memberships__isnull=False).exists()
    )
    consult_case(
        user=user,
        case=case,
        purpose=purpose,
        fields=["registrations"],
        cases=[str(other.pk) for other in visible],
        gvi_member=gvi_member,
    )
    return Registration(registered=True, cases=visible, gvi_member=gvi_member)
