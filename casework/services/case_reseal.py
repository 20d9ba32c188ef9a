"""Moving the sealed values of cases opened before keys per case from their person's data
key to the case's own (``manage.py reseal_case_keys``; docs/adr/0023-keys-per-case.md).

In batches of cases, each:

1. the cases' keys are made (or found, after an interrupted run) and **committed** in
   the key store first, and each person whose cases start to move gets a new key, the
   old one kept as their previous key (it still opens everything of theirs, and is
   destroyed when one of their cases is culled: :func:`release_previous_person_keys`);
2. one transaction of the main database locks the batch's case rows (those still
   waiting: a parallel run or a culling may have moved some), re-seals every value
   of every case-owned table still under the person's key (``SELECT … FOR UPDATE``,
   then one statement per table: ``audit.history.bulk_reseal``, with one change record
   naming every row and each new value's SHA-256, for a table under change history),
   marks the cases keyed (``Case.keyed_at``, likewise) and writes one ``KEY_ROTATION``
   event (counts and ids, never a value).

Until a case is marked, its readers hold both keys (``casework.selectors.case_keys``),
after it only the case's: a value is never readable by neither key. A value already
under the case's key (its header names the key) is left as it is, so an interrupted
run is continued by the next, and a finished one does nothing. The person's old key is
kept as the previous key: the identity stays under it until a cull moves it.

A case whose person is erased (or whose person key is gone: an interrupted erasure)
has nothing that can be moved: it is marked keyed without a key, its values stay the
noise they are.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.util import Finalize

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import connection, connections, transaction

from audit.history import (
    ByteaArray,
    TextArray,
    UuidArray,
    bulk_reseal,
    register_binary_arrays,
    tracked_tables,
)
from audit.services import Action, record_event, seal_now
from casework.crypto.envelope import HEADER_LEN, DataKeyMaterial, random_nonces, reseal
from casework.crypto.errors import DecryptionError
from casework.crypto.keystore import (
    CASE,
    PERSON,
    PERSON_PREVIOUS,
    create_data_keys,
    destroy_data_keys,
    load_data_keys,
    retire_person_keys,
)
from casework.fields import EncryptedField
from casework.models import Case
from casework.selectors.persons import require_purpose
from casework.services.batches import run_batches

DEFAULT_BATCH = 1000


@dataclass(frozen=True)
class SealedTable:
    """A table with sealed values that belong to an owner (a case, or a person): which
    column names the owner (``case_column``, the name kept for a case's tables) and, for
    a table that reaches its owner through another, the join (``owner`` is then that
    table's column)."""

    table: str
    pk: str
    pk_type: str
    case_column: str
    columns: tuple[str, ...]
    join: str = ""
    owner: str = ""

    @property
    def owner_expression(self) -> str:
        return self.owner or f"t.{self.case_column}"


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


@functools.cache
def person_sealed_tables() -> tuple[SealedTable, ...]:
    """Every table whose sealed values may be under a person's key (their identity): the
    person, a model with a foreign key to the person (guardians, released extracts) or
    to a model that has one (a GVI member's notifications, through the membership).
    Found from the models; only values whose header names the person's previous key are
    ever moved, so a table listed here that holds values under another key (a group's)
    keeps them."""
    from casework.models import Person

    case_tables = {t.table for t in case_sealed_tables()}
    tables = []
    for model in apps.get_models():
        columns = tuple(f.column for f in model._meta.local_fields if isinstance(f, EncryptedField))
        if not columns or model._meta.proxy or model._meta.db_table in case_tables:
            continue
        pk = model._meta.pk
        common = {"table": model._meta.db_table, "pk": pk.column, "columns": columns}
        common["pk_type"] = pk.db_type(connection)
        if issubclass(model, Person):
            tables.append(SealedTable(case_column=pk.column, **common))
            continue
        direct = [
            f
            for f in model._meta.local_fields
            if f.many_to_one and issubclass(f.related_model, Person)
        ]
        if direct:
            tables.append(SealedTable(case_column=direct[0].column, **common))
            continue
        for f in model._meta.local_fields:
            if not f.many_to_one:
                continue
            through = [
                g
                for g in f.related_model._meta.local_fields
                if g.many_to_one and issubclass(g.related_model, Person)
            ]
            if through:
                other = f.related_model._meta
                join = f"JOIN {other.db_table} AS o ON o.{other.pk.column} = t.{f.column}"
                tables.append(
                    SealedTable(
                        case_column=f.column, join=join, owner=f"o.{through[0].column}", **common
                    )
                )
                break
    return tuple(tables)


@dataclass(frozen=True)
class ResealResult:
    cases: int  # cases marked keyed by this run
    values: int  # values re-sealed
    batches: int
    remaining: int  # cases still waiting (a run stopped by ``max_batches``)
    persons_rekeyed: int = 0  # persons given a new key, their old one kept as previous


def waiting_cases() -> int:
    """How many cases may still hold values under their person's key."""
    return Case.objects.filter(keyed_at__isnull=True).count()


def reseal_case_keys(
    *,
    purpose: str,
    user=None,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ResealResult:
    """Move every waiting case to a key of its own, ``batch_size`` cases per batch (each
    committed on its own, with its ``KEY_ROTATION`` event), ``workers`` batches at a
    time in processes of their own (:func:`_in_processes`); stop after
    ``max_batches`` if given. ``progress(done, total)`` after each batch. Idempotent and
    resumable."""
    purpose = require_purpose(purpose)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    total = waiting_cases()
    cases = values = batches = rekeyed = 0
    if progress:
        progress(0, total)

    def waiting():
        # By person: a person's cases come in one batch (but for one that straddles two),
        # so that their key is re-keyed once and not loaded again by another batch.
        # Each page starts where the last ended: ``person_id >= …`` is a range of the
        # person index (read from there, sorted by person only within a person), the
        # last page's cases of that person left out. An ``OR`` of the two conditions
        # read the index from its start every page (a page cost grew with the cases
        # already moved: docs/adr/0023-keys-per-case.md, session 15).
        after, made = None, 0
        while max_batches is None or made < max_batches:
            query = Case.objects.filter(keyed_at__isnull=True)
            if after is not None:
                person, case = after
                query = query.filter(person_id__gte=person).exclude(person_id=person, pk__lte=case)
            rows = list(
                query.order_by("person_id", "pk").values_list("person_id", "pk")[:batch_size]
            )
            if not rows:
                return
            after, made = rows[-1], made + 1
            yield [case for _person, case in rows]

    if workers > 1:
        results = _in_processes(waiting(), user=user, purpose=purpose, workers=workers)
    else:
        results = run_batches(
            waiting(), lambda ids: _reseal_batch(ids, user=user, purpose=purpose), workers=1
        )
    for moved, sealed, persons in results:
        cases, values, batches = cases + moved, values + sealed, batches + 1
        rekeyed += persons
        if progress:
            progress(min(cases, total), total)
    return ResealResult(
        cases=cases,
        values=values,
        batches=batches,
        remaining=waiting_cases(),
        persons_rekeyed=rekeyed,
    )


def _in_processes(
    batches: Iterable[list[uuid.UUID]], *, user, purpose: str, workers: int
) -> Iterator[tuple[int, int, int]]:
    """``_reseal_batch`` of every batch in ``workers`` processes (forked from this one,
    each with its own database connections), the results as batches finish: the batches'
    Python work (AES-GCM, key wrapping, arrays) runs on every core, not under one
    interpreter lock. The ids are paged here, so no two batches share a case; the first
    error stops the submitting and is raised once the running batches are done (each
    committed or rolled back on its own). The access log's chain is sealed here, between
    batches (the workers do not start sealer threads of their own)."""
    if connections["default"].in_atomic_block:
        raise RuntimeError("workers > 1 needs committed batches: not inside a transaction")
    connections.close_all()  # no connection of this process is shared with a worker
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_started,
    )
    running: set[Future] = set()
    try:
        # A process forks its workers at the first submission: before this process opens
        # a connection again (the next page of ids).
        pool.submit(int).result()
        for batch in batches:
            if len(running) >= 2 * workers:  # one waiting behind each running batch
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from _finished(done)
            running.add(pool.submit(_reseal_batch, batch, user=user, purpose=purpose))
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            yield from _finished(done)
    finally:
        for future in running:
            future.cancel()
        pool.shutdown(wait=True)
        seal_now()


def _finished(done: set[Future]) -> Iterator[tuple[int, int, int]]:
    results = [future.result() for future in done]  # an error comes through here
    seal_now()
    yield from results


def _worker_started() -> None:
    """In a forked worker: forget the connections of the parent (never used here, and not
    closed: they are the parent's), seal nothing (the parent does) and close this
    process's own connections when it ends."""
    for alias in connections:
        connections[alias].connection = None
    settings.AUDIT_SEAL_INTERVAL = None
    Finalize(None, connections.close_all, exitpriority=10)


def reseal_cases(*, case_ids: list[uuid.UUID], purpose: str, user=None) -> ResealResult:
    """Move these cases (those still waiting) at once: one batch."""
    purpose = require_purpose(purpose)
    moved, sealed, rekeyed = _reseal_batch(list(case_ids), user=user, purpose=purpose)
    return ResealResult(
        cases=moved,
        values=sealed,
        batches=1,
        remaining=waiting_cases(),
        persons_rekeyed=rekeyed,
    )


def release_previous_person_keys(*, person_ids, purpose: str, user=None) -> set[uuid.UUID]:
    """Destroy the previous keys of these persons (``PERSON_PREVIOUS``, kept since their
    cases moved to keys of their own): called when one of their cases is culled, so that
    no copy of that case from before the move — the change history's, which cannot be
    rewritten (append-only, chained: docs/adr/0005) — opens any more.

    First, in one transaction, whatever of the person is still under the previous key
    (their identity, guardians, released extracts, GVI notifications) is re-sealed under
    their current key, with one ``KEY_ROTATION`` event; then the previous keys are
    destroyed (committed). A value is never readable by neither key: readers hold both
    until the values have moved. Idempotent; returns the persons whose previous key was
    destroyed now."""
    purpose = require_purpose(purpose)
    person_ids = list(person_ids)
    if not person_ids:
        return set()
    # Most persons have none (opened after keys per case): their keys are not loaded.
    previous = load_data_keys(owner_type=PERSON_PREVIOUS, owner_ids=person_ids)
    if not previous:
        return set()
    current = load_data_keys(owner_type=PERSON, owner_ids=list(previous))
    moving = {str(p): (current.get(p), key) for p, key in previous.items()}
    owners = TextArray(moving)
    with transaction.atomic(), _raw_cursor() as cursor:
        values = sum(
            _reseal_table(cursor, table, moving, owners, strict=False)
            for table in person_sealed_tables()
        )
        record_event(
            action=Action.KEY_ROTATION,
            user=user,
            object_type=PERSON,
            purpose=purpose,
            details={
                "operation": "destroy_previous_person_keys",
                "persons": len(moving),
                "values_resealed": values,
            },
        )
    return destroy_data_keys(owner_type=PERSON_PREVIOUS, owner_ids=list(previous))


def _keys(case_ids: list[uuid.UUID]):
    """The person keys and (made and committed first) case keys of a batch. A person
    whose cases start to move gets a new key, their old one kept as the previous key
    (``retire_person_keys``): it still opens their identity and everything not moved
    yet, and is destroyed when one of their cases is culled, so that the change
    history's copies of the case from before the move go with it."""
    with planned_by_key() as cursor:
        cursor.execute(
            "SELECT c.id, c.person_id, p.erased_at FROM casework_case AS c "
            "JOIN casework_person AS p ON p.id = c.person_id "
            "WHERE c.id = ANY(%b) AND c.keyed_at IS NULL",
            [UuidArray(case_ids)],
        )
        rows = cursor.fetchall()
    persons = {p for _c, p, erased in rows if erased is None}
    # Re-keyed first: the persons re-keyed now come with their keys (the old one unwrapped
    # once, there); only the others' (re-keyed by an earlier batch, or with no key) are
    # loaded.
    rekeyed = retire_person_keys(persons)
    person_keys = rekeyed | load_data_keys(owner_type=PERSON, owner_ids=persons - set(rekeyed))
    movable = [c for c, p, _erased in rows if p in person_keys]
    # Made here (one statement); a case that has one already — an interrupted run, or a
    # writer's first write since the upgrade — keeps it, and it is loaded instead.
    own = create_data_keys(owner_type=CASE, owner_ids=movable)
    if existing := [c for c in movable if c not in own]:
        own |= load_data_keys(owner_type=CASE, owner_ids=existing)
    return person_keys, own, len(rekeyed)


_tracked: frozenset[str] | None = None


def _tracked_tables(cursor) -> frozenset[str]:
    """The tables under change history, read once per process (migrations set them)."""
    global _tracked
    if _tracked is None:
        _tracked = tracked_tables(cursor)
    return _tracked


def _raw_cursor(alias: str = "default"):
    """A cursor with server-side parameter binding on the connection's current transaction:
    the batch's arrays of thousands of ids and sealed values travel as binary parameters
    (``%b``: psycopg's automatic choice sends a list in text, escaping every element),
    not quoted into the SQL text (Django's cursors bind on the client). The change
    history's triggers fire as for every statement; there is no user, so no audit
    context (as for every management command)."""
    connections[alias].ensure_connection()
    return psycopg.Cursor(connections[alias].connection)


# For the rest of the transaction: the batch's rows are reached through their keys'
# indexes (``= ANY`` of the batch's ids, a join of the ids to their rows by key), never by
# a scan of a whole table nor a hash or merge join over one. With a thousand ids or more
# the planner's costs (a random page at four sequential ones) chose those, and a batch's
# cost grew with the tables (docs/adr/0023-keys-per-case.md, session 15).
_BY_KEY = (
    "SELECT set_config('enable_seqscan', 'off', true), "
    "set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)


@contextlib.contextmanager
def planned_by_key(alias: str = "default"):
    """A transaction (``atomic``) whose statements are planned by key (:data:`_BY_KEY`)
    and a raw cursor on it. The settings last until the transaction ends: inside a
    caller's transaction (a savepoint) they are not made, as they would outlive the
    block."""
    own = not connections[alias].in_atomic_block
    with transaction.atomic(using=alias), _raw_cursor(alias) as cursor:
        register_binary_arrays(cursor)
        if own:
            cursor.execute(_BY_KEY)
        yield cursor


def _reseal_batch(case_ids: list[uuid.UUID], *, user, purpose: str) -> tuple[int, int, int]:
    person_keys, own, rekeyed = _keys(case_ids)
    with planned_by_key() as cursor:
        cursor.execute(
            "SELECT id, person_id, id::text AS text FROM casework_case "
            "WHERE id = ANY(%b) AND keyed_at IS NULL ORDER BY id FOR UPDATE",
            [UuidArray(case_ids)],
        )
        locked = cursor.fetchall()
        if not locked:
            return 0, 0, rekeyed
        # By the case id as text: the rows' owners come as text (no UUID objects per row).
        keys = {
            text: (own.get(case_id), person_keys.get(person_id))
            for case_id, person_id, text in locked
        }
        owners = TextArray(keys)
        values = sum(_reseal_table(cursor, table, keys, owners) for table in case_sealed_tables())
        # Marked in one statement with one change record (the ids and the time).
        bulk_reseal(cursor, Case._meta.db_table, list(keys), {}, id_type="uuid", stamp="keyed_at")
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
                "persons_rekeyed": rekeyed,
                "first_case": str(locked[0][0]),
                "last_case": str(locked[-1][0]),
            },
        )
    return len(locked), values, rekeyed


def _reseal_table(
    cursor,
    table: SealedTable,
    keys: dict[str, tuple[DataKeyMaterial | None, DataKeyMaterial | None]],
    owners: TextArray,
    *,
    strict: bool = True,
) -> int:
    """Re-seal ``table``'s values of the batch's owners (owner id as text -> (key to seal
    under, key the values are under now; ``owners``: the same ids as one array) that are not
    under the first key yet.
    ``strict``: a value that neither key opens stops the batch (a case's values);
    otherwise it is left as it is (a person's table may hold values under another
    owner's key). Ids travel as text both ways (the location of the associated data is
    the id's text), the values as one packed ``bytea[]``."""
    selected = ", ".join(f"t.{c}" for c in table.columns)
    register_binary_arrays(cursor)
    cursor.execute(
        f"SELECT t.{table.pk}::text, ({table.owner_expression})::text, {selected} "  # noqa: S608 - names from the models
        f"FROM {table.table} AS t {table.join} "
        f"WHERE {table.owner_expression} = ANY(%b::uuid[]) FOR UPDATE OF t",
        [owners],
        binary=True,
    )
    updates: list[tuple] = []
    resealed = 0
    rows = cursor.fetchall()
    if not rows:
        return 0
    nonces = iter(random_nonces(len(rows) * len(table.columns)))
    places = [(c, f"|{table.table}|{c}|".encode()) for c in table.columns]
    for row_id, owner_id, *blobs in rows:
        own, source = keys[owner_id]
        if own is None:
            continue  # nothing readable: the values stay the noise they are
        new, changed, row_text = [], False, row_id.encode()
        own_header = own.header
        for (column, place), blob in zip(places, blobs, strict=True):
            header = None if blob is None else blob[:HEADER_LEN]
            if header is None or header == own_header:
                new.append(blob)
                continue
            opener = None if source is None else source.opener(header)
            if opener is None:
                if not strict:
                    new.append(blob)
                    continue
                raise DecryptionError(
                    f"{table.table}.{column} of row {row_id} is sealed under neither the key of "
                    f"case {owner_id} nor its person's: nothing of this batch was moved."
                )
            new.append(
                reseal(
                    opener,
                    own,
                    blob,
                    location=place + row_text,
                    nonce=next(nonces),
                    where=(table.table, column, row_id),
                )
            )
            changed = True
            resealed += 1
        if changed:
            updates.append((row_id, *new))
    if not updates:
        return resealed
    row_ids = [u[0] for u in updates]
    columns = {column: [u[i] for u in updates] for i, column in enumerate(table.columns, 1)}
    if table.table in _tracked_tables(cursor):
        # One statement with one change record: every row id, which values moved and each
        # new value's SHA-256, never a value (ADR 0023, session 14).
        bulk_reseal(cursor, table.table, row_ids, columns, id_type=table.pk_type)
    else:
        names = ", ".join(table.columns)
        assignments = ", ".join(f"{c} = v.{c}" for c in table.columns)
        arrays = ", ".join(["%b"] * len(table.columns))
        cursor.execute(
            f"UPDATE {table.table} AS t SET {assignments} "  # noqa: S608 - names from the models
            f"FROM unnest(%b::{table.pk_type}[], {arrays}) AS v(row_id, {names}) "
            f"WHERE t.{table.pk} = v.row_id",
            [TextArray(row_ids), *(ByteaArray(values) for values in columns.values())],
        )
    return resealed
