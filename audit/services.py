"""Writing the access log. The only code that creates ``AccessEvent`` rows.

Every service that touches personal data calls :func:`record_event` inside the
same ``transaction.atomic()`` block as the change it records, so a change never
lands without its event and a rolled-back change leaves none. Field *names*
are logged, never values.

Some events must outlive the request that caused them — a denied access, a
failed login — even when that request's transaction rolls back. Those are
written with ``independent=True``: at once when the default connection is not
inside a transaction, otherwise through the second connection ``audit`` to the
same database, which commits on its own (docs/adr/0005-audit-log.md).

Shortly after commit the new entries are sealed into the hash chain
(``audit.integrity.seal``, batched, by a sealer thread; see ``_Sealer``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from audit import context, integrity
from audit.models import AccessEvent, PendingEntry

Action = AccessEvent.Action
Outcome = AccessEvent.Outcome
_ACTIONS = frozenset(Action.values)
_OUTCOMES = frozenset(Outcome.values)

AUDIT_DB_ALIAS = "audit"

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def sanitize_text(value: str, *, max_length: int = 2000) -> str:
    """Make free text inert: control characters (newlines included) become visible escapes.

    A justification like ``"ok\\n2026-01-01 login admin"`` is stored as one line
    with a literal ``\\n``, so it can never pose as a second log entry in any
    line-oriented export or viewer.
    """
    text = str(value)[:max_length]
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _describe(obj: models.Model | None, object_type: str, object_id: str) -> tuple[str, str]:
    if obj is None:
        return object_type, object_id
    return obj._meta.label_lower, str(obj.pk)


def _roles(user: Any) -> str:
    # Cached on the user object: one query per request, not per event.
    roles = getattr(user, "_audit_roles", None)
    if roles is None:
        roles = ",".join(sorted(user.groups.values_list("name", flat=True)))[:300]
        user._audit_roles = roles
    return roles


def _independent_alias() -> str:
    """The connection on which a write commits whatever the request's transaction does."""
    default = connections[DEFAULT_DB_ALIAS]
    blocks = [block for block in default.atomic_blocks if not block._from_testcase]
    if not blocks and (default.get_autocommit() or default.atomic_blocks):
        # Autocommit (or only a test case's wrapping transaction, which stands
        # in for autocommit in tests): the insert commits by itself.
        return DEFAULT_DB_ALIAS
    if len(blocks) < len(default.atomic_blocks):
        # Inside a test case's wrapping transaction nothing commits on any
        # connection: write where the test sees it. Transactional tests prove
        # that the event survives (docs/adr/0015-lookups-leave-a-trace.md).
        return DEFAULT_DB_ALIAS
    return AUDIT_DB_ALIAS if AUDIT_DB_ALIAS in settings.DATABASES else DEFAULT_DB_ALIAS


class _Sealer:
    """Seals the chain soon after commits, off the committing request's path.

    ``AUDIT_SEALER = "thread"`` (the default): one daemon thread per process,
    woken by a commit, seals every queued entry at most once per
    ``AUDIT_SEAL_INTERVAL`` — a request never waits for a seal, and under load
    one seal per interval and process covers all writers. ``"inline"``: the
    committing request seals itself after the commit, at most once per interval
    (the test suite uses it: each test's entries are sealed when it commits,
    without a thread outliving the test's database). Either way a seal that gives
    way to another process's running seal leaves the rest to the next seal of
    any process, to ``manage.py audit seal`` (cron) or to any checkpoint or
    verification, which seal first; the queue is durable, so nothing is lost
    when a process stops with entries still queued (docs/adr/0005-audit-log.md).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._usings: set[str] = set()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = False
        self._last_inline = 0.0

    def after_commit(self, using: str) -> None:
        """Called in the writer's transaction: arrange a seal soon after its commit."""
        interval = getattr(settings, "AUDIT_SEAL_INTERVAL", 1.0)
        if interval is None:
            return
        if getattr(settings, "AUDIT_SEALER", "thread") == "inline":
            now = time.monotonic()
            if now - self._last_inline < interval:
                return
            self._last_inline = now
            transaction.on_commit(
                lambda: integrity.seal(using=using, wait=False), using=using, robust=True
            )
            return
        transaction.on_commit(lambda: self.wake(using), using=using, robust=True)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def wake(self, using: str) -> None:
        with self._lock:
            self._usings.add(using)
            if not self._alive():  # first commit in this process (or after a fork)
                self._pid = os.getpid()
                self._stopping = False
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="samverkan-audit-sealer", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Seal what is queued, then end the thread and close its connections."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._stopping = True
        self._stop.set()  # ends its pause between seals
        self._wake.set()
        thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                with self._lock:
                    usings = sorted(self._usings)
                for using in usings:
                    self._seal(using)
                if self._stopping:
                    return
                self._stop.wait(getattr(settings, "AUDIT_SEAL_INTERVAL", 1.0) or 0)
        finally:
            connections.close_all()  # this thread's connections

    def _seal(self, using: str) -> None:
        connection = connections[using]
        connection.close_if_unusable_or_obsolete()
        try:
            _kept(connection)
            sealed = integrity.seal(using=using, wait=self._stopping)
            if not sealed and not self._stopping and PendingEntry.objects.using(using).exists():
                self._wake.set()  # another process was sealing: try again next round
        except Exception:
            # Never a value: the seal reads entries, the message names only the failure.
            logger.exception("sealing the audit chain failed; the queue keeps the entries")
            if not self._stopping:
                self._wake.set()
        finally:
            connection.close_if_unusable_or_obsolete()


