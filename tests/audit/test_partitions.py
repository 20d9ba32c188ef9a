"""The access log partitioned by month (ADR 0031): inserts find a partition, the log stays
append-only on every partition, verification spans partitions, and a month detached for
the archive leaves a log that still verifies — and an export that verifies on its own."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit import integrity
from audit.integrity import Problem
from audit.integrity.partitions import add_months, first_of_month, partition_name
from audit.models import AccessEvent, ArchivedPartition
from audit.services import Action, record_event

from .helpers import raw, triggers_disabled

THIS_MONTH = first_of_month(timezone.now().astimezone(dt.UTC).date())
PAST = add_months(THIS_MONTH, -3)
EARLIER = add_months(THIS_MONTH, -4)


def _insert(when: dt.datetime, count: int = 3, *, username: str = "anna.social") -> list[int]:
    """Events written straight into the parent table (as a bulk load or COPY does)."""
    rows = raw(
        "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
        "action, object_type, object_id, person_id, fields, purpose, legal_basis, outcome, "
        "request_id, client_address, details) "
        "SELECT %s + n * interval '1 minute', %s, 'Socialförvaltningen', 'socialsekreterare', "
        "'consult', 'casework.person', '', gen_random_uuid(), '[\"name\"]', 'Uppföljning', "
        "'samtycke', 'allowed', '', '10.0.0.1', jsonb_build_object('n', n) "
        "FROM generate_series(1, %s) AS n RETURNING id",
        [when, username, count],
    )
    return [row[0] for row in rows]


def _at(month: dt.date, day: int = 10) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, 12, tzinfo=dt.UTC)


def _home(event_id: int) -> str:
    return raw("SELECT tableoid::regclass::text FROM audit_accessevent WHERE id = %s", [event_id])[
        0
    ][0]


def _verify(**kwargs):
    return integrity.verify(directory=None, **kwargs)


@pytest.fixture
def months(chain_format, db):
    """Events in two past months (each with its partition), this month and a far month (the
    chain in each format: every test that takes it runs against both)."""
    for month in (EARLIER, PAST):
        raw("SELECT audit_create_event_partition(%s)", [month])
    log = {
        "earlier": _insert(_at(EARLIER)),
        "past": _insert(_at(PAST), 4),
        "now": [record_event(action=Action.LOGIN).pk],
    }
    integrity.seal()
    return log


def test_inserts_find_their_month_or_the_default_partition(db):
    (now_event,) = [record_event(action=Action.LOGIN).pk]
    assert _home(now_event) == partition_name(THIS_MONTH)
    (next_month,) = _insert(_at(add_months(THIS_MONTH, 1)), 1)
    assert _home(next_month) == partition_name(add_months(THIS_MONTH, 1))
    # No partition for 2061: the DEFAULT partition takes it, the insert never fails.
    (far,) = _insert(dt.datetime(2061, 5, 1, tzinfo=dt.UTC), 1)
    assert _home(far) == "audit_accessevent_default"
    assert _verify().ok


def test_creating_a_month_moves_its_rows_out_of_the_default_partition(db):
    strays = _insert(_at(PAST), 3)
    integrity.seal()
    assert {_home(i) for i in strays} == {"audit_accessevent_default"}
    call_command("audit", "partitions", "--ahead", "2", stdout=io.StringIO())
    raw("SELECT audit_create_event_partition(%s)", [PAST])
    assert {_home(i) for i in strays} == {partition_name(PAST)}
    # Same ids, same values: the chain still holds them, and the DEFAULT stays append-only.
    assert _verify().ok
    (far,) = _insert(dt.datetime(2061, 5, 1, tzinfo=dt.UTC), 1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM audit_accessevent_default WHERE id = %s", [far])


def test_the_partitions_command_keeps_months_ahead(db):
    call_command("audit", "partitions", "--ahead", "6", stdout=io.StringIO())
    names = {name for name, _ in integrity.partitions.partitions()}
    for offset in range(7):
        assert partition_name(add_months(THIS_MONTH, offset)) in names
    with pytest.raises(CommandError, match="between 0 and 120"):
        call_command("audit", "partitions", "--ahead", "-1")
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("audit", "partitions", "--since", "last year")
    with pytest.raises(CommandError, match="from 2000"):
        call_command("audit", "partitions", "--since", "1970-01")


def test_months_from_a_start_for_a_bulk_load(db):
    start = add_months(THIS_MONTH, -14)
    call_command("audit", "partitions", "--since", f"{start:%Y-%m}", stdout=io.StringIO())
    names = {name for name, _ in integrity.partitions.partitions()}
    for offset in range(-14, 4):
        assert partition_name(add_months(THIS_MONTH, offset)) in names
    (loaded,) = _insert(_at(start), 1)
    assert _home(loaded) == partition_name(start)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET purpose = 'x'",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
@pytest.mark.parametrize("where", ["parent", "partition", "default"])
def test_every_partition_is_append_only(months, statement, where):
    table = {
        "parent": "audit_accessevent",
        "partition": partition_name(PAST),
        "default": "audit_accessevent_default",
    }[where]
    if where == "default":
        _insert(dt.datetime(2061, 5, 1, tzinfo=dt.UTC), 1)
    raw("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no deferred check
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(statement.format(table=table))
    assert AccessEvent.objects.count() >= 8


def test_verification_spans_partitions_and_finds_tampering_in_any(months):
    result = _verify()
    assert result.ok, result.finding
    assert result.entries >= 8
    for key in ("earlier", "past", "now"):
        victim = months[key][0]
        with transaction.atomic():
            with triggers_disabled("audit_accessevent"):
                raw("UPDATE audit_accessevent SET purpose = 'ändrat' WHERE id = %s", [victim])
            result = _verify(seal_first=False)
            assert result.finding.kind == Problem.EDITED
            assert result.finding.entry_id == victim
            transaction.set_rollback(True)


@pytest.fixture
def archived(months, signing_key, tmp_path):
    out = tmp_path / "archive"
    call_command(
        "audit",
        "archive",
        "--month",
        f"{PAST:%Y-%m}",
        "--out",
        str(out),
        stdout=io.StringIO(),
    )
    return out / f"{partition_name(PAST)}.manifest.json"


def test_a_detached_month_leaves_a_log_that_verifies(months, archived):
    names = {name for name, _ in integrity.partitions.partitions()}
    assert partition_name(PAST) not in names
    assert not AccessEvent.objects.filter(pk__in=months["past"]).exists()
    record = ArchivedPartition.objects.get()
    assert record.entries == 4
    logged = AccessEvent.objects.get(action=Action.EXPORT, object_id=partition_name(PAST))
    assert logged.details["month"] == f"{PAST:%Y-%m}"
    assert logged.details["export_sha256"] == record.export_sha256
    result = _verify()
    assert result.ok, result.finding
    assert result.archived == 4
    # The detached table stays append-only until it is dropped.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(f"DELETE FROM {partition_name(PAST)}")  # noqa: S608


def test_after_detaching_tampering_is_still_found(months, archived):
    victim = months["earlier"][1]
    with triggers_disabled("audit_accessevent"):
        raw("DELETE FROM audit_accessevent WHERE id = %s", [victim])
    result = _verify(seal_first=False)
    assert result.finding.kind == Problem.DELETED
    assert result.finding.entry_id == victim


def test_an_unsigned_archive_record_hides_no_deletion(months, archived):
    victim = months["earlier"][0]
    record = ArchivedPartition.objects.get()
    ArchivedPartition.objects.create(
        month=add_months(PAST, -6),
        table_name="audit_accessevent_forged",
        entries=1,
        id_ranges=[[victim, victim]],
        export_name="forged.jsonl",
        export_sha256="0" * 64,
        detached_at=timezone.now(),
        key_id=record.key_id,
        signature=record.signature,
    )
    with triggers_disabled("audit_accessevent"):
        raw("DELETE FROM audit_accessevent WHERE id = %s", [victim])
    result = _verify(seal_first=False)
    assert result.finding.kind == Problem.BAD_SIGNATURE


def test_the_export_verifies_on_its_own_and_against_the_chain(months, archived):
    keys = integrity.trusted_public_keys()
    check = integrity.partitions.verify_archive(archived, keys)
    assert check.ok, check.problem
    assert check.entries == 4
    assert integrity.partitions.verify_archive(archived, keys, using="default").ok
    call_command(
        "audit",
        "verify-archive",
        str(archived),
        "--against-database",
        stdout=io.StringIO(),
    )
    assert integrity.partitions.verify_archive(archived, {}).problem.startswith(
        "the manifest's signature"
    )


@pytest.mark.parametrize("part", ["row", "link", "dropped line"])
def test_a_tampered_export_fails(months, archived, part):
    export = archived.with_name(f"{partition_name(PAST)}.jsonl")
    lines = export.read_text().splitlines()
    item = json.loads(lines[2])
    if part == "row":
        item["row"][list(json.loads(lines[0])["columns"]).index("purpose")] = "ändrat"
        lines[2] = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    elif part == "link":
        item["link"][3] = "0" * 64
        lines[2] = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    else:
        del lines[2]
    export.write_text("\n".join(lines) + "\n")
    check = integrity.partitions.verify_archive(archived, integrity.trusted_public_keys())
    assert not check.ok
    with pytest.raises(CommandError, match="FAILED"):
        call_command("audit", "verify-archive", str(archived))


def test_archiving_refuses_what_it_must(months, signing_key, tmp_path):
    with pytest.raises(CommandError, match="not over yet"):
        call_command("audit", "archive", "--month", f"{THIS_MONTH:%Y-%m}", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("audit", "archive", "--month", "2026-13", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="no partition"):
        call_command("audit", "archive", "--month", "1999-01", "--out", str(tmp_path))
    with triggers_disabled("audit_chainlink"):
        raw(
            "DELETE FROM audit_chainlink WHERE source = 'access' AND entry_id = %s",
            [months["earlier"][0]],
        )
    with pytest.raises(CommandError, match="not sealed"):
        call_command("audit", "archive", "--month", f"{EARLIER:%Y-%m}", "--out", str(tmp_path))
    assert not ArchivedPartition.objects.exists()


def test_inserts_in_a_new_month_after_an_archive(months, archived):
    (later,) = _insert(_at(add_months(THIS_MONTH, 2)), 1)
    assert _home(later) == partition_name(add_months(THIS_MONTH, 2))
    result = _verify()
    assert result.ok, result.finding


def test_a_month_of_review_or_search_reads_only_that_months_partition(months):
    """What keeps the log review and the auditor's search flat as the log grows."""
    from audit import review, selectors

    following = add_months(PAST, 1)
    start = dt.datetime(PAST.year, PAST.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(following.year, following.month, 1, tzinfo=dt.UTC)
    plans = [
        review._person_events(start, end).explain(),
        selectors._matching(selectors.EventFilter(username="anna.social", start=start, end=end))
        .order_by("-id")[:50]
        .explain(),
    ]
    for plan in plans:
        assert partition_name(PAST) in plan
        assert partition_name(EARLIER) not in plan
        assert partition_name(THIS_MONTH) not in plan


@pytest.mark.parametrize("forged", ["0" * 64, "not hexadecimal"])
def test_a_changed_link_of_an_archived_event_is_found(months, archived, forged):
    victim = months["past"][1]
    with triggers_disabled("audit_chainlink"):
        raw(
            "UPDATE audit_chainlink SET entry_hash = %s WHERE source = 'access' AND entry_id = %s",
            [forged, victim],
        )
    result = _verify(seal_first=False)
    assert result.finding.kind == Problem.CHAIN_BROKEN
    assert result.finding.entry_id == victim


def test_the_migration_converts_a_table_that_has_rows(db):
    """The conversion of 0011 on a plain table with rows (a deployed database): rows and
    ids kept, the sequence goes on, a partition per month, indexes and triggers on each.
    Run in a schema of its own (the migrated test database is partitioned already)."""
    import importlib

    from django.db import connection

    migration = importlib.import_module("audit.migrations.0011_partitioned_access_log")

    def ddl(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)  # no parameters: the % of format() stay as they are

    raw("CREATE SCHEMA conversion")
    raw("SET LOCAL search_path = conversion, public")
    raw(
        "CREATE TABLE audit_accessevent (LIKE public.audit_accessevent "
        "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
    )
    raw(
        "INSERT INTO audit_accessevent (id, occurred_at, username, organisation_name, roles, "
        "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
        "details) SELECT id, at, 'anna.social', '', '', 'consult', '', '', '[]', '', '', "
        "'allowed', '', '{}' FROM (VALUES (5, %s::timestamptz), (7, %s), (9, %s)) AS v (id, at)",
        [_at(EARLIER), _at(PAST), dt.datetime(2061, 5, 1, tzinfo=dt.UTC)],
    )
    raw("SELECT setval('audit_accessevent_id_seq', 41)")
    # Created in (and resolved from) this schema. (Its months that exist in public already
    # — this month and the next three — it takes for made: only past months are checked.)
    ddl(migration.CREATE_PARTITION_FUNCTION)
    ddl(migration.CONVERT)
    kind = raw("SELECT relkind FROM pg_class WHERE oid = 'audit_accessevent'::regclass")
    assert kind == [("p",)]
    homes = raw("SELECT id, tableoid::regclass::text FROM audit_accessevent ORDER BY id")
    assert homes == [
        (5, partition_name(EARLIER)),
        (7, partition_name(PAST)),
        (9, partition_name(dt.date(2061, 5, 1))),  # every month holding data gets one
    ]
    (new_id,) = raw(
        "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
        "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
        "details) VALUES (now(), '', '', '', 'login', '', '', '[]', '', '', 'allowed', '', "
        "'{}') RETURNING id"
    )[0]
    assert new_id == 42
    indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
    expected = raw(indexes, ["public", "audit_accessevent"])[0][0]
    assert raw(indexes, ["conversion", partition_name(PAST)])[0][0] == expected
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM audit_accessevent WHERE id = 7")
    raw("SET LOCAL search_path = public")


def test_every_partition_indexes_the_period_by_brin_and_checks_no_account_key(months):
    """Session 14 of ADR 0031: the period's index is a BRIN index on every partition, the
    ones made later included, and no event's insert checks a foreign key."""
    call_command("audit", "partitions", "--ahead", "5", stdout=io.StringIO())
    partitions = [
        name
        for (name,) in raw(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'audit_accessevent'::regclass"
        )
    ]
    assert partition_name(add_months(THIS_MONTH, 5)) in partitions
    assert "audit_accessevent_default" in partitions
    for table in ["audit_accessevent", *partitions]:
        on_time = [
            definition
            for (definition,) in raw(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
                [table],
            )
            if "(occurred_at)" in definition
        ]
        assert len(on_time) == 1, (table, on_time)
        assert "USING brin" in on_time[0]
        foreign_keys = raw(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        assert foreign_keys == [], table


def test_a_review_of_a_week_finds_its_events_through_the_brin_index(months):
    """The period alone narrows the rows read: a week's events, none of the other weeks'."""
    from audit import review

    week = _at(PAST, 10)
    inside = _insert(week, 5)
    outside = _insert(_at(PAST, 2), 5) + _insert(_at(PAST, 25), 5)
    raw(
        "SELECT brin_summarize_new_values(indexrelid::regclass) FROM pg_index "
        "WHERE indrelid = %s::regclass AND indexrelid::regclass::text LIKE %s",
        [partition_name(PAST), "%occurred_at%"],
    )
    start, end = week - dt.timedelta(days=3), week + dt.timedelta(days=4)
    found = review.break_the_glass(start, end)
    assert found.events == []
    found = {event.id for event in review._person_events(start, end)}
    assert set(inside) <= found
    assert not found & set(outside)


def test_an_account_named_by_an_event_is_still_protected_from_deletion(db):
    """Without the database's foreign key the model's PROTECT still keeps the account."""
    from django.contrib.auth import get_user_model
    from django.db.models import ProtectedError

    user = get_user_model().objects.create_user("protokoll.läsare")
    event = record_event(action=Action.LOGIN, user=user)
    with pytest.raises(ProtectedError):
        user.delete()
    assert AccessEvent.objects.get(pk=event.pk).user_id == user.pk
