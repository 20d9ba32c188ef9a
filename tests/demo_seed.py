"""The ``demo`` fixture's ``seed_demo``, run once a worker and then copied in.

Three tests in four use the ``demo`` fixture: ``seed_demo`` without persons, cases or API
clients (the organisations, one user a role with the role's group, and the access
events, change records and audit queue entries that writes) inside the test's rolled-back
transaction. That is ~250 statements and ~0.15 s of Python CPU a test, more in
PostgreSQL, for ~1,250 tests of a run.

Here the first such test of a worker runs ``seed_demo`` as before and then copies out
(``COPY … TO``) the rows of every table whose rows the seed changed (each of Django's
tables compared with the migrations' rows; the others are ``django_migrations`` and the
access log's partitions, read through their table). Every later such test gets those
rows back with ``COPY … FROM`` under ``session_replication_role = replica``, in its own
transaction: no trigger fires, so the rows are the seed's with their ids and nothing
else is written, and the sequences are moved past those ids. The test then sees what a
``seed_demo`` of its own would have left, but for the moment in the rows (the first
seed's) and the salts of the password hashes.

Only where that holds; everywhere else ``seed_demo`` runs as before:

* a rolled-back test (inside pytest-django's wrapping transaction): a committing test's
  seed must commit, with its on-commit work (the audit seal);
* the settings ``seed_demo`` reads (``SETTINGS``) as at the first seed;
* nothing written in the test's transaction yet (PostgreSQL has given it no transaction
  id) and the seed's tables as the migrations left them (as many rows; no committed
  seed of a module, ``tests.conftest.committed_seed``, under the test).

``tests/config/test_demo_copy.py`` asserts that a copied demo is the one
``seed_demo`` makes.

A module's committed seed (``tests.conftest.committed_seed`` with ``copy_as``: the demo
with every programme's cases, ``committed_demo_cases``) is copied the same way
(``committed``): the worker's first is built and copied out of both databases, every later
one is put back, committed (``tests/config/test_committed_copy.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

# What ``seed_demo`` reads from the settings (it seeds nothing else without persons,
# cases or API clients).
SETTINGS = (
    "DEMO_PASSWORD",
    "PASSWORD_HASHERS",
    "DEMO_PERSONS",
    "DEMO_SIG_CASES",
    "DEMO_API_CLIENTS",
)


@dataclass(frozen=True)
class _Copy:
    """A seed's rows: table -> (its columns, all its rows as COPY text), for the tables
    whose rows it changed; how many rows each held before (the migrations'); the highest
    value of each of their sequences."""

    tables: dict[str, tuple[str, bytes]]
    rows_before: dict[str, int]
    sequences: tuple[tuple[str, int], ...]


# The seed's rows, per settings (``SETTINGS``' values).
_COPIES: dict[tuple, _Copy] = {}

# How many committed seeds (``tests.conftest.committed_seed``) are in the databases now.
committed_seeds = 0

# How many ``demo`` seeds of this worker were copied in, and how many ran.
counts = {"copied": 0, "seeded": 0}

# The committed seeds' rows (``committed``), per name and settings: alias -> copy.
_COMMITTED: dict[tuple, dict[str, _Copy]] = {}

# How many committed seeds of this worker were put back, and how many were built.
committed_counts = {"copied": 0, "seeded": 0}


def seed(run_seed: Callable[[], None], *, migrations_rows: Callable[[str], bytes]) -> None:
    """``run_seed()`` (``seed_demo``), or the rows of an earlier one copied in where
    that leaves the same. ``migrations_rows(table)``: the table's rows (COPY text) as
    the migrations left them."""
    connection = connections[DEFAULT_DB_ALIAS]
    blocks = connection.atomic_blocks
    if committed_seeds or not (blocks and blocks[0]._from_testcase):
        _run(run_seed)
        return
    key = _settings_key()
    with connection.cursor() as cursor:
        copy = _COPIES.get(key)
        if copy is None:
            as_migrated = _untouched(cursor, connection, _counts(connection, migrations_rows))
            if as_migrated:
                _past_the_first_ids(cursor)
            _run(run_seed)
            if as_migrated:
                _COPIES[key] = _take(cursor, connection, migrations_rows)
        elif _untouched(cursor, connection, copy.rows_before):
            _put_back(cursor, connection, copy)
            counts["copied"] += 1
        else:
            _run(run_seed)


def committed(
    name: str,
    build: Callable[[], object],
    *,
    aliases: tuple[str, ...],
    migrations_rows: Callable[[str, str], bytes],
) -> None:
    """``build()`` committed (a module's seed, ``tests.conftest.committed_seed``), or the
    rows of this worker's earlier build of the same ``name`` under the same settings
    (``SETTINGS``) put back, committed, in ``aliases``' databases.

    The first build of a worker on databases as the migrations left them is copied out
    (every table whose rows it changed, in each alias, as for the ``demo`` fixture); a
    later one on databases as the migrations left them gets those rows back with
    ``COPY … FROM`` under ``session_replication_role = replica`` (no trigger fires: the
    rows, the audit chain's seals and the key store's wrapped data keys are the first
    build's, byte for byte) and its sequences moved past them, one transaction an alias.
    The keyring is the worker's (``test_keyring``, a session's; part of the copy's key),
    so the copied data keys unwrap as the first build's did. ``build`` must return
    nothing (its rows are all that is copied). ``migrations_rows(table, alias)``: the
    migrations' rows."""
    # The keyring too: the copied data keys (and blind indexes) are of the first build's.
    key = (name, str(settings.KEYRING_FILE), *_settings_key())
    before = {
        alias: _counts(connections[alias], lambda table, alias=alias: migrations_rows(table, alias))
        for alias in aliases
    }
    as_migrated = all(_untouched_alias(alias, before[alias]) for alias in aliases)
    copies = _COMMITTED.get(key)
    if copies is not None and as_migrated:
        for alias in aliases:
            connection = connections[alias]
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                _put_back(cursor, connection, copies[alias])
        committed_counts["copied"] += 1
        return
    result = build()
    assert result is None, f"a copied committed seed ({name}) returns nothing"
    committed_counts["seeded"] += 1
    if as_migrated:
        copies = {}
        for alias in aliases:
            connection = connections[alias]
            with connection.cursor() as cursor:
                copies[alias] = _take(
                    cursor, connection, lambda table, alias=alias: migrations_rows(table, alias)
                )
        _COMMITTED[key] = copies


def forget_committed(name: str) -> None:
    """Forget the copies of the committed seed ``name`` (the next build runs)."""
    for key in [key for key in _COMMITTED if key[0] == name]:
        del _COMMITTED[key]


def _untouched_alias(alias: str, rows_before: dict[str, int]) -> bool:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return _untouched(cursor, connection, rows_before)


def copy_of_seed(run_seed: Callable[[], None], *, migrations_rows: Callable[[str], bytes]):
    """The copy ``seed`` puts back under the current settings: the one made already, or
    one made here (``run_seed`` in a savepoint, rolled back). Only at the start of a
    rolled-back test (``seed``'s conditions)."""
    connection = connections[DEFAULT_DB_ALIAS]
    key = _settings_key()
    if key not in _COPIES:
        with connection.cursor() as cursor:
            assert _untouched(cursor, connection, _counts(connection, migrations_rows))
            _past_the_first_ids(cursor)
            with transaction.atomic():
                run_seed()
                _COPIES[key] = _take(cursor, connection, migrations_rows)
                transaction.set_rollback(True)
    return _COPIES[key]


def has_copy() -> bool:
    """Whether ``seed`` has a copy to put back under the current settings."""
    return _settings_key() in _COPIES


def put_back(copy) -> None:
    """``copy``'s rows into the default database, in the current transaction."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        _put_back(cursor, connection, copy)


def _settings_key() -> tuple:
    return tuple(repr(getattr(settings, name, None)) for name in SETTINGS)


def _run(run_seed: Callable[[], None]) -> None:
    run_seed()
    counts["seeded"] += 1


def _django_tables(connection) -> list[str]:
    return sorted(
        connection.introspection.django_table_names(only_existing=True, include_views=False)
    )


def _counts(connection, migrations_rows: Callable[[str], bytes]) -> dict[str, int]:
    return {table: migrations_rows(table).count(b"\n") for table in _django_tables(connection)}


def _untouched(cursor, connection, rows_before: dict[str, int]) -> bool:
    """Nothing written in this transaction yet (no transaction id), and each of
    ``rows_before``'s tables holding that many rows (nothing committed in them)."""
    quote = connection.ops.quote_name
    counted = "".join(
        f", (SELECT count(*) FROM {quote(table)})"  # noqa: S608
        for table in rows_before
    )
    cursor.execute(f"SELECT txid_current_if_assigned() IS NULL{counted}")
    nothing_written, *rows = cursor.fetchone()
    return nothing_written and rows == list(rows_before.values())


# The copied seed's ids start past this (``_past_the_first_ids``).
FIRST_IDS = 1000


def _past_the_first_ids(cursor) -> None:
    """Every sequence past the first ids a fresh test database gives (``FIRST_IDS``), as
    in a test that runs after others. The copy's ids come again in every later test of
    the worker: a test comparing its own ids with small numbers (the national bench's
    loader writes access events with ids 1 to 4) must not meet them there, where without
    the copy it could only in a worker's very first test. Sequences are not rolled
    back, and nothing relies on a sequence's start."""
    cursor.execute(
        "SELECT setval(format('%%I.%%I', schemaname, sequencename), %s) FROM pg_sequences"
        " WHERE coalesce(last_value, 0) < %s",
        [FIRST_IDS, FIRST_IDS],
    )


def _take(cursor, connection, migrations_rows: Callable[[str], bytes]) -> _Copy:
    """Copy out the rows of every table whose rows the seed changed, and the highest
    values of those tables' sequences."""
    quote = connection.ops.quote_name
    tables, sequences = {}, []
    for table in _django_tables(connection):
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [quote(table)],
        )
        columns = ", ".join(quote(name) for (name,) in cursor.fetchall())
        with cursor.copy(f"COPY (SELECT {columns} FROM {quote(table)}) TO STDOUT") as out:  # noqa: S608
            rows = b"".join(bytes(chunk) for chunk in out)
        if sorted(rows.splitlines()) == sorted(migrations_rows(table).splitlines()):
            continue
        tables[table] = (columns, rows)
        # The sequences of its columns (serial or identity), at the seed's highest value.
        cursor.execute(
            "SELECT sequence.oid::regclass::text, attname FROM pg_depend"
            " JOIN pg_class sequence ON sequence.oid = objid AND sequence.relkind = 'S'"
            " JOIN pg_attribute ON attrelid = refobjid AND attnum = refobjsubid"
            " WHERE refobjid = %s::regclass AND classid = 'pg_class'::regclass",
            [quote(table)],
        )
        for sequence, column in cursor.fetchall():
            cursor.execute(f"SELECT max({quote(column)}) FROM {quote(table)}")  # noqa: S608
            (highest,) = cursor.fetchone()
            if highest is not None:
                sequences.append((sequence, int(highest)))
    return _Copy(
        tables=tables,
        rows_before={table: migrations_rows(table).count(b"\n") for table in tables},
        sequences=tuple(sequences),
    )


def _put_back(cursor, connection, copy: _Copy) -> None:
    """The seed's rows, in this transaction, as the seed left them; no trigger fires."""
    quote = connection.ops.quote_name
    cursor.execute("SELECT current_setting('session_replication_role')")
    (role,) = cursor.fetchone()
    cursor.execute("SET LOCAL session_replication_role = replica")
    for table, (columns, rows) in copy.tables.items():
        if copy.rows_before[table]:
            cursor.execute(f"DELETE FROM {quote(table)}")  # noqa: S608
        with cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as into:
            into.write(rows)
    cursor.execute("SELECT set_config('session_replication_role', %s, true)", [role])
    if copy.sequences:
        # Past the copied ids (a ``reset_sequences`` test may have moved one back).
        cursor.execute(
            "SELECT setval(name::regclass, highest) FROM (VALUES "  # noqa: S608
            + ", ".join(["(%s, %s)"] * len(copy.sequences))
            + ") AS seed (name, highest)"
            " WHERE coalesce(pg_sequence_last_value(name::regclass), 0) < highest",
            [value for pair in copy.sequences for value in pair],
        )
