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

A person whose cases were moved has a new key and keeps the old one as their previous
key until one of their cases is culled (``keystore.PERSON_PREVIOUS``): the person's key
as loaded opens both (docs/adr/0023, "The person's previous key").

No key (``None``): the person is erased, or the case's key was destroyed (culled).
Such a case's values read as unreadable (``casework.selectors.cases.open_or_none``),
the way an erased person's do — never an error page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from casework.crypto.envelope import DataKeyMaterial
from casework.crypto.keystore import CASE, PERSON, load_keys
from casework.models import Case, Person


def keys_of_cases(
    cases: Iterable[Case], *, persons: Iterable[Person] = ()
) -> tuple[dict[uuid.UUID, DataKeyMaterial], dict[uuid.UUID, DataKeyMaterial]]:
    """The keys that open the sealed values of ``cases`` (by case id; a case without one
    is left out) and the keys of the non-erased ``persons`` (by person id): one
    key-store query for all of them, or none from the cache.

    Reads ``case.person.erased_at``: give the cases with their person
    (``select_related("person")``) when there are many.
    """
    live = {case.pk: case for case in cases if case.person.erased_at is None}
    wanted = {person.pk for person in persons if person.erased_at is None}
    waiting = {case.person_id for case in live.values() if case.keyed_at is None}
    if not live and not wanted:
        return {}, {}
    keys = load_keys({CASE: list(live), PERSON: wanted | waiting})
    person_keys = keys[PERSON]
    found = {}
    for case_id, case in live.items():
        key = keys[CASE].get(case_id)
        older = person_keys.get(case.person_id) if case.keyed_at is None else None
        if key is not None:
            found[case_id] = key.or_else(older)
        elif older is not None:
            found[case_id] = older
    return found, {pk: key for pk, key in person_keys.items() if pk in wanted}


def case_keys(cases: Iterable[Case]) -> dict[uuid.UUID, DataKeyMaterial]:
    """The keys that open the sealed values of ``cases``, by case id
    (:func:`keys_of_cases`)."""
    return keys_of_cases(cases)[0]


def case_key(case: Case) -> DataKeyMaterial | None:
    """The key that opens ``case``'s sealed values, or ``None`` (erased person, culled
    case): :func:`case_keys` of one case."""
    return case_keys([case]).get(case.pk)


def case_and_person_key(case: Case) -> tuple[DataKeyMaterial | None, DataKeyMaterial | None]:
    """The case's key (:func:`case_key`) and its person's key (``None`` once erased), in
    one key-store query: what the case page opens."""
    found, persons = keys_of_cases([case], persons=[case.person])
    return found.get(case.pk), persons.get(case.person_id)
