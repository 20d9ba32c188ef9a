"""The one-statement writes of the transition engine (docs/adr/0032): a versioned
object's tables updated, its new rows inserted and the event written in one statement
(a data-modifying CTE), from each model's metadata read once."""

from __future__ import annotations

import functools
import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection, connections, models
from django_fsm import ConcurrentTransitionMixin, FSMFieldMixin
from psycopg import errors as pg_errors

from casework.compiled import PreparedSession, prepared_session


def quote(name: str) -> str:
    """``name`` quoted as a column or table name of the default connection."""
    return connection.ops.quote_name(name)


@dataclass(frozen=True)
class _Table:
    """One table of a model as the one-statement path writes it: its name, its key and
    its other columns (names quoted), and the state fields it holds."""

    name: str
    pk: models.Field
    pk_column: str
    columns: tuple[tuple[models.Field, str], ...]
    state_fields: tuple[models.Field, ...]


@functools.cache
def _tables(model: type[models.Model]) -> tuple[_Table, ...]:
    """The tables of ``model``, root first (as ``Model.save()`` writes them): built once
    per model from its metadata."""
    meta = model._meta.concrete_model._meta
    tables = []
    for klass in [*reversed(meta.get_parent_list()), meta.concrete_model]:
        local = klass._meta
        tables.append(
            _Table(
                name=quote(local.db_table),
                pk=local.pk,
                pk_column=quote(local.pk.column),
                columns=tuple(
                    (field, quote(field.column))
                    for field in local.local_concrete_fields
                    if not field.primary_key
                ),
                state_fields=tuple(
                    field
                    for field in local.local_concrete_fields
                    if isinstance(field, FSMFieldMixin)
                ),
            )
        )
    return tuple(tables)


