"""Reads of the SSPF programme: the case page with its own records, the operational group's
meetings, the school and leisure staff's overview, and the anonymised discussions' counts.

Access goes through ``casework.policy`` (``case_access`` for the case, ``case_parts`` for
what of it the user's role sees); what is decrypted is named in a consultation event;
a refused reading is an ``ACCESS_DENIED`` event and a "not found".
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services import record_refusal
from casework import policy
from casework.models import Case
from casework.selectors.case_keys import case_key, case_keys
from casework.selectors.cases import (
    CaseNotFound,
    CasePage,
    Opened,
    consult_case,
    get_case_page,
    open_all,
    open_or_none,
)
from casework.selectors.persons import require_purpose
from workflows.sspf.models import AnonymisedDiscussion, OperationalMeeting, SspfCase

if TYPE_CHECKING:
    from casework.models import User


class MeetingNotFound(Exception):
    """No such meeting, or not one this user may see."""


@dataclass(frozen=True)
class SspfCasePage:
    """The shared case page, and the SSPF records this user's role sees."""

    page: CasePage
    risk_assessments: list[Opened] = field(default_factory=list)
    police_decisions: list[Opened] = field(default_factory=list)
    agenda: list[Opened] = field(default_factory=list)

    @property
    def police_participates(self) -> bool | None:
        if not self.police_decisions:
            return None
        return self.police_decisions[-1].obj.participates


def get_sspf_case_page(*, user: User, purpose: str, case: SspfCase, **options: Any) -> SspfCasePage:
    """The case page (``get_case_page`` with its ``options``: ``consent_purpose``, the
    ``parties`` read with the case, the caller's reads ``also``) plus the risk assessments,
    the police participation decisions and the meetings' decisions, when the user's role
    sees them.

    Raises :class:`CaseNotFound` (after a denial event) like ``get_case_page``.
    """
    page = get_case_page(user=user, purpose=purpose, case=case, **options)
    if not page.parts.programme_records:
        return SspfCasePage(page=page)
    read: list[str] = []
    with transaction.atomic():
        dek = case_key(case)
        risks = open_all(
            case.risk_assessments.select_related("assessed_by"),
            ("risk_factors", "protective_factors"),
            dek,
            read,
            "risk_assessment",
        )
        police = open_all(
            case.police_decisions.select_related("decided_by"), ("reason",), dek, read, "police"
        )
        agenda = open_all(
            case.agenda_items.select_related("meeting").order_by("meeting__date"),
            ("decision",),
            dek,
            read,
            "agenda",
        )
        if read:
            consult_case(
                user=user,
                case=case,
                purpose=purpose,
                fields=read,
                legal_basis=page.access.legal_basis,
                via=page.access.via,
                programme="sspf",
            )
    return SspfCasePage(page=page, risk_assessments=risks, police_decisions=police, agenda=agenda)


# --- Overviews (nothing decrypted) ----------------------------------------------------------


@dataclass(frozen=True)
class ConcernRow:
    """A concern the user raised: case number, state, date — no personal data."""

    case: Case
    may_open: bool


def concerns_raised_by(*, user: User) -> list[ConcernRow]:
    """The SSPF concerns ``user`` raised, with whether the user may now open each case."""
    rows = []
    for case in SspfCase.objects.filter(referred_by=user).order_by("-opened_at")[:200]:
        rows.append(ConcernRow(case=case, may_open=bool(policy.case_access(user, case))))
    return rows


def part_owner(case: SspfCase, kind: str) -> User | None:
    """Who reports the ``kind`` (school or leisure) organisation's part of the plan.

    The longest-standing team member of such an organisation who may open the case
    (the consents cover their organisation); ``None`` when there is none.
    """
    now = timezone.now()
    memberships = (
        case.memberships.filter(
            valid_from__lte=now, user__is_active=True, user__organisation__kind=kind
        )
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user", "user__organisation")
        .order_by("valid_from", "pk")
    )
    for membership in memberships:
        if policy.case_access(membership.user, case):
            return membership.user
    return None


