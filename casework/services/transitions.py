"""The transition engine: how every versioned object is changed, written once.

A versioned object is a model instance with a django-fsm state field and a ``version``
column: a programme case, and GVI's groups, members, call-ins, notifications and
sanction levers. Each such model is described once (:class:`Versioned`, given to
:func:`register` by the module that owns its services): where its timeline entries go,
whose personal data it holds, how access to it is checked and what a refusal says.
With that description the engine

* locks the row and checks the version the user saw (:func:`lock`; a stale form
  raises :class:`Conflict`) and raises the version (:func:`bump`);
* answers django-fsm's questions (:func:`unmet_conditions`, :func:`may_transition`);
* runs a transition (:func:`transition`): access, state, the user's role, the guards;
  then the row lock and version check, the change, the timeline entry and one
  ``TRANSITION`` access-log event, in one transaction and, for a model that describes
  its timeline row (``timeline_row``), in one statement (docs/adr/0032), sent without
  a transaction of its own when the caller has none;
* records a change that is not a transition (:func:`record_change`: version, timeline
  entry, access-log event);
* refuses with a logged denial (:func:`deny`, :func:`refuse`; the error is
  :class:`Denied`) and numbers new objects (:func:`next_reference`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition

from audit.services import Action as AuditAction
from audit.services import event_insert, event_written, record_event, record_refusal
from casework.selectors.persons import PersonErased, require_purpose
from casework.services import statements

# Advisory-lock namespace of :func:`next_reference` (``pg_advisory_xact_lock(key, hash)``).
REFERENCE_LOCK = 0x5A5F
WRONG_STATE = _("This cannot be done in the current state.")


class Denied(Exception):
    """The user may not do this (the refusal is already in the access log)."""

    message: Any = _("You may not do this.")

    def __init__(self, message: Any = None) -> None:
        self.message = message or type(self).message
        super().__init__(str(self.message))


class Conflict(Exception):
    """The object changed after the user loaded it: nothing was saved."""

    message: Any = _("This was changed by someone else. Reload the page and try again.")

    def __init__(self) -> None:
        super().__init__(str(self.message))


@dataclass(frozen=True)
class Effects:
    """What follows a transition's change, in its transaction (``Versioned.effects``).

    * ``probe``: an SQL condition (and its parameters) evaluated in the statement that
      writes the change, so that a follow-up that is rarely needed costs no round trip
      to rule out (are any webhooks subscribed?);
    * ``moved(probed)``: runs once the change is written, with the probe's answer
      (``True`` without a probe);
    * ``details()``: asked once the transition method has run; returns the work
      (a callable, run before the record) whose outcome the ``TRANSITION`` event names
      as further details, or ``None`` when there is none (then the change, the timeline
      entry and the event are written in one statement).
    """

    probe: tuple[str, Sequence[Any]] | None = None
    moved: Callable[[bool], None] | None = None
    details: Callable[[], Callable[[], dict] | None] | None = None


@dataclass(frozen=True)
class Versioned:
    """One kind of versioned object, as the engine needs to know it.

    ``model`` holds the ``version`` column (its subclasses share the description: a
    programme case extends ``Case``). The callables take keyword arguments:

    * ``timeline(obj=, user=, name=, source=, target=, reason=)`` writes one entry of the
      object's timeline (``reason``: a text to seal, or ``None``);
    * ``person(obj)`` is whose personal data the object holds (the access log's
      ``person_id``; ``None``: no one's);
    * ``check_access(user=, obj=, purpose=, what=)`` raises :class:`Denied` (logged)
      when the user may not act on the object at all;
    * ``denied()`` is the error a refusal raises;
    * ``effects(obj)``, called before a transition, returns its :class:`Effects`;
    * ``timeline_row(obj=, user=, name=, source=, target=, reason=)``, optional, builds
      the unsaved timeline entry (a model instance, its reason sealed) that ``timeline``
      would save: with it a transition is one statement (:func:`transition`).

    ``operation`` is a transition's operation in the access log, formatted with the
    transition's ``name`` and the object's ``model`` name; ``wrong_state`` the message
    when the transition does not leave the current state.
    """

    model: type[models.Model]
    timeline: Callable[..., Any]
    person: Callable[[Any], Any]
    check_access: Callable[..., Any]
    denied: Callable[[], Denied]
    operation: str
    conflict: type[Conflict] = Conflict
    wrong_state: Any = WRONG_STATE
    effects: Callable[[Any], Effects] | None = None
    timeline_row: Callable[..., models.Model] | None = None


_described: dict[type[models.Model], Versioned] = {}


def register(*descriptions: Versioned) -> None:
    """Describe versioned models to the engine (once each; the latest wins)."""
    for description in descriptions:
        _described[description.model] = description


def described(obj: models.Model) -> Versioned:
    """The description of ``obj``'s model (or of the model it extends)."""
    for klass in type(obj).__mro__:
        found = _described.get(klass)
        if found is not None:
            return found
    raise LookupError(f"{type(obj).__name__} is not a registered versioned model")


def _person(obj: models.Model | None):
    if obj is None:
        return None
    for klass in type(obj).__mro__:
        if klass in _described:
            return _described[klass].person(obj)
    return None  # an object that is not versioned (a GVI incident) names no person


# --- Refusals, row lock and version ---------------------------------------------------------


def refuse(
    *, user, purpose: str, what: str, reason: str, obj=None, person_id=None, object_type=""
) -> None:
    """Write the ``ACCESS_DENIED`` event of a refusal; it survives the caller's rollback."""
    record_refusal(
        user=user,
        obj=obj,
        object_type=object_type,
        person_id=person_id,
        purpose=purpose,
        details={"operation": what, "reason": reason},
    )


def deny(*, user, obj: models.Model, purpose: str, what: str, reason: str) -> Denied:
    """Log the refusal of ``what`` on ``obj`` and return the error to raise."""
    description = described(obj)
    refuse(
        user=user,
        obj=obj,
        person_id=description.person(obj),
        purpose=purpose,
        what=what,
        reason=reason,
    )
    return description.denied()


def lock(obj: models.Model, expected_version: int | None) -> models.Model:
    """Lock the object's row for this transaction and check the version the user saw."""
    description = described(obj)
    current = description.model.objects.select_for_update().only("version").get(pk=obj.pk)
    if expected_version is not None and current.version != expected_version:
        raise description.conflict()
    obj.version = current.version
    return current


def bump(obj: models.Model) -> None:
    """The object's next version (its row is locked by the caller)."""
    described(obj).model.objects.filter(pk=obj.pk).update(version=models.F("version") + 1)
    obj.version += 1


# --- Timeline and access log ----------------------------------------------------------------


def timeline(*, obj: models.Model, user, name: str, **fields: Any):
    """One entry of the object's timeline (``source``, ``target``, ``reason`` optional)."""
    return described(obj).timeline(obj=obj, user=user, name=name, **fields)


def audit(
    *, action: str, user, obj: models.Model, purpose: str, fields: Iterable[str] = (), **details
) -> None:
    """The access-log event of a write to ``obj`` (field names only)."""
    record_event(
        action=action,
        user=user,
        obj=obj,
        person_id=_person(obj),
        fields=fields,
        purpose=purpose,
        details=details,
    )


def audit_created(obj: models.Model, *, user, purpose: str, **details: Any) -> None:
    """The ``CREATE`` event of the new ``obj`` (:func:`audit`)."""
    audit(action=AuditAction.CREATE, user=user, obj=obj, purpose=purpose, **details)


def record_change(
    *,
    obj: models.Model,
    user,
    purpose: str,
    name: str,
    fields: Iterable[str] = (),
    action: str = AuditAction.CHANGE,
    target: str = "",
    **details: Any,
) -> None:
    """A change that is not a transition, in the caller's transaction (the row locked):
    the new version, the timeline entry (``target``: the state it shows the object in,
    if any) and the access-log event."""
    bump(obj)
    timeline(obj=obj, user=user, name=name, target=target)
    audit(action=action, user=user, obj=obj, purpose=purpose, fields=fields, **details)


def next_reference(model: type[models.Model], prefix: str) -> str:
    """``<prefix>-2026-0001``: per prefix and year, serialised by an advisory lock held
    to the end of the caller's transaction.

    The lock and the look-up of the last number go in one round trip as two statements:
    the look-up's snapshot is taken after the lock is granted, so it sees the number a
    transaction that held the lock before has committed."""
    full = f"{prefix}-{timezone.localdate().year}-"
    table = connection.ops.quote_name(model._meta.db_table)
    pattern = full.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s)); "  # noqa: S608 - a model's table
            f"SELECT reference FROM {table} WHERE reference::text LIKE %s "
            "ORDER BY reference DESC LIMIT 1",
            [REFERENCE_LOCK, prefix, pattern],
        )
        cursor.nextset()
        row = cursor.fetchone()
    number = int(row[0].rsplit("-", 1)[1]) + 1 if row else 1
    return f"{full}{number:04d}"


