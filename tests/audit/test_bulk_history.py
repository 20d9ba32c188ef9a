"""The change history's bulk path (``audit.history.bulk_update``, migration 0012): one
statement per table writes exactly the records the row trigger writes, queued for the
chain, and the row trigger's standing aside cannot be switched on by a session."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import psycopg
import pytest
from django.db import connection, transaction

from audit import history, integrity
from audit.models import ChangeRecord, PendingEntry
from casework.models import Organisation, User

from .helpers import assert_one_verified_chain, raw
from .test_privileges import app_role  # noqa: F401 - fixture

COMPARED = ("table_name", "row_id", "operation", "data", "changed_fields", "context", "db_role")


def _cursor():
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _records_after(last: int) -> list[dict]:
    return sorted(
        ChangeRecord.objects.filter(id__gt=last).values(*COMPARED),
        key=lambda r: (r["table_name"], r["row_id"]),
    )


def _last() -> int:
    return ChangeRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0


CONTEXT = '{"request_id": "r-1", "user_id": 7, "username": "anna"}'


def _both_ways(table: str, ids: list, column: str, values: list) -> tuple[list, list]:
    """The records of the same change, with the same audit context, by the row trigger
    (a plain UPDATE per row, rolled back) and by the bulk path."""
    last = _last()
    with transaction.atomic():
        sid = transaction.savepoint()
        raw(f"SELECT set_config('{history.CONTEXT_SETTING}', %s, true)", [CONTEXT])
        for row_id, value in zip(ids, values, strict=True):
            raw(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, row_id])  # noqa: S608
        by_trigger = _records_after(last)
        transaction.savepoint_rollback(sid)
    last = _last()
    with transaction.atomic(), _cursor() as cursor:
        raw(f"SELECT set_config('{history.CONTEXT_SETTING}', %s, true)", [CONTEXT])
        updated = history.bulk_update(cursor, table, ids, {column: values})
    assert updated == len(ids)
    return by_trigger, _records_after(last)


def test_the_bulk_path_writes_the_row_triggers_records(db):
    organisations = [
        Organisation.objects.create(name=f"Skola {n}", kind="school") for n in range(4)
    ]
    ids = [o.pk for o in organisations]
    # The last row keeps its value: no record, either way.
    values = ["Ny 0", "Ny 1", "Ny 2", "Skola 3"]
    by_trigger, by_bulk = _both_ways("casework_organisation", ids, "name", values)
    assert len(by_trigger) == 3
    assert by_bulk == by_trigger
    assert by_bulk[0]["changed_fields"] == ["name"]
    assert by_bulk[0]["context"]["username"] == "anna"
    assert Organisation.objects.get(pk=ids[1]).name == "Ny 1"


def test_excluded_columns_stay_out_as_with_the_trigger(db):
    users = [User.objects.create_user(f"bulk{n}", password="hemligt-lösen-1") for n in range(3)]
    by_trigger, by_bulk = _both_ways(
        "casework_user", [u.pk for u in users], "first_name", ["Anna", "Bo", "Cia"]
    )
    assert by_bulk == by_trigger
    assert all("password" not in r["data"] and "last_login" not in r["data"] for r in by_bulk)


def test_each_record_is_queued_once_and_the_chain_verifies(db):
    organisations = [
        Organisation.objects.create(name=f"Kedja {n}", kind="school") for n in range(3)
    ]
    integrity.seal()
    last = _last()
    with transaction.atomic(), _cursor() as cursor:
        history.bulk_update(
            cursor,
            "casework_organisation",
            [o.pk for o in organisations],
            {"name": ["A", "B", "C"]},
        )
        assert raw("SELECT current_setting('samverkan.audit_bulk', true)") == [("",)]
    written = list(ChangeRecord.objects.filter(id__gt=last).values_list("id", flat=True))
    assert len(written) == 3
    queued = PendingEntry.objects.filter(source="history", entry_id__in=written)
    assert queued.count() == 3
    assert_one_verified_chain()


def test_only_tracked_tables_and_columns_other_than_the_key(db):
    organisation = Organisation.objects.create(name="Fel", kind="school")
    for table, column in (
        ("audit_pendingentry", "source"),
        ("casework_organisation", "id"),
        ("casework_organisation", "no_such_column"),
    ):
        with pytest.raises(psycopg.Error), transaction.atomic(), _cursor() as cursor:
            history.bulk_update(cursor, table, [organisation.pk], {column: ["x"]})


def test_a_session_cannot_switch_the_row_trigger_off(app_role):  # noqa: F811
    """The setting alone, as the application role, leaves the row trigger on; the
    application role's call of the bulk function records its change."""
    organisation = Organisation.objects.create(name="Vanlig", kind="school")
    raw(f"GRANT SELECT, UPDATE ON casework_organisation, casework_accessgeneration TO {app_role}")
    last = _last()
    with transaction.atomic():
        raw(f"SET LOCAL ROLE {app_role}")
        raw(
            "SELECT set_config('samverkan.audit_bulk', %s, true)",
            ["casework_organisation"],
        )
        raw("UPDATE casework_organisation SET name = 'Dold?' WHERE id = %s", [organisation.pk])
        raw("RESET ROLE")
    (record,) = _records_after(last)
    assert record["data"]["name"] == "Dold?"
    assert PendingEntry.objects.filter(source="history").exists()

    last = _last()
    with transaction.atomic():
        raw(f"SET LOCAL ROLE {app_role}")
        with _cursor() as cursor:
            history.bulk_update(
                cursor, "casework_organisation", [organisation.pk], {"name": ["Bulk"]}
            )
        raw("RESET ROLE")
    (record,) = _records_after(last)
    assert record["data"]["name"] == "Bulk"
    assert record["db_role"] == connection.settings_dict["USER"]
    assert_one_verified_chain()


