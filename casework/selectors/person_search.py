"""A case worker finds a person among their own cases by name or date of birth (ADR 0027).

Names are encrypted under each person's own data key and there is deliberately no index
of them: the search opens the name and date of birth of the persons in the user's own
cases only (``casework.policy.own_cases``: the teams they are on now, each case checked by
``casework.policy.searchable``) and compares them here. The register's own search stays
by personal identity number only (``casework.selectors.persons.find_person``).

Every search is logged in one statement: a ``CONSULT`` event of the search (how it was
searched, never the typed text; the cases compared and how many matched) and one
``CONSULT`` event per case shown, naming the fields shown.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_events
from casework import policy
from casework.crypto.keystore import PERSON, load_data_keys
from casework.crypto.records import open_value
from casework.models import Case
from casework.selectors.persons import PERSON_OBJECT, require_purpose

# At most this many cases are listed (the user's own cases are far fewer).
MAX_RESULTS = 50
MIN_NAME_LENGTH = 2
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%y%m%d", "%y-%m-%d")
_DIGITS = re.compile(r"^[\d-]+$")


@dataclass(frozen=True)
class Found:
    """One case of the user's whose person matches: what the result list shows."""

    case: Case
    name: str = field(repr=False)
    birth_date: datetime.date = field(repr=False)


@dataclass(frozen=True)
class Query:
    """The cleaned search: a date of birth or a part of a name (casefolded)."""

    birth_date: datetime.date | None = None
    name: str = field(default="", repr=False)

    @property
    def kind(self) -> str:
        return "birth_date" if self.birth_date else "name"


def parse_query(text: str) -> Query:
    """A date of birth (ÅÅÅÅ-MM-DD, ÅÅÅÅMMDD or ÅÅMMDD) or at least two letters of a name;
    ``ValidationError`` (on ``q``) otherwise."""
    text = (text or "").strip()
    if _DIGITS.match(text):
        for fmt in _DATE_FORMATS:
            try:
                return Query(birth_date=datetime.datetime.strptime(text, fmt).date())
            except ValueError:
                continue
        raise ValidationError(
            {"q": ValidationError(_("Enter a date of birth as YYYY-MM-DD."), "invalid")}
        )
    if len(text) < MIN_NAME_LENGTH:
        raise ValidationError(
            {
                "q": ValidationError(
                    _("Enter at least %(min)d letters of the name, or a date of birth."),
                    "min_length",
                    {"min": MIN_NAME_LENGTH},
                )
            }
        )
    if len(text) > 200:
        raise ValidationError(
            {"q": ValidationError(_("Ensure this value has at most 200 characters."), "long")}
        )
    return Query(name=" ".join(text.casefold().split()))


def _matches(query: Query, name: str | None, born: datetime.date | None) -> bool:
    if query.birth_date:
        return born == query.birth_date
    return bool(name) and query.name in " ".join(name.casefold().split())


def search_own_cases(*, user, purpose: str, text: str) -> list[Found]:
    """The user's own cases whose person's name contains ``text`` (case and spacing
    ignored) or whose date of birth is ``text``; newest first, at most
    :data:`MAX_RESULTS`. Raises ``ValidationError`` for input that is neither."""
    purpose = require_purpose(purpose)
    query = parse_query(text)
    if not policy.may_search_own_cases(user):
        return []
    candidates = (
        policy.own_cases(user)
        .filter(person__erased_at__isnull=True)
        .select_related("person", "owner_organisation")
        .order_by("-opened_at")
    )
    cases = [case for case in candidates if policy.searchable(user, case)]
    keys = load_data_keys(owner_type=PERSON, owner_ids={case.person_id for case in cases})
    found: list[Found] = []
    for case in cases:
        dek = keys.get(case.person_id)
        if dek is None:
            continue
        name = open_value(case.person, "name", dek)
        born = open_value(case.person, "birth_date", dek)
        if _matches(query, name, born) and len(found) < MAX_RESULTS:
            found.append(Found(case=case, name=name or "", birth_date=born))
    search_event = {
        "action": AuditAction.CONSULT,
        "user": user,
        "object_type": PERSON_OBJECT,
        "fields": ["name", "birth_date"],
        "purpose": purpose,
        "details": {
            "lookup": "own_cases",
            "by": query.kind,
            "cases_compared": [str(case.pk) for case in cases],
            "matches": len(found),
        },
    }
    shown = [
        {
            "action": AuditAction.CONSULT,
            "user": user,
            "obj": row.case,
            "person_id": row.case.person_id,
            "fields": ["person.name", "person.birth_date"],
            "purpose": purpose,
            "details": {"lookup": "own_cases", "via": "team"},
        }
        for row in found
    ]
    record_events(search_event, *shown)
    return found
