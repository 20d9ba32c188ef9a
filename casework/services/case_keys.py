"""The data keys of cases, for writing: making a case's key when it is opened, the key
to seal with, destroying one case's key (retention) or all of a person's (erasure),
and moving a case's values from its person's key to its own
(docs/adr/0023-keys-per-case.md).

The person's identity (``Person``, ``Guardian``) stays under the person's key, which
:func:`person_data_key` gives for writing. Reading goes through
:mod:`casework.selectors.case_keys`.

Write order across the two databases, as for persons (docs/adr/0004): a new case key
is committed in the key store before the row that needs it; a destroyed one is gone
(committed) before anything records it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.crypto.envelope import DataKeyMaterial
from casework.crypto.keystore import (
    CASE,
    PERSON,
    create_data_key,
    create_data_keys,
    destroy_data_key,
    destroy_data_keys,
    load_data_key,
    load_data_keys,
    spare_keys,
    take_spare_key,
)
from casework.models import Case, Person

logger = logging.getLogger(__name__)

ERASED = _("This person has been erased.")
CULLED = _("This case's data has been culled: nothing more can be written in it.")


def new_case_key(case: Case) -> DataKeyMaterial:
    """The data key of a case being opened (not saved yet), committed in the key store
    before the case row; the case is marked as keyed from the start. A key left by an
    opening that then fails opens nothing (:func:`discard_case_key`)."""
    if case.person.erased_at is not None:
        raise ValidationError(ERASED, code="erased")
    # ``id``: a programme case's primary key (``case_ptr_id``) is set from it at saving.
    # Inside ``spare_keys(CASE)`` (a referral through the API, ``opening_keys``) the key
    # was made with the person's, for a new id that the case takes.
    spare = take_spare_key(CASE)
    if spare is not None:
        case.id, key = spare
    else:
        key = create_data_key(owner_type=CASE, owner_id=case.id)
    case.keyed_at = timezone.now()
    return key


def opening_keys():
    """Scope of a case's opening that may register its person first: the person's new
    data key and the case's are made in one key-store statement (``spare_keys``)."""
    return spare_keys(CASE)


def discard_case_key(case_id: uuid.UUID) -> None:
    """Best effort, after an opening failed: a key left behind is an orphan (harmless)."""
    try:
        destroy_data_key(owner_type=CASE, owner_id=case_id)
    except Exception:
        logger.warning("Could not discard the unused data key of case %s", case_id)


def case_data_key(case: Case) -> DataKeyMaterial:
    """The key to seal something new in ``case`` under: the case's own (which also opens
    values not yet moved from the person's key). Refused — a form error, never a 500 —
    once the person is erased or the case's key destroyed (culled).

    A case opened before keys per case gets its key here, at its first write, if the
    re-sealing has not reached it yet.
    """
    if case.person.erased_at is not None:
        raise ValidationError(ERASED, code="erased")
    own = load_data_keys(owner_type=CASE, owner_ids=[case.pk]).get(case.pk)
    if own is None:
        if case.keyed_at is not None:
            raise ValidationError(CULLED, code="culled")
        # Not moved yet and no key of its own: make it (committed first); a racing
        # writer may have made it meanwhile.
        made = create_data_keys(owner_type=CASE, owner_ids=[case.pk]).get(case.pk)
        own = made or load_data_key(owner_type=CASE, owner_id=case.pk)
    if case.keyed_at is None:
        # What is still under the person's key keeps opening until it is moved.
        person = load_data_keys(owner_type=PERSON, owner_ids=[case.person_id])
        own = own.or_else(person.get(case.person_id))
    return own


def person_data_key(person: Person) -> DataKeyMaterial:
    """The person's key, to seal their identity (a guardian's contact data); refused as a
    form error once the person is erased."""
    if person.erased_at is not None:
        raise ValidationError(ERASED, code="erased")
    return load_data_key(owner_type=PERSON, owner_id=person.pk)


def destroy_case_key(case: Case) -> bool:
    """Destroy one case's data key (crypto-shredding of the case; retention's ``cull``).

    From the moment it returns, nothing sealed for the case — its texts, actions,
    decisions, timeline, the programme's records, the reasons of links it starts, in
    this database, its replicas and every backup — can be opened (other processes
    forget a cached copy within ``DATA_KEY_CACHE_SECONDS``); the pages show the case's
    values as unreadable. The person's identity and their other cases stay readable.

    A case not yet moved from its person's key (``keyed_at`` empty) is moved first
    (:func:`~casework.services.case_reseal.reseal_cases`, logged as a re-sealing), and
    the person's previous key — which opens the change history's copies of the case
    from before the move — is destroyed after their identity moved off it
    (:func:`~casework.services.case_reseal.release_previous_person_keys`), so nothing
    of the case stays readable under a person's key. Owner type ``CASE``, owner id
    ``case.pk``; the caller writes the access-log event of the culling (this function
    writes none of its own). Idempotent: ``False`` when the key was already gone.
    """
    from casework.services.case_reseal import release_previous_person_keys, reseal_cases

    purpose = "Gallring: ärendet flyttas till egen nyckel"
    if case.keyed_at is None:
        reseal_cases(case_ids=[case.pk], purpose=purpose)
        case.refresh_from_db(fields=["keyed_at"])
    # The change history's copies of the case from before it moved are under the
    # person's previous key: it goes too (the identity moves to the current key first).
    release_previous_person_keys(person_ids=[case.person_id], purpose=purpose)
    return destroy_data_key(owner_type=CASE, owner_id=case.pk)


def destroy_case_keys(case_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Destroy the data keys of several cases in one key-store transaction (committed at
    once): the cases whose key was there. Only for cases already under their own key
    (``keyed_at`` set; :func:`destroy_case_key` moves one that is not)."""
    return destroy_data_keys(owner_type=CASE, owner_ids=list(case_ids))


def destroy_person_case_keys(person_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Destroy the data keys of every case of these persons (their erasure): how many
    per person."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, person_id FROM {Case._meta.db_table} WHERE person_id = ANY(%s)",  # noqa: S608
            [list(person_ids)],
        )
        cases = dict(cursor.fetchall())
    counts: dict[uuid.UUID, int] = {}
    for case_id in destroy_case_keys(cases):
        counts[cases[case_id]] = counts.get(cases[case_id], 0) + 1
    return counts


def reseal_case_keys(**options):
    """Move every case still under its person's key to a key of its own
    (:func:`casework.services.case_reseal.reseal_case_keys`; the migration
    ``0029_case_data_keys`` calls it from here)."""
    from casework.services.case_reseal import reseal_case_keys as reseal

    return reseal(**options)
