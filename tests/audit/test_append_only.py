"""The audit tables refuse UPDATE, DELETE and TRUNCATE at the database — raw SQL and ORM."""

from __future__ import annotations

import pytest
from django.db import ProgrammingError, connection, transaction

from audit import integrity
from audit.models import AccessEvent, ChainBlock, ChainLink, ChangeRecord
from audit.services import Action, record_event
from casework.models import Organisation

from .helpers import raw


@pytest.fixture
def entries(db):
    Organisation.objects.create(name="Testskolan", kind=Organisation.Kind.SCHOOL)
    # One entry as a link of format 2 (the table of links has a row to protect), then the
    # rest in the format the sealer writes (blocks).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(integrity.chain, "SEAL_FORMAT", integrity.chain.FORMAT_LINES)
        record_event(action=Action.CONSULT, purpose="kontroll", details={"a": 1})
        integrity.seal()
    record_event(action=Action.CONSULT, purpose="kontroll", details={"a": 2})
    integrity.seal()


TABLES = ["audit_accessevent", "audit_changerecord", "audit_chainlink", "audit_chainblock"]


def _refused(sql: str) -> str:
    with pytest.raises(ProgrammingError) as raised, transaction.atomic():
        # Fire the deferred foreign-key checks of this test's transaction first:
        # PostgreSQL refuses TRUNCATE of a table with pending trigger events.
        raw("SET CONSTRAINTS ALL IMMEDIATE")
        raw(sql)
    return str(raised.value)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("UPDATE {table} SET {column} = {column}", "UPDATE"),
        ("DELETE FROM {table}", "DELETE"),
        ("TRUNCATE {table} CASCADE", "TRUNCATE"),
    ],
)
def test_raw_sql_cannot_change_or_remove_entries(entries, table, statement, operation):
    column = {"audit_chainlink": "position", "audit_chainblock": "source"}.get(table, "id")
    message = _refused(statement.format(table=table, column=column))
    assert f"audit table {table} is append-only: {operation} is not allowed" in message
    assert raw(f"SELECT count(*) FROM {table}")[0][0] >= 1  # noqa: S608


@pytest.mark.parametrize(
    ("model", "column"),
    [
        (AccessEvent, "purpose"),
        (ChangeRecord, "row_id"),
        (ChainLink, "entry_hash"),
        (ChainBlock, "chain_hash"),
    ],
)
def test_the_orm_cannot_change_or_remove_entries(entries, model, column):
    entry = model.objects.first()
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        model.objects.all().update(**{column: "x"})
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        model.objects.filter(pk=entry.pk).delete()
    if model is AccessEvent:
        entry.purpose = "ändrad i efterhand"
        with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
            entry.save()
        with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
            AccessEvent.objects.bulk_update([entry], ["purpose"])
    assert model.objects.filter(pk=entry.pk).exists()


def test_the_triggers_are_installed_by_migrations(db):
    rows = raw(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND t.tgname LIKE 'audit_%%' ORDER BY 1, 2"
    )
    for table in TABLES:
        assert (table, "audit_append_only") in rows
        assert (table, "audit_append_only_truncate") in rows
    assert ("audit_accessevent", "audit_enqueue") in rows
    assert ("audit_changerecord", "audit_enqueue") in rows


def test_flush_empties_a_test_database_but_refuses_any_other(entries, monkeypatch):
    """Our ``flush`` lifts the triggers only for Django's test databases."""
    from django.core.management import CommandError, call_command, get_commands

    assert get_commands()["flush"] == "audit"
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    monkeypatch.setitem(connection.settings_dict, "NAME", "samverkan")
    with pytest.raises(CommandError, match="couldn't be flushed"):
        call_command("flush", interactive=False, verbosity=0)
    assert AccessEvent.objects.exists()
    monkeypatch.undo()
    assert connection.settings_dict["NAME"].startswith("test_")
    call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True)
    assert not AccessEvent.objects.exists()
    assert not ChainLink.objects.exists()
    assert not ChainBlock.objects.exists()
