"""The production privileges of README/ADR 0005: the application role cannot change the log."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from django.db import ProgrammingError, connection, transaction

from audit import integrity
from audit.services import Action, record_event

from .helpers import raw

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented_grants(role: str) -> list[str]:
    block = re.search(r"```sql\n(REVOKE ALL ON audit_.*?)```", README.read_text(), re.S)
    assert block, "README documents the privileges"
    return [
        statement.strip().replace("samverkan_app", role)
        for statement in block.group(1).split(";")
        if statement.strip()
    ]


@pytest.fixture
def app_role(db):
    """A role with exactly the documented privileges (rolled back with the test)."""
    role = f"audit_app_{uuid.uuid4().hex[:12]}"
    raw(f"CREATE ROLE {role} NOLOGIN")
    for statement in _documented_grants(role):
        raw(statement)
    raw(f"GRANT USAGE ON SCHEMA public TO {role}")
    record_event(action=Action.CONSULT, purpose="före")
    integrity.seal()
    return role


@pytest.mark.parametrize(
    "table", ["audit_accessevent", "audit_changerecord", "audit_chainlink", "audit_chainblock"]
)
@pytest.mark.parametrize(
    "statement",
    ["UPDATE {table} SET id = id", "DELETE FROM {table}", "TRUNCATE {table}"],
)
def test_the_application_role_is_refused_before_any_trigger(app_role, table, statement):
    if table in ("audit_chainlink", "audit_chainblock"):
        statement = statement.replace("id = id", "source = source")
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        raw(f"SET LOCAL ROLE {app_role}")
        raw(statement.format(table=table))


@pytest.mark.parametrize("seal_format", [2, 3])
def test_the_application_role_can_still_log_and_seal(app_role, monkeypatch, seal_format):
    monkeypatch.setattr(integrity.chain, "SEAL_FORMAT", seal_format)
    with transaction.atomic():
        raw(f"SET LOCAL ROLE {app_role}")
        record_event(action=Action.CONSULT, purpose="under rollen")
        assert integrity.seal() >= 1
        raw("RESET ROLE")
    assert connection.cursor  # the test transaction is intact


def test_the_application_role_cannot_write_the_sealing_queue(app_role):
    """Only the trigger (a SECURITY DEFINER function of the owner) queues entries."""
    entry = record_event(action=Action.CONSULT, purpose="kö")
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        raw(f"SET LOCAL ROLE {app_role}")
        raw(
            "INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)",
            [entry.pk + 1000],
        )