@functools.cache
def _insert_head(model: type[models.Model]) -> tuple[str, tuple[models.Field, ...]]:
    """``INSERT INTO <table> (<columns>) SELECT`` of ``model`` (its own table's columns)
    and those columns' fields, in order."""
    fields = tuple(model._meta.local_concrete_fields)
    columns = ", ".join(quote(field.column) for field in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT ", fields


def row_insert(instance: models.Model) -> tuple[str, list]:
    """``INSERT INTO <table> (<columns>) SELECT <values>`` of a new model instance
    (its own table's columns: a model without parents) and its parameters. A ``NULL``
    is written in the statement, not passed as a parameter (the same text reaches the
    server: the driver binds on the client)."""
    head, fields = _insert_head(type(instance))
    placeholders = []
    values = []
    for field in fields:
        value = field.get_db_prep_save(field.pre_save(instance, True), connection)
        if value is None:
            placeholders.append("NULL")
        else:
            placeholders.append("%s")
            values.append(value)
    return head + ", ".join(placeholders), values


def insert_rows(
    rows: list[tuple[str, list]], *, before: tuple[str, list] | None = None, select: str = ""
) -> list:
    """The rows' INSERTs (:func:`row_insert`, :func:`audit.services.event_insert`: each
    table's key is ``id``) in one statement; each row's ``id``. ``before``: a CTE part
    (and its parameters) to run first, whose ``select`` comes first in the answer."""
    parts = [f"row_{index} AS ({sql} RETURNING id)" for index, (sql, _values) in enumerate(rows)]
    params = [value for _sql, values in rows for value in values]
    selected = [f"(SELECT id FROM row_{index})" for index in range(len(rows))]  # noqa: S608
    if before is not None:
        parts.insert(0, before[0])
        params[:0] = before[1]
        selected.insert(0, select)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT {', '.join(selected)}", params)
        return list(cursor.fetchone())


def move(
    obj,
    version_field: models.Field,
    expected_version,
    *,
    rows,
    probe,
    conflict: Callable[[], Exception],
    unless_probed: bool = False,
) -> tuple[bool, list] | None:
    """One statement, a data-modifying CTE (docs/adr/0032)::

        WITH moved_0 AS (UPDATE <root table> SET <columns>, version = version + 1
                         WHERE id = %s [AND version = %s] RETURNING version),
             moved_1 AS (UPDATE <child table> SET <columns>
                          WHERE case_ptr_id = %s AND status = %s  -- the state it was loaded in
                            AND EXISTS (SELECT FROM moved_0) RETURNING 1),
             row_0 AS (INSERT INTO <timeline> (...) SELECT ... WHERE EXISTS (SELECT FROM moved_1)
                       RETURNING id),
             row_1 AS (INSERT INTO audit_accessevent (...) SELECT ... WHERE ... RETURNING id)
        SELECT (SELECT version FROM moved_0), EXISTS (SELECT FROM moved_1),
               <probe>, (SELECT id FROM row_0), (SELECT id FROM row_1)

    The first UPDATE takes the row lock (as ``SELECT ... FOR UPDATE`` did) and checks
    the version; each further table and row is written only when the one before it
    was. Nothing written: ``conflict()`` is raised (the caller's transaction rolls back
    the rest). Returns the probe's answer and the rows' ids; sets the object's version.

    ``unless_probed``: write nothing when the probe holds, and return ``None`` then
    (the statement sent alone, outside a transaction, when what the probe announces
    must commit with the change). The probe then comes first, ``probed AS (SELECT
    <probe> AS answer)``, and the first UPDATE adds ``AND NOT (SELECT answer FROM
    probed)`` to its conditions."""
    db = connections[DEFAULT_DB_ALIAS]
    initial = {}
    if isinstance(obj, ConcurrentTransitionMixin):
        # django-fsm's optimistic check: the state fields as the object was loaded.
        initial = obj._ConcurrentTransitionMixin__initial_states
    # As Model.save(): a field deferred when the object was loaded is not written.
    deferred = obj.get_deferred_fields()
    parts: list[str] = []
    params: list[Any] = []
    guarded = unless_probed and probe is not None
    if guarded:  # evaluated once, before the first UPDATE that waits for it
        parts.append(f"probed AS (SELECT {probe[0]} AS answer)")
        params.extend(probe[1])
    version_part = None
    tables = _tables(type(obj))
    for index, table in enumerate(tables):
        assignments = []
        for field, column in table.columns:
            if field.attname in deferred:
                continue
            if field is version_field:
                assignments.append(f"{column} = {column} + 1")
                continue
            # A NULL in the statement, not a parameter (docs/adr/0032, Session 10).
            value = field.get_db_prep_save(field.pre_save(obj, False), db)
            if value is None:
                assignments.append(f"{column} = NULL")
            else:
                assignments.append(f"{column} = %s")
                params.append(value)
        if not assignments:  # a table of the key only: lock the row all the same
            assignments.append(f"{table.pk_column} = {table.pk_column}")
        conditions = [f"{table.pk_column} = %s"]
        params.append(table.pk.get_db_prep_value(getattr(obj, table.pk.attname), db))
        versioned = version_field.model is table.pk.model
        if versioned:
            version_part = index
            if expected_version is not None:
                conditions.append(f"{quote(version_field.column)} = %s")
                params.append(expected_version)
        for field in table.state_fields if initial else ():
            conditions.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_value(initial[field.attname], db))
        if index:
            conditions.append(f"EXISTS (SELECT FROM moved_{index - 1})")
        elif guarded:
            conditions.append("NOT (SELECT answer FROM probed)")
        returning = quote(version_field.column) if versioned else "1"
        parts.append(
            f"moved_{index} AS (UPDATE {table.name} SET {', '.join(assignments)}"  # noqa: S608
            f" WHERE {' AND '.join(conditions)} RETURNING {returning} AS returned)"
        )
    last = f"moved_{len(tables) - 1}"
    for index, (sql, values) in enumerate(rows):
        parts.append(f"row_{index} AS ({sql} WHERE EXISTS (SELECT FROM {last}) RETURNING id)")
        params.extend(values)
    selected = [
        f"(SELECT returned FROM moved_{version_part})",  # noqa: S608 - names, not values
        f"EXISTS (SELECT FROM {last})",
    ]
    if guarded:
        selected.append("(SELECT answer FROM probed)")
    elif probe is not None:
        selected.append(probe[0])
        params.extend(probe[1])
    selected.extend(f"(SELECT id FROM row_{index})" for index in range(len(rows)))  # noqa: S608
    version, moved, *answers = prepared_row(
        db, f"WITH {', '.join(parts)} SELECT {', '.join(selected)}", params
    )
    probed = bool(answers.pop(0)) if probe is not None else True
    if not moved:
        if guarded and probed:
            return None
        raise conflict()
    obj.version = version
    if initial:
        obj._update_initial_state()
    return probed, answers


