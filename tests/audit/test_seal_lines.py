"""The sealer's bytes are the verifier's (chain format 2, ADR 0031 sessions 19-20).

Rows holding every awkward value a column can — NULLs, tabs, newlines, backslashes, the
text ``\\N``, non-ASCII, IPv6 and IPv4-mapped addresses, times written in other zones, a
jsonb large enough to be stored out of line — are sealed, then checked three ways: the
COPY walk of ``audit verify`` accepts every chunk with its running hash, the per-link walk
agrees, and ``verify-archive``'s writer (``_Layout.copy_line`` of the row's values) gives
each link's entry hash. Written by raw SQL, as a bulk load or another writer would:
``record_event`` makes control characters visible before they reach the row.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from audit import integrity
from audit.integrity import chain, lines, verification
from audit.models import ChainLink

from .helpers import raw

AWKWARD = "tab\there\nnew line\r\\back\\slash \\N \\. bell\x07 del\x7f \b\f\v 'q\" 🦔 é ø"
LARGE = {
    "notes": [f"{index}: {AWKWARD} " + "å" * 200 for index in range(60)],
    "nested": {"deep": [None, True, 0, -1, 1.5, 12345678901234567890, "\\N"]},
}
ROWS = [
    # occurred_at (in its own zone), the text of every text column, client_address, details
    ("2026-12-07 23:59:59.999999+05:30", AWKWARD, "2001:db8::1", {"text": AWKWARD}),
    ("1999-01-01 00:00:00-08", "", "::ffff:10.0.0.1", LARGE),  # the DEFAULT partition
    ("2026-12-01 00:00:00.000001+00", "\\", None, {}),
    ("2026-12-06 12:00:00+14", "Örebro\tkommun", "fe80::1/64", {"a": [], "b": {}}),
]


@pytest.fixture
def awkward_entries(db, monkeypatch):
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    monkeypatch.setattr(lines, "VERIFY_CHUNK", 2)  # several chunks, each walked by COPY
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 2)
    ids = []
    for occurred_at, text, address, details in ROWS:
        [(entry_id,)] = raw(
            "INSERT INTO audit_accessevent (occurred_at, user_id, username, organisation_name, "
            "roles, action, object_type, object_id, person_id, fields, purpose, legal_basis, "
            "outcome, request_id, client_address, details) VALUES (%s, NULL, %s, %s, '', "
            "'consult', 'casework.person', %s, NULL, %s::jsonb, %s, '', 'allowed', '', "
            "%s::inet, %s::jsonb) RETURNING id",
            [
                occurred_at,
                text,
                text,
                text[:64],
                '["name", "tab\\tand \\\\"]',
                text,
                address,
                json.dumps(details, ensure_ascii=False),
            ],
        )
        ids.append(entry_id)
    assert integrity.seal() >= len(ids)
    return ids


def test_entries_with_awkward_values_verify_by_the_copy_walk(awkward_entries):
    assert integrity.verify(directory=None, seal_first=False).ok
    # Each chunk of two links, read as COPY lines: accepted, with its running hash.
    links = list(ChainLink.objects.order_by("position").values_list("position", "chain_hash"))
    previous = chain.GENESIS
    with connection.cursor() as cursor:
        for start in range(0, len(links), 2):
            first, (last, last_hash) = links[start][0], links[min(start + 2, len(links)) - 1]
            digest = lines.walk_chunk(cursor.connection, first, last, bytes.fromhex(previous))
            assert digest == bytes.fromhex(last_hash), (first, last)
            previous = last_hash


def test_entries_with_awkward_values_verify_by_the_per_link_walk(awkward_entries, monkeypatch):
    monkeypatch.setattr(verification, "walk_chunk", lambda *args: None)  # always declined
    result = integrity.verify(directory=None, seal_first=False)
    assert result.ok, result.finding


def test_each_sealed_hash_is_that_of_the_rows_values_written_as_copy_writes_them(
    awkward_entries,
):
    entry_layout = integrity.layout("access")
    for entry_id in awkward_entries:
        [row] = raw(entry_layout.select_sql, [[entry_id]])
        link = ChainLink.objects.get(source="access", entry_id=entry_id)
        assert link.format == chain.FORMAT_LINES
        assert entry_layout.line_hash(entry_layout.copy_line(row)) == link.entry_hash
