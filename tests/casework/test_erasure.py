"""Erasure by crypto-shredding: in the database, after an interruption, and in old backups."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from psycopg import sql

from audit.models import AccessEvent
from casework import selectors, services
from casework.crypto import envelope
from casework.crypto.errors import DataKeyMissing, DecryptionError
from casework.crypto.keystore import PERSON, create_data_key, load_data_key
from casework.crypto.records import open_value
from casework.models import DataKey, Person
from tests.casework.conftest import ANNA, BERTIL, PURPOSE, persons_db

pytestmark = persons_db
ERASE_PURPOSE = "Begäran om radering enligt art. 17"


def _erase(person, **kwargs):
    return services.erase_person(user=None, purpose=ERASE_PURPOSE, person_id=person.pk, **kwargs)


def test_erasure_destroys_the_key_and_keeps_the_statistics(worker, make_person):
    anna, bertil = make_person(), make_person(BERTIL)
    before = Person.objects.get(pk=anna.pk)
    _erase(anna)
    erased = Person.objects.get(pk=anna.pk)
    assert erased.erased_at is not None
    assert not DataKey.objects.filter(owner_id=anna.pk).exists()
    assert all(getattr(erased, name) is None for name in Person.ENCRYPTED_FIELDS)
    assert erased.personnummer_index is None
    assert (erased.birth_year, erased.gender, erased.area, erased.protected_identity) == (
        before.birth_year,
        before.gender,
        before.area,
        before.protected_identity,
    )
    # What the database held before the erasure can no longer be opened.
    with pytest.raises(DataKeyMissing, match="erase_person"):
        load_data_key(owner_type=PERSON, owner_id=anna.pk)
    # The other person is untouched.
    assert (
        selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=bertil.pk).name
        == (BERTIL["name"])
    )
    event = AccessEvent.objects.get(action="erase")
    assert event.person_id == anna.pk and event.user is None
    assert event.purpose == ERASE_PURPOSE
    assert set(event.fields) == {*Person.ENCRYPTED_FIELDS, "personnummer_index"}
    assert event.details == {"data_key_destroyed": True, "case_keys_destroyed": 0}


def test_no_remaining_key_opens_an_erased_persons_data(make_person):
    anna = Person.objects.get(pk=make_person().pk)
    for data in ({**BERTIL}, {**BERTIL, "personnummer": "890102-3286"}):
        make_person(data, name="Annan Person")
    _erase(anna)
    for row in DataKey.objects.all():
        dek = load_data_key(owner_type=row.owner_type, owner_id=row.owner_id)
        with pytest.raises(DecryptionError):
            open_value(anna, "name", dek)


def test_erasing_again_is_a_no_op(make_person):
    anna = make_person()
    first = _erase(anna).erased_at
    assert _erase(anna).erased_at == first
    assert AccessEvent.objects.filter(action="erase").count() == 1


def test_an_interrupted_erasure_is_completed_by_running_it_again(worker, make_person, monkeypatch):
    anna = make_person()

    def crash(*events, **kwargs):
        raise RuntimeError("the process died")

    monkeypatch.setattr(services.persons, "record_events", crash)
    with pytest.raises(RuntimeError):
        _erase(anna)
    monkeypatch.undo()
    # The key went first: the data is unreadable although the row is not marked yet.
    assert Person.objects.get(pk=anna.pk).erased_at is None
    with pytest.raises(DataKeyMissing, match="erase_person"):
        selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=anna.pk)
    erased = _erase(anna)
    assert erased.erased_at is not None
    assert AccessEvent.objects.get(action="erase").details == {
        "data_key_destroyed": False,
        "case_keys_destroyed": 0,
    }


def test_erase_person_command(make_person):
    anna = make_person()
    out = StringIO()
    call_command("erase_person", str(anna.pk), "--reason", ERASE_PURPOSE, stdout=out)
    assert "raderad" in out.getvalue()
    assert Person.objects.get(pk=anna.pk).erased_at is not None
    out = StringIO()
    call_command("erase_person", str(anna.pk), "--reason", ERASE_PURPOSE, stdout=out)
    assert "redan raderad" in out.getvalue()
    with pytest.raises(CommandError, match="Ingen person"):
        call_command("erase_person", str(uuid.uuid4()), "--reason", "x", stdout=StringIO())
    with pytest.raises(CommandError, match="--reason"):
        call_command("erase_person", str(anna.pk))


def test_orphan_data_keys_are_swept_after_a_grace_period(make_person):
    anna = make_person()
    old_orphan, new_orphan = uuid.uuid4(), uuid.uuid4()
    create_data_key(owner_type=PERSON, owner_id=old_orphan)
    create_data_key(owner_type=PERSON, owner_id=new_orphan)
    DataKey.objects.filter(owner_id__in=[old_orphan, anna.pk]).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    deleted = services.sweep_orphan_data_keys(purpose="Städning", grace=timedelta(hours=1))
    assert deleted == 1
    assert set(DataKey.objects.values_list("owner_id", flat=True)) == {anna.pk, new_orphan}
    out = StringIO()
    call_command("keys", "sweep", "--grace-hours", "0", stdout=out)
    assert out.getvalue().startswith("1 ")
    assert list(DataKey.objects.values_list("owner_id", flat=True)) == [anna.pk]


# --- A backup taken before the erasure ---------------------------------------------------


def _conninfo(dbname: str) -> str:
    params = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=dbname,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
    )


def _copy_out(table: str) -> bytes:
    with connection.cursor() as cursor:
        statement = sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))
        with cursor.cursor.copy(statement) as copy:
            return b"".join(bytes(chunk) for chunk in copy)


def _person_table_sql() -> list[str]:
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        editor.create_model(Person)
    return editor.collected_sql


@pytest.fixture
def fresh_database():
    name = f"test_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_a_backup_from_before_the_erasure_is_unreadable_once_restored(make_person, fresh_database):
    anna, bertil = make_person(), make_person(BERTIL)
    backup = _copy_out(Person._meta.db_table)  # the nightly backup, taken before the erasure
    schema = _person_table_sql()
    assert anna.pk.hex[:8].encode() in backup.replace(b"-", b"")

    _erase(anna)

    columns = ["id", *Person.ENCRYPTED_FIELDS]
    with psycopg.connect(_conninfo(fresh_database), autocommit=True) as restored:
        for statement in schema:
            restored.execute(statement)
        with restored.cursor() as cursor:
            with cursor.copy(
                sql.SQL("COPY {} FROM STDIN").format(sql.Identifier("casework_person"))
            ) as copy:
                copy.write(backup)
            cursor.execute(
                sql.SQL("SELECT {} FROM casework_person").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns))
                )
            )
            rows = {row[0]: row for row in cursor.fetchall()}

    def restored_person(person_id) -> Person:
        row = rows[person_id]
        values = {
            name: envelope.Sealed(value) if value is not None else None
            for name, value in zip(columns[1:], row[1:], strict=True)
        }
        return Person(id=person_id, **values)

    # The erased person's ciphertexts are all in the restored backup ...
    anna_restored = restored_person(anna.pk)
    assert all(
        getattr(anna_restored, name) is not None for name in ("name", "personnummer", "address")
    )
    # ... but the application's keys cannot open them: the data key is gone, and no other key fits.
    with pytest.raises(DataKeyMissing):
        load_data_key(owner_type=PERSON, owner_id=anna.pk)
    for row in DataKey.objects.all():
        dek = load_data_key(owner_type=row.owner_type, owner_id=row.owner_id)
        for name in ("name", "personnummer", "address"):
            with pytest.raises(DecryptionError):
                open_value(anna_restored, name, dek)
    # The same restore still opens the person who was not erased: the test could fail.
    bertil_restored = restored_person(bertil.pk)
    dek = load_data_key(owner_type=PERSON, owner_id=bertil.pk)
    assert open_value(bertil_restored, "name", dek) == BERTIL["name"]
    assert open_value(bertil_restored, "personnummer", dek) == "198112289841"
    assert ANNA["name"].encode() not in backup
