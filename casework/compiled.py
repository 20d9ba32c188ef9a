"""Querysets whose SQL Django compiles once a process, run again with other values.

Compiling a queryset (building its ``WHERE``, its joins for ``select_related`` and its
column list) costs more CPU than the database needs to answer a read by primary key.
A :class:`CompiledQuery` builds its queryset once with stand-in values, keeps the SQL
Django compiled for it and the way Django turns its rows into model instances, and
then runs that SQL with the caller's values in place of the stand-ins: the same
statement, the same instances (``from_db``, the related objects of ``select_related``,
each column's converters) as iterating the queryset, without compiling it again.

Only for querysets whose shape never changes: the values named by the caller are the
only thing that differs from one run to the next.
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connections
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import get_related_populators
from psycopg import errors as pg_errors


@dataclass(frozen=True)
class _Plan:
    """What running the compiled statement needs: its SQL, where each value goes, and
    how Django builds instances from its rows (``ModelIterable``)."""

    using: str
    sql: str
    # Each parameter of the statement: ("value", name) for a caller's value, or
    # ("constant", value) for one fixed in the queryset.
    slots: tuple[tuple[str, Any], ...]
    model: type[Model]
    start: int
    end: int
    init_list: tuple[str, ...]
    related_populators: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[list[Callable], Any]], ...]

    def params(self, values: dict[str, Any]) -> list[Any]:
        """The statement's parameters with the caller's ``values`` in their places."""
        return [values[item] if kind == "value" else item for kind, item in self.slots]

    def instances(self, rows, connection) -> list[Model]:
        """The model instances of the statement's ``rows``, as ``ModelIterable`` makes them."""
        objects = []
        for row in rows:
            if self.converters:
                row = _converted(row, self.converters, connection)
            obj = self.model.from_db(self.using, self.init_list, row[self.start : self.end])
            for populator in self.related_populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects


class _Compiled:
    """A queryset compiled on first use (``_compile`` makes the plan), run by its plan."""

    def __init__(self, build: Callable[..., QuerySet], **stand_ins: Hashable) -> None:
        self._build = build
        self._stand_ins = stand_ins
        self._plan = None

    def run(self, **values: Any) -> list:
        plan = self.plan()
        connection = connections[plan.using]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, plan.params(values))
            return plan.instances(cursor.fetchall(), connection)

    def plan(self):
        """The compiled statement and how its rows are given (made on first use)."""
        return self._plan or self._compile()

    def _compile(self):
        raise NotImplementedError


class CompiledQuery(_Compiled):
    """``build(**values)`` returns a queryset of model instances; ``stand_ins`` names one
    value for each keyword, used only to compile it (each must reach the statement's
    parameters as it is, and be a value no real call would use as a constant of the
    queryset). ``run(**values)`` answers the list ``list(build(**values))`` would."""

    def _compile(self) -> _Plan:
        queryset = self._build(**self._stand_ins)
        if queryset._known_related_objects or queryset.query.annotation_select:
            raise ValueError("a compiled query takes no related manager and no annotation")
        using = queryset.db
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = _slots(params, self._stand_ins)
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        self._plan = _Plan(
            using=using,
            sql=sql,
            slots=slots,
            model=klass_info["model"],
            start=start,
            end=end,
            init_list=tuple(column[0].target.attname for column in select[start:end]),
            related_populators=tuple(get_related_populators(klass_info, select, using)),
            converters=tuple(converters.items()),
        )
        return self._plan


@dataclass(frozen=True)
class _RowsPlan:
    """A compiled ``values_list`` statement: its SQL, where each value goes, and each
    column's converters."""

    using: str
    sql: str
    slots: tuple[tuple[str, Any], ...]
    converters: tuple[tuple[int, tuple[list[Callable], Any]], ...]

    def params(self, values: dict[str, Any]) -> list[Any]:
        return [values[item] if kind == "value" else item for kind, item in self.slots]

    def instances(self, rows, connection) -> list[tuple]:
        """The rows as ``ValuesListIterable`` gives them (each column converted)."""
        if not self.converters:
            return [tuple(row) for row in rows]
        return [tuple(_converted(row, self.converters, connection)) for row in rows]


def _converted(row, converters, connection) -> list:
    """``row`` with each column through its converters, as Django's iterables convert."""
    row = list(row)
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


