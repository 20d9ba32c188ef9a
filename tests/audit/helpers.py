"""Helpers of the audit tests."""

from __future__ import annotations

import contextlib

from django.db import connection

AUDIT_TABLES = ("audit_accessevent", "audit_changerecord", "audit_chainlink")


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