# --- The re-seal's record (audit_bulk_reseal, migration 0013) -------------------------


def _sealed(key_id: bytes, body: bytes) -> bytes:
    return b"\x01" + key_id + body


def _person_with_name(value: bytes) -> str:
    """A person row whose ``name`` is ``value`` (a tracked table with a sealed column)."""
    person_id = str(uuid.uuid4())
    raw(
        "INSERT INTO casework_person "
        "(id, name, birth_year, gender, area, protected_identity, created_at) "
        "VALUES (%s, %s, 2008, 'unknown', 'other', 0, now())",
        [person_id, value],
    )
    return person_id


OLD_KEY, NEW_KEY = b"o" * 16, b"n" * 16


def test_the_reseal_writes_one_record_with_digests_and_refuses_anything_else(db):
    ids = [_person_with_name(_sealed(OLD_KEY, bytes([n]) * 40)) for n in range(3)]
    new = [_sealed(NEW_KEY, bytes([n + 10]) * 40) for n in range(3)]
    integrity.seal()
    last = _last()
    with transaction.atomic(), _cursor() as cursor:
        raw(f"SELECT set_config('{history.CONTEXT_SETTING}', %s, true)", [CONTEXT])
        assert history.bulk_reseal(cursor, "casework_person", ids, {"name": new}, id_type="uuid")
        assert raw("SELECT current_setting('samverkan.audit_bulk', true)") == [("",)]
    (record,) = ChangeRecord.objects.filter(id__gt=last)
    assert (record.table_name, record.row_id, record.operation) == ("casework_person", "", "UPDATE")
    assert record.changed_fields == ["name"] and record.context["username"] == "anna"
    assert sorted(record.data["reseal"]["rows"], key=lambda e: e["id"]) == sorted(
        (
            {"id": i, "name": "sha256:" + hashlib.sha256(v).hexdigest()}
            for i, v in zip(ids, new, strict=True)
        ),
        key=lambda e: e["id"],
    )
    assert raw("SELECT name FROM casework_person WHERE id = %s", [ids[0]]) == [(new[0],)]
    assert PendingEntry.objects.filter(source="history", entry_id=record.id).count() == 1
    assert_one_verified_chain()

    # Not a re-sealing: the same key with another value, no sealed value, an empty value
    # over a value, a non-sealed column, a stamp on a column that is not a timestamp.
    refused = [
        {"name": [_sealed(NEW_KEY, b"x" * 40)]},
        {"name": [b"klartext som inte \xe4r krypterad"]},
        {"name": [None]},
        {"birth_year": [b"x"]},
    ]
    for columns in refused:
        last = _last()
        with pytest.raises(psycopg.Error), transaction.atomic(), _cursor() as cursor:
            history.bulk_reseal(cursor, "casework_person", ids[:1], columns, id_type="uuid")
        assert not ChangeRecord.objects.filter(id__gt=last).exists()
    assert raw("SELECT name FROM casework_person WHERE id = %s", [ids[0]]) == [(new[0],)]
    with pytest.raises(psycopg.Error), transaction.atomic(), _cursor() as cursor:
        history.bulk_reseal(cursor, "casework_person", ids[:1], {}, id_type="uuid", stamp="area")


def test_the_reseal_stamps_an_empty_time_once(db):
    # (A tracked table's empty timestamp: the persons' erasure time stands in for keyed_at.)
    ids = [_person_with_name(_sealed(OLD_KEY, b"s" * 40)) for _ in range(2)]
    last = _last()
    with transaction.atomic(), _cursor() as cursor:
        updated = history.bulk_reseal(
            cursor, "casework_person", ids, {}, id_type="uuid", stamp="erased_at"
        )
    assert updated == 2
    (record,) = ChangeRecord.objects.filter(id__gt=last)
    assert record.changed_fields == ["erased_at"]
    assert sorted(e["id"] for e in record.data["reseal"]["rows"]) == sorted(ids)
    stamped = raw("SELECT erased_at FROM casework_person WHERE id = %s", [ids[0]])[0][0]
    # (PostgreSQL's JSON drops a fraction's trailing zeros: compare the times, not the texts.)
    assert datetime.fromisoformat(record.data["reseal"]["stamp"]["erased_at"]) == stamped
    # Set already: refused, nothing changed.
    with pytest.raises(psycopg.Error), transaction.atomic(), _cursor() as cursor:
        history.bulk_reseal(cursor, "casework_person", ids, {}, id_type="uuid", stamp="erased_at")
    assert raw("SELECT erased_at FROM casework_person WHERE id = %s", [ids[0]])[0][0] == stamped


def test_the_reseal_reaches_its_rows_by_key_not_by_a_scan_of_the_table(db):
    # Migration 0016: whatever the planner's costs (here a table of a few rows, where a
    # scan is cheapest), the rows are found and updated through the key's index.
    ids = [_person_with_name(_sealed(OLD_KEY, bytes([n]) * 40)) for n in range(4)]
    new = [_sealed(NEW_KEY, bytes([n + 20]) * 40) for n in range(4)]
    scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = %s"
    with transaction.atomic(), _cursor() as cursor:
        ((seq_before, idx_before),) = raw(scans, ["casework_person"])
        assert history.bulk_reseal(cursor, "casework_person", ids, {"name": new}, id_type="uuid")
        ((seq_after, idx_after),) = raw(scans, ["casework_person"])
    assert seq_after == seq_before and idx_after > idx_before
    assert raw("SELECT name FROM casework_person WHERE id = %s", [ids[3]]) == [(new[3],)]
