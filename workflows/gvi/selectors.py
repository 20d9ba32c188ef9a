"""GVI reads: the overview, the group, member, call-in and notification pages.

Each reading asks ``casework.policy.gvi_access`` (a refusal writes an
``ACCESS_DENIED`` event and raises :class:`GviNotFound`), decrypts what the page
shows — group names and notes under the group's key, names and notification
texts under each person's key — and writes the access-log events of that one
reading: one ``CONSULT`` for the page's object naming the fields it decrypted,
and one per person whose name it showed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from viewflow.workflow.status import STATUS

from audit.services import Action as AuditAction
from audit.services import record_event, record_refusal
from casework import policy
from casework.crypto.keystore import GROUP, PERSON, load_data_keys
from casework.crypto.records import open_value
from casework.selectors.cases import Opened
from casework.selectors.persons import ERASED_LABEL, data_key_of, require_purpose
from workflows.gvi import models as gvi


class GviNotFound(Exception):
    """No such object, or not one this user may see (the two are not told apart)."""


def _deny(*, user, purpose: str, what: str, reason: str, obj=None) -> GviNotFound:
    record_refusal(
        user=user,
        obj=obj,
        object_type="" if obj is not None else "workflows.gvi.models",
        purpose=purpose,
        details={"operation": what, "reason": reason},
    )
    return GviNotFound()


@dataclass(frozen=True)
class _Reading:
    """One reading of GVI's data by ``user`` under ``purpose``, allowed ``via`` a route of
    ``casework.policy.gvi_access``: it writes the reading's ``CONSULT`` events."""

    user: Any
    purpose: str
    via: str

    def consult(self, obj, fields: list[str], **event: Any) -> None:
        """The ``CONSULT`` event of the page's object ``obj`` (``None``: ``event`` names
        it; and ``person_id`` where the object is a person's), naming the fields
        decrypted."""
        details = {"via": self.via, **event.pop("details", {})}
        record_event(
            action=AuditAction.CONSULT,
            user=self.user,
            obj=obj,
            fields=fields,
            purpose=self.purpose,
            details=details,
            **event,
        )

    def consult_persons(self, names: dict, obj) -> None:
        """One ``CONSULT`` event per person whose name (``names``: :func:`_person_names`)
        was decrypted on ``obj``'s page."""
        for person_id in sorted(set(_decrypted(names)), key=str):
            self.consult(
                None,
                ["person.name"],
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                person_id=person_id,
            )


def _reading(*, user, purpose: str, what: str, obj=None) -> _Reading:
    """The purpose checked and GVI access asked for a reading (a refusal is logged and
    raises :class:`GviNotFound`)."""
    purpose = require_purpose(purpose)
    access = policy.gvi_access(user)
    if not access:
        raise _deny(user=user, purpose=purpose, what=what, reason=access.denial, obj=obj)
    return _Reading(user, purpose, access.via)


def _group_names(groups) -> dict:
    keys = load_data_keys(owner_type=GROUP, owner_ids=[g.pk for g in groups])
    return {g.pk: open_value(g, "name", keys[g.pk]) for g in groups if g.pk in keys}


def _person_names(persons) -> dict:
    """Person id -> name: decrypted, or "(erased)" for an erased person (nothing opened)."""
    erased = {p.pk: ERASED_LABEL for p in persons if p.erased_at is not None}
    persons = [p for p in persons if p.erased_at is None]
    keys = load_data_keys(owner_type=PERSON, owner_ids=[p.pk for p in persons])
    return erased | {p.pk: open_value(p, "name", keys[p.pk]) for p in persons if p.pk in keys}


def _decrypted(names: dict) -> list:
    """The ids of the persons whose name was decrypted (not the erased ones)."""
    return [person_id for person_id, name in names.items() if name is not ERASED_LABEL]


# --- The overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    groups: list[Opened]
    incidents: list[Any]
    notifications: list[Any]
    sanctions: list[Any]
    call_ins: list[Any]
    overdue: list[Any]
    via: str
    # Accepted offers whose referral social services have not taken up in time.
    overdue_referrals: list[Any] = field(default_factory=list)