_sealer = _Sealer()

# How long the sealer thread keeps its database session at least (seconds). The thread
# lives as long as the process and seals about once a second under load: closing its
# session after every seal (``CONN_MAX_AGE = 0``, the default) made it open a new one at
# every seal, a server backend started and the client's handshake each time, on the
# same CPUs as the requests (docs/adr/0032, session 18). A broken session is still
# closed after its failed seal (``errors_occurred``) and the seal retried on a new one.
SEALER_CONNECTION_AGE = 600.0


def _kept(connection) -> None:
    """Open the thread's session if needed and keep it for ``SEALER_CONNECTION_AGE`` (or
    ``CONN_MAX_AGE`` when longer or unlimited) from when it was opened."""
    connection.close_if_health_check_failed()  # CONN_HEALTH_CHECKS, as before any cursor
    fresh = connection.connection is None
    connection.ensure_connection()
    if not fresh:
        return
    max_age = connection.settings_dict["CONN_MAX_AGE"]
    connection.close_at = (
        None if max_age is None else time.monotonic() + max(max_age, SEALER_CONNECTION_AGE)
    )


def seal_now(using: str = DEFAULT_DB_ALIAS) -> int:
    """Seal what is queued, in the calling thread (a command's, a benchmark's), and spare
    this process's sealer thread the wake-ups that this seal answers; return how many
    entries were sealed. A commit after the call wakes the thread again; an entry
    committed before it is in the queue this seal empties."""
    _sealer._wake.clear()
    return integrity.seal(using=using)


def stop_sealer(timeout: float = 10.0) -> None:
    """Seal what is queued and end this process's sealer thread, closing its
    connections (before a database it uses is dropped: the benchmarks' teardown)."""
    _sealer.stop(timeout)


# The hot path of every consultation: one prepared INSERT, no ORM save machinery.
_COLUMNS = tuple(
    field.column for field in AccessEvent._meta.concrete_fields if not field.primary_key
)
_ATTNAMES = tuple(field.attname for field in AccessEvent._meta.concrete_fields)
_CASTS = {"fields": "::jsonb", "details": "::jsonb", "client_address": "::inet"}
_INSERT = "INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING id".format(  # noqa: S608
    table=AccessEvent._meta.db_table,
    columns=", ".join(_COLUMNS),
    values=", ".join("%s" + _CASTS.get(column, "") for column in _COLUMNS),
)
_INSERT_MANY = "INSERT INTO {table} ({columns}) VALUES {{rows}} RETURNING id".format(  # noqa: S608
    table=AccessEvent._meta.db_table, columns=", ".join(_COLUMNS)
)


_ROW = "({})".format(", ".join("%s" + _CASTS.get(column, "") for column in _COLUMNS))
# From this many events on (a daily cull, an erasure of thousands of persons), one column
# array each: a short statement whatever the count. Quoting tens of thousands of
# parameters into one VALUES list cost the client more than the database's whole work.
_BULK = 100
_ARRAY_TYPES = {
    "fields": "text",
    "details": "text",
    "client_address": "text",
}


def _bulk_insert_sql(connection) -> str:
    fields = {f.column: f for f in AccessEvent._meta.concrete_fields if not f.primary_key}
    arrays = ", ".join(
        f"%s::{_ARRAY_TYPES.get(column) or fields[column].db_type(connection)}[]"
        for column in _COLUMNS
    )
    selected = ", ".join(f"v.{column}{_CASTS.get(column, '')}" for column in _COLUMNS)
    return (
        f"INSERT INTO {AccessEvent._meta.db_table} ({', '.join(_COLUMNS)}) "  # noqa: S608
        f"SELECT {selected} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS v({', '.join(_COLUMNS)}, n) ORDER BY v.n RETURNING id"
    )


