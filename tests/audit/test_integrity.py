"""Tamper evidence: every edit, deletion, insertion, swap and truncation is found and named."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import integrity
from audit.integrity import Problem
from audit.models import AccessEvent, ChainLink, ChangeRecord
from audit.services import Action, Outcome, record_event
from casework.models import Organisation

from .helpers import AUDIT_TABLES, raw, swap_entry_ids, triggers_disabled

PERSON = uuid.UUID("5b0c3c1e-8f1d-4c3e-9a57-0d3f1f7c2a11")


@pytest.fixture
def sealed_log(chain_format, demo):
    """Seed data (account events and history), then a varied run of events, all sealed (in
    each chain format: every test that takes it runs against both)."""
    integrity.seal()
    anna = demo["anna.social"]
    record_event(action=Action.LOGIN, user=anna)
    record_event(
        action=Action.CONSULT,
        user=anna,
        object_type="casework.person",
        object_id=str(PERSON),
        person_id=PERSON,
        fields=["name", "phone"],
        purpose="Förbereda nätverksmöte",
        legal_basis="samtycke",
        details={"case": 17, "nested": {"b": [1, 2], "a": "x"}},
    )
    Organisation.objects.create(name="Brickebacksskolan", kind="school")
    record_event(
        action=Action.ACCESS_DENIED,
        outcome=Outcome.DENIED,
        details={"path": "/granskning/", "reason": ""},
    )
    record_event(action=Action.LOGOUT, user=anna)
    integrity.seal()
    return {
        "consult": AccessEvent.objects.get(action=Action.CONSULT),
        "history": ChangeRecord.objects.get(data__name="Brickebacksskolan"),
    }


def _link(source: str, entry_id: int) -> ChainLink:
    return ChainLink.objects.get(source=source, entry_id=entry_id)


def _verify(**kwargs) -> integrity.VerificationResult:
    return integrity.verify(**kwargs)


def test_an_untouched_log_verifies(sealed_log, signing_key):
    integrity.write_checkpoint()  # without one, verification fails (test_chain_jam.py)
    result = _verify()
    assert result.ok, result.finding
    assert result.entries == ChainLink.objects.count()
    assert result.entries == AccessEvent.objects.count() + ChangeRecord.objects.count()
    positions = list(ChainLink.objects.values_list("position", flat=True))
    assert positions == list(range(1, len(positions) + 1))


def test_verify_command_prints_the_count_and_exits_zero(sealed_log, signing_key, capsys):
    call_command("audit", "checkpoint")
    call_command("audit", "verify")
    out = capsys.readouterr().out
    count = ChainLink.objects.count()
    assert f"OK: {count} entries verified against 1 signed checkpoints" in out


def _columns(table: str) -> list[tuple[str, str]]:
    return raw(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )


def _mutation(column: str, data_type: str) -> str:
    """An SQL expression that changes ``column``'s value, whatever its type."""
    if data_type == "smallint":  # the chain format: 1 and 2 swapped
        return f"3 - {column}"
    if data_type in {"bigint", "integer"}:
        return f"coalesce({column}, 0) + 100000"
    if data_type == "jsonb":
        return f"""coalesce({column}, '{{}}'::jsonb) || '{{"tampered": true}}'::jsonb"""
    if data_type.startswith("timestamp"):
        return f"{column} + interval '1 microsecond'"
    if data_type == "uuid":
        return "gen_random_uuid()"
    if data_type == "inet":
        return "'192.0.2.99'::inet"
    if column == "source":
        return f"CASE WHEN {column} = 'access' THEN 'history' ELSE 'access' END"
    if column.endswith("_hash"):
        return f"md5({column}) || md5({column})"
    return f"{column} || 'x'"


def _edit_cases():
    cases = []
    for table, key in (("audit_accessevent", "consult"), ("audit_changerecord", "history")):
        for column, data_type in _columns_static(table):
            cases.append(pytest.param(table, key, column, data_type, id=f"{table}.{column}"))
    for column, data_type in _columns_static("audit_chainlink"):
        cases.append(
            pytest.param("audit_chainlink", "consult", column, data_type, id=f"chainlink.{column}")
        )
    return cases


