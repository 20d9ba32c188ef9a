"""GVI writes: groups, members, incidents, call-ins, custom notifications and sanctions.

The same rules as the case services (``casework.services.cases``), for objects
that are not cases: keyword-only functions that take the acting ``user`` and the
``purpose``, ask ``casework.policy``, lock the object's row and check the version
the user saw, work inside ``transaction.atomic()`` and write their access-log
event there (field names only). A refusal writes an ``ACCESS_DENIED`` event that
survives the rollback and raises :class:`CaseDenied`; a stale form raises
:class:`CaseConflict`; bad input raises ``ValidationError``. :func:`transition` is
the one way a GVI object changes state.

Group name and notes (and the reasons of withdrawn sanction levers) are sealed
under the group's own data key (``casework.crypto.keystore.GROUP``), which
:func:`erase_group` destroys; notification texts under the member's person key.
An accepted offer of help (:func:`accept_offer`) opens the referral and starts the
task social services take it up with (:func:`take_up_referral`: the participant
joins the referral case's team through ``casework.services.cases.join_team``).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition

from audit.services import Action as AuditAction
from audit.services import Outcome, record_event
from casework import policy, programmes
from casework.crypto.keystore import (
    GROUP,
    PERSON,
    create_data_key,
    destroy_data_key,
    load_data_key,
)
from casework.crypto.records import seal_value
from casework.models import Case, Organisation, Person
from casework.selectors.persons import find_person, person_age, require_purpose
from casework.services.cases import REASON_LIMIT, CaseConflict, CaseDenied, clean_text, join_team
from casework.services.persons import check_registration, create_person
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi.models import (
    CallIn,
    CallInAttendee,
    CallInSpeaker,
    CustomNotification,
    DeliveryTeamMember,
    Group,
    GroupMember,
    GviEvent,
    Incident,
    Sanction,
    SanctionDecision,
)

NOTE_LIMIT = 10_000
NAME_LIMIT = 200
_REFERENCE_LOCK = 0x6756


# --- Shared helpers ---------------------------------------------------------------------


def group_of(obj: models.Model) -> Group | None:
    if isinstance(obj, Group):
        return obj
    if isinstance(obj, GroupMember):
        return obj.group
    if isinstance(obj, CustomNotification):
        return obj.member.group
    if isinstance(obj, Sanction):
        return obj.decision.group
    return None


def person_of(obj: models.Model):
    if isinstance(obj, GroupMember):
        return obj.person_id
    if isinstance(obj, CustomNotification):
        return obj.member.person_id
    return None


def _deny(*, user, obj, purpose: str, what: str, reason: str) -> CaseDenied:
    record_event(
        action=AuditAction.ACCESS_DENIED,
        user=user,
        obj=obj,
        person_id=person_of(obj) if obj is not None else None,
        object_type="" if obj is not None else "workflows.gvi.models",
        purpose=purpose,
        outcome=Outcome.DENIED,
        details={"operation": what, "reason": reason},
        independent=True,
    )
    return CaseDenied(_("You do not take part in GVI."))


def require_gvi_access(*, user, purpose: str, what: str, obj=None) -> policy.CaseAccess:
    """The user's GVI access, or :class:`CaseDenied` after a denial event."""
    access = policy.gvi_access(user)
    if not access:
        raise _deny(user=user, obj=obj, purpose=purpose, what=what, reason=access.denial)
    return access


def _require(check, *, user, purpose: str, what: str, obj=None) -> None:
    require_gvi_access(user=user, purpose=purpose, what=what, obj=obj)
    if not check(user):
        raise _deny(user=user, obj=obj, purpose=purpose, what=what, reason="role")


def _lock(obj: models.Model, expected_version: int | None) -> None:
    current = type(obj).objects.select_for_update().only("version").get(pk=obj.pk)
    if expected_version is not None and current.version != expected_version:
        raise CaseConflict()
    obj.version = current.version


def _bump(obj: models.Model) -> None:
    type(obj).objects.filter(pk=obj.pk).update(version=models.F("version") + 1)
    obj.version += 1


def _event(*, obj, user, name: str, source: str = "", target: str = "") -> GviEvent:
    group = group_of(obj)
    return GviEvent.objects.create(
        group=group,
        object_type=obj._meta.label_lower,
        object_id=obj.pk,
        actor=user,
        transition=name,
        from_state=source,
        to_state=target,
    )


def _audit(
    *, action: str, user, obj, purpose: str, fields: Iterable[str] = (), **details: Any
) -> None:
    record_event(
        action=action,
        user=user,
        obj=obj,
        person_id=person_of(obj),
        fields=fields,
        purpose=purpose,
        details=details,
    )


def _changed(*, obj, user, purpose: str, name: str, fields: Iterable[str] = (), **details) -> None:
    """A change that is not a transition: new version, timeline entry, access event."""
    _bump(obj)
    _event(obj=obj, user=user, name=name)
    _audit(action=AuditAction.CHANGE, user=user, obj=obj, purpose=purpose, fields=fields, **details)