class CompiledRows(_Compiled):
    """A ``values_list`` queryset (with or without a grouping annotation) compiled once:
    ``run(**values)`` answers the list of tuples ``list(build(**values))`` would, each
    column through Django's converters as ``ValuesListIterable`` gives it. ``stand_ins``
    as for :class:`CompiledQuery`; it runs with others in :func:`run_together` too."""

    def _compile(self) -> _RowsPlan:
        queryset = self._build(**self._stand_ins)
        query = queryset.query
        if not query.values_select or query.extra_select or not queryset._fields:
            raise ValueError("a compiled row read takes a values_list queryset")
        # ``ValuesListIterable`` reorders the columns when the fields are named in another
        # order than the statement selects them; here they must be in that order.
        fields = [
            *queryset._fields,
            *(name for name in query.annotation_select if name not in queryset._fields),
        ]
        if fields != [*query.values_select, *query.annotation_select]:
            raise ValueError("name the fields in the order the statement selects them")
        using = queryset.db
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        columns = [column[0] for column in compiler.select[: compiler.col_count]]
        self._plan = _RowsPlan(
            using=using,
            sql=sql,
            slots=_slots(params, self._stand_ins),
            converters=tuple(compiler.get_converters(columns).items()),
        )
        return self._plan


@dataclass(frozen=True)
class _RawPlan:
    using: str
    sql: str
    names: tuple[str, ...]

    def params(self, values: dict[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]

    def instances(self, rows, connection) -> list[tuple]:
        return [tuple(row) for row in rows]


class RawRows:
    """A statement of fixed text with named parameters (``%(name)s``; ``%%`` for a percent
    sign), its rows as tuples, to run beside compiled reads in :func:`run_together`."""

    _NAMED = re.compile(r"%\((\w+)\)s")

    def __init__(self, sql: str, using: str = DEFAULT_DB_ALIAS) -> None:
        self._plan = _RawPlan(using, self._NAMED.sub("%s", sql), tuple(self._NAMED.findall(sql)))

    def plan(self) -> _RawPlan:
        return self._plan


def run_together(
    *reads: tuple[CompiledQuery | CompiledRows | RawRows, dict[str, Any]],
    prepared: bool = False,
) -> list[list[Model] | list[tuple]]:
    """Several compiled reads of one database in one round trip: ``[(query, values), …]``
    answers ``[query.run(**values), …]`` (the rows of a :class:`CompiledRows` or a
    :class:`RawRows` as tuples).

    The reads' statements go to PostgreSQL as one text (the simple query protocol: the
    server runs them one after the other, in one transaction, and answers each with its
    own result set); each read's rows become instances as its :meth:`CompiledQuery.run`
    makes them. One execution for the driver and Django instead of one a read.

    ``prepared``: each statement is prepared on the server once per database session
    (``PREPARE`` with its first use, ``EXECUTE`` after; :func:`_prepared_query`), so the
    server parses, analyses and plans it once a session, not at every page: the same
    statements, the same rows, the values still bound by the driver (docs/adr/0036,
    session 21).
    """
    plans = [query.plan() for query, _values in reads]
    using = plans[0].using
    if any(plan.using != using for plan in plans):
        raise ValueError("reads run together must use one database")
    params = [
        param
        for plan, (_query, values) in zip(plans, reads, strict=True)
        for param in plan.params(values)
    ]
    connection = connections[using]
    if prepared:
        return _run_prepared(connection, plans, params)
    sql = ";\n".join(plan.sql for plan in plans)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _results(cursor, plans, connection)


def _results(cursor, plans, connection, *, skip: int = 0) -> list:
    """Each plan's rows from the cursor's result sets, past the first ``skip`` (those of
    commands: ``PREPARE``, ``DEALLOCATE``)."""
    for _ in range(skip):
        if not cursor.nextset():
            raise RuntimeError("a command run with the reads gave no result")
    found = []
    for n, plan in enumerate(plans):
        if n and not cursor.nextset():
            raise RuntimeError("a read run together gave no result set")
        found.append(plan.instances(cursor.fetchall(), connection))
    return found


# --- Reads prepared once per session (docs/adr/0036-fast-pages.md, session 21) -------------

# The prefix of every prepared read's name: ``audit.history`` knows a query that begins
# with ``PREPARE`` or ``EXECUTE`` of such a name for a read (no audit context to set).
READ_PREFIX = "samverkan_read_"

# At most this many reads prepared per session (each keeps its plan in the server
# session's memory): the least recently used one is deallocated with the next PREPARE.
# The shapes are few (a page's reads, a case model's, a set of visible flows').
PREPARED_READS_PER_SESSION = 64


@dataclass
class PreparedSession:
    """What one database session (a psycopg connection) has prepared: the names, least
    recently used first, and the generation its names carry (raised when a query that
    prepared or deallocated failed: its commands may or may not have taken effect, so the
    next use prepares under new names). The reads here and the transition engine's
    statements (``casework.services.statements.prepared_row``) each keep a registry."""

    names: OrderedDict[str, None] = field(default_factory=OrderedDict)
    generation: int = 0


def prepared_session(sessions: weakref.WeakKeyDictionary, raw: Any) -> PreparedSession:
    """The driver connection ``raw``'s entry in ``sessions`` (a registry keyed by the
    driver's connection: a new session, a reconnect or ``CONN_MAX_AGE``, is a new object
    and starts empty; a closed one is forgotten with it), made on its first use."""
    session = sessions.get(raw)
    if session is None:
        session = sessions[raw] = PreparedSession()
    return session


_sessions: weakref.WeakKeyDictionary[Any, PreparedSession] = weakref.WeakKeyDictionary()

_PLACEHOLDER = re.compile(r"%[%s]")


@functools.lru_cache(maxsize=512)
def _prepared_forms(sql: str, generation: int) -> tuple[str, str, str]:
    """The read ``sql`` (``%s`` placeholders, ``%%`` for a percent sign) as a prepared
    statement: its name (a hash of the text: one per shape), its ``PREPARE`` (``$n``
    parameters, their types inferred by the server from where they stand; still text
    for the driver, so ``%%`` stays) and its ``EXECUTE`` (``%s`` placeholders: the values
    bound by the driver, as before)."""
    if not sql.lstrip()[:6].upper() == "SELECT":
        raise ValueError("only a SELECT is prepared as a read")
    count = 0

    def numbered(found: re.Match) -> str:
        nonlocal count
        if found.group() == "%%":
            return "%%"
        count += 1
        return f"${count}"

    body = _PLACEHOLDER.sub(numbered, sql)
    digest = hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
    name = f"{READ_PREFIX}{digest}" + (f"_{generation}" if generation else "")
    execute = f"EXECUTE {name}" + (f" ({', '.join(['%s'] * count)})" if count else "")
    return name, f"PREPARE {name} AS {body}", execute


def _prepared_query(session: PreparedSession, plans) -> tuple[str, int, list[str], list[str]]:
    """The query that runs ``plans`` as prepared reads on ``session``: the ``PREPARE`` of
    each not yet prepared and the ``DEALLOCATE`` of the least recently used past the
    bound first, then an ``EXECUTE`` each. With the number of those commands (their
    results come before the reads'), the names the reads execute and the names it
    deallocates (the caller updates the session once the query ran)."""
    commands, executes, used = [], [], []
    for plan in plans:
        name, prepare, execute = _prepared_forms(plan.sql, session.generation)
        if name not in session.names and name not in used:
            commands.append(prepare)
        used.append(name)
        executes.append(execute)
    kept = len(session.names.keys() | set(used))
    dropped = []
    for name in session.names:
        if kept <= PREPARED_READS_PER_SESSION:
            break
        if name not in used:
            commands.append(f"DEALLOCATE {name}")
            dropped.append(name)
            kept -= 1
    return ";\n".join([*commands, *executes]), len(commands), used, dropped


def _run_prepared(connection, plans, params) -> list:
    with connection.cursor() as cursor:
        session = prepared_session(_sessions, connection.connection)
        sql, commands, used, dropped = _prepared_query(session, plans)
        try:
            cursor.execute(sql, params)
        except ProgrammingError as error:
            if commands or not isinstance(error.__cause__, pg_errors.InvalidSqlStatementName):
                _forget(session, commands)
                raise
            # The session lost its prepared statements (``DISCARD ALL``, ``DEALLOCATE
            # ALL``): prepared again at once when no transaction is open (a read changed
            # nothing), else at the next call.
            session.names.clear()
            if connection.in_atomic_block or not connection.get_autocommit():
                raise
            return _run_prepared(connection, plans, params)
        except Exception:
            _forget(session, commands)
            raise
        for name in dropped:
            del session.names[name]
        for name in used:
            session.names[name] = None
            session.names.move_to_end(name)
        return _results(cursor, plans, connection, skip=commands)


def _forget(session: PreparedSession, commands: int) -> None:
    """After a failed query: one that prepared or deallocated may have done either or
    not (a ``PREPARE`` outlives a rollback): new names from now on."""
    if commands:
        session.generation += 1
        session.names.clear()


def among_ids(stand_in: Hashable) -> RawSQL:
    """The right side of ``pk__in=`` for integer ids as one array parameter: ``stand_in``
    when the query is compiled, a list of ids when it is run (one statement text for any
    number of ids)."""
    return RawSQL("SELECT unnest(%s::bigint[])", (stand_in,))


def _slots(params, stand_ins: dict[str, Hashable]) -> tuple[tuple[str, Any], ...]:
    """Each parameter of a statement compiled with ``stand_ins``: ("value", name) where a
    stand-in stands, else ("constant", value); every stand-in must be among them."""
    by_value = {value: name for name, value in stand_ins.items()}
    slots = tuple(
        ("value", by_value[param])
        if _hashable(param) and param in by_value
        else ("constant", param)
        for param in params
    )
    missing = set(stand_ins) - {item for kind, item in slots if kind == "value"}
    if missing:
        raise ValueError(f"stand-ins not in the compiled statement: {sorted(missing)}")
    return slots


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
