"""Moving the sealed values of cases opened before keys per case from their person's data
key to the case's own (``manage.py reseal_case_keys``; docs/adr/0023-keys-per-case.md).

In batches of cases, each:

1. the cases' keys are made (or found, after an interrupted run) and **committed** in
   the key store first;
2. one transaction of the main database locks the batch's case rows (those still
   waiting: a parallel run or a culling may have moved some), re-seals every value
   of every case-owned table still under the person's key (``SELECT … FOR UPDATE``,
   one ``UPDATE … FROM unnest(…)`` per table), marks the cases keyed
   (``Case.keyed_at``) and writes one ``KEY_ROTATION`` event (counts and ids, never a
   value).

Until a case is marked, its readers hold both keys (``casework.selectors.case_keys``),
after it only the case's: a value is never readable by neither key. A value already
under the case's key (its header names the key) is left as it is, so an interrupted
run is continued by the next, and a finished one does nothing. The person's key is
never touched: it keeps the identity.

A case whose person is erased (or whose person key is gone: an interrupted erasure)
has nothing that can be moved: it is marked keyed without a key, its values stay the
noise they are.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.apps import apps
from django.db import connection, connections, transaction
from django.utils import timezone

from audit.services import Action, record_event
from casework.crypto.envelope import HEADER_LEN, DataKeyMaterial, Sealed, open_sealed, seal
from casework.crypto.errors import DecryptionError
from casework.crypto.keystore import CASE, PERSON, create_data_keys, load_data_keys
from casework.fields import EncryptedField
from casework.models import Case
from casework.selectors.persons import require_purpose

DEFAULT_BATCH = 1000


@dataclass(frozen=True)
class SealedTable:
    """A table with sealed values that belong to a case: which column names the case."""

    table: str
    pk: str
    pk_type: str
    case_column: str
    columns: tuple[str, ...]


@functools.cache
def case_sealed_tables() -> tuple[SealedTable, ...]:
    """Every table whose sealed columns belong to a case (found from the models, so a new
    programme model is covered without a change here): a case model's own table (the
    case is the row), a model with a foreign key to a case (``CASE_KEY_FIELD`` names
    it where there are several, e.g. ``CaseLink.from_case``). Models without one (the
    person, guardians, GVI groups and their members) are not case data."""
    tables = []
    for model in apps.get_models():
        columns = tuple(f.column for f in model._meta.local_fields if isinstance(f, EncryptedField))
        if not columns or model._meta.proxy:
            continue
        if issubclass(model, Case):
            case_column = model._meta.pk.column
        else:
            name = getattr(model, "CASE_KEY_FIELD", None)
            if name is None:
                to_case = [
                    f
                    for f in model._meta.local_fields
                    if f.many_to_one and issubclass(f.related_model, Case)
                ]
                if not to_case:
                    continue
                if len(to_case) > 1:
                    raise TypeError(
                        f"{model.__name__} refers to several cases: set CASE_KEY_FIELD to the "
                        "one whose data key seals its values"
                    )
                name = to_case[0].name
            case_column = model._meta.get_field(name).column
        tables.append(
            SealedTable(
                table=model._meta.db_table,
                pk=model._meta.pk.column,
                pk_type=model._meta.pk.db_type(connection),
                case_column=case_column,
                columns=columns,
            )
        )
    return tuple(tables)


@dataclass(frozen=True)
class ResealResult:
    cases: int  # cases marked keyed by this run
    values: int  # values re-sealed
    batches: int
    remaining: int  # cases still waiting (a run stopped by ``max_batches``)


def waiting_cases() -> int:
    """How many cases may still hold values under their person's key."""
    return Case.objects.filter(keyed_at__isnull=True).count()


