"""GVI writes on the message's delivery: call-ins (planned, held, followed up) and
custom notifications (assessed by the police, approved, delivered, followed up).

Notification texts are sealed under the member's person key. A member who got the
message moves on (:func:`deliver_to_member`), and so does a mapped group.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from casework import policy
from casework.selectors.persons import require_purpose
from casework.services import transitions
from casework.services.case_changes import choice
from casework.services.cases import REASON_LIMIT, clean_text
from casework.services.transitions import (
    Denied,
    audit,
    next_reference,
    transition,
)
from workflows.common.nodes import open_task, task_step
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi.models import (
    CallIn,
    CallInAttendee,
    CallInSpeaker,
    CustomNotification,
    DeliveryTeamMember,
    GroupMember,
)
from workflows.gvi.services.access import (
    NAME_LIMIT,
    NOTE_LIMIT,
    GviChange,
    changing,
    deny,
    locked,
    person_dek,
    record_created,
    require_gvi_access,
    require_role,
)
from workflows.gvi.services.groups import accept_offer


def deliver_to_member(*, user, purpose: str, member: GroupMember) -> None:
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
    purpose = require_role(
        policy.coordinates_gvi, user=user, purpose=purpose, what="gvi:callin:create"
    )
    if not isinstance(date, datetime.date):
        raise ValidationError({"date": _("Enter a valid date.")})
    if date < timezone.localdate():
        raise ValidationError({"date": _("The date cannot be in the past.")})
    with transaction.atomic():
        call_in = CallIn.objects.create(
            reference=next_reference(CallIn, "GVI-C"), date=date, created_by=user
        )
        gvi_flow.GviCallInFlow.start.run(call_in=call_in)
        record_created(call_in, "plan", user=user, purpose=purpose)
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
    purpose = require_role(
        policy.coordinates_gvi, call_in, user=user, purpose=purpose, what="gvi:callin:attendee"
    )
    if not isinstance(member, GroupMember):
        raise ValidationError({"member": _("Every attendee must be a group member.")})
    _require_planning(call_in)
    with changing(call_in, expected_version, user=user, purpose=purpose) as change:
        if call_in.attendees.filter(member=member).exists():
            raise ValidationError({"member": _("The member is already invited.")})
        attendee = CallInAttendee.objects.create(call_in=call_in, member=member)
        change.record("add_attendee", member=str(member.pk))
        audit(
            action=AuditAction.CHANGE,
            user=user,
            obj=member,
            purpose=purpose,
            call_in=str(call_in.pk),
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
    purpose = require_role(
        policy.coordinates_gvi, call_in, user=user, purpose=purpose, what="gvi:callin:speaker"
    )
    choice(role, gvi.SpeakerRole, "role")
    speaker = clean_text(speaker, "speaker", limit=NAME_LIMIT, required=True)
    _require_planning(call_in)
    with changing(call_in, expected_version, user=user, purpose=purpose) as change:
        row, _created = CallInSpeaker.objects.update_or_create(
            call_in=call_in, role=role, defaults={"speaker": speaker}
        )
        change.record("speaker", role=role)
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
    purpose = require_role(
        policy.coordinates_gvi, call_in, user=user, purpose=purpose, what="gvi:callin:attendance"
    )
    if call_in.status != gvi.CallInStatus.INVITED:
        raise ValidationError(
            _("Attendance is recorded once the attendees are invited."), code="invalid_state"
        )
    with changing(call_in, expected_version, user=user, purpose=purpose) as change:
        attendees = {str(a.pk): a for a in call_in.attendees.all()}
        for attendee_id, attended in attendance.items():
            attendee = attendees.get(str(attendee_id))
            if attendee is None or not isinstance(attended, bool):
                raise ValidationError(_("Unknown attendee."))
            CallInAttendee.objects.filter(pk=attendee.pk).update(attended=attended)
        change.record("attendance")


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
            deliver_to_member(user=user, purpose=purpose, member=attendee.member)
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
    with changing(call_in, expected_version, user=user, purpose=purpose) as change:
        CallInAttendee.objects.filter(pk=attendee.pk).update(
            followed_up_at=timezone.now(), followed_up_by=user
        )
        change.record("follow_up", member=str(attendee.member_id))


# --- Custom notifications -----------------------------------------------------------------


def request_notification(
    *, user, purpose: str, member: GroupMember, police_officer
) -> CustomNotification:
    """Request a custom notification to ``member``; its flow starts with the police
    officer's legal assessment."""
    purpose = require_role(
        policy.coordinates_gvi_or_police,
        member,
        user=user,
        purpose=purpose,
        what="gvi:notification:request",
    )
    if police_officer is None or not policy.gvi_police(police_officer):
        raise ValidationError(
            {"police_officer": _("Choose a police officer to assess and deliver.")}
        )
    if member.status in (gvi.MemberStatus.OFFER_ACCEPTED,):
        raise ValidationError(_("The member has already accepted the offer of help."))
    with transaction.atomic():
        notification = CustomNotification.objects.create(
            reference=next_reference(CustomNotification, "GVI-N"),
            member=member,
            requested_by=user,
            police_officer=police_officer,
        )
        gvi_flow.GviNotificationFlow.start.run(notification=notification)
        record_created(notification, "request", user=user, purpose=purpose)
    return notification


