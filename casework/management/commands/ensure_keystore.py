"""Create the key-store database if it is missing (idempotent); run before migrating it."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connections

from casework.routers import KEYSTORE


def ensure_database(alias: str = KEYSTORE, *, name: str | None = None) -> bool:
    """Create database ``name`` (default: the alias's NAME) on the alias's server.

    Returns ``True`` if it was created, ``False`` if it already existed.
    """
    connection = connections[alias]
    name = name or connection.settings_dict["NAME"]
    # The maintenance connection Django itself uses to create test databases.
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone():
            return False
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
    return True


class Command(BaseCommand):
    help = "Skapar nyckeldatabasen (databasalias 'keystore') om den saknas."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--database", default=KEYSTORE)

    def handle(self, *args, database: str, **options):
        name = connections[database].settings_dict["NAME"]
        if ensure_database(database):
            self.stdout.write(self.style.SUCCESS(f"Nyckeldatabasen {name} skapad."))
        else:
            self.stdout.write(f"Nyckeldatabasen {name} finns redan.")
