"""Reads of the defector programme: the threat assessments of a case, the hand-over
notice local users keep, and the coordinators' list of overdue reassessments.

Access is decided by ``casework.policy``; every decryption is in the access log.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from casework import policy
from casework.models import Case, CaseLink
from casework.selectors.case_keys import case_key
from casework.selectors.cases import (
    CaseNotFound,
    Opened,
    consult_case,
    deny_reading,
    open_or_none,
)
from casework.selectors.persons import require_purpose
from workflows.common import nodes
from workflows.defector.models import (
    FINAL_STATES,
    DefectorCase,
    ThreatAssessment,
    current_assessment,
    pending_lowering,
    police_coordinator,
    reassessment_due,
)

if TYPE_CHECKING:
    from casework.models import User


def threat_context(*, user: User, purpose: str, case: DefectorCase) -> dict:
    """The threat part of a case's pages: the assessments (decrypted, logged), the one in
    force, a pending lowering, and whether the reassessment is overdue."""
    return {
        "assessments": threat_assessments(user=user, purpose=purpose, case=case),
        "current": current_assessment(case),
        "pending": pending_lowering(case),
        "reassessment_due": reassessment_due(case),
    }


def threat_assessments(*, user: User, purpose: str, case: DefectorCase) -> list[Opened]:
    """The case's threat assessments, newest first, with their basis decrypted.

    For users who may see the case (``casework.policy.case_access``); one
    consultation event names the field. Raises :class:`CaseNotFound` otherwise.
    """
    purpose = require_purpose(purpose)
    access = policy.case_access(user, case)
    if not access:
        raise deny_reading(
            user=user, case=case, purpose=purpose, reason=access.denial, what="threat:read"
        )
    rows = list(case.assessments.select_related("assessed_by", "decided_by"))
    if not rows:
        return []
    with transaction.atomic():
        dek = case_key(case)
        opened = [Opened(row, {"basis": open_or_none(row, "basis", dek)}) for row in rows]
        consult_case(
            user=user,
            case=case,
            purpose=purpose,
            fields=["assessment.basis"] if dek else [],
            legal_basis=access.legal_basis,
            via=access.via,
            assessments=len(rows),
        )
    return opened


@dataclass(frozen=True)
class HandOverNotice:
    """What a local user keeps of a handed-over case: the fact, and the support case."""

    reference: str
    handed_over_at: datetime.datetime
    handed_over_to: str
    support_cases: list[Case]


def hand_over_notice(*, user: User, purpose: str, case: DefectorCase) -> HandOverNotice:
    """The fact of the hand-over for a local user who had the case (on its team or its
    coordinator); nothing of the person. Raises :class:`CaseNotFound` for anyone else.
    """
    purpose = require_purpose(purpose)
    had_it = policy.can_use_task_inbox(user) and (
        policy.coordinates(user, case) or policy.team_membership(user, case) is not None
    )
    if not (policy.defector_handed_over(case) and had_it):
        raise CaseNotFound()
    links = CaseLink.objects.filter(from_case=case, kind=CaseLink.Kind.SUPPORT_CASE)
    support = [
        link.to_case
        for link in links.select_related("to_case")
        if policy.case_access(user, link.to_case)
    ]
    consult_case(
        user=user,
        case=case,
        purpose=purpose,
        fields=["hand_over"],
        hand_over_notice=case.handed_over_to,
    )
    return HandOverNotice(
        reference=case.reference,
        handed_over_at=case.handed_over_at,
        handed_over_to=case.handed_over_to,
        support_cases=support,
    )


def overdue_reassessments(*, user: User, today: datetime.date | None = None) -> list:
    """Open defector cases in the user's reach whose assessment in force is past its next
    reassessment date (case numbers and dates only: nothing decrypted)."""
    today = today or timezone.localdate()
    reach = policy.cases_in_reach(user).values("pk")
    cases = (
        DefectorCase.objects.filter(
            pk__in=reach,
            assessments__state=ThreatAssessment.State.IN_FORCE,
            assessments__next_review__lt=today,
        )
        .exclude(status__in=FINAL_STATES)
        .order_by("assessments__next_review")
    )
    return [case for case in cases if policy.case_access(user, case)]


def pending_lowerings(*, user: User, cases: list[DefectorCase]) -> list[DefectorCase]:
    """Of ``cases``, those with a lowering awaiting the approval of ``user`` (a police
    defector coordinator)."""
    return [
        case
        for case in cases
        if police_coordinator(case, user)
        and case.assessments.filter(state=ThreatAssessment.State.PENDING).exists()
    ]


def open_tasks(*, user: User, case: DefectorCase) -> list[tuple]:
    """The human tasks of the case's open processes (``workflows.common.nodes.open_tasks``)."""
    return nodes.open_tasks(case.processes.filter(finished__isnull=True), user)
