"""``flush`` that can empty a *test* database despite the append-only audit tables.

Django's ``TransactionTestCase`` (pytest's ``transaction=True``) empties the
database after each test with ``flush``, which TRUNCATEs every table — and the
audit tables refuse TRUNCATE. For a database whose name carries Django's test
prefix, and only for a superuser connection, this command runs the TRUNCATE
with ``session_replication_role = replica``, under which PostgreSQL fires no
ordinary triggers (the setting is reserved to superusers). On any other
database ``flush`` behaves as Django's does and fails on the audit tables: the
log of a real database is never emptied by a management command.
"""

from __future__ import annotations

from django.core.management.commands import flush
from django.db import connections
from django.db.backends.base.creation import TEST_DATABASE_PREFIX


def _truncate_without_triggers(execute, sql, params, many, context):
    if isinstance(sql, str) and sql.lstrip().upper().startswith("TRUNCATE"):
        context["cursor"].execute("SET LOCAL session_replication_role = replica")
    return execute(sql, params, many, context)


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        if not str(connection.settings_dict["NAME"]).startswith(TEST_DATABASE_PREFIX):
            return super().handle(**options)
        with connection.execute_wrapper(_truncate_without_triggers):
            return super().handle(**options)
