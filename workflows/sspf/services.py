"""Writes of the SSPF programme: concerns, risk assessments, the police participation
decision, the mapping conversation, team and actions, meetings, anonymised discussions and
escalation to SIG.

Built on the shared case machinery (``casework.services.cases``): every function is
keyword-only, takes the acting ``user`` and the ``purpose``, asks ``casework.policy``, locks
the case row and checks the version the user saw, seals free text under the person's data
key, and writes the timeline entry and the access-log event in the same transaction. A
refusal is an ``ACCESS_DENIED`` event and :class:`CaseDenied`; bad input a
``ValidationError`` with Swedish messages. The state machine is in ``workflows/sspf.py``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import Outcome, record_event
from casework import policy, programmes
from casework.crypto.records import seal_value
from casework.models import Action, Case, CaseEvent, CaseMembership, Organisation
from casework.selectors.persons import require_purpose
from casework.services.cases import (
    NOTE_LIMIT,
    REASON_LIMIT,
    CaseConflict,
    CaseDenied,
    add_action,
    add_member,
    case_data_key,
    clean_text,
    deny_case,
    lock_version,
    open_case,
    record_change,
    require_access,
)

if TYPE_CHECKING:
    from casework.models import Person, User
    from workflows.sspf.models import (
        AgendaItem,
        AnonymisedDiscussion,
        OperationalMeeting,
        PoliceParticipation,
        RiskAssessment,
        SspfCase,
    )


def _programme():
    from workflows.sspf import models as sspf

    return sspf


def _owner_organisation() -> Organisation:
    """Social services hold the SSPF case (the coordinator works for them)."""
    offices = list(
        Organisation.objects.filter(kind=Organisation.Kind.SOCIAL_SERVICES, is_active=True)[:2]
    )
    if len(offices) != 1:
        raise ValidationError(
            _("No single social services organisation is registered to hold the case.")
        )
    return offices[0]


def _require_coordinator(*, user, case: Case, purpose: str, what: str) -> None:
    if not policy.coordinates(user, case):
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason="role")


def can_coordinate_sspf(user) -> bool:
    """Meetings and anonymised discussions belong to the SSPF coordinator."""
    return policy.can_use_task_inbox(user) and user.has_perm("casework.coordinate_cases")


def _deny_outside_case(*, user, obj, purpose: str, what: str) -> CaseDenied:
    record_event(
        action=AuditAction.ACCESS_DENIED,
        user=user,
        obj=obj,
        purpose=purpose,
        outcome=Outcome.DENIED,
        details={"operation": what, "reason": "role"},
        independent=True,
    )
    return CaseDenied()


# --- The concern ---------------------------------------------------------------------------


def raise_concern(*, user, person: Person, concern: str, purpose: str) -> SspfCase:
    """Open an SSPF case from a concern raised by school, social services, police or leisure.

    The young person must be within the SSPF age range.
    """
    sspf = _programme()
    purpose = require_purpose(purpose)
    if not policy.can_use_task_inbox(user):
        raise CaseDenied()
    if user.organisation.kind not in sspf.CONCERN_RAISERS:
        raise ValidationError(
            _("Only school, social services, police and leisure staff raise SSPF concerns.")
        )
    if not sspf.within_age_range(person):
        low, high = settings.SAMVERKAN["SSPF_AGE_RANGE"]
        raise ValidationError(
            {
                "personnummer": ValidationError(
                    _("SSPF is for children and young people aged %(low)s to %(high)s."),
                    params={"low": low, "high": high},
                )
            }
        )
    case = sspf.SspfCase(
        programme=Case.Programme.SSPF,
        person=person,
        owner_organisation=_owner_organisation(),
        referred_by=user,
        referring_organisation=user.organisation,
    )
    return open_case(user=user, purpose=purpose, case=case, reason_field="concern", reason=concern)


# --- Assessment ------------------------------------------------------------------------------


def record_risk_assessment(
    *,
    user,
    case: SspfCase,
    purpose: str,
    level: str,
    risk_factors: str,
    protective_factors: str | None = None,
    expected_version: int | None = None,
) -> RiskAssessment:
    """The coordinator's risk assessment (a new one replaces the older as the one in force)."""
    sspf = _programme()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="risk:record")
    _require_coordinator(user=user, case=case, purpose=purpose, what="risk:record")
    if level not in sspf.RiskAssessment.Level.values:
        raise ValidationError({"level": ValidationError(_("Select a valid choice."))})
    risk_factors = clean_text(risk_factors, "risk_factors", limit=NOTE_LIMIT, required=True)
    protective_factors = clean_text(protective_factors, "protective_factors", limit=NOTE_LIMIT)
    with transaction.atomic():
        lock_version(case, expected_version)
        assessment = sspf.RiskAssessment(case=case, level=level, assessed_by=user)
        dek = case_data_key(case)
        seal_value(assessment, "risk_factors", risk_factors, dek)
        seal_value(assessment, "protective_factors", protective_factors, dek)
        assessment.save(force_insert=True)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.DECISION,
            label=f"risk:{level}",
            action=AuditAction.CREATE,
            fields=["risk_factors", *(["protective_factors"] if protective_factors else [])],
            obj=assessment,
            level=level,
        )
    return assessment