def _member_key(notification: CustomNotification):
    """The key a notification's texts are sealed under: the member's person key."""
    return person_dek(notification.member.person_id)


# The states a notification's police and follow-up steps work in, each with the state
# before it and the transition a step's first write takes from there.
_ENTERED_FROM = {
    gvi.NotificationStatus.LEGAL_ASSESSMENT: (gvi.NotificationStatus.REQUESTED, "begin_assessment"),
    gvi.NotificationStatus.FOLLOW_UP: (gvi.NotificationStatus.DELIVERED, "begin_follow_up"),
}


def _working(
    notification: CustomNotification, state: str, expected_version, *, user, purpose: str
) -> GviChange:
    """Lock the notification in ``state``, entering it first from the state before (the
    version the user saw is checked by that transition, else by the lock)."""
    before, name = _ENTERED_FROM[state]
    if notification.status == before:
        transition(
            user=user,
            obj=notification,
            name=name,
            purpose=purpose,
            expected_version=expected_version,
        )
        expected_version = None
    return locked(notification, expected_version, state, user=user, purpose=purpose)


def _take_up(
    notification: CustomNotification, state: str, expected_version, *, check, user, purpose, what
) -> GviChange:
    """A notification step's opening, inside its transaction: the role ``check`` (a
    refusal is logged) and the row locked in ``state`` at the version the user saw."""
    require_role(check, notification, user=user, purpose=purpose, what=what)
    return locked(notification, expected_version, state, user=user, purpose=purpose)


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
    purpose = require_role(
        policy.gvi_police, notification, user=user, purpose=purpose, what="gvi:notification:assess"
    )
    assessment = clean_text(assessment, "assessment", limit=NOTE_LIMIT, required=True)
    if not isinstance(lawful, bool):
        raise ValidationError({"lawful": _("Say whether the assessment supports it.")})
    with transaction.atomic():
        change = _working(
            notification,
            gvi.NotificationStatus.LEGAL_ASSESSMENT,
            expected_version,
            user=user,
            purpose=purpose,
        )
        fields = change.seal(_member_key(notification), legal_assessment=assessment)
        change.store(lawful=lawful, legal_assessed_by=user, legal_assessed_at=timezone.now())
        change.record("legal_assessment", fields=fields, lawful=lawful)
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
        change = _take_up(
            notification,
            gvi.NotificationStatus.LEGAL_ASSESSMENT,
            expected_version,
            check=policy.coordinates_gvi,
            user=user,
            purpose=purpose,
            what="gvi:notification:approve",
        )
        change.seal(_member_key(notification), message=message)
        change.transition("approve", approved_by=user)
    return notification


