"""Writes of the SSPF operational group: meetings, the cases on their agendas with the
meeting's decision on each, and anonymised case discussions.

As ``workflows/sspf/services.py``: keyword-only, the acting ``user`` and the ``purpose``,
access asked of ``casework.policy``, free text sealed under the case's data key, the
access-log event in the same transaction. Meetings and anonymised discussions are the
SSPF coordinator's; a refusal outside a case is an ``ACCESS_DENIED`` event and
:class:`CaseDenied`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.models import CaseEvent, Organisation, Person
from casework.selectors.persons import require_purpose
from casework.services.case_changes import (
    FieldErrors,
    case_change,
    past_date,
    require_coordinator_access,
)
from casework.services.cases import (
    NOTE_LIMIT,
    REASON_LIMIT,
    CaseDenied,
    clean_text,
)
from casework.services.transitions import audit_created, refuse
from workflows.sspf.models import (
    CONCERN_RAISERS,
    AgeBand,
    AgendaItem,
    AnonymisedDiscussion,
    OperationalMeeting,
    SspfCase,
    Status,
    find_personnummer_like,
)


def can_coordinate_sspf(user) -> bool:
    """Meetings and anonymised discussions belong to the SSPF coordinator."""
    return policy.can_use_task_inbox(user) and user.has_perm("casework.coordinate_cases")


def _deny_outside_case(*, user, obj, purpose: str, what: str) -> CaseDenied:
    refuse(user=user, obj=obj, purpose=purpose, what=what, reason="role")
    return CaseDenied()


# --- Operational group meetings ----------------------------------------------------------------


def create_meeting(
    *, user, purpose: str, date: datetime.date, organisations: Iterable[Organisation]
) -> OperationalMeeting:
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
        meeting = OperationalMeeting.objects.create(date=date, created_by=user)
        meeting.organisations.set(organisations)
        audit_created(
            meeting, user=user, purpose=purpose, organisations=sorted(o.pk for o in organisations)
        )
    return meeting


def add_to_agenda(*, user, meeting: OperationalMeeting, case: SspfCase, purpose: str) -> AgendaItem:
    """Put an SSPF case on a meeting's agenda (the coordinator)."""
    purpose = require_coordinator_access(user=user, case=case, purpose=purpose, what="agenda:add")
    if case.status == Status.CLOSED:
        raise ValidationError({"reference": ValidationError(_("The case is closed."))})
    with case_change(case, user=user, purpose=purpose) as change:
        if AgendaItem.objects.filter(meeting=meeting, case=case).exists():
            raise ValidationError(
                {"reference": ValidationError(_("The case is already on the agenda."))}
            )
        item = AgendaItem.objects.create(meeting=meeting, case=case)
        change.record(CaseEvent.Kind.PLAN, "agenda", obj=item, meeting=str(meeting.pk))
    return item


def record_agenda_decision(*, user, item: AgendaItem, decision: str, purpose: str) -> AgendaItem:
    """The meeting's decision on a case on its agenda (sealed under the case's key)."""
    case = item.case
    purpose = require_coordinator_access(
        user=user, case=case, purpose=purpose, what="agenda:decide"
    )
    decision = clean_text(decision, "decision", limit=NOTE_LIMIT, required=True)
    with case_change(case, user=user, purpose=purpose) as change:
        change.seal(item, "decision", decision)
        item.decided_by = user
        item.decided_at = timezone.now()
        item.save(update_fields=["decision", "decided_by", "decided_at"])
        change.record(CaseEvent.Kind.DECISION, "meeting", obj=item, meeting=str(item.meeting_id))
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
    purpose = require_purpose(purpose)
    if not can_coordinate_sspf(user):
        raise _deny_outside_case(user=user, obj=meeting, purpose=purpose, what="discussion:create")
    errors = FieldErrors()
    texts = {}
    for name, value, required in (("summary", summary, True), ("outcome", outcome, False)):
        with errors.check():
            texts[name] = clean_text(value, name, limit=REASON_LIMIT, required=required) or ""
        if find_personnummer_like(texts.get(name, "")):
            errors.add(
                name,
                _(
                    "Remove what looks like a personal identity number: an anonymised "
                    "discussion holds no personal data."
                ),
            )
    errors.choices(("topic", topic, AnonymisedDiscussion.Topic))
    errors.choices(("age_band", age_band, AgeBand), ("area", area, Person.Area), optional=True)
    dated_in_future = _("The discussion cannot be dated in the future.")
    with errors.check():
        past_date(date, "date", future=dated_in_future, invalid=dated_in_future)
    if organisation is None or organisation.kind not in CONCERN_RAISERS:
        errors.add("organisation", _("Select a valid choice."))
    errors.raise_any()
    with transaction.atomic():
        discussion = AnonymisedDiscussion.objects.create(
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
        audit_created(
            discussion,
            user=user,
            purpose=purpose,
            meeting=str(meeting.pk) if meeting else "",
            anonymised=True,
        )
    return discussion


__all__ = [
    "add_to_agenda",
    "can_coordinate_sspf",
    "create_meeting",
    "record_agenda_decision",
    "record_anonymised_discussion",
]