def _next_reference(model: type[models.Model], prefix: str) -> str:
    """``GVI-G-2026-0001``: per kind and year, serialised by an advisory lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_REFERENCE_LOCK, prefix])
    full = f"{prefix}-{timezone.localdate().year}-"
    last = (
        model.objects.filter(reference__startswith=full)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{full}{number:04d}"


def _choice(value: Any, choices, field: str) -> str:
    if value not in choices.values:
        raise ValidationError({field: ValidationError(_("Select a valid choice."), "invalid")})
    return value


def _group_dek(group: Group):
    return load_data_key(owner_type=GROUP, owner_id=group.pk)


def _person_dek(person_id):
    return load_data_key(owner_type=PERSON, owner_id=person_id)


# --- Transitions --------------------------------------------------------------------------


def _fsm_meta(obj: models.Model, name: str):
    meta = getattr(getattr(type(obj), name, None), "_django_fsm", None)
    if meta is None:
        raise ValueError(f"{type(obj).__name__}.{name} is not a transition")
    return meta


def unmet_conditions(obj: models.Model, name: str) -> list[str]:
    """The messages of the guards of transition ``name`` that do not hold now."""
    found = _fsm_meta(obj, name).get_transition(obj.status)
    if found is None:
        return [str(_("This cannot be done in the current state."))]
    return [
        str(getattr(condition, "message", condition.__name__))
        for condition in found.conditions
        if not condition(obj)
    ]


def may_transition(*, user, obj: models.Model, name: str) -> bool:
    meta = _fsm_meta(obj, name)
    return meta.has_transition(obj.status) and meta.has_transition_perm(obj, obj.status, user)


def transition(
    *,
    user,
    obj: models.Model,
    name: str,
    purpose: str,
    expected_version: int | None = None,
    **kwargs: Any,
):
    """Run transition ``name`` of a GVI object: the one way one changes state.

    Checks GVI access, that the transition exists from the current state, the
    user's role (django-fsm ``permission``), the guards (``conditions``, each
    with a message), the row lock and version; then runs it, saves, adds the
    timeline entry and writes one ``TRANSITION`` event, in one transaction.
    """
    purpose = require_purpose(purpose)
    what = f"gvi:{obj._meta.model_name}:{name}"
    require_gvi_access(user=user, purpose=purpose, what=what, obj=obj)
    meta = _fsm_meta(obj, name)
    if not meta.has_transition(obj.status):
        raise ValidationError(_("This cannot be done in the current state."), code="invalid_state")
    if not meta.has_transition_perm(obj, obj.status, user):
        raise _deny(user=user, obj=obj, purpose=purpose, what=what, reason="role")
    unmet = unmet_conditions(obj, name)
    if unmet:
        raise ValidationError([ValidationError(message, code="condition") for message in unmet])
    source = obj.status
    try:
        with transaction.atomic():
            _lock(obj, expected_version)
            getattr(obj, name)(**kwargs)
            obj.version += 1
            obj.save()
            _event(obj=obj, user=user, name=name, source=source, target=obj.status)
            _audit(
                action=AuditAction.TRANSITION,
                user=user,
                obj=obj,
                purpose=purpose,
                transition=name,
                source=source,
                target=obj.status,
            )
    except ConcurrentTransition:
        obj.refresh_from_db()
        raise CaseConflict() from None
    except CaseConflict:
        obj.refresh_from_db()
        raise
    return obj


# --- Groups -------------------------------------------------------------------------------


def create_group(
    *, user, purpose: str, name: str, notes: str | None, area: str, size_band: str
) -> Group:
    """Register a group: name and notes sealed under a new data key of the group's own."""
    purpose = require_purpose(purpose)
    _require(policy.coordinates_gvi_or_police, user=user, purpose=purpose, what="gvi:group:create")
    errors: dict[str, list] = {}
    try:
        name = clean_text(name, "name", limit=NAME_LIMIT, required=True)
    except ValidationError as error:
        errors.update(error.error_dict)
    try:
        notes = clean_text(notes, "notes", limit=NOTE_LIMIT)
    except ValidationError as error:
        errors.update(error.error_dict)
    for field, value, choices in (
        ("area", area, Person.Area),
        ("size_band", size_band, gvi.SizeBand),
    ):
        try:
            _choice(value, choices, field)
        except ValidationError as error:
            errors.update(error.error_dict)
    if errors:
        raise ValidationError(errors)
    group = Group(area=area, size_band=size_band, created_by=user)
    # The key is committed in the key store first (an orphan key opens nothing).
    dek = create_data_key(owner_type=GROUP, owner_id=group.pk)
    with transaction.atomic():
        group.reference = _next_reference(Group, "GVI-G")
        seal_value(group, "name", name, dek)
        seal_value(group, "notes", notes, dek)
        group.save(force_insert=True)
        _event(obj=group, user=user, name="register", target=group.status)
        _audit(
            action=AuditAction.CREATE,
            user=user,
            obj=group,
            purpose=purpose,
            fields=["name"] + (["notes"] if notes else []),
            reference=group.reference,
        )
    return group