# --- Transitions ----------------------------------------------------------------------------


def _fsm_meta(obj: models.Model, name: str):
    meta = getattr(getattr(type(obj), name, None), "_django_fsm", None)
    if meta is None:
        raise ValueError(f"{type(obj).__name__}.{name} is not a transition")
    return meta


def sole_transition(obj: models.Model, name: str):
    """Transition ``name`` of ``obj``'s model, which leaves one state only: its ``source``,
    ``target`` and ``custom`` (the ``label``)."""
    (found,) = _fsm_meta(obj, name).transitions.values()
    return found


def _holds(condition, obj: models.Model) -> bool:
    """A guard's answer; a guard that needs an erased person's data does not hold."""
    try:
        return bool(condition(obj))
    except PersonErased:
        return False


def unmet_conditions(obj: models.Model, name: str) -> list[str]:
    """The messages of the guards of transition ``name`` that do not hold now."""
    meta = _fsm_meta(obj, name)
    found = meta.get_transition(meta.field.get_state(obj))
    if found is None:
        return [str(described(obj).wrong_state)]
    return [
        str(getattr(condition, "message", condition.__name__))
        for condition in found.conditions
        if not _holds(condition, obj)
    ]


def may_transition(*, user, obj: models.Model, name: str) -> bool:
    """Whether ``user`` holds the role for transition ``name`` from the current state."""
    meta = _fsm_meta(obj, name)
    state = meta.field.get_state(obj)
    return meta.has_transition(state) and meta.has_transition_perm(obj, state, user)