# --- Prepared once per session (docs/adr/0032, Session 17) ----------------------------------


# At most this many statements prepared per session (each keeps its plan in the server
# session's memory): the least recently used one is deallocated with the next PREPARE.
# The shapes are few (a programme case's model, the columns that are NULL, the probe).
PREPARED_PER_SESSION = 64


# Keyed by the driver's connection (``casework.compiled.prepared_session``).
_sessions: weakref.WeakKeyDictionary[Any, PreparedSession] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=256)
def _prepared(text: str, generation: int) -> tuple[str, str, str]:
    """The statement ``text`` (``%s`` placeholders) as a prepared statement: its name
    (from a hash of the text: one per shape), its ``PREPARE`` (``$n`` parameters, their
    types inferred by the server from where they stand) and its ``EXECUTE`` (``%s``
    placeholders, the values bound by the driver as before)."""
    pieces = text.split("%s")
    if any("%" in piece for piece in pieces):
        raise ValueError("a prepared statement's text has no '%' but its placeholders")
    body = pieces[0] + "".join(f"${number}{piece}" for number, piece in enumerate(pieces[1:], 1))
    digest = hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
    name = f"samverkan_move_{digest}" + (f"_{generation}" if generation else "")
    count = len(pieces) - 1
    execute = f"EXECUTE {name}" + (f" ({', '.join(['%s'] * count)})" if count else "")
    return name, f"PREPARE {name} AS {body}", execute


def prepared_row(db, text: str, params: list) -> tuple:
    """The one row that ``text`` (a statement, ``%s`` placeholders) answers with
    ``params``, run as a statement prepared on the server once per session: the first
    use sends ``PREPARE`` and ``EXECUTE`` together (one round trip, as the statement
    alone was), later uses ``EXECUTE`` only, so the server parses, analyses and plans the
    statement once per session instead of at every call (docs/adr/0032, Session 17).

    The values are bound by the driver as for every other statement (client side, the
    simple protocol), so the audit context's prefix (:mod:`audit.history`) still
    travels with it in the same query. A session that lost its prepared statements
    (``DISCARD ALL``, ``DEALLOCATE ALL``: a pooler's reset, which this deployment does
    not use) is forgotten and the statement prepared again: at once when no transaction
    is open (nothing was written), else at the next call (the error is raised)."""
    with db.cursor() as cursor:
        session = prepared_session(_sessions, db.connection)
        name, prepare, execute = _prepared(text, session.generation)
        if name in session.names:
            session.names.move_to_end(name)
            try:
                cursor.execute(execute, params)
            except ProgrammingError as error:
                if not isinstance(error.__cause__, pg_errors.InvalidSqlStatementName):
                    raise
                session.names.clear()
                if db.in_atomic_block or not db.get_autocommit():
                    raise
                return prepared_row(db, text, params)
            return cursor.fetchone()
        # PREPARE first (the query is data-changing to the audit context, audit.history),
        # EXECUTE last (the query's answer is its last result).
        query = f"{prepare}; {execute}"
        if len(session.names) >= PREPARED_PER_SESSION:
            oldest, _none = session.names.popitem(last=False)
            query = f"{prepare}; DEALLOCATE {oldest}; {execute}"
        try:
            cursor.execute(query, params)
        except Exception:
            # The PREPARE may have taken effect (it outlives a rollback): a new name next.
            session.generation += 1
            session.names.clear()
            raise
        session.names[name] = None
        while cursor.nextset():  # past the PREPARE's (and DEALLOCATE's) result
            pass
        return cursor.fetchone()
