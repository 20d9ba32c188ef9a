"""Change history: database triggers that copy every change of a tracked table.

Putting a table under change history is one line in a migration::

    from audit.history import track_changes

    operations = [track_changes("casework_person", exclude=["search_blob"])]

The migration must depend on the one that creates the table. From then on
every INSERT, UPDATE, DELETE and TRUNCATE of that table — through ``save()``,
``QuerySet.update()``, ``bulk_create``/``bulk_update``, the admin or raw SQL —
writes an ``audit.ChangeRecord`` in the same transaction, because the database
does it. There is no switch an application session can flip to skip it.

A bulk ``UPDATE`` of many rows can take :func:`bulk_update` instead: one statement that
writes the same records itself (paired by primary key); the row trigger stands aside
only inside the audit owner's function that does it (docs/adr/0005-audit-log.md, "The
bulk path").

Who made a change: the application tells the database through the
``samverkan.audit_context`` setting, which :func:`context` injects before each
data-changing statement (the request middleware does it for every request).
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import connections, migrations
from psycopg.adapt import Dumper
from psycopg.pq import Format

CONTEXT_SETTING = "samverkan.audit_context"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def track_changes(table: str, *, pk: str = "id", exclude: Sequence[str] = ()) -> migrations.RunSQL:
    """Migration operation: record every change of ``table`` in the change history.

    ``exclude`` names columns never copied (secrets such as password hashes,
    and noise such as ``last_login``); an UPDATE that changes only excluded
    columns records nothing.
    """
    table = _identifier(table)
    args = ", ".join(f"'{_identifier(name)}'" for name in (pk, *exclude))
    return migrations.RunSQL(
        sql=[
            f"CREATE TRIGGER audit_history AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION audit_record_change({args});",
            f"CREATE TRIGGER audit_history_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_record_truncate();",
        ],
        reverse_sql=[
            f"DROP TRIGGER IF EXISTS audit_history ON {table};",
            f"DROP TRIGGER IF EXISTS audit_history_truncate ON {table};",
        ],
    )


# --- Who made the change ----------------------------------------------------

# A prepared statement's first use and its later ones (``PREPARE ...; EXECUTE ...``, the
# transition engine's statement, docs/adr/0032 Session 17) may change data as well.
_DML = ("insert", "update", "delete", "merge", "with", "execute", "prepare")


# Reads prepared once per session (``casework.compiled``, docs/adr/0036 Session 21): a query
# of their ``PREPARE``s (each of a ``SELECT``), ``DEALLOCATE``s and ``EXECUTE``s changes nothing.
_READS = ("prepare samverkan_read_", "execute samverkan_read_")


def _is_dml(sql: str | bytes) -> bool:
    text = (sql.decode(errors="ignore") if isinstance(sql, bytes) else sql).lstrip()
    head = text[:23].lower()
    if head.startswith(_READS):
        return False
    # The audit tables themselves are not tracked: no context to set.
    return head.startswith(_DML) and not text.startswith("INSERT INTO audit_")


class _ContextInjector:
    """``execute_wrapper`` that sets the audit context for each data-changing statement.

    ``set_config(..., true)`` lasts for the current transaction, so the value is
    set in the very statement (autocommit) or transaction that makes the change.
    """

    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata

    def _value(self) -> str:
        metadata = self._metadata() if callable(self._metadata) else self._metadata
        return json.dumps(metadata, sort_keys=True, default=str)

    def __call__(self, execute, sql, params, many, context):
        cursor = context["cursor"]
        if not _is_dml(sql) or getattr(cursor, "name", None):
            return execute(sql, params, many, context)
        if many:
            # executemany cannot carry a second statement: set it first, which
            # reaches the change when it runs inside a transaction.
            cursor.execute(f"SELECT set_config('{CONTEXT_SETTING}', %s, true)", [self._value()])
            return execute(sql, params, many, context)
        if isinstance(params, dict):
            placeholder = "%(samverkan_audit_context)s"
            params = {**params, "samverkan_audit_context": self._value()}
        else:
            placeholder = "%s"
            params = (self._value(), *(params or ()))
        prefix = f"SELECT set_config('{CONTEXT_SETTING}', {placeholder}, true); "
        sql = prefix.encode() + sql if isinstance(sql, bytes) else prefix + sql
        result = execute(sql, params, many, context)
        # psycopg 3 returns the first result set (the SELECT): move on to the
        # statement's own result so RETURNING and rowcount behave as before.
        raw = getattr(cursor, "cursor", cursor)
        while raw.nextset():
            pass
        return result


@contextlib.contextmanager
def context(metadata: Any, *, using: str = "default") -> Iterator[None]:
    """Attach ``metadata`` (a dict, or a callable returning one) to every change made inside.

    A callable is evaluated only when a change is made, so a request that
    changes nothing costs nothing.
    """
    with connections[using].execute_wrapper(_ContextInjector(metadata)):
        yield


# --- The bulk path ------------------------------------------------------------

BULK_SETTING = "samverkan.audit_bulk"


def bulk_update(
    cursor,
    table: str,
    ids: Sequence[Any],
    columns: dict[str, Sequence[Any]],
    *,
    id_type: str | None = None,
) -> int:
    """Set the ``columns`` (name -> one value per id, in the order of ``ids``) of the rows
    ``ids`` of the tracked ``table`` in one statement, with their change records.

    The database function ``audit_bulk_update`` (migration ``0012_bulk_history``) locks
    the rows, updates them and writes one change record per changed row — paired with
    its old row by primary key, the same record the row trigger writes — and queues them
    for the hash chain in one ``INSERT``; the row trigger stands aside for that one
    statement only (docs/adr/0005-audit-log.md, "The bulk path"). ``cursor`` is a
    psycopg cursor: the ids and the values travel as two binary one-dimensional arrays
    (the values column after column), the values of all columns of one type (``bytea``
    for sealed values: sent as one :class:`ByteaArray`). ``id_type``: the ids are given
    as text in that SQL type (``uuid``), cast by the server. Returns the rows updated."""
    if not ids:
        return 0
    ids, id_cast, values = _bulk_arguments(ids, columns, id_type)
    if all(value is None or isinstance(value, bytes) for value in values):
        values = ByteaArray(values)
    register_binary_arrays(cursor)
    cursor.execute(
        f"SELECT audit_bulk_update(%s::regclass, %b{id_cast}, %b::text[], %b)",
        [_identifier(table), ids, [_identifier(c) for c in columns], values],
    )
    return cursor.fetchone()[0]


def bulk_reseal(
    cursor,
    table: str,
    ids: Sequence[Any],
    columns: dict[str, Sequence[bytes | None]],
    *,
    id_type: str | None = None,
    stamp: str | None = None,
) -> int:
    """Move sealed values of the rows ``ids`` of the tracked ``table`` to another data key
    (``columns``: name -> the new sealed value per id, in the order of ``ids``; a value
    given as it is stays) and, if ``stamp`` names an empty ``timestamptz`` column, set it
    to the statement's time: one statement, **one** change record for it.

    The database function ``audit_bulk_reseal`` (migration ``0013_bulk_reseal``) refuses
    any value that is not a re-sealing of the row's value (a sealed value whose header
    names another key than the old one's) and a stamp already set; its record names every
    row id, which of its values moved and the SHA-256 of each new value — never the value
    (docs/adr/0023-keys-per-case.md, session 14). ``cursor``, ``ids`` and
    ``id_type`` as for :func:`bulk_update`. Returns the rows updated."""
    if not ids:
        return 0
    ids, id_cast, values = _bulk_arguments(ids, columns, id_type)
    register_binary_arrays(cursor)
    cursor.execute(
        f"SELECT audit_bulk_reseal(%s::regclass, %b{id_cast}, %b::text[], %b, %s::text)",
        [
            _identifier(table),
            ids,
            [_identifier(c) for c in columns],
            ByteaArray(values),
            None if stamp is None else _identifier(stamp),
        ],
    )
    return cursor.fetchone()[0]


def _bulk_arguments(
    ids: Sequence[Any], columns: dict[str, Sequence[Any]], id_type: str | None
) -> tuple[Any, str, list[Any]]:
    """The ids as sent (text in ``id_type``, cast by the server, or as they are), their
    cast, and the values column after column (one per id in every column)."""
    values: list[Any] = []
    for column_values in columns.values():
        if len(column_values) != len(ids):
            raise ValueError("one value per id in every column")
        values.extend(column_values)
    if id_type is None:
        return list(ids), "", values
    return TextArray(ids), f"::{_identifier(id_type)}[]", values


# --- Arrays in PostgreSQL's binary format -----------------------------------------

_HEAD = struct.Struct("!iiIii")  # dimensions, has nulls, element type, length, lower bound
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_BYTEA, _TEXT, _UUID = 17, 25, 2950


def _packed(items: Iterable[bytes | None], element_oid: int) -> bytes:
    length = _LENGTH.pack
    parts = [_NULL if item is None else length(len(item)) + item for item in items]
    if not parts:
        return _HEAD.pack(0, 0, element_oid, 0, 0)[:12]
    nulls = 1 if _NULL in parts else 0
    return _HEAD.pack(1, nulls, element_oid, len(parts), 1) + b"".join(parts)


class _BinaryArray:
    """An array parameter (``%b``) built in one pass: psycopg's list dumper calls a dumper
    per element (most of a bulk statement's client time). ``array_oid`` is its type;
    register the dumpers on the cursor: ``register_binary_arrays(cursor)``."""

    __slots__ = ("data",)
    array_oid: int


class ByteaArray(_BinaryArray):
    """A ``bytea[]`` parameter."""

    __slots__ = ()
    array_oid = 1001

    def __init__(self, values: Iterable[bytes | None]) -> None:
        self.data = _packed(values, _BYTEA)


class TextArray(_BinaryArray):
    """A ``text[]`` parameter, e.g. ids given as text and cast by the server
    (``%b::uuid[]``)."""

    __slots__ = ()
    array_oid = 1009

    def __init__(self, values: Iterable[str]) -> None:
        self.data = _packed((value.encode() for value in values), _TEXT)


class UuidArray(_BinaryArray):
    """A ``uuid[]`` parameter."""

    __slots__ = ()
    array_oid = 2951

    def __init__(self, values: Iterable[Any]) -> None:
        self.data = _packed((value.bytes for value in values), _UUID)


def _array_dumper(array: type[_BinaryArray]) -> type[Dumper]:
    class ArrayDumper(Dumper):
        format = Format.BINARY
        oid = array.array_oid

        def dump(self, obj: _BinaryArray) -> bytes:
            return obj.data

    return ArrayDumper


_ARRAY_DUMPERS = {array: _array_dumper(array) for array in (ByteaArray, TextArray, UuidArray)}


def register_binary_arrays(cursor) -> None:
    """Let ``cursor`` (psycopg) send :class:`ByteaArray`, :class:`TextArray` and
    :class:`UuidArray`."""
    for array, dumper in _ARRAY_DUMPERS.items():
        cursor.adapters.register_dumper(array, dumper)


def tracked_tables(cursor) -> frozenset[str]:
    """The tables under change history (those with the ``audit_history`` trigger)."""
    cursor.execute(
        "SELECT c.relname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
        "WHERE t.tgname = 'audit_history' AND c.relnamespace = current_schema()::regnamespace"
    )
    return frozenset(name for (name,) in cursor.fetchall())