def transition(
    *,
    user,
    obj: models.Model,
    name: str,
    purpose: str,
    timeline_reason: str | None = None,
    expected_version: int | None = None,
    **kwargs: Any,
) -> models.Model:
    """Run transition ``name`` of ``obj``: the one way a versioned object changes state.

    Checks, in order: access to the object, that the transition leaves the current
    state, the user's role for it (django-fsm ``permission``, which django-fsm itself
    does not enforce), the guards (``conditions``, each with a message), the row lock
    and version. Then runs it (``kwargs`` go to the transition method), saves, adds the
    timeline entry (with ``timeline_reason``, already cleaned: a case's sealed reason)
    and writes one ``TRANSITION`` event, all or nothing: in one transaction (a savepoint
    of the caller's), or, outside any transaction, in one statement sent alone where
    that is all it takes (:func:`_transition_in_statements`).
    """
    purpose = require_purpose(purpose)
    description = described(obj)
    what = description.operation.format(name=name, model=obj._meta.model_name)
    description.check_access(user=user, obj=obj, purpose=purpose, what=what)
    meta = _fsm_meta(obj, name)
    source = meta.field.get_state(obj)
    if not meta.has_transition(source):
        raise ValidationError(description.wrong_state, code="invalid_state")
    if not meta.has_transition_perm(obj, source, user):
        raise deny(user=user, obj=obj, purpose=purpose, what=what, reason="role")
    unmet = unmet_conditions(obj, name)
    if unmet:
        raise ValidationError([ValidationError(message, code="condition") for message in unmet])
    effects = description.effects(obj) if description.effects is not None else Effects()
    try:
        if description.timeline_row is not None:
            _transition_in_statements(
                obj, description, meta, name, source, effects, expected_version, kwargs,
                user=user, purpose=purpose, reason=timeline_reason,
            )  # fmt: skip
            return obj
        with transaction.atomic():
            lock(obj, expected_version)
            getattr(obj, name)(**kwargs)
            # The row is locked: the new version goes out with the save (no second UPDATE).
            obj.version += 1
            obj.save()
            if effects.moved is not None:
                effects.moved(True)
            work = effects.details() if effects.details is not None else None
            details = work() if work is not None else {}
            target = meta.field.get_state(obj)
            description.timeline(
                obj=obj,
                user=user,
                name=name,
                source=source,
                target=target,
                reason=timeline_reason,
            )
            audit(
                action=AuditAction.TRANSITION,
                user=user,
                obj=obj,
                purpose=purpose,
                fields=["reason"] if timeline_reason else [],
                transition=name,
                source=source,
                target=target,
                **details,
            )
    except ConcurrentTransition:
        obj.refresh_from_db()
        raise description.conflict() from None
    except Conflict:
        obj.refresh_from_db()
        raise
    return obj


# --- A transition in one statement (docs/adr/0032-one-statement-transition.md) --------------


def _transition_in_statements(
    obj, description: Versioned, meta, name, source, effects: Effects, expected_version, kwargs,
    *, user, purpose: str, reason: str | None,
) -> None:  # fmt: skip
    """The change, the timeline entry and the ``TRANSITION`` event of :func:`transition`:
    one statement (:func:`_move`) that locks the row by updating it, checks the version
    and the state the object was loaded in, writes the object's tables, the timeline row
    and the event row, and evaluates the effects' probe. When the effects have work
    whose outcome the event names (a close ends the team), the two rows follow that work
    in a second statement.

    Inside the caller's transaction the writes join it (in a savepoint). Outside any
    transaction (autocommit) a transition that is one statement is sent alone: a single
    statement is atomic by itself, so it needs no ``BEGIN`` and ``COMMIT`` of its own
    (one round trip instead of three). Its first ``UPDATE`` then waits for the probe to
    be false: when it is true (a webhook is subscribed) nothing is written, and the
    transition is written again in a transaction, with its deliveries (the outbox
    commits with the change). A transition with work between its statements (a close)
    takes a transaction as well. Hooks registered with ``transaction.on_commit`` (the
    sealer's wake-up) run after the commit either way: without a transaction, Django
    runs them at once, after the statement has committed."""
    alone = _autocommit()
    with contextlib.nullcontext() if alone else transaction.atomic():
        _transition_written(
            obj, description, meta, name, source, effects, expected_version, kwargs,
            user=user, purpose=purpose, reason=reason, alone=alone,
        )  # fmt: skip


