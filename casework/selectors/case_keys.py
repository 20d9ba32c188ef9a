"""The data keys of cases, for reading: the one way any page, list or service finds the
key that opens a case's sealed values (docs/adr/0023-keys-per-case.md).

Everything that belongs to a case (its texts, actions, decisions, legal bases,
timeline, the reason of a link it starts, the programme's records of it) is sealed
under the case's own data key (``casework.crypto.keystore.CASE``, owner id: the
case's primary key). The person's identity (``Person``, ``Guardian``) stays under the
person's key, a GVI group's data under the group's.

A case opened before keys per case (``Case.keyed_at`` empty) may still hold values
under its person's key until ``manage.py reseal_case_keys`` has moved it: its key
then also opens those (the sealed value's header names the key it needs), so there
is no moment when a value opens under neither key.

No key (``None``): the person is erased, or the case's key was destroyed (culled).
Such a case's values read as unreadable (``casework.selectors.cases.open_or_none``),
the way an erased person's do — never an error page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from casework.crypto.envelope import DataKeyMaterial
from casework.crypto.keystore import CASE, PERSON, load_data_keys
from casework.models import Case


def case_keys(cases: Iterable[Case]) -> dict[uuid.UUID, DataKeyMaterial]:
    """The keys that open the sealed values of ``cases`` (one key-store query per owner
    type, or none from the cache), by case id; a case without one is left out.

    Reads ``case.person.erased_at``: give the cases with their person
    (``select_related("person")``) when there are many.
    """
    live = {case.pk: case for case in cases if case.person.erased_at is None}
    if not live:
        return {}
    keys = load_data_keys(owner_type=CASE, owner_ids=list(live))
    waiting = {case.person_id for case in live.values() if case.keyed_at is None}
    person_keys = load_data_keys(owner_type=PERSON, owner_ids=waiting) if waiting else {}
    found = {}
    for case_id, case in live.items():
        key = keys.get(case_id)
        older = person_keys.get(case.person_id) if case.keyed_at is None else None
        if key is not None:
            found[case_id] = key.or_else(older)
        elif older is not None:
            found[case_id] = older
    return found


def case_key(case: Case) -> DataKeyMaterial | None:
    """The key that opens ``case``'s sealed values, or ``None`` (erased person, culled
    case): :func:`case_keys` of one case."""
    return case_keys([case]).get(case.pk)