def _columns_static(table: str) -> list[tuple[str, str]]:
    from audit.models import AccessEvent, ChainLink, ChangeRecord

    model = {"audit_accessevent": AccessEvent, "audit_changerecord": ChangeRecord}.get(
        table, ChainLink
    )
    types = {
        "BigAutoField": "bigint",
        "BigIntegerField": "bigint",
        "PositiveSmallIntegerField": "smallint",
        "ForeignKey": "bigint",
        "JSONField": "jsonb",
        "DateTimeField": "timestamp with time zone",
        "UUIDField": "uuid",
        "GenericIPAddressField": "inet",
    }
    return [
        (f.column, types.get(f.get_internal_type(), "character varying"))
        for f in model._meta.concrete_fields
    ]


def test_the_edit_cases_cover_every_column(db):
    for table in ("audit_accessevent", "audit_changerecord", "audit_chainlink"):
        assert {c for c, _ in _columns(table)} == {c for c, _ in _columns_static(table)}


@pytest.mark.parametrize(("table", "key", "column", "data_type"), _edit_cases())
def test_editing_any_column_of_any_entry_is_found(sealed_log, table, key, column, data_type):
    entry = sealed_log[key]
    source = "access" if key == "consult" else "history"
    link = _link(source, entry.pk)
    where = f"position = {link.position}" if table == "audit_chainlink" else f"id = {entry.pk}"
    with triggers_disabled():
        raw(f"UPDATE {table} SET {column} = {_mutation(column, data_type)} WHERE {where}")  # noqa: S608
    result = _verify()
    assert not result.ok, f"editing {table}.{column} went unnoticed"
    assert result.finding.position == link.position or result.finding.entry_id == entry.pk
    assert result.finding.kind in {
        Problem.EDITED,
        Problem.DELETED,
        Problem.CHAIN_BROKEN,
        Problem.INSERTED,
        Problem.REORDERED,
    }


def test_an_edited_json_value_is_named_as_edited(sealed_log):
    entry = sealed_log["consult"]
    with triggers_disabled():
        raw(
            "UPDATE audit_accessevent SET details = jsonb_set(details, '{nested,a}', '\"y\"') "
            "WHERE id = %s",
            [entry.pk],
        )
    finding = _verify().finding
    assert finding.kind == Problem.EDITED
    assert (finding.source, finding.entry_id) == ("access", entry.pk)
    assert finding.position == _link("access", entry.pk).position


def test_a_microsecond_shift_of_the_time_is_found(sealed_log):
    entry = sealed_log["consult"]
    with triggers_disabled():
        raw(
            "UPDATE audit_accessevent SET occurred_at = occurred_at + interval '1 microsecond' "
            "WHERE id = %s",
            [entry.pk],
        )
    assert _verify().finding.kind == Problem.EDITED


def test_a_deleted_entry_is_found(sealed_log):
    entry = sealed_log["consult"]
    with triggers_disabled():
        raw("DELETE FROM audit_accessevent WHERE id = %s", [entry.pk])
    finding = _verify().finding
    assert finding.kind == Problem.DELETED
    assert finding.entry_id == entry.pk


def test_a_deleted_entry_and_its_link_are_found(sealed_log):
    entry = sealed_log["consult"]
    link = _link("access", entry.pk)
    with triggers_disabled():
        raw("DELETE FROM audit_accessevent WHERE id = %s", [entry.pk])
        raw("DELETE FROM audit_chainlink WHERE position = %s", [link.position])
    finding = _verify().finding
    assert finding.kind == Problem.DELETED
    assert finding.position == link.position


@pytest.mark.parametrize("span", [1, 3, 9])
def test_a_span_of_deleted_links_is_named_exactly_whatever_the_chunk_size(
    sealed_log, monkeypatch, span
):
    """Links are read a chunk of positions at a time: a gap inside a chunk, at its
    edge or swallowing whole chunks is reported from its first to its last position."""
    monkeypatch.setattr(integrity.verification, "VERIFY_CHUNK", 3)
    for index in range(20):
        record_event(action=Action.CONSULT, details={"i": index})
    integrity.seal()
    last = ChainLink.objects.order_by("-position").first().position
    first_gone = last - span - 2
    with triggers_disabled():
        raw(
            "DELETE FROM audit_chainlink WHERE position BETWEEN %s AND %s",
            [first_gone, first_gone + span - 1],
        )
    finding = _verify().finding
    assert finding.kind == Problem.DELETED
    assert finding.position == first_gone
    assert f"positions {first_gone} to {first_gone + span - 1} were removed" in finding.message


