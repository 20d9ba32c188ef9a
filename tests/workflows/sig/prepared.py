"""The transition engine's statement as the server runs it (docs/adr/0032, Session 17):
prepared once per database session, its first use sent as ``PREPARE <name> AS
<statement>; EXECUTE <name> (…)``, later uses as ``EXECUTE <name> (…)``."""

from __future__ import annotations

import re

from django.db import connection

_PREPARE = re.compile(r"\bPREPARE (samverkan_move_\w+) AS (.*?); EXECUTE \1\b", re.S)
_EXECUTE = re.compile(r"\bEXECUTE (samverkan_move_\w+)\b")
# What the server keeps of the query that prepared it: that query, or its PREPARE alone.
_PREPARED = re.compile(
    r"\bPREPARE samverkan_move_\w+ AS (.*?)(?:; EXECUTE samverkan_move_|\Z)", re.S
)


def name(sql: str) -> str | None:
    """The prepared statement a sent ``sql`` executes (``None``: not the engine's)."""
    found = _EXECUTE.search(sql)
    return found.group(1) if found else None


def prepares(sql: str) -> bool:
    """Whether the sent ``sql`` prepares the statement it executes (its first use)."""
    return _PREPARE.search(sql) is not None


def statement(sql: str) -> str | None:
    """The statement a sent ``sql`` runs: the text it prepares, or the text the session
    prepared under the name it executes (``pg_prepared_statements``)."""
    found = _PREPARE.search(sql)
    if found:
        return found.group(2)
    if name(sql) is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name = %s", [name(sql)])
        row = cursor.fetchone()
    assert row is not None, f"{name(sql)} is not prepared in this session"
    return _PREPARED.search(row[0]).group(1)


def on_server() -> set[str]:
    """The engine's statements prepared in this session, as the server knows them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'samverkan\\_move\\_%%'"
        )
        return {row[0] for row in cursor.fetchall()}
