"""The verifier's fast path (``audit.integrity.lines``): a chunk read as text lines and
the entries spliced into their documents. It must accept an untouched chain, give the
bytes of the orjson encoding wherever it splices, and accept no tampered chunk — every
tamper test of ``test_integrity`` then goes through it (it refuses the chunk, and the
definition's walk names the problem)."""

from __future__ import annotations

import binascii
import hashlib
import json

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import integrity
from audit.integrity import GENESIS, lines, verification
from audit.models import AccessEvent, ChainLink
from audit.services import Action, record_event

from .helpers import raw, swap_entry_ids, triggers_disabled
from .test_integrity import _edit_cases, _link, _mutation
from .test_integrity import sealed_log as sealed_log  # the fixture


def _chain_holds() -> bool:
    """Whether the fast path accepts the whole chain as one chunk."""
    last = ChainLink.objects.order_by("-position").first().position
    checkers = {source: each.checker() for source, each in lines.entry_lines().items()}
    with connection.cursor() as cursor:
        fetched = lines.fetch_lines(cursor, 1, last)
    return lines.check_lines(fetched, bytes.fromhex(GENESIS), 1, last, {}, checkers) is not None


@pytest.fixture
def spied(monkeypatch):
    """What each chunk's fast check answered during a verification."""
    answers = []
    check = verification.check_lines

    def spy(*args):
        answer = check(*args)
        answers.append(answer is not None)
        return answer

    monkeypatch.setattr(verification, "check_lines", spy)
    return answers


def test_the_untouched_log_is_accepted_by_the_fast_path(sealed_log, spied):
    """So every tamper test on ``sealed_log`` has the fast path refuse the chunk."""
    assert _chain_holds()
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert spied == [True]


def test_chunks_of_a_longer_chain_are_each_accepted(sealed_log, spied, monkeypatch):
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 4)
    for index in range(21):
        record_event(action=Action.CONSULT, details={"i": index, "x": [index, None]})
    integrity.seal()
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert len(spied) == -(-ChainLink.objects.count() // 4)
    assert all(spied)


@pytest.mark.parametrize(
    "purpose",
    [
        'med "citat"',
        "back\\slash",
        "rad\nbrytning",
        "tabb\tsteg",
        "styr\x01tecken",
        "\x7f",
        "Ödesdiger åtgärd, 🦔",
        "",
    ],
)
def test_values_it_does_not_splice_are_checked_by_the_definition(sealed_log, spied, purpose):
    # Written as a model row: the log writer would clean such text first.
    AccessEvent.objects.create(
        action=Action.CONSULT,
        outcome="allowed",
        purpose=purpose,
        object_id=purpose,
        details={"text": purpose, "quote": '"', "n": 1.5},
    )
    integrity.seal()
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert len(spied) == 1  # accepted, or refused and then walked by the definition
    event = AccessEvent.objects.order_by("-id").first()
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET purpose = purpose || 'x' WHERE id = %s", [event.pk])
    assert not _chain_holds()
    assert integrity.verify(directory=None).finding.entry_id == event.pk


@pytest.mark.parametrize(("table", "key", "column", "data_type"), _edit_cases())
def test_no_edited_column_is_accepted(sealed_log, table, key, column, data_type):
    entry = sealed_log[key]
    link = _link("access" if key == "consult" else "history", entry.pk)
    where = f"position = {link.position}" if table == "audit_chainlink" else f"id = {entry.pk}"
    assert _chain_holds()
    with triggers_disabled():
        raw(f"UPDATE {table} SET {column} = {_mutation(column, data_type)} WHERE {where}")  # noqa: S608
    assert not _chain_holds()


def test_a_null_made_empty_or_empty_made_null_is_not_accepted(sealed_log):
    entry = sealed_log["consult"]
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET client_address = NULL WHERE id = %s", [entry.pk])
        raw("UPDATE audit_accessevent SET roles = '' WHERE id = %s", [entry.pk])
    assert not _chain_holds()


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM audit_accessevent WHERE id = {id}",
        "DELETE FROM audit_chainlink WHERE position = {position}",
        "UPDATE audit_accessevent SET id = -id WHERE id = {id}",
        "UPDATE audit_chainlink SET entry_id = entry_id + 1000000 WHERE position = {position}",
        "UPDATE audit_chainlink SET position = -1 WHERE position = {position}",
    ],
)
def test_no_deleted_moved_or_doubled_entry_is_accepted(sealed_log, tamper):
    entry = sealed_log["consult"]
    position = _link("access", entry.pk).position
    with triggers_disabled():
        raw(tamper.format(id=entry.pk, position=position))
    assert not _chain_holds()


