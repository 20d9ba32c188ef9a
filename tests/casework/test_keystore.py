"""The key store: its own database, the router, the write order, ``ensure_keystore``."""

from __future__ import annotations

import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from casework import services
from casework.crypto import keystore
from casework.management.commands.ensure_keystore import ensure_database
from casework.models import DataKey, Organisation, Person
from casework.routers import KeystoreRouter
from tests.casework.conftest import ANNA, PURPOSE, persons_db

pytestmark = persons_db


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cursor.fetchall()}


def test_the_data_keys_live_only_in_the_key_store():
    default, keystore = _tables("default"), _tables("keystore")
    assert "casework_datakey" in keystore and "casework_datakey" not in default
    assert "casework_person" in default
    assert keystore - {"casework_datakey", "django_migrations"} == set()


def test_the_router():
    router = KeystoreRouter()
    assert router.db_for_read(DataKey) == router.db_for_write(DataKey) == "keystore"
    assert router.db_for_read(Person) is None
    assert router.allow_migrate("keystore", "casework", "datakey") is True
    assert router.allow_migrate("keystore", "casework", "person") is False
    assert router.allow_migrate("keystore", "auth", None) is False  # RunPython, SQL …
    assert router.allow_migrate("default", "casework", "datakey") is False
    assert router.allow_migrate("default", "casework", "person") is None
    assert router.allow_relation(DataKey(), Person()) is False
    assert router.allow_relation(Person(), Organisation()) is None


def test_the_data_key_is_stored_before_the_person_row(worker, monkeypatch):
    seen = []
    original_save = Person.save

    def save(self, *args, **kwargs):
        seen.append(DataKey.objects.filter(owner_id=self.pk).exists())
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(Person, "save", save)
    services.create_person(user=worker, purpose=PURPOSE, **ANNA)
    assert seen == [True]


def test_a_failed_registration_leaves_no_data_key(worker, monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services.persons, "record_event", crash)
    # create_person joins its caller's transaction (no savepoint of its own, ADR 0035):
    # the caller's transaction, here the atomic block, is what rolls the row back.
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_person(user=worker, purpose=PURPOSE, **ANNA)
    assert not Person.objects.exists()
    assert not DataKey.objects.exists()


def test_ensure_keystore_creates_the_database_once():
    name = f"test_keystore_{uuid.uuid4().hex[:12]}"
    try:
        assert ensure_database("keystore", name=name) is True
        assert ensure_database("keystore", name=name) is False
    finally:
        params = connections["keystore"].settings_dict
        conninfo = psycopg.conninfo.make_conninfo(
            dbname="postgres",
            host=params["HOST"] or None,
            port=params["PORT"] or None,
            user=params["USER"] or None,
            password=params["PASSWORD"] or None,
        )
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    out = StringIO()
    call_command("ensure_keystore", stdout=out)
    assert "finns redan" in out.getvalue()


def test_keys_of_several_owners_are_made_in_one_statement_or_not_at_all():
    person, case = uuid.uuid4(), uuid.uuid4()
    with CaptureQueriesContext(connections["keystore"]) as captured:
        made = keystore.create_keys([(keystore.PERSON, person), (keystore.CASE, case)])
    assert len(captured.captured_queries) == 1
    assert set(made) == {(keystore.PERSON, person), (keystore.CASE, case)}
    loaded = keystore.load_keys({keystore.PERSON: [person], keystore.CASE: [case]})
    assert loaded[keystore.PERSON][person].id == made[keystore.PERSON, person].id
    assert loaded[keystore.CASE][case].id == made[keystore.CASE, case].id
    # An owner with a key already: refused, and the other owner's key is not kept.
    other = uuid.uuid4()
    with pytest.raises(IntegrityError), transaction.atomic(using="keystore"):
        keystore.create_keys([(keystore.CASE, other), (keystore.PERSON, person)])
    assert not DataKey.objects.filter(owner_id=other).exists()


def test_a_spare_key_comes_with_the_first_key_and_an_untaken_one_is_destroyed():
    person = uuid.uuid4()
    with (
        CaptureQueriesContext(connections["keystore"]) as captured,
        keystore.spare_keys(keystore.CASE),
    ):
        keystore.create_data_key(owner_type=keystore.PERSON, owner_id=person)
        case, material = keystore.take_spare_key(keystore.CASE)
        assert keystore.take_spare_key(keystore.CASE) is None
    assert len(captured.captured_queries) == 1
    assert keystore.load_data_key(owner_type=keystore.CASE, owner_id=case).id == material.id

    # Not taken: destroyed at the end of the scope.
    with keystore.spare_keys(keystore.CASE):
        keystore.create_data_key(owner_type=keystore.PERSON, owner_id=uuid.uuid4())
        (spare,) = DataKey.objects.filter(owner_type=keystore.CASE).exclude(owner_id=case)
    assert not DataKey.objects.filter(pk=spare.pk).exists()

    # Asked for before any key is made (a registered person): none is made later.
    with keystore.spare_keys(keystore.CASE):
        assert keystore.take_spare_key(keystore.CASE) is None
        keystore.create_data_key(owner_type=keystore.PERSON, owner_id=uuid.uuid4())
    assert DataKey.objects.filter(owner_type=keystore.CASE).count() == 1