_TEAM_STATES = (
    gvi.NotificationStatus.APPROVED,
    gvi.NotificationStatus.NOT_REACHED,
    gvi.NotificationStatus.SCHEDULED,
)


def add_messenger(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    kind: str,
    description: str,
    expected_version: int | None = None,
) -> DeliveryTeamMember:
    purpose = require_role(
        policy.gvi_police, notification, user=user, purpose=purpose, what="gvi:notification:team"
    )
    choice(kind, gvi.MessengerKind, "kind")
    description = clean_text(description, "description", limit=NAME_LIMIT, required=True)
    with changing(
        notification, expected_version, *_TEAM_STATES, user=user, purpose=purpose
    ) as change:
        row = DeliveryTeamMember.objects.create(
            notification=notification, kind=kind, description=description
        )
        change.record("messenger", kind=kind)
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
        require_role(
            policy.gvi_police,
            notification,
            user=user,
            purpose=purpose,
            what="gvi:notification:schedule",
        )
        change = locked(notification, expected_version, user=user, purpose=purpose)
        change.store(scheduled_for=scheduled_for)
        change.transition(name)
    return notification


_DELIVER = "gvi:notification:deliver"


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
    choice(response, gvi.MemberResponse, "response")
    if response == gvi.MemberResponse.ACCEPTED:
        choice(programme, gvi.ReferralProgramme, "programme")
        reason = clean_text(reason, "reason", limit=REASON_LIMIT, required=True)
    with transaction.atomic():
        change = _take_up(
            notification,
            gvi.NotificationStatus.SCHEDULED,
            expected_version,
            check=policy.gvi_police,
            user=user,
            purpose=purpose,
            what=_DELIVER,
        )
        change.seal(_member_key(notification), offer_of_help=offer_of_help)
        change.store(response=response)
        change.transition("deliver")
        member = notification.member
        deliver_to_member(user=user, purpose=purpose, member=member)
        if response == gvi.MemberResponse.ACCEPTED:
            accept_offer(
                user=user, purpose=purpose, member=member, programme=programme, reason=reason
            )
        elif response == gvi.MemberResponse.DECLINED:
            transition(user=user, obj=member, name="decline_offer", purpose=purpose)
    return notification


def record_delivery_step(
    *,
    user,
    purpose: str,
    notification: CustomNotification,
    expected_version: int | None = None,
    **delivery: Any,
) -> CustomNotification:
    """The delivery recorded from outside its task page (the integration API) as that page
    records it: the notification's open step "Schedule and deliver" is taken by ``user``
    (theirs, or in their queue), :func:`record_delivery` (``delivery``: its arguments),
    and the step is done, so the follow-up comes next; all or nothing. A user who may not
    do the step (another officer's) is refused, and the refusal logged."""
    purpose = require_role(
        policy.gvi_police, notification, user=user, purpose=purpose, what=_DELIVER
    )
    node = gvi_flow.GviNotificationFlow.deliver
    with transaction.atomic():
        try:
            task = open_task(notification.process, node)
        except ObjectDoesNotExist:
            raise ValidationError(transitions.WRONG_STATE, code="invalid_state") from None
        try:
            with task_step(task, node, user) as activation:
                record_delivery(
                    user=user,
                    purpose=purpose,
                    notification=notification,
                    expected_version=expected_version,
                    **delivery,
                )
                activation.execute()
        except PermissionDenied:
            # Not this user's step: another officer's (viewflow's owner rule).
            deny(user=user, obj=notification, purpose=purpose, what=_DELIVER, reason="task")
            raise Denied(_("The delivery step is assigned to another police officer.")) from None
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
        change = _working(
            notification,
            gvi.NotificationStatus.FOLLOW_UP,
            expected_version,
            user=user,
            purpose=purpose,
        )
        fields = change.seal(_member_key(notification), follow_up_note=note)
        change.store(followed_up_at=timezone.now())
        change.record("follow_up_note", fields=fields)
        change.transition("close")
    return notification