def test_an_inserted_entry_is_found(sealed_log):
    """Inserted behind the log writer's back (no queue entry, no link)."""
    with triggers_disabled():
        raw(
            "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
            "details) SELECT occurred_at, 'per.polis', organisation_name, roles, action, "
            "object_type, object_id, fields, purpose, legal_basis, outcome, request_id, details "
            "FROM audit_accessevent WHERE id = %s RETURNING id",
            [sealed_log["consult"].pk],
        )
    inserted = AccessEvent.objects.order_by("-id").first()
    finding = _verify().finding
    assert finding.kind == Problem.INSERTED
    assert (finding.source, finding.entry_id) == ("access", inserted.pk)


def test_an_entry_inserted_into_the_middle_of_the_chain_is_found(sealed_log):
    """A forged entry with a correctly computed link, slipped in before a real one."""
    entry = sealed_log["consult"]
    link = _link("access", entry.pk)
    previous = ChainLink.objects.get(position=link.position - 1)
    with triggers_disabled():
        (forged_id,) = raw(
            "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
            "details) SELECT occurred_at, 'per.polis', organisation_name, roles, action, "
            "object_type, object_id, fields, purpose, legal_basis, outcome, request_id, details "
            "FROM audit_accessevent WHERE id = %s RETURNING id",
            [entry.pk],
        )[0]
        raw(
            "UPDATE audit_chainlink SET position = position + 1000000 WHERE position >= %s",
            [link.position],
        )
        raw("UPDATE audit_chainlink SET position = position - 999999 WHERE position >= 1000000")
        layout = integrity.layout("access")
        row = raw(layout.select_sql, [[forged_id]])[0]
        entry_hash = layout.entry_hash(row)
        sealed_at = previous.sealed_at
        forged_chain = integrity.chain_hash(
            previous.chain_hash,
            position=link.position,
            source="access",
            entry_id=forged_id,
            entry_hash=entry_hash,
            sealed_at=sealed_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        )
        raw(
            "INSERT INTO audit_chainlink (position, source, entry_id, entry_hash, chain_hash, "
            "sealed_at) VALUES (%s, 'access', %s, %s, %s, %s)",
            [link.position, forged_id, entry_hash, forged_chain, sealed_at],
        )
    finding = _verify().finding
    assert finding.kind == Problem.CHAIN_BROKEN
    assert finding.position == link.position + 1
    assert finding.entry_id == entry.pk


def test_two_swapped_entries_are_found_as_reordered(sealed_log):
    entry = sealed_log["consult"]
    other = AccessEvent.objects.filter(id__gt=entry.pk).order_by("id").first()
    swap_entry_ids(entry.pk, other.pk)
    finding = _verify().finding
    assert finding.kind == Problem.REORDERED
    assert finding.entry_id == entry.pk


def test_two_swapped_links_are_found_as_reordered(sealed_log):
    first = _link("access", sealed_log["consult"].pk)
    second = ChainLink.objects.filter(position__gt=first.position).order_by("position").first()
    with triggers_disabled():
        raw("UPDATE audit_chainlink SET position = -1 WHERE position = %s", [first.position])
        raw(
            "UPDATE audit_chainlink SET position = %s WHERE position = %s",
            [first.position, second.position],
        )
        raw("UPDATE audit_chainlink SET position = %s WHERE position = -1", [second.position])
    finding = _verify().finding
    assert finding.kind in {Problem.REORDERED, Problem.CHAIN_BROKEN}
    assert finding.position == first.position


def test_truncating_the_tail_behind_a_checkpoint_is_found(sealed_log, signing_key):
    integrity.write_checkpoint()
    last = ChainLink.objects.order_by("-position").first()
    cut = last.position - 2
    with triggers_disabled():
        for link in ChainLink.objects.filter(position__gt=cut):
            table = "audit_accessevent" if link.source == "access" else "audit_changerecord"
            raw(f"DELETE FROM {table} WHERE id = %s", [link.entry_id])  # noqa: S608
        raw("DELETE FROM audit_chainlink WHERE position > %s", [cut])
    finding = _verify().finding
    assert finding.kind == Problem.TRUNCATED
    assert finding.position == cut + 1
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify")
    assert raised.value.returncode == 1
    assert "truncated behind a checkpoint" in str(raised.value)
    assert f"position {cut + 1}" in str(raised.value)