def update_group_notes(
    *, user, purpose: str, group: Group, notes: str | None, expected_version: int | None
) -> Group:
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi_or_police,
        user=user,
        purpose=purpose,
        what="gvi:group:notes",
        obj=group,
    )
    notes = clean_text(notes, "notes", limit=NOTE_LIMIT)
    if group.erased_at is not None:
        raise ValidationError(_("The group has been erased."), code="erased")
    with transaction.atomic():
        _lock(group, expected_version)
        seal_value(group, "notes", notes, _group_dek(group))
        Group.objects.filter(pk=group.pk).update(notes=group.notes)
        _changed(obj=group, user=user, purpose=purpose, name="notes", fields=["notes"])
    return group


def erase_group(
    *,
    user,
    purpose: str,
    group: Group,
    reason: str,
    confirmed: bool,
    expected_version: int | None = None,
) -> Group:
    """Erase a dormant group by destroying its data key (crypto-shredding), as
    ``casework.services.persons.erase_person`` does for a person:

    1. the group's data key is deleted from the key store and committed (and dropped
       from this process's key cache): from then on the group's name, notes and the
       reasons of its withdrawn levers cannot be decrypted anywhere — in this database,
       its change history, replicas or backups;
    2. the group is marked erased, its encrypted columns emptied, a timeline entry and
       the ``ERASE`` event (the reason as its justification) written, in one transaction.

    The GVI coordinator only, a dormant group only, with a reason and a confirmation.
    The members are people with their own keys and cases: they are not erased. Area,
    size band, states and references stay (statistics). Erasing again is refused with a
    message; a run interrupted between the two steps is completed by the next one.
    """
    purpose = require_purpose(purpose)
    what = "gvi:group:erase"
    _require(policy.may_erase_gvi_group, user=user, purpose=purpose, what=what, obj=group)
    errors: dict[str, list] = {}
    try:
        reason = clean_text(reason, "reason", limit=WITHDRAW_REASON_LIMIT, required=True)
    except ValidationError as error:
        errors.update(error.error_dict)
    if confirmed is not True:
        errors["confirmed"] = [
            ValidationError(_("Confirm that the group's data is to be destroyed."), "required")
        ]
    if errors:
        raise ValidationError(errors)
    if group.erased_at is not None:
        raise ValidationError(_("The group has already been erased."), code="erased")
    if group.status != gvi.GroupStatus.DORMANT:
        raise ValidationError(
            _("Only a dormant group can be erased: make the group dormant first."),
            code="invalid_state",
        )
    if (
        expected_version is not None
        and not Group.objects.filter(pk=group.pk, version=expected_version).exists()
    ):
        # Checked before the key goes: a destroyed key cannot be given back.
        raise CaseConflict()
    key_destroyed = destroy_data_key(owner_type=GROUP, owner_id=group.pk)
    with transaction.atomic():
        locked = Group.objects.select_for_update().get(pk=group.pk)
        if locked.erased_at is not None:
            raise ValidationError(_("The group has already been erased."), code="erased")
        now = timezone.now()
        # The reasons of withdrawn levers were sealed under the group's key too.
        withdrawn = [
            sanction.pk
            for sanction in Sanction.objects.filter(decision__group=group).only(
                "id", "withdraw_reason"
            )
            if sanction.withdraw_reason is not None
        ]
        reasons = Sanction.objects.filter(pk__in=withdrawn).update(withdraw_reason=None)
        Group.objects.filter(pk=group.pk).update(
            name=None, notes=None, erased_at=now, version=models.F("version") + 1
        )
        group.name = group.notes = None
        group.erased_at = now
        group.version = locked.version + 1
        _event(obj=group, user=user, name="erase")
        record_event(
            action=AuditAction.ERASE,
            user=user,
            obj=group,
            fields=[*Group.ENCRYPTED_FIELDS] + (["sanction.withdraw_reason"] if reasons else []),
            purpose=reason,
            details={"data_key_destroyed": key_destroyed, "page_purpose": purpose},
        )
    return group


def add_member(
    *, user, purpose: str, group: Group, person: Person, expected_version: int | None = None
) -> GroupMember:
    """Register ``person`` as a member of ``group``. A member under 18 starts the
    notice to social services (a task in the named participants' queue)."""
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi_or_police,
        user=user,
        purpose=purpose,
        what="gvi:member:add",
        obj=group,
    )
    if person.erased_at is not None:
        raise ValidationError(_("This person has been erased."))
    if group.status == gvi.GroupStatus.DORMANT:
        raise ValidationError(_("The group is dormant: no members are added."))
    with transaction.atomic():
        _lock(group, expected_version)
        if GroupMember.objects.filter(group=group, person=person).exists():
            raise ValidationError(_("The person is already a member of this group."))
        member = GroupMember.objects.create(group=group, person=person, added_by=user)
        minor = gvi.is_minor(person_age(person, on=timezone.localdate()))
        if minor:
            GroupMember.objects.filter(pk=member.pk).update(minor_notice=True)
            member.minor_notice = True
            gvi_flow.GviMinorNoticeFlow.start.run(member=member)
        _bump(group)
        _event(obj=member, user=user, name="add_member", target=member.status)
        _audit(
            action=AuditAction.CREATE,
            user=user,
            obj=member,
            purpose=purpose,
            group=str(group.pk),
            minor_notice=minor,
        )
    return member