def reseal_case_keys(
    *,
    purpose: str,
    user=None,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ResealResult:
    """Move every waiting case to a key of its own, ``batch_size`` cases per batch (each
    committed on its own, with its ``KEY_ROTATION`` event); stop after ``max_batches``
    if given. ``progress(done, total)`` after each batch. Idempotent and resumable."""
    purpose = require_purpose(purpose)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    total = waiting_cases()
    cases = values = batches = 0
    if progress:
        progress(0, total)
    while max_batches is None or batches < max_batches:
        ids = list(
            Case.objects.filter(keyed_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        moved, sealed = _reseal_batch(ids, user=user, purpose=purpose)
        cases, values, batches = cases + moved, values + sealed, batches + 1
        if progress:
            progress(min(cases, total), total)
    return ResealResult(cases=cases, values=values, batches=batches, remaining=waiting_cases())


def reseal_cases(*, case_ids: list[uuid.UUID], purpose: str, user=None) -> ResealResult:
    """Move these cases (those still waiting) at once: one batch."""
    purpose = require_purpose(purpose)
    moved, sealed = _reseal_batch(list(case_ids), user=user, purpose=purpose)
    return ResealResult(cases=moved, values=sealed, batches=1, remaining=waiting_cases())


def _keys(case_ids: list[uuid.UUID]):
    """The person keys and (made and committed first) case keys of a batch."""
    rows = list(
        Case.objects.filter(pk__in=case_ids, keyed_at__isnull=True).values_list(
            "pk", "person_id", "person__erased_at"
        )
    )
    person_keys = load_data_keys(
        owner_type=PERSON, owner_ids={p for _c, p, erased in rows if erased is None}
    )
    movable = [c for c, p, _erased in rows if p in person_keys]
    own = load_data_keys(owner_type=CASE, owner_ids=movable)
    missing = [c for c in movable if c not in own]
    if missing:
        own |= create_data_keys(owner_type=CASE, owner_ids=missing)
        # Made meanwhile by a writer of the case (its first write since the upgrade).
        own |= load_data_keys(owner_type=CASE, owner_ids=[c for c in missing if c not in own])
    return person_keys, own


def _raw_cursor(alias: str = "default"):
    """A cursor with server-side parameter binding on the connection's current transaction:
    the batch's arrays of thousands of ids and sealed values travel as binary parameters,
    not quoted into the SQL text (Django's cursors bind on the client). The change
    history's triggers fire as for every statement; there is no user, so no audit
    context (as for every management command)."""
    connections[alias].ensure_connection()
    return psycopg.Cursor(connections[alias].connection)


def _reseal_batch(case_ids: list[uuid.UUID], *, user, purpose: str) -> tuple[int, int]:
    person_keys, own = _keys(case_ids)
    with transaction.atomic(), _raw_cursor() as cursor:
        cursor.execute(
            "SELECT id, person_id FROM casework_case WHERE id = ANY(%s) AND keyed_at IS NULL "
            "ORDER BY id FOR UPDATE",
            [case_ids],
        )
        locked = dict(cursor.fetchall())
        if not locked:
            return 0, 0
        keys = {
            case_id: (own.get(case_id), person_keys.get(person_id))
            for case_id, person_id in locked.items()
        }
        values = sum(_reseal_table(cursor, table, keys) for table in case_sealed_tables())
        cursor.execute(
            "UPDATE casework_case SET keyed_at = %s WHERE id = ANY(%s)",
            [timezone.now(), list(locked)],
        )
        ordered = sorted(locked)
        unreadable = sum(1 for key, _person in keys.values() if key is None)
        record_event(
            action=Action.KEY_ROTATION,
            user=user,
            object_type=CASE,
            purpose=purpose,
            details={
                "operation": "reseal_case_keys",
                "cases": len(locked),
                "cases_without_readable_data": unreadable,
                "values_resealed": values,
                "first_case": str(ordered[0]),
                "last_case": str(ordered[-1]),
            },
        )
    return len(locked), values


def _reseal_table(
    cursor,
    table: SealedTable,
    keys: dict[uuid.UUID, tuple[DataKeyMaterial | None, DataKeyMaterial | None]],
) -> int:
    """Re-seal ``table``'s values of the batch's cases still under the person's key."""
    columns = ", ".join(table.columns)
    cursor.execute(
        f"SELECT {table.pk}, {table.case_column}, {columns} FROM {table.table} "  # noqa: S608 - names from the models
        f"WHERE {table.case_column} = ANY(%s) FOR UPDATE",
        [list(keys)],
        binary=True,
    )
    updates: list[tuple] = []
    resealed = 0
    for row_id, case_id, *blobs in cursor.fetchall():
        own, person = keys[case_id]
        if own is None:
            continue  # nothing readable: the values stay the noise they are
        new, changed = [], False
        for column, blob in zip(table.columns, blobs, strict=True):
            if blob is None or blob[:HEADER_LEN] == own.header:
                new.append(blob)
                continue
            if person is None or blob[:HEADER_LEN] != person.header:
                raise DecryptionError(
                    f"{table.table}.{column} of row {row_id} is sealed under neither the key of "
                    f"case {case_id} nor its person's: nothing of this batch was moved."
                )
            where = {"table": table.table, "column": column, "row_id": row_id}
            new.append(seal(own, open_sealed(person, Sealed(blob), **where), **where).blob)
            changed = True
            resealed += 1
        if changed:
            updates.append((row_id, *new))
    if updates:
        assignments = ", ".join(f"{c} = v.{c}" for c in table.columns)
        arrays = ", ".join(["%s::bytea[]"] * len(table.columns))
        cursor.execute(
            f"UPDATE {table.table} AS t SET {assignments} "  # noqa: S608 - names from the models
            f"FROM unnest(%s::{table.pk_type}[], {arrays}) AS v(row_id, {columns}) "
            f"WHERE t.{table.pk} = v.row_id",
            [[u[i] for u in updates] for i in range(len(table.columns) + 1)],
            binary=True,
        )
    return resealed