def test_a_copy_of_an_entry_under_its_id_fails_verification(sealed_log):
    """Another time, the same id (the partitioned key allows it): the walk may read
    either row; the copy is then an entry outside the chain."""
    entry = sealed_log["consult"]
    columns = ", ".join(f.column for f in AccessEvent._meta.concrete_fields)
    copied = columns.replace("occurred_at", "occurred_at + interval '1 second'")
    with triggers_disabled():
        raw(
            f"INSERT INTO audit_accessevent ({columns}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {copied} FROM audit_accessevent WHERE id = %s",
            [entry.pk],
        )
    assert not integrity.verify(directory=None).ok


def test_two_swapped_entries_are_not_accepted(sealed_log):
    entry = sealed_log["consult"]
    other = AccessEvent.objects.filter(id__gt=entry.pk).order_by("id").first()
    swap_entry_ids(entry.pk, other.pk)
    assert not _chain_holds()


_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


def _value_text(value) -> str:
    """The text PostgreSQL gives for a value in the line (``concat_ws`` of the select)."""
    return value if isinstance(value, str) else str(value)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    purpose=_text,
    object_id=_text,
    person_id=st.none() | st.uuids().map(str),
    user_id=st.none() | st.integers(-(2**63), 2**63 - 1),
    details=_json,
    fields=st.lists(_text, max_size=3),
)
def test_a_spliced_document_is_the_fast_encoding(
    purpose, object_id, person_id, user_id, details, fields
):
    """Where a line is spliced at all, its document is byte for byte what
    ``_Layout.fast_encode`` writes for the row (and, without floats, the definition)."""
    layout = integrity.layout("access")
    entry_lines = lines.EntryLines("access")
    details_text = json.dumps(details, ensure_ascii=False, allow_nan=True)
    values = {
        "id": 7,
        "occurred_at": "2026-12-06T19:00:00.000001+00:00",
        "purpose": purpose,
        "object_id": object_id,
        "person_id": person_id,
        "user_id": user_id,
        "client_address": "10.0.0.1",
        "details": details_text,
        "fields": json.dumps(fields, ensure_ascii=False),
    }
    row = tuple(values.get(column, "") for column in layout.columns)
    shown = {"user_id": "null", "person_id": ""}  # the select's coalesce of a NULL
    line = "\t".join(
        shown[column] if values.get(column, "") is None else _value_text(values.get(column, ""))
        for column in entry_lines.selected
    ).encode()
    try:
        fast = layout.fast_encode(row)
    except (TypeError, ValueError):
        fast = None  # orjson refuses it: so does the splice
    wanted = {b"7": binascii.hexlify(hashlib.sha256(layout.entry_prefix + (fast or b"")).digest())}
    accepted = entry_lines.checker()(line, wanted)
    if any(ord(c) < 0x20 and c != "\t" for c in line.decode()):
        assert not accepted  # a control character: never spliced
        return
    parts = line.split(b"\t")
    spliced = entry_lines.documents()(parts, line) if len(parts) == entry_lines.width else None
    if spliced is not None:
        assert spliced == fast
    assert accepted is (spliced is not None and spliced == fast)
    plain = purpose + object_id
    if (
        not any(c in '"\\' or ord(c) < 0x20 for c in plain)
        and "NaN" not in details_text
        and "Infinity" not in details_text
    ):
        assert spliced is not None  # nothing that needs escaping: it is spliced
