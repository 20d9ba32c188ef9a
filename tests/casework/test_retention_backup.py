"""A backup taken before a cull: restored, the culled case is unreadable, the person's
other case still reads (docs/adr/0024-retention.md).

Both databases (the main one and the key store) are dumped with ``pg_dump``, ``cull``
runs, and the main database's dump from before the cull is restored with ``psql`` into a
fresh database. Read with the current key store — the one the installation runs with
after the cull — the culled case's texts cannot be opened: its data key is gone. The
same person's other case, not culled, opens from the same restored dump. The key
store's own dump from before the cull still holds the case's key: key-store backups
are kept no longer than the cull's daily interval (ADR 0024, "Backups").

This needs case texts sealed under a data key per case (docs/adr/0023): under the
person's one key the culled case would still open while the person has another case.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import psycopg
import pytest
from django.db import connections
from django.utils import timezone
from psycopg import sql

from casework.crypto import envelope
from casework.crypto.errors import CryptoError
from casework.crypto.records import open_value
from casework.models import Case, DataKey
from casework.selectors.case_keys import case_key
from casework.services.retention import cull
from tests.casework.test_retention import DUE_DAY, person_born
from tests.conftest import COMMITTED_DB
from tests.workflows.sig.factories import REASON, sig_case
from workflows.sig.models import SigCase

pytestmark = COMMITTED_DB


def _params(alias: str) -> dict:
    settings = connections[alias].settings_dict
    return {
        "host": settings["HOST"] or "127.0.0.1",
        "port": str(settings["PORT"] or 5432),
        "user": settings["USER"] or "postgres",
        "dbname": settings["NAME"],
        "password": settings["PASSWORD"] or "",
    }


def _env(params: dict) -> dict:
    import os

    return {**os.environ, "PGPASSWORD": params["password"]}


def _client(program: str, params: dict, *args: str, **run) -> subprocess.CompletedProcess:
    """Run the PostgreSQL client ``program`` against the server of ``params`` as its user."""
    server = ["-h", params["host"], "-p", params["port"], "-U", params["user"]]
    return subprocess.run(  # noqa: S603 - fixed programs, our own test databases
        [shutil.which(program), *server, *args],
        check=True,
        capture_output=True,
        env=_env(params),
        **run,
    )


def pg_dump(alias: str) -> bytes:
    params = _params(alias)
    return _client("pg_dump", params, "--no-owner", "--no-privileges", params["dbname"]).stdout


@pytest.fixture
def fresh_database():
    params = _params("default")
    name = f"test_restore_{uuid.uuid4().hex[:12]}"
    conninfo = psycopg.conninfo.make_conninfo(
        dbname="postgres",
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"] or None,
    )
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield {**params, "dbname": name}
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def restore(dump: bytes, params: dict) -> None:
    _client("psql", params, "-q", "-v", "ON_ERROR_STOP=1", "-d", params["dbname"], input=dump)


def restored_case(params: dict, case_id) -> SigCase:
    """The SIG case as the restored dump holds it (its person and sealed texts)."""
    conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})
    field = SigCase._meta.get_field("referral_reason")
    with psycopg.connect(conninfo) as restored:
        row = restored.execute(
            sql.SQL(
                "SELECT c.person_id, c.keyed_at, s.{} FROM {} s JOIN {} c ON c.id = s.{} "
                "WHERE c.id = %s"
            ).format(
                sql.Identifier(field.column),
                sql.Identifier(SigCase._meta.db_table),
                sql.Identifier(Case._meta.db_table),
                sql.Identifier(SigCase._meta.pk.column),
            ),
            [case_id],
        ).fetchone()
    return SigCase(
        pk=case_id, person_id=row[0], keyed_at=row[1], referral_reason=envelope.Sealed(row[2])
    )


def test_a_backup_from_before_the_cull_does_not_bring_the_culled_case_back(demo, fresh_database):
    person = person_born(demo)
    old = sig_case(demo, person=person)
    Case.objects.filter(pk=old.pk).update(closed_at=timezone.now())
    other = sig_case(demo, person=person)  # open: kept, and so is the person

    main_dump, keystore_dump = pg_dump("default"), pg_dump("keystore")  # the nightly backup
    assert old.reference.encode() in main_dump
    result = cull(today=DUE_DAY)
    assert [due.case_id for due in result.culled] == [old.pk]
    assert result.persons_erased == 0

    restore(main_dump, fresh_database)
    culled = restored_case(fresh_database, old.pk)
    kept = restored_case(fresh_database, other.pk)
    assert culled.referral_reason is not None  # the ciphertext is in the backup ...
    # ... but no key of the current key store opens it.
    assert case_key(culled) is None
    for row in DataKey.objects.all():
        with pytest.raises(CryptoError):
            open_value(culled, "referral_reason", reading_key_of(row))
    # The person's other case opens from the same restored dump.
    assert open_value(kept, "referral_reason", case_key(kept)) == REASON
    # The key store's dump from before the cull still holds the culled case's key.
    assert str(old.pk).encode() in keystore_dump


def reading_key_of(row: DataKey):
    from casework.crypto.keystore import load_data_key

    return load_data_key(owner_type=row.owner_type, owner_id=row.owner_id)
