"""GVI writes on groups: registering and erasing a group, its members, incidents,
sanctions and the offer of help a member accepts.

Group name and notes (and the reasons of withdrawn sanction levers) are sealed under
the group's own data key (``casework.crypto.keystore.GROUP``), which :func:`erase_group`
destroys. An accepted offer of help (:func:`accept_offer`) opens the referral and starts
the task social services take it up with (:func:`take_up_referral`: the participant
joins the referral case's team through ``casework.services.cases.join_team``).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_event
from casework import policy, programmes
from casework.crypto.keystore import GROUP, create_data_key, destroy_data_key
from casework.crypto.records import seal_value
from casework.models import Case, Organisation, Person
from casework.selectors.persons import person_age, require_purpose
from casework.services import person_corrections
from casework.services.case_changes import FieldErrors, choice, past_date
from casework.services.cases import REASON_LIMIT, clean_text, join_team
from casework.services.persons import check_registration, find_or_create_person
from casework.services.transitions import (
    Conflict,
    audit,
    audit_created,
    bump,
    lock,
    may_transition,
    next_reference,
    timeline,
    transition,
)
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi.models import (
    Group,
    GroupMember,
    Incident,
    Sanction,
    SanctionDecision,
)
from workflows.gvi.services.access import (
    NAME_LIMIT,
    NOTE_LIMIT,
    WITHDRAW_REASON_LIMIT,
    changing,
    deny,
    group_dek,
    locked,
    record_created,
    require_gvi_access,
    require_role,
    store,
)

# --- Groups -------------------------------------------------------------------------------


def create_group(
    *, user, purpose: str, name: str, notes: str | None, area: str, size_band: str
) -> Group:
    """Register a group: name and notes sealed under a new data key of the group's own."""
    purpose = require_role(
        policy.coordinates_gvi_or_police, user=user, purpose=purpose, what="gvi:group:create"
    )
    errors = FieldErrors()
    with errors.check():
        name = clean_text(name, "name", limit=NAME_LIMIT, required=True)
    with errors.check():
        notes = clean_text(notes, "notes", limit=NOTE_LIMIT)
    errors.choices(("area", area, Person.Area), ("size_band", size_band, gvi.SizeBand))
    errors.raise_any()
    group = Group(area=area, size_band=size_band, created_by=user)
    # The key is committed in the key store first (an orphan key opens nothing).
    dek = create_data_key(owner_type=GROUP, owner_id=group.pk)
    with transaction.atomic():
        group.reference = next_reference(Group, "GVI-G")
        seal_value(group, "name", name, dek)
        seal_value(group, "notes", notes, dek)
        group.save(force_insert=True)
        record_created(
            group,
            "register",
            user=user,
            purpose=purpose,
            fields=["name"] + (["notes"] if notes else []),
            reference=group.reference,
        )
    return group


def update_group_notes(
    *, user, purpose: str, group: Group, notes: str | None, expected_version: int | None
) -> Group:
    purpose = require_role(
        policy.coordinates_gvi_or_police, group, user=user, purpose=purpose, what="gvi:group:notes"
    )
    notes = clean_text(notes, "notes", limit=NOTE_LIMIT)
    if group.erased_at is not None:
        raise ValidationError(_("The group has been erased."), code="erased")
    with changing(group, expected_version, user=user, purpose=purpose) as change:
        change.seal(group_dek(group), notes=notes)
        change.record("notes", fields=["notes"])
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
    what = "gvi:group:erase"
    purpose = require_role(policy.may_erase_gvi_group, group, user=user, purpose=purpose, what=what)
    errors = FieldErrors()
    with errors.check():
        reason = clean_text(reason, "reason", limit=WITHDRAW_REASON_LIMIT, required=True)
    if confirmed is not True:
        errors.add("confirmed", _("Confirm that the group's data is to be destroyed."), "required")
    errors.raise_any()
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
        raise Conflict()
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
        timeline(obj=group, user=user, name="erase")
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
    purpose = require_role(
        policy.coordinates_gvi_or_police, group, user=user, purpose=purpose, what="gvi:member:add"
    )
    if person.erased_at is not None:
        raise ValidationError(_("This person has been erased."))
    if group.status == gvi.GroupStatus.DORMANT:
        raise ValidationError(_("The group is dormant: no members are added."))
    with transaction.atomic():
        lock(group, expected_version)
        if GroupMember.objects.filter(group=group, person=person).exists():
            raise ValidationError(_("The person is already a member of this group."))
        member = GroupMember.objects.create(group=group, person=person, added_by=user)
        minor = gvi.is_minor(person_age(person, on=timezone.localdate()))
        if minor:
            store(member, minor_notice=True)
            gvi_flow.GviMinorNoticeFlow.start.run(member=member)
        bump(group)
        record_created(
            member,
            "add_member",
            user=user,
            purpose=purpose,
            group=str(group.pk),
            minor_notice=minor,
        )
    return member