@dataclass(frozen=True)
class MeetingItem:
    item: object
    visible: bool  # the user may open the case
    decision: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MeetingPage:
    meeting: OperationalMeeting
    items: list[MeetingItem]
    discussions: list[AnonymisedDiscussion]
    coordinator: bool


def _may_see_meeting(user, meeting) -> bool:
    if not policy.can_use_task_inbox(user):
        return False
    if user.has_perm("casework.coordinate_cases"):
        return True
    return meeting.organisations.filter(pk=user.organisation_id).exists()


def list_meetings(*, user: User):
    """The operational group's meetings: all for the coordinator, otherwise those the user's
    organisation took part in (dates and counts only)."""
    if not policy.can_use_task_inbox(user):
        return OperationalMeeting.objects.none()
    meetings = OperationalMeeting.objects.annotate(
        case_count=Count("items", distinct=True),
        discussion_count=Count("discussions", distinct=True),
    )
    if not user.has_perm("casework.coordinate_cases"):
        meetings = meetings.filter(organisations=user.organisation_id)
    return meetings.order_by("-date", "-created_at")


def get_meeting(*, user: User, purpose: str, meeting_id: uuid.UUID) -> MeetingPage:
    """A meeting's agenda: each case by number (and the decision on it) only to a user who may
    open the case and whose role sees the case's records; the anonymised discussions to
    everyone who may see the meeting. Decryptions are one consultation event per case."""
    purpose = require_purpose(purpose)
    meeting = OperationalMeeting.objects.filter(pk=meeting_id).first()
    if meeting is None:
        raise MeetingNotFound()
    if not _may_see_meeting(user, meeting):
        record_refusal(
            user=user, obj=meeting, purpose=purpose, details={"operation": "meeting:read"}
        )
        raise MeetingNotFound()
    items = []
    rows = list(meeting.items.select_related("case", "case__person", "decided_by"))
    keys = case_keys([item.case for item in rows if item.decision is not None])
    with transaction.atomic():
        for item in rows:
            case = item.case
            access = policy.case_access(user, case)
            if not access:
                items.append(MeetingItem(item=item, visible=False))
                continue
            decision = None
            if policy.case_parts(user, case).programme_records and item.decision is not None:
                decision = open_or_none(item, "decision", keys.get(case.pk))
                consult_case(
                    user=user,
                    case=case,
                    purpose=purpose,
                    fields=["agenda.decision"] if decision is not None else [],
                    legal_basis=access.legal_basis,
                    via=access.via,
                    meeting=str(meeting.pk),
                )
            items.append(MeetingItem(item=item, visible=True, decision=decision))
    return MeetingPage(
        meeting=meeting,
        items=items,
        discussions=list(meeting.discussions.select_related("organisation")),
        coordinator=user.has_perm("casework.coordinate_cases"),
    )


def anonymised_discussion_counts(
    *, start: datetime.date | None = None, end: datetime.date | None = None
) -> list[dict]:
    """Counts of anonymised discussions by organisation kind, topic, age band and area
    (plain columns only; nothing is decrypted, nothing identifies anyone)."""
    rows = AnonymisedDiscussion.objects.all()
    if start is not None:
        rows = rows.filter(date__gte=start)
    if end is not None:
        rows = rows.filter(date__lt=end)
    return list(
        rows.values("organisation__kind", "topic", "age_band", "area")
        .annotate(count=Count("id"))
        .order_by("organisation__kind", "topic", "age_band", "area")
    )


__all__ = [
    "CaseNotFound",
    "MeetingNotFound",
    "SspfCasePage",
    "anonymised_discussion_counts",
    "concerns_raised_by",
    "get_meeting",
    "get_sspf_case_page",
    "list_meetings",
    "part_owner",
]