def test_a_log_rewritten_behind_a_checkpoint_is_found(sealed_log, signing_key):
    """An attacker who recomputes the whole chain still contradicts the signed head."""
    integrity.write_checkpoint()
    entry = sealed_log["consult"]
    # … the queue's guard too, which only the log's trigger may pass
    with triggers_disabled(*AUDIT_TABLES, "audit_pendingentry"):
        raw("UPDATE audit_accessevent SET purpose = 'Ingen anledning' WHERE id = %s", [entry.pk])
        # recompute every hash after the edit, as the verifier would
        links = list(ChainLink.objects.order_by("position"))
        raw("DELETE FROM audit_chainlink")
        for link in links:
            raw(
                "INSERT INTO audit_pendingentry (source, entry_id) VALUES (%s, %s)",
                [link.source, link.entry_id],
            )
        integrity.seal()
    assert integrity.verify(directory=None).ok  # self-consistent without the checkpoint …
    finding = _verify().finding  # … but not with it
    assert finding.kind == Problem.REWRITTEN


def test_a_forged_checkpoint_is_found(sealed_log, signing_key, settings):
    path, document = integrity.write_checkpoint()
    forged = dict(document, head="0" * 64)
    path.write_text(json.dumps(forged))
    finding = _verify().finding
    assert finding.kind == Problem.BAD_SIGNATURE
    assert finding.checkpoint == path.name
    with pytest.raises(CommandError, match="bad signature"):
        call_command("audit", "verify")


def test_a_checkpoint_signed_by_another_key_is_found(sealed_log, signing_key, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    intruder = Ed25519PrivateKey.generate()
    path, _document = integrity.write_checkpoint(signing_key=intruder)
    finding = _verify().finding
    assert finding.kind == Problem.BAD_SIGNATURE
    assert "unknown key" in finding.message
    assert finding.checkpoint == path.name


def test_an_unreadable_checkpoint_is_reported(sealed_log, signing_key, settings):
    integrity.write_checkpoint()
    (settings.AUDIT_CHECKPOINT_DIR / "checkpoint-999-x.json").write_text("{not json")
    assert _verify().finding.kind == Problem.BAD_CHECKPOINT


def test_checkpoints_are_signed_files_outside_the_database(sealed_log, signing_key, settings):
    path, document = integrity.write_checkpoint()
    assert path.parent == settings.AUDIT_CHECKPOINT_DIR
    stored = json.loads(path.read_text())
    assert stored == document
    assert stored["position"] == ChainLink.objects.count()
    assert stored["head"] == ChainLink.objects.order_by("-position").first().chain_hash
    assert stored["key_id"] == integrity.key_id(signing_key.public_key())
    assert {"created_at", "signature", "format"} <= set(stored)


def test_keygen_writes_a_private_key_only_its_owner_can_read(db, settings, capsys):
    call_command("audit", "keygen")
    key_file = settings.AUDIT_SIGNING_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.with_name(key_file.name + ".pub").is_file()
    assert "key id" in capsys.readouterr().out
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("audit", "keygen")


def test_production_refuses_to_checkpoint_without_a_key(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="No audit signing key"):
        call_command("audit", "checkpoint")
    assert not settings.AUDIT_SIGNING_KEY_FILE.exists()


def test_development_makes_its_own_key_on_first_checkpoint(db, settings, capsys):
    call_command("audit", "checkpoint")
    assert settings.AUDIT_SIGNING_KEY_FILE.exists()
    assert len(list(settings.AUDIT_CHECKPOINT_DIR.glob("checkpoint-*.json"))) == 1


def test_verification_needs_no_private_key(sealed_log, signing_key, settings):
    """An auditor's copy of the public key (``.pub``) is enough to check checkpoints."""
    integrity.write_checkpoint()
    settings.AUDIT_SIGNING_KEY_FILE.unlink()
    assert _verify().ok


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"purpose": ""}, {"purpose": None}),
        ({"details": {}}, {"details": None}),
        ({"details": {"a": 1}}, {"details": {"a": "1"}}),
        ({"details": {"a": 1.0}}, {"details": {"a": 1.5}}),
    ],
)
def test_canonical_encoding_keeps_null_empty_and_types_apart(a, b):
    layout = integrity.layout("access")
    base = dict.fromkeys(layout.columns)
    row_a = tuple({**base, **a}.get(column) for column in layout.columns)
    row_b = tuple({**base, **b}.get(column) for column in layout.columns)
    assert layout.entry_hash(row_a) != layout.entry_hash(row_b)


