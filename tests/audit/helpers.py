"""Helpers of the audit tests."""

from __future__ import annotations

import contextlib

from django.db import connection

from audit import integrity
from audit.models import AccessEvent, ChainBlock, ChainLink, ChangeRecord, PendingEntry

AUDIT_TABLES = ("audit_accessevent", "audit_changerecord", "audit_chainlink", "audit_chainblock")


@contextlib.contextmanager
def triggers_disabled(*tables: str):
    """What an attacker with the table owner's or a superuser's rights does first."""
    tables = tables or AUDIT_TABLES
    with connection.cursor() as cursor:
        # PostgreSQL alters no table with deferred checks pending in the transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall() if cursor.description else []


def swap_entry_ids(first: int, second: int) -> None:
    """Two access events trade ids (and so places in the chain), triggers off."""
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET id = -1 WHERE id = %s", [first])
        raw("UPDATE audit_accessevent SET id = %s WHERE id = %s", [first, second])
        raw("UPDATE audit_accessevent SET id = %s WHERE id = -1", [second])


def sealed_entries() -> list[tuple[int, str, int]]:
    """(position, source, entry id) of every entry in the chain, in chain order, whatever the
    format it was written in (a link each, or blocks of them)."""
    entries = list(ChainLink.objects.values_list("position", "source", "entry_id"))
    for first, source, ids in ChainBlock.objects.values_list(
        "first_position", "source", "entry_ids"
    ):
        entries.extend((first + index, source, entry_id) for index, entry_id in enumerate(ids))
    return sorted(entries)


def position_of(source: str, entry_id: int) -> int | None:
    """The entry's position in the chain (None while it is not sealed), in any format."""
    link = ChainLink.objects.filter(source=source, entry_id=entry_id).first()
    if link is not None:
        return link.position
    places = [
        first + ids.index(entry_id)
        for first, ids in ChainBlock.objects.filter(
            source=source, entry_ids__contains=[entry_id]
        ).values_list("first_position", "entry_ids")
    ]
    assert len(places) <= 1, "an entry sealed twice"
    return places[0] if places else None


def times_sealed(source: str, entry_id: int) -> int:
    return sum(1 for _, s, e in sealed_entries() if (s, e) == (source, entry_id))


def assert_one_verified_chain() -> None:
    """Sealed, the chain is one unbroken line of positions over every event and change
    record, nothing waits to be chained, and it verifies end to end."""
    integrity.seal()
    positions = [position for position, _, _ in sealed_entries()]
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) == AccessEvent.objects.count() + ChangeRecord.objects.count()
    assert not PendingEntry.objects.exists()
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert result.entries == len(positions)


def consultations(count: int, **fields) -> list[int]:
    """The ids of ``count`` consultation events recorded with ``fields``."""
    from audit.services import Action, record_event

    return [
        record_event(action=Action.CONSULT, object_type="casework.person", **fields).pk
        for _ in range(count)
    ]


def answers_of(monkeypatch, module, name: str) -> list:
    """What ``module.name`` answers from now on, call by call (it still answers)."""
    answers = []
    real = getattr(module, name)

    def spy(*args):
        answers.append(real(*args))
        return answers[-1]

    monkeypatch.setattr(module, name, spy)
    return answers