def add_member_by_personnummer(
    *,
    user,
    purpose: str,
    group: Group,
    personnummer: str,
    name: str,
    area: str,
    expected_version: int | None = None,
) -> GroupMember:
    """Register the person with ``personnummer`` as a member of ``group``, registering
    the person first (``name``, ``area``) if the number is new.

    The answer never tells whether the number was registered before
    (docs/adr/0015-lookups-leave-a-trace.md): everything that does not need the
    register is checked first and the same way for every number — the user's role,
    the group's state, the version the user saw, the typed name, number and area
    (the name is needed for every number; a registered person keeps the stored one).
    Only then is the register looked up (``find_person``: its event is committed on
    its own, so the lookup stays in the access log whatever happens next).
    """
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi_or_police,
        user=user,
        purpose=purpose,
        what="gvi:member:add",
        obj=group,
    )
    normalised = check_registration(name=name, personnummer=personnummer, area=area)
    if group.status == gvi.GroupStatus.DORMANT:
        raise ValidationError(_("The group is dormant: no members are added."))
    with transaction.atomic():
        _lock(group, expected_version)
        person = find_person(user=user, purpose=purpose, personnummer=normalised)
        if person is None:
            person = create_person(
                user=user, purpose=purpose, name=name, personnummer=normalised, area=area
            )
        return add_member(user=user, purpose=purpose, group=group, person=person)


def acknowledge_minor_notice(*, user, purpose: str, member: GroupMember) -> None:
    """A social-services participant has taken note of a member under 18."""
    purpose = require_purpose(purpose)
    _require(policy.gvi_participant, user=user, purpose=purpose, what="gvi:minor:ack", obj=member)
    with transaction.atomic():
        _event(obj=member, user=user, name="minor_notice_acknowledged")
        _audit(action=AuditAction.CONSULT, user=user, obj=member, purpose=purpose, notice=True)


# --- Incidents ----------------------------------------------------------------------------


def record_incident(
    *, user, purpose: str, date: datetime.date, area: str, kind: str, groups: Iterable[Group]
) -> Incident:
    """Police record an incident and link groups; a monitored group moves to ``incident_linked``."""
    purpose = require_purpose(purpose)
    _require(policy.gvi_police, user=user, purpose=purpose, what="gvi:incident:create")
    errors: dict[str, list] = {}
    if not isinstance(date, datetime.date):
        errors["date"] = [ValidationError(_("Enter a valid date."), "invalid")]
    elif date > timezone.localdate():
        errors["date"] = [ValidationError(_("The date cannot be in the future."), "future")]
    for field, value, choices in (("area", area, Person.Area), ("kind", kind, Incident.Kind)):
        try:
            _choice(value, choices, field)
        except ValidationError as error:
            errors.update(error.error_dict)
    groups = list(groups)
    if not groups:
        errors["groups"] = [ValidationError(_("Link at least one group."), "required")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        incident = Incident.objects.create(
            date=date,
            area=area,
            kind=kind,
            recorded_by=user,
            organisation=user.organisation,
        )
        incident.groups.set(groups)
        _audit(
            action=AuditAction.CREATE,
            user=user,
            obj=incident,
            purpose=purpose,
            groups=[str(g.pk) for g in groups],
        )
        for group in groups:
            _event(obj=group, user=user, name="incident")
            if group.status == gvi.GroupStatus.MONITORED:
                transition(user=user, obj=group, name="link_incident", purpose=purpose)
    return incident


# --- Sanctions ----------------------------------------------------------------------------


def decide_sanctions(
    *,
    user,
    purpose: str,
    group: Group,
    incident: Incident,
    levers: Iterable[tuple[str, Organisation]],
    expected_version: int | None = None,
) -> SanctionDecision:
    """Record the decision of group-wide sanctions (who, when, which agencies' levers)
    and move the group to ``sanction_decided`` — all or nothing."""
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi, user=user, purpose=purpose, what="gvi:sanction:decide", obj=group
    )
    levers = list(levers)
    if not levers:
        raise ValidationError({"levers": _("Choose at least one agency's lever.")})
    seen = set()
    for lever, organisation in levers:
        _choice(lever, gvi.Lever, "levers")
        if lever in seen:
            raise ValidationError({"levers": _("Each lever can be chosen once.")})
        seen.add(lever)
        if not isinstance(organisation, Organisation):
            raise ValidationError({"levers": _("Name the agency of each lever.")})
    if not incident.groups.filter(pk=group.pk).exists():
        raise ValidationError({"incident": _("The incident is not linked to this group.")})
    with transaction.atomic():
        _lock(group, expected_version)
        if group.open_decision() is not None:
            raise ValidationError(_("The group already has sanctions in force."))
        decision = SanctionDecision.objects.create(group=group, incident=incident, decided_by=user)
        for lever, organisation in levers:
            Sanction.objects.create(decision=decision, lever=lever, organisation=organisation)
        _audit(
            action=AuditAction.CREATE,
            user=user,
            obj=decision,
            purpose=purpose,
            group=str(group.pk),
            levers=sorted(seen),
        )
        transition(user=user, obj=group, name="decide_sanctions", purpose=purpose)
    return decision