def test_canonical_encoding_is_sorted_compact_utf8():
    layout = integrity.layout("access")
    row = tuple(
        {"details": '{"ö": 1, "a": [1, 2]}', "purpose": "åtgärd"}.get(column)
        for column in layout.columns
    )
    encoded = layout.encode(row)
    assert b" " not in encoded
    assert '"details":{"a":[1,2],"ö":1}'.encode() in encoded
    assert "åtgärd".encode() in encoded
    document = json.loads(encoded)
    assert list(document) == sorted(document)


def test_sealing_is_idempotent_and_links_each_entry_once(sealed_log):
    before = ChainLink.objects.count()
    assert integrity.seal() == 0
    record_event(action=Action.LOGIN)
    assert integrity.seal() == 1
    assert ChainLink.objects.count() == before + 1
    assert connection.cursor  # the test's own transaction is still usable


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    purpose=st.none() | st.text(),
    details=_json_values,
    object_id=st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
)
def test_the_verifiers_fast_path_agrees_with_the_definition(purpose, details, object_id):
    """The orjson shortcut never accepts what the stdlib definition rejects, nor the reverse.

    Big integers and floats (where orjson writes other bytes, or gives up) fall back to
    the definition; a different stored hash is never a match.
    """
    layout = integrity.layout("access")
    values = {
        "purpose": purpose,
        "object_id": object_id,
        "details": json.dumps(details, ensure_ascii=False),
    }
    row = tuple(values.get(column) for column in layout.columns)
    definition = layout.entry_hash(row)
    assert layout.matches(row, definition) == (True, definition)
    other = layout.entry_hash(
        tuple(values.get(c, 0) if c != "purpose" else "x" for c in layout.columns)
    )
    assert layout.matches(row, other)[0] is (other == definition)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    purpose=st.none() | st.text(),
    details=_json_values,
    fields=st.lists(st.text(), max_size=3),
    object_id=st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
    user_id=st.none() | st.integers(min_value=-(2**70), max_value=2**70),
)
def test_the_sealers_hash_is_the_definitions(purpose, details, fields, object_id, user_id):
    """The sealer's hasher (orjson where it writes the same bytes) gives the definition's
    hash for every row: strings of any code point, integers beyond 64 bits (in a column
    and in a JSON value), floats, nesting, null."""
    for source, values in (
        (
            "access",
            {
                "purpose": purpose,
                "object_id": object_id,
                "user_id": user_id,
                "fields": json.dumps(fields, ensure_ascii=False),
                "details": json.dumps(details, ensure_ascii=False),
            },
        ),
        (
            "history",
            {
                "data": json.dumps(details, ensure_ascii=False),
                "changed_fields": json.dumps(fields, ensure_ascii=False),
                "context": json.dumps({"purpose": purpose, "n": user_id}, ensure_ascii=False),
                "row_id": object_id,
            },
        ),
    ):
        layout = integrity.layout(source)
        assert set(values) <= set(layout.columns)
        row = tuple(values.get(column) for column in layout.columns)
        assert layout.sealing_hasher()(row) == layout.entry_hash(row)


def test_the_sealers_hash_of_a_value_orjson_would_write_otherwise():
    """A value the sealer's query never gives (a datetime, a float column) is hashed by
    the definition, as it encodes it."""
    import datetime as dt

    layout = integrity.layout("access")
    for odd in (dt.datetime(2026, 12, 6, 19, 0, tzinfo=dt.UTC), 1.5, 1e-05):
        row = tuple(odd if column == "purpose" else None for column in layout.columns)
        assert layout.sealing_hasher()(row) == layout.entry_hash(row)
    # JSON text orjson refuses and the stdlib reads (PostgreSQL's jsonb never writes it):
    # the definition decides, here by refusing the NaN as it always did.
    row = tuple('{"x": NaN}' if column == "details" else None for column in layout.columns)
    with pytest.raises(ValueError):
        layout.entry_hash(row)
    with pytest.raises(ValueError):
        layout.sealing_hasher()(row)


def test_the_sealers_hash_of_floats_and_big_integers_in_json():
    layout = integrity.layout("history")
    seal_hash = layout.sealing_hasher()
    for data in ('{"a": 1e16}', '{"a": [0.00001]}', '{"a": {"b": 1.5}}', f'{{"a": {2**70}}}'):
        row = tuple(data if column == "data" else None for column in layout.columns)
        assert seal_hash(row) == layout.entry_hash(row)
        if "0.00001" in data:
            assert layout.fast_encode(row) != layout.encode(row)  # orjson alone differs