def record_police_participation(
    *,
    user,
    case: SspfCase,
    purpose: str,
    participates: bool,
    reason: str,
    expected_version: int | None = None,
) -> PoliceParticipation:
    """The coordinator records whether the police take part, and why.

    "No" ends the police's access at once (``casework.policy.case_access`` reads the newest
    decision on every request); the police's team memberships are ended with it.
    """
    sspf = _programme()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="police_participation")
    _require_coordinator(user=user, case=case, purpose=purpose, what="police_participation")
    if not isinstance(participates, bool):
        raise ValidationError({"participates": ValidationError(_("Select a valid choice."))})
    reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        lock_version(case, expected_version)
        decision = sspf.PoliceParticipation(case=case, participates=participates, decided_by=user)
        seal_value(decision, "reason", reason, case_data_key(case))
        decision.save(force_insert=True)
        ended = 0
        if not participates:
            ended = CaseMembership.objects.filter(
                case=case, valid_to__isnull=True, user__organisation__kind=Organisation.Kind.POLICE
            ).update(valid_to=timezone.now())
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.DECISION,
            label=f"police:{'yes' if participates else 'no'}",
            action=AuditAction.CREATE,
            fields=["reason"],
            obj=decision,
            participates=participates,
            memberships_ended=ended,
        )
    return decision


def record_mapping(
    *,
    user,
    case: SspfCase,
    purpose: str,
    held_on: datetime.date,
    note: str,
    expected_version: int | None = None,
) -> SspfCase:
    """The mapping conversation with the family: when it was held and what came out of it."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="mapping:record")
    _require_coordinator(user=user, case=case, purpose=purpose, what="mapping:record")
    note = clean_text(note, "mapping_note", limit=NOTE_LIMIT, required=True)
    if not isinstance(held_on, datetime.date) or held_on > timezone.localdate():
        raise ValidationError(
            {"held_on": ValidationError(_("The conversation cannot be dated in the future."))}
        )
    if held_on < timezone.localtime(case.opened_at).date():
        raise ValidationError(
            {"held_on": ValidationError(_("The conversation cannot be before the concern."))}
        )
    from django_fsm import ConcurrentTransition

    with transaction.atomic():
        lock_version(case, expected_version)
        seal_value(case, "mapping_note", note, case_data_key(case))
        case.mapping_date = held_on
        try:
            case.save()
        except ConcurrentTransition:
            raise CaseConflict() from None
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label="mapping",
            action=AuditAction.CHANGE,
            fields=["mapping_note", "mapping_date"],
        )
    return case


# --- Team and actions --------------------------------------------------------------------------


def add_sspf_member(
    *,
    user,
    case: SspfCase,
    purpose: str,
    member: User,
    role: str,
    expected_version: int | None = None,
) -> CaseMembership:
    """Put school, leisure, social services or (where they take part) police staff on the team."""
    purpose = require_purpose(purpose)
    if policy.is_police(member) and not policy.sspf_police_participates(case):
        raise ValidationError(
            {
                "user": ValidationError(
                    _("Record the decision that the police take part before adding police staff.")
                )
            }
        )
    return add_member(
        user=user,
        case=case,
        purpose=purpose,
        member=member,
        role=role,
        expected_version=expected_version,
    )


def add_sspf_action(
    *,
    user,
    case: SspfCase,
    purpose: str,
    kind: str,
    status: str,
    date: datetime.date,
    organisation: Organisation | None = None,
    note: str | None = None,
    visibility: str = Action.Visibility.TEAM,
    expected_version: int | None = None,
) -> Action:
    """An action of the commitment plan: who (the organisation), what (kind, note), when.

    The coordinator plans actions for any organisation from the network meeting on;
    members record their own organisation's while the plan is in force.
    """
    organisation = organisation or user.organisation
    coordinator = policy.coordinates(user, case)
    if not coordinator and organisation.pk != user.organisation_id:
        require_access(user=user, case=case, purpose=purpose, what="action:add")
        raise deny_case(
            user=user, case=case, purpose=purpose, what="action:add", reason="organisation"
        )
    if (
        organisation.kind == Organisation.Kind.POLICE
        and not policy.sspf_police_participates(case)
        and coordinator
    ):
        raise ValidationError(
            {
                "organisation": ValidationError(
                    _("The police take part only after a recorded decision that they should.")
                )
            }
        )
    return add_action(
        user=user,
        case=case,
        purpose=purpose,
        kind=kind,
        status=status,
        date=date,
        organisation=organisation,
        note=note,
        visibility=visibility,
        expected_version=expected_version,
    )


# --- The school's and the leisure centre's part of the plan --------------------------------------

NO_OWN_ACTION = _("Record your organisation's action in the plan first: who does what, and when.")
PART_REPORTERS = (Organisation.Kind.SCHOOL, Organisation.Kind.LEISURE)


def has_own_action(*, user, case: SspfCase) -> bool:
    """The plan holds an action (not cancelled) of the user's organisation."""
    return (
        case.actions.exclude(status=Action.Status.CANCELLED)
        .filter(organisation_id=user.organisation_id)
        .exists()
    )