def sanction_step(
    *, user, purpose: str, sanction: Sanction, name: str, expected_version: int | None = None
) -> Sanction:
    """``decide``, ``execute`` or ``report`` one lever (its own organisation only).

    The first executed lever makes the group's sanctions active.
    """
    if name not in ("decide", "execute", "report"):
        raise ValidationError(_("Unknown step."))
    with transaction.atomic():
        transition(
            user=user,
            obj=sanction,
            name=name,
            purpose=purpose,
            expected_version=expected_version,
            by=user,
        )
        group = sanction.decision.group
        if name == "execute" and group.status == gvi.GroupStatus.SANCTION_DECIDED:
            # The first executed lever puts the group's sanctions in force.
            transition(user=user, obj=group, name="activate_sanctions", purpose=purpose)
    return sanction


WITHDRAW_REASON_LIMIT = 500


def withdraw_sanction(
    *,
    user,
    purpose: str,
    sanction: Sanction,
    reason: str,
    expected_version: int | None = None,
) -> Sanction:
    """Withdraw a lever that will not be carried out (proposed or decided, never once
    executed): its own organisation or the coordinator, with a reason sealed under the
    group's key. When every lever of a decided, not yet active decision is withdrawn, the
    decision ends and the group goes back to ``incident_linked`` (the coordinator decides
    again or clears the incident) — all in one transaction."""
    purpose = require_purpose(purpose)
    reason = clean_text(reason, "reason", limit=WITHDRAW_REASON_LIMIT, required=True)
    group = sanction.decision.group
    if group.erased_at is not None:
        raise ValidationError(_("The group has been erased."), code="erased")
    try:
        with transaction.atomic():
            seal_value(sanction, "withdraw_reason", reason, _group_dek(group))
            transition(
                user=user,
                obj=sanction,
                name="withdraw",
                purpose=purpose,
                expected_version=expected_version,
                by=user,
                reason=sanction.withdraw_reason,
            )
            group.refresh_from_db()
            if group.status == gvi.GroupStatus.SANCTION_DECIDED and gvi.every_lever_withdrawn(
                group
            ):
                transition(user=user, obj=group, name="withdraw_sanctions", purpose=purpose)
    except Exception:
        sanction.refresh_from_db()
        raise
    return sanction


# --- Members: the offer of help -----------------------------------------------------------