def _autocommit() -> bool:
    """Whether the default connection is outside any transaction (each statement commits
    by itself)."""
    db = connections[DEFAULT_DB_ALIAS]
    return not db.in_atomic_block and db.get_autocommit()


def _own_transaction(alone: bool):
    """A transaction of the writes' own when outside any (``alone``); else the caller's
    (already a savepoint of :func:`_transition_in_statements`)."""
    return transaction.atomic() if alone else contextlib.nullcontext()


def _transition_written(
    obj, description: Versioned, meta, name, source, effects: Effects, expected_version, kwargs,
    *, user, purpose: str, reason: str | None, alone: bool,
) -> None:  # fmt: skip
    """:func:`_transition_in_statements`'s work: the transition method in memory, then the
    statements. ``alone``: outside any transaction (the one statement is sent by itself
    when it can be; otherwise the writes open a transaction of their own)."""
    getattr(obj, name)(**kwargs)  # in memory: the statement writes its outcome
    target = meta.field.get_state(obj)
    entry = description.timeline_row(
        obj=obj, user=user, name=name, source=source, target=target, reason=reason
    )

    def rows(**details: Any) -> tuple[list[tuple[str, list]], Any]:
        """The timeline row and the event row (the event ``None`` when the log's writer
        gives no row: the benchmark's transition without the log)."""
        record = event_insert(
            action=AuditAction.TRANSITION,
            user=user,
            obj=obj,
            person_id=description.person(obj),
            fields=["reason"] if reason else [],
            purpose=purpose,
            details={"transition": name, "source": source, "target": target, **details},
        )
        if record is None:
            return [statements.row_insert(entry)], None
        sql, values, event = record
        return [statements.row_insert(entry), (sql, values)], event

    def written(event, ids) -> None:
        entry._state.adding = False
        entry._state.db = connection.alias
        if event is not None:
            event_written(event, ids[1])

    work = effects.details() if effects.details is not None else None
    if work is None:
        statement, event = rows()
        if alone:
            answer = _move(
                obj, description, expected_version, rows=statement, probe=effects.probe,
                unless_probed=True,
            )  # fmt: skip
            if answer is not None:  # written and committed, in one round trip
                probed, ids = answer
                if effects.moved is not None:
                    effects.moved(probed)
                written(event, ids)
                return
            # The probe held (a webhook is subscribed): nothing was written.
        with _own_transaction(alone):
            probed, ids = _move(
                obj, description, expected_version, rows=statement, probe=effects.probe
            )
            if effects.moved is not None:
                effects.moved(probed)
            written(event, ids)
        return
    with _own_transaction(alone):
        probed, _none = _move(obj, description, expected_version, rows=[], probe=effects.probe)
        if effects.moved is not None:
            effects.moved(probed)
        statement, event = rows(**work())
        written(event, statements.insert_rows(statement))


def bump_with_rows(obj: models.Model, rows: list[tuple[str, list]]) -> list:
    """:func:`bump` and the rows' INSERTs (:func:`statements.insert_rows`) in one statement: a
    change's new version, timeline entry and access-log event (its row locked by the
    caller). Returns each row's ``id``."""
    version_field = described(obj).model._meta.get_field("version")
    table = version_field.model._meta
    column = statements.quote(version_field.column)
    bumped = (
        f"bumped AS (UPDATE {statements.quote(table.db_table)} SET {column} = {column} + 1"  # noqa: S608
        f" WHERE {statements.quote(table.pk.column)} = %s RETURNING {column} AS version)"
    )
    version, *ids = statements.insert_rows(
        rows, before=(bumped, [obj.pk]), select="(SELECT version FROM bumped)"
    )
    obj.version = version
    return ids


def _move(obj, description: Versioned, expected_version, **writes) -> tuple[bool, list] | None:
    """:func:`statements.move` of ``obj`` (``writes``: its rows, probe and
    ``unless_probed``), which raises the description's conflict when nothing was written."""
    version_field = description.model._meta.get_field("version")
    return statements.move(
        obj, version_field, expected_version, conflict=description.conflict, **writes
    )