def report_plan_part(
    *, user, case: SspfCase, purpose: str, note: str, expected_version: int | None = None
) -> None:
    """A school or leisure member reports their organisation's part of the commitment plan
    before the follow-up meeting: how it is going (sealed on the timeline, for the
    coordinator). Their organisation must have an action in the plan."""
    sspf = _programme()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="plan:report")
    if (
        user.organisation is None
        or user.organisation.kind not in PART_REPORTERS
        or policy.team_membership(user, case) is None
    ):
        raise deny_case(user=user, case=case, purpose=purpose, what="plan:report", reason="role")
    if case.status not in sspf.PLAN_STATES:
        raise ValidationError(_("The commitment plan is not in force."))
    note = clean_text(note, "report", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        lock_version(case, expected_version)
        if not has_own_action(user=user, case=case):
            raise ValidationError(NO_OWN_ACTION)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label=f"report:{user.organisation.kind}",
            action=AuditAction.CHANGE,
            fields=["report"],
            reason=note,
        )


# --- Escalation --------------------------------------------------------------------------------


def escalate_to_sig(*, user, case: SspfCase, reason: str, purpose: str) -> Case:
    """Open a linked SIG referral for the young person (only within SIG's age range)."""
    from casework.models import CaseLink

    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="escalate")
    _require_coordinator(user=user, case=case, purpose=purpose, what="escalate")
    if case.status == _programme().Status.CLOSED:
        raise ValidationError(_("A closed case cannot be escalated."))
    return programmes.refer_linked(
        Case.Programme.SIG,
        user=user,
        from_case=case,
        kind=CaseLink.Kind.ESCALATED,
        reason=reason,
        purpose=purpose,
    )


# --- Operational group meetings ----------------------------------------------------------------


def create_meeting(
    *, user, purpose: str, date: datetime.date, organisations: Iterable[Organisation]
) -> OperationalMeeting:
    sspf = _programme()
    purpose = require_purpose(purpose)
    if not can_coordinate_sspf(user):
        raise _deny_outside_case(user=user, obj=None, purpose=purpose, what="meeting:create")
    organisations = list(organisations)
    errors = {}
    if not isinstance(date, datetime.date):
        errors["date"] = [_("Enter a valid date.")]
    if not organisations:
        errors["organisations"] = [_("Choose the organisations taking part.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        meeting = sspf.OperationalMeeting.objects.create(date=date, created_by=user)
        meeting.organisations.set(organisations)
        record_event(
            action=AuditAction.CREATE,
            user=user,
            obj=meeting,
            purpose=purpose,
            details={"organisations": sorted(o.pk for o in organisations)},
        )
    return meeting


def add_to_agenda(*, user, meeting: OperationalMeeting, case: SspfCase, purpose: str) -> AgendaItem:
    """Put an SSPF case on a meeting's agenda (the coordinator)."""
    sspf = _programme()
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="agenda:add")
    _require_coordinator(user=user, case=case, purpose=purpose, what="agenda:add")
    if case.status == sspf.Status.CLOSED:
        raise ValidationError({"reference": ValidationError(_("The case is closed."))})
    with transaction.atomic():
        lock_version(case, None)
        if sspf.AgendaItem.objects.filter(meeting=meeting, case=case).exists():
            raise ValidationError(
                {"reference": ValidationError(_("The case is already on the agenda."))}
            )
        item = sspf.AgendaItem.objects.create(meeting=meeting, case=case)
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.PLAN,
            label="agenda",
            action=AuditAction.CHANGE,
            obj=item,
            meeting=str(meeting.pk),
        )
    return item