def accept_offer(
    *,
    user,
    purpose: str,
    member: GroupMember,
    programme: str,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """The member accepted the offer of help: open a linked SIG or defector referral
    (its flow started, the link stored on the member and shown on both sides) and move
    the member to ``offer_accepted`` — all or nothing."""
    purpose = require_purpose(purpose)
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    _choice(programme, gvi.ReferralProgramme, "programme")
    require_gvi_access(user=user, purpose=purpose, what="gvi:member:accept", obj=member)
    if not may_transition(user=user, obj=member, name="accept_offer"):
        if member.status != gvi.MemberStatus.MESSAGE_DELIVERED:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        raise _deny(user=user, obj=member, purpose=purpose, what="gvi:member:accept", reason="role")
    with transaction.atomic():
        _lock(member, expected_version)
        case = programmes.refer_from(
            programme,
            user=user,
            person=member.person,
            reason=reason,
            purpose=purpose,
            source=f"gvi_member:{member.pk}",
        )
        GroupMember.objects.filter(pk=member.pk).update(
            referral_case=case, referral_programme=programme
        )
        member.referral_case = case
        member.referral_programme = programme
        transition(user=user, obj=member, name="accept_offer", purpose=purpose)
        # The promise of help is kept quickly: the referral waits in the named
        # social-services participants' queue until one of them takes it up.
        gvi_flow.GviReferralNoticeFlow.start.run(member=member)
        _event(obj=member, user=user, name="referral_notice")
    return case


class TakeUp(enum.Enum):
    """What taking up an accepted offer's referral came to."""

    JOINED = "joined"  # the participant joined the referral case's team
    ALREADY_ON_TEAM = "already_on_team"  # they were on it (a lead stays the lead)
    CLOSED = "closed"  # the referral was closed (or handed over) before it was taken up


def take_up_referral(*, user, purpose: str, member: GroupMember) -> TakeUp:
    """A named social-services participant takes up the referral a member's accepted offer
    opened: they join the referral case's team as a social worker (the case services'
    team write), all or nothing, audited on both sides. A referral closed meanwhile is
    reported as :attr:`TakeUp.CLOSED` (nothing to join; the task can finish)."""
    purpose = require_purpose(purpose)
    what = "gvi:referral:take_up"
    _require(policy.gvi_participant, user=user, purpose=purpose, what=what, obj=member)
    if member.referral_case_id is None:
        raise ValidationError(
            _("The referral to SIG or the defector programme has not been opened."),
            code="invalid_state",
        )
    case = Case.objects.select_related("owner_organisation").get(pk=member.referral_case_id)
    with transaction.atomic():
        _lock(member, None)
        try:
            with transaction.atomic():
                membership = join_team(
                    user=user, case=case, purpose=purpose, source=f"gvi_member:{member.pk}"
                )
        except ValidationError as error:
            if getattr(error, "code", None) != "closed":
                raise
            outcome = TakeUp.CLOSED
        else:
            outcome = TakeUp.ALREADY_ON_TEAM if membership is None else TakeUp.JOINED
        _event(obj=member, user=user, name=f"referral_{outcome.value}")
        _audit(
            action=AuditAction.CHANGE,
            user=user,
            obj=member,
            purpose=purpose,
            referral_case=str(case.pk),
            take_up=outcome.value,
        )
    return outcome


def _deliver_to_member(*, user, purpose: str, member: GroupMember) -> None:
    """The member got the message (a held call-in or a delivered notification); so has
    the group, once mapped."""
    member.refresh_from_db()
    if member.status == gvi.MemberStatus.IDENTIFIED:
        transition(user=user, obj=member, name="select", purpose=purpose)
    if member.status == gvi.MemberStatus.SELECTED:
        transition(user=user, obj=member, name="deliver_message", purpose=purpose)
    group = member.group
    group.refresh_from_db()
    if group.status == gvi.GroupStatus.MAPPED:
        transition(user=user, obj=group, name="deliver_message", purpose=purpose)


# --- Call-ins -----------------------------------------------------------------------------


def create_call_in(*, user, purpose: str, date: datetime.date) -> CallIn:
    """Plan a call-in and start its flow (the coordinator's planning task)."""
    purpose = require_purpose(purpose)
    _require(policy.coordinates_gvi, user=user, purpose=purpose, what="gvi:callin:create")
    if not isinstance(date, datetime.date):
        raise ValidationError({"date": _("Enter a valid date.")})
    if date < timezone.localdate():
        raise ValidationError({"date": _("The date cannot be in the past.")})
    with transaction.atomic():
        call_in = CallIn.objects.create(
            reference=_next_reference(CallIn, "GVI-C"), date=date, created_by=user
        )
        gvi_flow.GviCallInFlow.start.run(call_in=call_in)
        _event(obj=call_in, user=user, name="plan", target=call_in.status)
        _audit(action=AuditAction.CREATE, user=user, obj=call_in, purpose=purpose)
    return call_in


def _require_planning(call_in: CallIn) -> None:
    if call_in.status not in gvi.CALL_IN_OPEN_STATES:
        raise ValidationError(_("The call-in is no longer being planned."), code="invalid_state")


def add_attendee(
    *,
    user,
    purpose: str,
    call_in: CallIn,
    member: GroupMember,
    expected_version: int | None = None,
) -> CallInAttendee:
    """Invite a group member (only group members attend)."""
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi, user=user, purpose=purpose, what="gvi:callin:attendee", obj=call_in
    )
    if not isinstance(member, GroupMember):
        raise ValidationError({"member": _("Every attendee must be a group member.")})
    _require_planning(call_in)
    with transaction.atomic():
        _lock(call_in, expected_version)
        if call_in.attendees.filter(member=member).exists():
            raise ValidationError({"member": _("The member is already invited.")})
        attendee = CallInAttendee.objects.create(call_in=call_in, member=member)
        _changed(
            obj=call_in, user=user, purpose=purpose, name="add_attendee", member=str(member.pk)
        )
        record_event(
            action=AuditAction.CHANGE,
            user=user,
            obj=member,
            person_id=member.person_id,
            purpose=purpose,
            details={"call_in": str(call_in.pk)},
        )
    return attendee


def set_speaker(
    *,
    user,
    purpose: str,
    call_in: CallIn,
    role: str,
    speaker: str,
    expected_version: int | None = None,
) -> CallInSpeaker:
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi, user=user, purpose=purpose, what="gvi:callin:speaker", obj=call_in
    )
    _choice(role, gvi.SpeakerRole, "role")
    speaker = clean_text(speaker, "speaker", limit=NAME_LIMIT, required=True)
    _require_planning(call_in)
    with transaction.atomic():
        _lock(call_in, expected_version)
        row, _created = CallInSpeaker.objects.update_or_create(
            call_in=call_in, role=role, defaults={"speaker": speaker}
        )
        _changed(obj=call_in, user=user, purpose=purpose, name="speaker", role=role)
    return row


def record_attendance(
    *,
    user,
    purpose: str,
    call_in: CallIn,
    attendance: dict,
    expected_version: int | None = None,
) -> None:
    """``attendance``: attendee id → attended (True/False), at the meeting."""
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi,
        user=user,
        purpose=purpose,
        what="gvi:callin:attendance",
        obj=call_in,
    )
    if call_in.status != gvi.CallInStatus.INVITED:
        raise ValidationError(
            _("Attendance is recorded once the attendees are invited."), code="invalid_state"
        )
    with transaction.atomic():
        _lock(call_in, expected_version)
        attendees = {str(a.pk): a for a in call_in.attendees.all()}
        for attendee_id, attended in attendance.items():
            attendee = attendees.get(str(attendee_id))
            if attendee is None or not isinstance(attended, bool):
                raise ValidationError(_("Unknown attendee."))
            CallInAttendee.objects.filter(pk=attendee.pk).update(attended=attended)
        _changed(obj=call_in, user=user, purpose=purpose, name="attendance")