def get_overview(*, user, purpose: str) -> Overview:
    """Groups with their state (names decrypted), recent incidents, pending notifications,
    sanctions and call-ins, overdue follow-ups."""
    reading = _reading(user=user, purpose=purpose, what="gvi:overview")
    groups = list(gvi.Group.objects.all())
    with transaction.atomic():
        names = _group_names(groups)
        if groups:
            reading.consult(
                None, ["group.name"], object_type="workflows.group", details={"groups": len(groups)}
            )
    now = timezone.now()
    return Overview(
        groups=[Opened(g, {"name": names.get(g.pk)}) for g in groups],
        incidents=list(gvi.Incident.objects.prefetch_related("groups")[:20]),
        notifications=list(
            gvi.CustomNotification.objects.exclude(status=gvi.NotificationStatus.CLOSED)
            .select_related("member__group")
            .order_by("-requested_at")[:50]
        ),
        sanctions=list(
            gvi.Sanction.objects.exclude(status=gvi.SanctionStatus.REPORTED)
            .select_related("decision__group", "organisation")
            .order_by("decision__decided_at")[:50]
        ),
        call_ins=list(gvi.CallIn.objects.order_by("-date")[:20]),
        overdue=list(
            gvi.CustomNotification.objects.filter(
                status__in=gvi.FOLLOW_UP_PENDING_STATES, follow_up_due__lt=now
            ).order_by("follow_up_due")
        ),
        via=reading.via,
        overdue_referrals=list(overdue_referral_notices(now=now)),
    )


def overdue_referral_notices(*, now):
    """The referral notices (accepted offers of help) not taken up by their deadline, with
    their member, group and referral case (numbers only: nothing decrypted)."""
    return (
        gvi.GviReferralNoticeProcess.objects.filter(due__lt=now, finished__isnull=True)
        .exclude(status=STATUS.CANCELED)
        .select_related("accepted_member__group", "accepted_member__referral_case")
        .order_by("due")
    )


# --- A group ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPage:
    group: gvi.Group
    texts: dict[str, Any] = field(repr=False)
    members: list[Opened]
    incidents: list[Any]
    decisions: list[Any]
    timeline: list[Any]
    via: str
    # Why each withdrawn lever was withdrawn (sanction id → text), under the group's key.
    withdraw_reasons: dict[Any, str] = field(default_factory=dict, repr=False)


def get_group_page(*, user, purpose: str, group: gvi.Group) -> GroupPage:
    reading = _reading(user=user, purpose=purpose, what="gvi:group:read", obj=group)
    members = list(group.members.select_related("person", "referral_case"))
    decisions = list(
        group.sanction_decisions.select_related("incident", "decided_by")
        .prefetch_related("sanctions__organisation", "sanctions__recorded_by")
        .order_by("-decided_at")
    )
    withdrawn = [
        sanction
        for decision in decisions
        for sanction in decision.sanctions.all()
        if sanction.withdraw_reason is not None
    ]
    with transaction.atomic():
        # An erased group has no key (and empty columns): its texts are None.
        keys = load_data_keys(owner_type=GROUP, owner_ids=[group.pk])
        key = keys.get(group.pk)
        texts = {name: open_value(group, name, key) if key else None for name in ("name", "notes")}
        reasons = {s.pk: open_value(s, "withdraw_reason", key) for s in withdrawn} if key else {}
        reading.consult(
            group,
            [f"group.{n}" for n, v in texts.items() if v is not None]
            + (["sanction.withdraw_reason"] if reasons else []),
        )
        names = _person_names([m.person for m in members])
        reading.consult_persons(names, group)
    return GroupPage(
        group=group,
        texts=texts,
        members=[Opened(m, {"name": names.get(m.person_id)}) for m in members],
        incidents=list(group.incidents.all()),
        decisions=decisions,
        timeline=list(group.events.select_related("actor").order_by("at")),
        via=reading.via,
        withdraw_reasons=reasons,
    )


# --- A member -----------------------------------------------------------------------------------


def timeline_of(obj) -> list:
    """The timeline events of one GVI object (a member, a call-in, a notification)."""
    return list(gvi.GviEvent.objects.filter(object_id=obj.pk).select_related("actor"))