def record_agenda_decision(*, user, item: AgendaItem, decision: str, purpose: str) -> AgendaItem:
    """The meeting's decision on a case on its agenda (sealed under the person's key)."""
    purpose = require_purpose(purpose)
    case = item.case
    require_access(user=user, case=case, purpose=purpose, what="agenda:decide")
    _require_coordinator(user=user, case=case, purpose=purpose, what="agenda:decide")
    decision = clean_text(decision, "decision", limit=NOTE_LIMIT, required=True)
    with transaction.atomic():
        lock_version(case, None)
        seal_value(item, "decision", decision, case_data_key(case))
        item.decided_by = user
        item.decided_at = timezone.now()
        item.save(update_fields=["decision", "decided_by", "decided_at"])
        record_change(
            case=case,
            user=user,
            purpose=purpose,
            kind=CaseEvent.Kind.DECISION,
            label="meeting",
            action=AuditAction.CHANGE,
            fields=["decision"],
            obj=item,
            meeting=str(item.meeting_id),
        )
    return item


def record_anonymised_discussion(
    *,
    user,
    purpose: str,
    date: datetime.date,
    organisation: Organisation,
    topic: str,
    summary: str,
    outcome: str = "",
    age_band: str = "",
    area: str = "",
    meeting: OperationalMeeting | None = None,
) -> AnonymisedDiscussion:
    """A situation discussed without consent: recorded with no personal data at all.

    Refuses text holding anything like a personnummer (or samordningsnummer).
    """
    sspf = _programme()
    from casework.models import Person

    purpose = require_purpose(purpose)
    if not can_coordinate_sspf(user):
        raise _deny_outside_case(user=user, obj=meeting, purpose=purpose, what="discussion:create")
    errors: dict[str, list] = {}
    texts = {}
    for name, value, required in (("summary", summary, True), ("outcome", outcome, False)):
        try:
            texts[name] = clean_text(value, name, limit=REASON_LIMIT, required=required) or ""
        except ValidationError as error:
            errors.update(error.message_dict)
            continue
        if sspf.find_personnummer_like(texts[name]):
            errors[name] = [
                _(
                    "Remove what looks like a personal identity number: an anonymised "
                    "discussion holds no personal data."
                )
            ]
    if topic not in sspf.AnonymisedDiscussion.Topic.values:
        errors["topic"] = [_("Select a valid choice.")]
    if age_band and age_band not in sspf.AgeBand.values:
        errors["age_band"] = [_("Select a valid choice.")]
    if area and area not in Person.Area.values:
        errors["area"] = [_("Select a valid choice.")]
    if not isinstance(date, datetime.date) or date > timezone.localdate():
        errors["date"] = [_("The discussion cannot be dated in the future.")]
    if organisation is None or organisation.kind not in sspf.CONCERN_RAISERS:
        errors["organisation"] = [_("Select a valid choice.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        discussion = sspf.AnonymisedDiscussion.objects.create(
            meeting=meeting,
            date=date,
            organisation=organisation,
            topic=topic,
            age_band=age_band,
            area=area,
            summary=texts["summary"],
            outcome=texts["outcome"],
            recorded_by=user,
        )
        record_event(
            action=AuditAction.CREATE,
            user=user,
            obj=discussion,
            purpose=purpose,
            details={"meeting": str(meeting.pk) if meeting else "", "anonymised": True},
        )
    return discussion


__all__ = [
    "add_sspf_action",
    "add_sspf_member",
    "add_to_agenda",
    "can_coordinate_sspf",
    "create_meeting",
    "escalate_to_sig",
    "has_own_action",
    "raise_concern",
    "record_agenda_decision",
    "record_anonymised_discussion",
    "record_mapping",
    "record_police_participation",
    "record_risk_assessment",
    "report_plan_part",
]