def hold_call_in(
    *, user, purpose: str, call_in: CallIn, expected_version: int | None = None
) -> CallIn:
    """Hold the call-in: the attendees who came have the message, a follow-up due for each."""
    with transaction.atomic():
        transition(
            user=user, obj=call_in, name="hold", purpose=purpose, expected_version=expected_version
        )
        due = timezone.localdate() + datetime.timedelta(
            days=settings.SAMVERKAN["GVI_CALLIN_FOLLOWUP_DAYS"]
        )
        came = call_in.attendees.filter(attended=True).select_related("member__group")
        came.update(follow_up_due=due)
        for attendee in came:
            _deliver_to_member(user=user, purpose=purpose, member=attendee.member)
    return call_in


def record_call_in_follow_up(
    *, user, purpose: str, attendee: CallInAttendee, expected_version: int | None = None
) -> None:
    """The follow-up contact with one attendee took place."""
    purpose = require_purpose(purpose)
    call_in = attendee.call_in
    require_gvi_access(user=user, purpose=purpose, what="gvi:callin:follow_up", obj=call_in)
    if call_in.status != gvi.CallInStatus.HELD or not attendee.attended:
        raise ValidationError(
            _("Follow-up is recorded for attendees of a held call-in."), code="invalid_state"
        )
    with transaction.atomic():
        _lock(call_in, expected_version)
        CallInAttendee.objects.filter(pk=attendee.pk).update(
            followed_up_at=timezone.now(), followed_up_by=user
        )
        _changed(
            obj=call_in,
            user=user,
            purpose=purpose,
            name="follow_up",
            member=str(attendee.member_id),
        )


# --- Custom notifications -----------------------------------------------------------------


def request_notification(
    *, user, purpose: str, member: GroupMember, police_officer
) -> CustomNotification:
    """Request a custom notification to ``member``; its flow starts with the police
    officer's legal assessment."""
    purpose = require_purpose(purpose)
    _require(
        policy.coordinates_gvi_or_police,
        user=user,
        purpose=purpose,
        what="gvi:notification:request",
        obj=member,
    )
    if police_officer is None or not policy.gvi_police(police_officer):
        raise ValidationError(
            {"police_officer": _("Choose a police officer to assess and deliver.")}
        )
    if member.status in (gvi.MemberStatus.OFFER_ACCEPTED,):
        raise ValidationError(_("The member has already accepted the offer of help."))
    with transaction.atomic():
        notification = CustomNotification.objects.create(
            reference=_next_reference(CustomNotification, "GVI-N"),
            member=member,
            requested_by=user,
            police_officer=police_officer,
        )
        gvi_flow.GviNotificationFlow.start.run(notification=notification)
        _event(obj=notification, user=user, name="request", target=notification.status)
        _audit(action=AuditAction.CREATE, user=user, obj=notification, purpose=purpose)
    return notification


def _seal_notification(notification: CustomNotification, values: dict[str, Any]) -> list[str]:
    dek = _person_dek(notification.member.person_id)
    for name, value in values.items():
        seal_value(notification, name, value, dek)
    CustomNotification.objects.filter(pk=notification.pk).update(
        **{name: getattr(notification, name) for name in values}
    )
    return [name for name, value in values.items() if value is not None]


def record_legal_assessment(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    lawful: bool,
    assessment: str,
    expected_version: int | None = None,
) -> CustomNotification:
    """The police legal assessment (legal history, vulnerabilities): police only, first."""
    purpose = require_purpose(purpose)
    _require(
        policy.gvi_police,
        user=user,
        purpose=purpose,
        what="gvi:notification:assess",
        obj=notification,
    )
    assessment = clean_text(assessment, "assessment", limit=NOTE_LIMIT, required=True)
    if not isinstance(lawful, bool):
        raise ValidationError({"lawful": _("Say whether the assessment supports it.")})
    with transaction.atomic():
        if notification.status == gvi.NotificationStatus.REQUESTED:
            transition(
                user=user,
                obj=notification,
                name="begin_assessment",
                purpose=purpose,
                expected_version=expected_version,
            )
            expected_version = None
        if notification.status != gvi.NotificationStatus.LEGAL_ASSESSMENT:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        _lock(notification, expected_version)
        fields = _seal_notification(notification, {"legal_assessment": assessment})
        now = timezone.now()
        CustomNotification.objects.filter(pk=notification.pk).update(
            lawful=lawful, legal_assessed_by=user, legal_assessed_at=now
        )
        notification.lawful, notification.legal_assessed_by = lawful, user
        notification.legal_assessed_at = now
        _changed(
            obj=notification,
            user=user,
            purpose=purpose,
            name="legal_assessment",
            fields=fields,
            lawful=lawful,
        )
    return notification