def set_member_protected_identity(
    *, user, purpose: str, member: GroupMember, level, expected_version: int | None = None
) -> bool:
    """Set, change or lift (level 0) the protected identity of a member's person: those
    who register members (``casework.policy.may_set_gvi_protected_identity``). The same
    person in a case is then masked there too. Whether it changed."""
    purpose = require_role(
        policy.may_set_gvi_protected_identity,
        member,
        user=user,
        purpose=purpose,
        what="gvi:member:protected_identity",
    )
    level = person_corrections.protected_identity_level(level)
    with changing(member, expected_version, user=user, purpose=purpose) as change:
        details = person_corrections.set_person_protected_identity(
            user=user, purpose=purpose, person_id=member.person_id, level=level
        )
        change.record(
            "protected_identity",
            fields=["person.protected_identity"],
            target=member.status,
            **details,
        )
    return details["previous_level"] != level


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
    purpose = require_role(
        policy.coordinates_gvi_or_police, group, user=user, purpose=purpose, what="gvi:member:add"
    )
    normalised = check_registration(name=name, personnummer=personnummer, area=area)
    if group.status == gvi.GroupStatus.DORMANT:
        raise ValidationError(_("The group is dormant: no members are added."))
    with transaction.atomic():
        lock(group, expected_version)
        person = find_or_create_person(
            user=user, purpose=purpose, personnummer=normalised, name=name, area=area
        )
        return add_member(user=user, purpose=purpose, group=group, person=person)


def acknowledge_minor_notice(*, user, purpose: str, member: GroupMember) -> None:
    """A social-services participant has taken note of a member under 18."""
    purpose = require_role(
        policy.gvi_participant, member, user=user, purpose=purpose, what="gvi:minor:ack"
    )
    with transaction.atomic():
        timeline(obj=member, user=user, name="minor_notice_acknowledged")
        audit(action=AuditAction.CONSULT, user=user, obj=member, purpose=purpose, notice=True)


# --- Incidents ----------------------------------------------------------------------------


def record_incident(
    *, user, purpose: str, date: datetime.date, area: str, kind: str, groups: Iterable[Group]
) -> Incident:
    """Police record an incident and link groups; a monitored group moves to ``incident_linked``."""
    purpose = require_role(
        policy.gvi_police, user=user, purpose=purpose, what="gvi:incident:create"
    )
    errors = FieldErrors()
    with errors.check():
        past_date(date, "date")
    errors.choices(("area", area, Person.Area), ("kind", kind, Incident.Kind))
    groups = list(groups)
    if not groups:
        errors.add("groups", _("Link at least one group."), "required")
    errors.raise_any()
    with transaction.atomic():
        incident = Incident.objects.create(
            date=date,
            area=area,
            kind=kind,
            recorded_by=user,
            organisation=user.organisation,
        )
        incident.groups.set(groups)
        audit_created(
            incident,
            user=user,
            purpose=purpose,
            groups=[str(g.pk) for g in groups],
        )
        for group in groups:
            timeline(obj=group, user=user, name="incident")
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
    purpose = require_role(
        policy.coordinates_gvi, group, user=user, purpose=purpose, what="gvi:sanction:decide"
    )
    levers = list(levers)
    if not levers:
        raise ValidationError({"levers": _("Choose at least one agency's lever.")})
    seen = set()
    for lever, organisation in levers:
        choice(lever, gvi.Lever, "levers")
        if lever in seen:
            raise ValidationError({"levers": _("Each lever can be chosen once.")})
        seen.add(lever)
        if not isinstance(organisation, Organisation):
            raise ValidationError({"levers": _("Name the agency of each lever.")})
    if not incident.groups.filter(pk=group.pk).exists():
        raise ValidationError({"incident": _("The incident is not linked to this group.")})
    with changing(group, expected_version, user=user, purpose=purpose) as change:
        if group.open_decision() is not None:
            raise ValidationError(_("The group already has sanctions in force."))
        decision = SanctionDecision.objects.create(group=group, incident=incident, decided_by=user)
        for lever, organisation in levers:
            Sanction.objects.create(decision=decision, lever=lever, organisation=organisation)
        audit_created(
            decision,
            user=user,
            purpose=purpose,
            group=str(group.pk),
            levers=sorted(seen),
        )
        change.transition("decide_sanctions")
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
            seal_value(sanction, "withdraw_reason", reason, group_dek(group))
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
    choice(programme, gvi.ReferralProgramme, "programme")
    require_gvi_access(user=user, purpose=purpose, what="gvi:member:accept", obj=member)
    if not may_transition(user=user, obj=member, name="accept_offer"):
        if member.status != gvi.MemberStatus.MESSAGE_DELIVERED:
            raise ValidationError(
                _("This cannot be done in the current state."), code="invalid_state"
            )
        raise deny(user=user, obj=member, purpose=purpose, what="gvi:member:accept", reason="role")
    with transaction.atomic():
        change = locked(member, expected_version, user=user, purpose=purpose)
        case = programmes.refer_from(
            programme,
            user=user,
            person=member.person,
            reason=reason,
            purpose=purpose,
            source=f"gvi_member:{member.pk}",
        )
        change.store(referral_case=case, referral_programme=programme)
        change.transition("accept_offer")
        # The promise of help is kept quickly: the referral waits in the named
        # social-services participants' queue until one of them takes it up.
        gvi_flow.GviReferralNoticeFlow.start.run(member=member)
        timeline(obj=member, user=user, name="referral_notice")
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
    what = "gvi:referral:take_up"
    purpose = require_role(policy.gvi_participant, member, user=user, purpose=purpose, what=what)
    if member.referral_case_id is None:
        raise ValidationError(
            _("The referral to SIG or the defector programme has not been opened."),
            code="invalid_state",
        )
    case = Case.objects.select_related("owner_organisation").get(pk=member.referral_case_id)
    with transaction.atomic():
        lock(member, None)
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
        timeline(obj=member, user=user, name=f"referral_{outcome.value}")
        audit(
            action=AuditAction.CHANGE,
            user=user,
            obj=member,
            purpose=purpose,
            referral_case=str(case.pk),
            take_up=outcome.value,
        )
    return outcome
