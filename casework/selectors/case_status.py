"""A case's status, next review date and team: the integration API's reading of a case.

The same rules as the case page (``casework.selectors.cases.get_case_page``): access is
decided by ``casework.policy.case_access`` (team, coordinator, break-the-glass, consent
and legal basis), a refusal is an ``ACCESS_DENIED`` event and :class:`CaseNotFound` (a
guessed id learns nothing), and the reading is a ``CONSULT`` event naming the parts
read, with a ``DISCLOSE`` event when another organisation's user reads it. Nothing
here is decrypted: the status, dates and team are plain columns.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from dataclasses import dataclass

from audit.services import record_events
from casework import policy, programmes
from casework.access_cache import GenerationCache
from casework.compiled import CompiledQuery
from casework.models import Case, CaseMembership
from casework.selectors.case_reads import current_team
from casework.selectors.cases import CaseNotFound, deny_reading, reading_events, status_label
from casework.selectors.persons import require_purpose

# What a status reading shows, as the access log names it.
STATUS_FIELDS = ["case.status", "case.review_date", "case.team"]


@dataclass(frozen=True)
class CaseStatus:
    case: Case
    status: str
    status_label: str
    review_date: datetime.date | None
    team: list[CaseMembership]


def _programme_of(case_id: uuid.UUID | str) -> str | None:
    try:
        return Case.objects.values_list("programme", flat=True).get(pk=case_id)
    except Case.DoesNotExist:
        return None


# A case's programme never changes: kept for the process (one generation, 0).
_programmes: GenerationCache[str] = GenerationCache(size=100_000)


# Stand-in for the case id of the compiled reads below (``casework.compiled``): no case
# has this id.
_ANY_CASE = uuid.UUID("00000000-5e1e-c7ed-0000-000000000000")


@functools.cache
def _case_read(model: type[Case]) -> CompiledQuery:
    """The programme case model's read by id (with the person and the owning
    organisation), made once a process."""
    return CompiledQuery(
        lambda case_id: model.objects.select_related("person", "owner_organisation").filter(
            pk=case_id
        ),
        case_id=_ANY_CASE,
    )


def find_case(case_id: uuid.UUID | str) -> Case | None:
    """The programme case (its own model, with ``status``) with this id, or ``None``.

    Every API reading of a case starts here: its programme is kept for the process,
    and the case with its person and owning organisation is one statement compiled
    once (``casework.compiled``).
    """
    code = _programmes.get(str(case_id), 0, lambda: _programme_of(case_id))
    if code is None:
        return None
    # The programme was found by this id, so it is a valid one.
    key = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
    for model in programmes.case_models(code):
        found = _case_read(model).run(case_id=key)
        if found:
            return found[0]
    return None


def get_case_status(
    *,
    user,
    purpose: str,
    case_id: uuid.UUID | str,
    consent_purpose: str = policy.DEFAULT_PURPOSE,
) -> CaseStatus:
    """The status, next review date and team of a case ``user`` may see for
    ``consent_purpose`` (as the case page: ``casework.policy.case_access``), logged as a
    reading; :class:`CaseNotFound` (after a denial event where the case exists)."""
    purpose = require_purpose(purpose)
    case = find_case(case_id)
    if case is None:
        raise CaseNotFound()
    team = current_team(case)
    policy.remember_team(case, team)
    access = policy.case_access(user, case, purpose=consent_purpose)
    if not access:
        raise deny_reading(
            user=user,
            case=case,
            purpose=purpose,
            reason=access.denial,
            what="case:status",
            access=access,
        )

    def entry(action, details):
        return {
            "action": action,
            "user": user,
            "obj": case,
            "person_id": case.person_id,
            "fields": STATUS_FIELDS,
            "purpose": purpose,
            "legal_basis": access.legal_basis,
            "details": details,
        }

    record_events(*reading_events(entry, access=access, case=case, user=user))
    return CaseStatus(
        case=case,
        status=case.status,
        status_label=status_label(case),
        review_date=case.review_date,
        team=team,
    )