def approve_notification(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    message: str,
    expected_version: int | None = None,
) -> CustomNotification:
    """The coordinator writes and approves the message."""
    purpose = require_purpose(purpose)
    message = clean_text(message, "message", limit=NOTE_LIMIT, required=True)
    with transaction.atomic():
        _require(
            policy.coordinates_gvi,
            user=user,
            purpose=purpose,
            what="gvi:notification:approve",
            obj=notification,
        )
        if notification.status != gvi.NotificationStatus.LEGAL_ASSESSMENT:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        _lock(notification, expected_version)
        _seal_notification(notification, {"message": message})
        transition(user=user, obj=notification, name="approve", purpose=purpose, approved_by=user)
    return notification


def add_messenger(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    kind: str,
    description: str,
    expected_version: int | None = None,
) -> DeliveryTeamMember:
    purpose = require_purpose(purpose)
    _require(
        policy.gvi_police,
        user=user,
        purpose=purpose,
        what="gvi:notification:team",
        obj=notification,
    )
    _choice(kind, gvi.MessengerKind, "kind")
    description = clean_text(description, "description", limit=NAME_LIMIT, required=True)
    if notification.status not in (
        gvi.NotificationStatus.APPROVED,
        gvi.NotificationStatus.NOT_REACHED,
        gvi.NotificationStatus.SCHEDULED,
    ):
        raise ValidationError(_("This cannot be done in the current state."), code="invalid_state")
    with transaction.atomic():
        _lock(notification, expected_version)
        row = DeliveryTeamMember.objects.create(
            notification=notification, kind=kind, description=description
        )
        _changed(obj=notification, user=user, purpose=purpose, name="messenger", kind=kind)
    return row


def schedule_notification(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    scheduled_for: datetime.datetime,
    expected_version: int | None = None,
) -> CustomNotification:
    """Set the visit (first or a retry, within the limit) and move to ``scheduled``."""
    purpose = require_purpose(purpose)
    if not isinstance(scheduled_for, datetime.datetime):
        raise ValidationError({"scheduled_for": _("Enter a valid date and time.")})
    name = "retry" if notification.status == gvi.NotificationStatus.NOT_REACHED else "schedule"
    with transaction.atomic():
        _require(
            policy.gvi_police,
            user=user,
            purpose=purpose,
            what="gvi:notification:schedule",
            obj=notification,
        )
        _lock(notification, expected_version)
        CustomNotification.objects.filter(pk=notification.pk).update(scheduled_for=scheduled_for)
        notification.scheduled_for = scheduled_for
        transition(user=user, obj=notification, name=name, purpose=purpose)
    return notification


def record_delivery(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    offer_of_help: str,
    response: str,
    programme: str = "",
    reason: str = "",
    expected_version: int | None = None,
) -> CustomNotification:
    """Delivered: the offer of help and the member's response recorded; the member (and
    the group) have the message; an accepted offer opens the chosen referral."""
    purpose = require_purpose(purpose)
    offer_of_help = clean_text(offer_of_help, "offer_of_help", limit=NOTE_LIMIT, required=True)
    _choice(response, gvi.MemberResponse, "response")
    if response == gvi.MemberResponse.ACCEPTED:
        _choice(programme, gvi.ReferralProgramme, "programme")
        reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        _require(
            policy.gvi_police,
            user=user,
            purpose=purpose,
            what="gvi:notification:deliver",
            obj=notification,
        )
        if notification.status != gvi.NotificationStatus.SCHEDULED:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        _lock(notification, expected_version)
        _seal_notification(notification, {"offer_of_help": offer_of_help})
        CustomNotification.objects.filter(pk=notification.pk).update(response=response)
        notification.response = response
        transition(user=user, obj=notification, name="deliver", purpose=purpose)
        member = notification.member
        _deliver_to_member(user=user, purpose=purpose, member=member)
        if response == gvi.MemberResponse.ACCEPTED:
            accept_offer(
                user=user, purpose=purpose, member=member, programme=programme, reason=reason
            )
        elif response == gvi.MemberResponse.DECLINED:
            transition(user=user, obj=member, name="decline_offer", purpose=purpose)
    return notification


def record_notification_follow_up(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    note: str,
    expected_version: int | None = None,
) -> CustomNotification:
    """The follow-up contact after delivery: recorded, then the notification closes."""
    purpose = require_purpose(purpose)
    note = clean_text(note, "note", limit=NOTE_LIMIT, required=True)
    with transaction.atomic():
        require_gvi_access(
            user=user, purpose=purpose, what="gvi:notification:follow_up", obj=notification
        )
        if notification.status == gvi.NotificationStatus.DELIVERED:
            transition(
                user=user,
                obj=notification,
                name="begin_follow_up",
                purpose=purpose,
                expected_version=expected_version,
            )
            expected_version = None
        if notification.status != gvi.NotificationStatus.FOLLOW_UP:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        _lock(notification, expected_version)
        fields = _seal_notification(notification, {"follow_up_note": note})
        now = timezone.now()
        CustomNotification.objects.filter(pk=notification.pk).update(followed_up_at=now)
        notification.followed_up_at = now
        _changed(obj=notification, user=user, purpose=purpose, name="follow_up_note", fields=fields)
        transition(user=user, obj=notification, name="close", purpose=purpose)
    return notification