@dataclass(frozen=True)
class MemberPage:
    member: gvi.GroupMember
    name: str | None = field(repr=False)
    group_name: str | None = field(repr=False)
    notifications: list[Any]
    attendances: list[Any]
    timeline: list[Any]
    via: str


def get_member_page(*, user, purpose: str, member: gvi.GroupMember) -> MemberPage:
    reading = _reading(user=user, purpose=purpose, what="gvi:member:read", obj=member)
    with transaction.atomic():
        names = _person_names([member.person])
        name = names.get(member.person_id)
        group_name = _group_names([member.group]).get(member.group_id)
        reading.consult(
            member,
            (["person.name"] if _decrypted(names) else [])
            + (["group.name"] if group_name is not None else []),
            person_id=member.person_id,
        )
    return MemberPage(
        member=member,
        name=name,
        group_name=group_name,
        notifications=list(member.notifications.order_by("-requested_at")),
        attendances=list(member.attendances.select_related("call_in")),
        timeline=timeline_of(member),
        via=reading.via,
    )


# --- A call-in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallInPage:
    call_in: gvi.CallIn
    attendees: list[Opened]
    speakers: list[Any]
    candidates: list[Opened]
    timeline: list[Any]
    via: str


def get_call_in_page(*, user, purpose: str, call_in: gvi.CallIn) -> CallInPage:
    """The call-in with its attendees and speakers; ``candidates``: members who could be
    invited (the coordinator's planning), with names."""
    reading = _reading(user=user, purpose=purpose, what="gvi:callin:read", obj=call_in)
    attendees = list(call_in.attendees.select_related("member__person", "member__group"))
    candidates = []
    if call_in.status in gvi.CALL_IN_OPEN_STATES and policy.coordinates_gvi(user):
        invited = {a.member_id for a in attendees}
        candidates = [
            m
            for m in gvi.GroupMember.objects.select_related("person", "group").exclude(
                status__in=(gvi.MemberStatus.OFFER_ACCEPTED,)
            )
            if m.pk not in invited
        ]
    with transaction.atomic():
        persons = [a.member.person for a in attendees] + [m.person for m in candidates]
        names = _person_names(persons)
        reading.consult_persons(names, call_in)
    return CallInPage(
        call_in=call_in,
        attendees=[Opened(a, {"name": names.get(a.member.person_id)}) for a in attendees],
        speakers=list(call_in.speakers.order_by("role")),
        candidates=[Opened(m, {"name": names.get(m.person_id)}) for m in candidates],
        timeline=timeline_of(call_in),
        via=reading.via,
    )


# --- A custom notification ---------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationPage:
    notification: gvi.CustomNotification
    name: str | None = field(repr=False)
    texts: dict[str, Any] = field(repr=False)
    messengers: list[Any]
    timeline: list[Any]
    via: str


def get_notification_state(
    *, user, purpose: str, notification: gvi.CustomNotification
) -> gvi.CustomNotification:
    """The notification's number, state and version (what an integration needs before it
    records the delivery), with nothing decrypted: one ``CONSULT`` event naming no field."""
    reading = _reading(user=user, purpose=purpose, what="gvi:notification:read", obj=notification)
    reading.consult(notification, [], person_id=notification.member.person_id)
    return notification


def get_notification_page(
    *, user, purpose: str, notification: gvi.CustomNotification
) -> NotificationPage:
    """The notification; its legal assessment only for police and the coordinator."""
    reading = _reading(user=user, purpose=purpose, what="gvi:notification:read", obj=notification)
    person = notification.member.person
    names = ["message", "offer_of_help", "follow_up_note"]
    if policy.coordinates_gvi_or_police(user):
        names.insert(0, "legal_assessment")
    with transaction.atomic():
        key = data_key_of(person)
        texts = {n: open_value(notification, n, key) if key else None for n in names}
        name = open_value(person, "name", key) if key else ERASED_LABEL
        reading.consult(
            notification,
            (["person.name"] if key else []) + [n for n, v in texts.items() if v is not None],
            person_id=person.pk,
        )
    return NotificationPage(
        notification=notification,
        name=name,
        texts=texts,
        messengers=list(notification.messengers.all()),
        timeline=timeline_of(notification),
        via=reading.via,
    )