def _insert(*events: AccessEvent, using: str) -> None:
    """One INSERT for all ``events`` (one statement: all of them or none)."""
    if len(events) >= _BULK:
        _insert_bulk(events, using=using)
        return
    values = []
    for event in events:
        for column in _COLUMNS:
            value = getattr(event, column)
            if column in {"fields", "details"}:
                value = json.dumps(value, ensure_ascii=False)
            elif column == "person_id" and value is not None and not isinstance(value, uuid.UUID):
                value = uuid.UUID(str(value))
            values.append(value)
    sql = _INSERT if len(events) == 1 else _INSERT_MANY.format(rows=", ".join([_ROW] * len(events)))
    with connections[using].cursor() as cursor:
        cursor.execute(sql, values)
        # PostgreSQL returns an INSERT's rows in the order of its VALUES.
        for event, (pk,) in zip(events, cursor.fetchall(), strict=True):
            event.pk = pk
            event._state.adding = False
            event._state.db = using


def _insert_bulk(events: tuple[AccessEvent, ...], *, using: str) -> None:
    """:func:`_insert` of many events: ``INSERT … SELECT … FROM unnest(…)`` with one array
    per column, in the order given (ids ascend in that order)."""
    columns: list[list] = [[] for _ in _COLUMNS]
    for event in events:
        for i, column in enumerate(_COLUMNS):
            value = getattr(event, column)
            if column in {"fields", "details"}:
                value = json.dumps(value, ensure_ascii=False)
            elif column == "person_id" and value is not None and not isinstance(value, uuid.UUID):
                value = uuid.UUID(str(value))
            elif column == "client_address" and value is not None:
                value = str(value)
            columns[i].append(value)
    with connections[using].cursor() as cursor:
        cursor.execute(_bulk_insert_sql(connections[using]), columns)
        ids = sorted(pk for (pk,) in cursor.fetchall())
    for event, pk in zip(events, ids, strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = using


def record_event(*, independent: bool = False, **event: Any) -> AccessEvent:
    """Append one event to the access log (in the caller's transaction).

    The event's keywords are :func:`_build`'s: ``action`` what was done; ``user``
    the account acting (``None`` for the system or an anonymous request); ``obj``
    or ``object_type``/``object_id`` what was touched; ``person_id`` the data
    subject; ``fields`` the names of the fields read or written; ``purpose`` the
    justification and ``legal_basis`` the recorded basis for the processing or
    disclosure; ``outcome`` allowed or denied. ``details`` holds further
    identifiers (never personal-data values). ``username`` names an account when
    there is no ``user`` (the name tried in a failed login).

    ``independent=True`` commits the event at once, on its own, so that it
    survives a rollback of the caller's transaction (denied access, failed login,
    a lookup whose answer the user has seen). Every ``DENIED`` outcome is written
    so, whatever the caller says (docs/adr/0015-lookups-leave-a-trace.md).
    """
    built = _build(**event)
    independent = independent or built.outcome == Outcome.DENIED
    using = _independent_alias() if independent else DEFAULT_DB_ALIAS
    _insert(built, using=using)
    _sealer.after_commit(using)
    return built


def record_refusal(**event: Any) -> AccessEvent:
    """A refused access: an ``ACCESS_DENIED`` event with the denied outcome, committed on
    its own so that it survives the rollback of the request that tried
    (docs/adr/0015-lookups-leave-a-trace.md). ``event``: its other keywords
    (who, what, the purpose, and in ``details`` the step refused and why)."""
    return record_event(
        action=Action.ACCESS_DENIED, outcome=Outcome.DENIED, independent=True, **event
    )


def record_events(*events: dict[str, Any]) -> list[AccessEvent]:
    """Append several events in one statement, in the caller's transaction: all of
    them or none. Each dict holds :func:`record_event`'s arguments (not
    ``independent``; a denial, which must outlive the caller's transaction, is refused
    here). A page that consults a case and discloses it writes both so."""
    built = [_build(**event) for event in events]
    if any(event.outcome == Outcome.DENIED for event in built):
        raise ValueError("a denied outcome is written with record_event, on its own")
    if built:
        _insert(*built, using=DEFAULT_DB_ALIAS)
        _sealer.after_commit(DEFAULT_DB_ALIAS)
    return built


def _build(**event: Any) -> AccessEvent:
    """The unsaved event of :func:`_values`'s keywords."""
    return _event_of(_values(**event))


def _event_of(values: dict[str, Any]) -> AccessEvent:
    """The unsaved event of :func:`_values`'s column values: positional, in the model's
    field order (the key unset), Model.__init__'s quick path without matching keywords
    to fields."""
    return AccessEvent(*(values.get(name) for name in _ATTNAMES))


def _values(
    *,
    action: str,
    user: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    person_id: uuid.UUID | str | None = None,
    fields: Iterable[str] = (),
    purpose: str = "",
    legal_basis: str = "",
    outcome: str = Outcome.ALLOWED,
    details: dict[str, Any] | None = None,
    username: str = "",
) -> dict[str, Any]:
    """An event's column values (by attribute name), checked and sanitised."""
    if action not in _ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in _OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    object_type, object_id = _describe(obj, object_type, object_id)
    request = context.current()
    if request.api_client:
        # Through the API: the organisation's system beside the person it acts for.
        details = {**(details or {}), "api_client": request.api_client}
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    values = {
        "occurred_at": timezone.now(),
        "user_id": user.pk if authenticated else None,
        "username": sanitize_text(
            user.get_username() if authenticated else username, max_length=150
        ),
        "organisation_name": (
            str(user.organisation)[:200] if authenticated and user.organisation_id else ""
        ),
        "roles": _roles(user) if authenticated else "",
        "action": action,
        "object_type": sanitize_text(object_type, max_length=100),
        "object_id": sanitize_text(object_id, max_length=64),
        "person_id": person_id,
        "fields": sorted({sanitize_text(name, max_length=100) for name in fields}),
        "purpose": sanitize_text(purpose),
        "legal_basis": sanitize_text(legal_basis, max_length=200),
        "outcome": outcome,
        "request_id": request.request_id,
        "client_address": request.client_address,
        "details": details or {},
    }
    return values


def record_denied_access(*, path: str, method: str, reason: str = "") -> AccessEvent:
    """A 403 answer of the site: who asked for which path, and why it was refused.

    Only the path is kept, never the query string (it may hold search terms
    with personal data).
    """
    return record_refusal(
        user=context.current().user,
        details={
            "path": sanitize_text(path, max_length=300),
            "method": sanitize_text(method, max_length=10),
            "reason": sanitize_text(reason, max_length=300),
        },
    )


# --- An event in the caller's own statement (docs/adr/0032-one-statement-transition.md) ---

_INSERT_SELECT = "INSERT INTO {table} ({columns}) SELECT ".format(
    table=AccessEvent._meta.db_table, columns=", ".join(_COLUMNS)
)
# json.dumps(value, ensure_ascii=False) with its encoder built once (json.dumps builds one
# per call when given an option).
_json_text = json.JSONEncoder(ensure_ascii=False).encode


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# Per column, in order: its placeholder, its NULL and how its value is passed (a choice
# as its plain text: the same literal).
_SELECT_CONVERT = {"fields": _json_text, "details": _json_text, "person_id": _as_uuid}
_SELECT_PLAN = tuple(
    (
        column,
        "%s" + _CASTS.get(column, ""),
        "NULL" + _CASTS.get(column, ""),
        str if column in {"action", "outcome"} else _SELECT_CONVERT.get(column),
    )
    for column in _COLUMNS
)


def event_insert(**event: Any) -> tuple[str, list, dict[str, Any]]:
    """One access-log event for a statement of the caller's that writes a change and its
    event together (a data-modifying CTE: the one-statement transition).

    Takes :func:`record_event`'s keywords (not ``independent``: a denied outcome, which
    must outlive the caller's transaction, is refused as in :func:`record_events`).
    Returns ``INSERT INTO audit_accessevent (<columns>) SELECT <values>`` (the caller may
    add a ``WHERE`` and a ``RETURNING id``), its parameters, and the event's column values
    (by attribute name), which the caller hands to :func:`event_written` with its id once
    the statement ran, in the same transaction. The table is named, so a partitioned log
    takes the row as well. No model instance is built: no caller read the one it
    returned before (docs/adr/0032, session 18)."""
    values = _values(**event)
    if values["outcome"] == Outcome.DENIED:
        raise ValueError("a denied outcome is written with record_event, on its own")
    placeholders = []
    params = []
    for column, placeholder, null, convert in _SELECT_PLAN:
        value = values.get(column)
        if value is None:
            # In the statement, not a parameter: the same text reaches the server (the
            # driver binds on the client), with fewer parameters for the driver to bind.
            placeholders.append(null)
            continue
        placeholders.append(placeholder)
        params.append(value if convert is None else convert(value))
    return _INSERT_SELECT + ", ".join(placeholders), params, values


def event_written(values: dict[str, Any], pk: int) -> None:
    """After the caller's statement wrote the event of ``values`` (:func:`event_insert`)
    with id ``pk``: its seal into the chain arranged for after the commit."""
    _sealer.after_commit(DEFAULT_DB_ALIAS)
