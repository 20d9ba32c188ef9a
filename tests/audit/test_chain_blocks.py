"""Chain format 3 (ADR 0031, session 22): one ``ChainBlock`` per sealed block of entries.

The attack set of formats 1 and 2 on chains of blocks: an entry edited or deleted, a block
deleted, blocks reordered, a block forged or edited (ids, digests, positions, sealing time),
an entry in two blocks or twice in one, an entry outside any block, a checkpoint that no
longer matches; and a chain that changes format mid-way (1, then 2, then 3). Blocks of four
entries, chunks of six positions: a short chain has many of both, and blocks cross chunks.
"""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection

from audit import integrity
from audit.integrity import Problem, blocks, chain, lines, verification
from audit.models import AccessEvent, ChainBlock, ChainLink, ChangeRecord, PendingEntry
from casework.models import Organisation

from .helpers import answers_of, consultations, raw, swap_entry_ids, triggers_disabled

AWKWARD = "tab\there, new\nline, back\\slash, \\N, 'quote\" 🦔 é"


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(chain, "BLOCK_SIZE", 4)
    monkeypatch.setattr(lines, "VERIFY_CHUNK", 6)
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 6)


@pytest.fixture
def fast(monkeypatch):
    """What the fast path answered for each chunk of blocks offered to it."""
    return answers_of(monkeypatch, blocks, "_fast_chunk")


@pytest.fixture
def block_chain(db, monkeypatch, small_blocks):
    """Three seals of format 3: access events and change records, several blocks each."""
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_BLOCKS)
    integrity.seal()
    first = consultations(10, purpose=AWKWARD, details={"text": AWKWARD, "n": [1, {"b": None}]})
    Organisation.objects.create(name="Brickebacksskolan", kind="school")
    integrity.seal()
    second = consultations(7, purpose="Förbereda nätverksmöte")
    integrity.seal()
    return {"first": first, "second": second}


def _block_of(source: str, entry_id: int) -> ChainBlock:
    return ChainBlock.objects.get(source=source, entry_ids__contains=[entry_id])


def _position(entry_id: int, source: str = "access") -> int:
    block = _block_of(source, entry_id)
    return block.first_position + block.entry_ids.index(entry_id)


def _verify(**kwargs) -> integrity.VerificationResult:
    return integrity.verify(directory=None, seal_first=False, **kwargs)


def _assert_gap_free() -> int:
    spans = sorted(ChainBlock.objects.values_list("first_position", "last_position"))
    positions = [p for first, last in spans for p in range(first, last + 1)]
    assert positions == list(range(1, len(positions) + 1))
    return len(positions)


def test_the_sealer_writes_blocks_by_source_in_id_order(block_chain):
    total = _assert_gap_free()
    assert total == AccessEvent.objects.count() + ChangeRecord.objects.count()
    assert not ChainLink.objects.exists() and not PendingEntry.objects.exists()
    for block in ChainBlock.objects.all():
        assert block.entry_ids == sorted(block.entry_ids)
        assert 1 <= len(block.entry_ids) <= 4
        assert len(block.entry_digests) == 32 * len(block.entry_ids)
        assert block.last_position - block.first_position + 1 == len(block.entry_ids)
    # One seal's blocks share their sealing time; a source's entries are never split by
    # the other source's within a seal.
    third = ChainBlock.objects.filter(entry_ids__overlap=block_chain["second"])
    assert {block.source for block in third} == {"access"}
    assert len({block.sealed_at for block in third}) == 1


def test_a_seal_of_more_blocks_than_a_statement_takes_parameters_for(db, monkeypatch):
    """A backlog sealed in more blocks than one INSERT's 65,535 parameters hold (7 a block)
    is written in several statements, and verifies."""
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_BLOCKS)
    monkeypatch.setattr(chain, "BLOCK_SIZE", 1)
    integrity.seal()
    count = 65_535 // 7 + 50
    raw(
        "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles,"
        " action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id,"
        " client_address, details)"
        " SELECT now(), 'anna.social', 'Socialförvaltningen', 'socialsekreterare', 'consult',"
        " 'casework.person', n::text, '[]', 'test', '', 'allowed', md5(n::text), '10.0.0.1',"
        " '{}'"
        " FROM generate_series(1, %s) AS n",
        [count],
    )
    assert integrity.seal() == count
    assert ChainBlock.objects.filter(last_position__gt=0).count() >= count
    result = integrity.verify(directory=None)
    assert result.ok, result.finding


def test_a_blocks_digests_are_its_entries_copy_line_hashes(block_chain):
    entry_layout = integrity.layout("access")
    block = _block_of("access", block_chain["first"][3])
    with connection.cursor() as cursor:
        found = chain.fetch_lines(cursor.connection, "access", block.entry_ids)
    assert bytes(block.entry_digests) == b"".join(
        bytes.fromhex(entry_layout.line_hash(found[entry_id])) for entry_id in block.entry_ids
    )


def test_a_chain_of_blocks_verifies_by_the_fast_path(block_chain, fast):
    result = _verify()
    assert result.ok, result.finding
    assert result.entries == _assert_gap_free()
    last = ChainBlock.objects.order_by("-last_position").first()
    assert result.head == last.chain_hash == integrity.head()[1]
    assert fast and all(answer is not None for answer in fast)


def test_the_fast_path_running_hash_is_the_blocks(block_chain):
    block = _block_of("access", block_chain["second"][0])
    before = blocks.hash_before(connection.cursor(), block.first_position - 1)
    with connection.cursor() as cursor:
        done = blocks._fast_chunk(
            cursor.connection, block.first_position, block.first_position, bytes.fromhex(before), []
        )
    assert done[0] == block.last_position + 1
    assert done[1] == bytes.fromhex(block.chain_hash)
    assert done[2] == len(block.entry_ids)


@pytest.mark.parametrize("index", [0, 5, 9])
def test_an_edited_entry_is_named(block_chain, fast, index):
    victim = block_chain["first"][index]
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET purpose = purpose || 'x' WHERE id = %s", [victim])
    finding = _verify().finding
    assert (finding.kind, finding.entry_id, finding.position) == (
        Problem.EDITED,
        victim,
        _position(victim),
    )
    assert None in fast  # the fast path declined, the diagnosis named it


def test_an_edited_change_record_is_named(block_chain):
    record = ChangeRecord.objects.get(data__name="Brickebacksskolan")
    with triggers_disabled():
        raw("UPDATE audit_changerecord SET row_id = 'x' WHERE id = %s", [record.pk])
    finding = _verify().finding
    assert (finding.kind, finding.source, finding.entry_id) == (
        Problem.EDITED,
        "history",
        record.pk,
    )


def test_a_deleted_entry_is_named(block_chain):
    victim = block_chain["first"][6]
    with triggers_disabled():
        raw("DELETE FROM audit_accessevent WHERE id = %s", [victim])
    finding = _verify().finding
    assert (finding.kind, finding.entry_id, finding.position) == (
        Problem.DELETED,
        victim,
        _position(victim),
    )


def test_two_swapped_entries_are_named_as_reordered(block_chain):
    block = _block_of("access", block_chain["first"][4])
    first, second = block.entry_ids[:2]
    swap_entry_ids(first, second)
    finding = _verify().finding
    assert (finding.kind, finding.entry_id) == (Problem.REORDERED, first)
    assert finding.position == block.first_position


@pytest.mark.parametrize("which", ["middle", "first"])
def test_a_deleted_block_is_named_with_its_positions(block_chain, which):
    ordered = list(ChainBlock.objects.order_by("first_position"))
    block = ordered[len(ordered) // 2] if which == "middle" else ordered[0]
    with triggers_disabled():
        raw("DELETE FROM audit_chainblock WHERE first_position = %s", [block.first_position])
    finding = _verify().finding
    assert (finding.kind, finding.position) == (Problem.DELETED, block.first_position)
    assert f"positions {block.first_position} to {block.last_position} were removed" in (
        finding.message
    )


def test_the_last_block_deleted_behind_a_checkpoint_is_found(block_chain, signing_key):
    integrity.write_checkpoint()
    last = ChainBlock.objects.order_by("-first_position").first()
    with triggers_disabled():
        raw("DELETE FROM audit_chainblock WHERE first_position = %s", [last.first_position])
    finding = integrity.verify(seal_first=False).finding
    assert finding.kind == Problem.TRUNCATED


def test_two_blocks_reordered_are_found(block_chain):
    """Two blocks of the same size trade places (positions renumbered to fit)."""
    ordered = [b for b in ChainBlock.objects.order_by("first_position") if len(b.entry_ids) == 4]
    one, other = ordered[0], ordered[1]
    with triggers_disabled():
        for block, place in ((one, -100), (other, one.first_position), (one, other.first_position)):
            raw(
                "UPDATE audit_chainblock SET first_position = %s, last_position = %s + 3"
                " WHERE chain_hash = %s",
                [place, place, block.chain_hash],
            )
    finding = _verify().finding
    assert finding.kind == Problem.CHAIN_BROKEN
    assert finding.position == one.first_position


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        (
            "UPDATE audit_chainblock SET sealed_at = sealed_at + interval '1 microsecond'",
            Problem.CHAIN_BROKEN,
        ),
        ("UPDATE audit_chainblock SET chain_hash = md5(chain_hash) || md5(chain_hash)", None),
        (
            "UPDATE audit_chainblock SET entry_ids[1] = entry_ids[2] + 0 * entry_ids[1]",
            Problem.CHAIN_BROKEN,
        ),
        (
            "UPDATE audit_chainblock SET entry_ids = ARRAY[entry_ids[2], entry_ids[1]]"
            " || entry_ids[3:]",
            Problem.REORDERED,
        ),
        (
            "UPDATE audit_chainblock SET entry_digests = overlay(entry_digests placing"
            " '\\x00' from 40)",
            Problem.EDITED,
        ),
        (
            "UPDATE audit_chainblock SET entry_digests = substring(entry_digests from 33)",
            Problem.CHAIN_BROKEN,
        ),
        ("UPDATE audit_chainblock SET source = 'history'", None),
    ],
)
def test_an_edited_block_is_found(block_chain, sql, kind):
    block = _block_of("access", block_chain["first"][5])
    with triggers_disabled():
        raw(sql + " WHERE first_position = %s", [block.first_position])
    finding = _verify().finding
    assert finding is not None, sql
    if kind is not None:
        assert finding.kind == kind
    assert block.first_position <= finding.position <= block.last_position


def test_shifted_positions_are_found(block_chain):
    """A block one position longer (and the next one shorter): the ids no longer agree."""
    block = _block_of("access", block_chain["first"][1])
    following = ChainBlock.objects.get(first_position=block.last_position + 1)
    with triggers_disabled():
        raw(
            "UPDATE audit_chainblock SET first_position = first_position + 1"
            " WHERE first_position = %s",
            [following.first_position],
        )
        raw(
            "UPDATE audit_chainblock SET last_position = last_position + 1"
            " WHERE first_position = %s",
            [block.first_position],
        )
    finding = _verify().finding
    assert (finding.kind, finding.position) == (Problem.CHAIN_BROKEN, block.first_position)


def test_a_forged_block_slipped_in_breaks_the_next(block_chain):
    """A forged entry in a block whose running hash is computed correctly, the blocks after
    it moved on by one: the next block no longer follows."""
    victim = _block_of("access", block_chain["second"][0])
    before = blocks.hash_before(connection.cursor(), victim.first_position - 1)
    with triggers_disabled():
        (forged,) = raw(
            "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
            "details) SELECT occurred_at, 'per.polis', organisation_name, roles, action, "
            "object_type, object_id, fields, purpose, legal_basis, outcome, request_id, details "
            "FROM audit_accessevent WHERE id = %s RETURNING id",
            [victim.entry_ids[0]],
        )[0]
        raw(
            "UPDATE audit_chainblock SET first_position = first_position + 1000001,"
            " last_position = last_position + 1000001 WHERE first_position >= %s",
            [victim.first_position],
        )
        raw(
            "UPDATE audit_chainblock SET first_position = first_position - 1000000,"
            " last_position = last_position - 1000000 WHERE first_position >= 1000000"
        )
        with connection.cursor() as cursor:
            line = chain.fetch_lines(cursor.connection, "access", [forged])[forged]
        digest = hashlib.sha256(integrity.layout("access").line_prefix + line).digest()
        sealed_at = victim.sealed_at
        forged_hash = chain.block_hash(
            bytes.fromhex(before),
            first=victim.first_position,
            last=victim.first_position,
            source="access",
            sealed_at=integrity.utc_iso(sealed_at),
            ids_text=str(forged).encode(),
            digests=digest,
        )
        raw(
            "INSERT INTO audit_chainblock (first_position, last_position, source, entry_ids,"
            " entry_digests, chain_hash, sealed_at) VALUES (%s, %s, 'access', %s, %s, %s, %s)",
            [
                victim.first_position,
                victim.first_position,
                [forged],
                digest,
                forged_hash.hex(),
                sealed_at,
            ],
        )
    finding = _verify().finding
    assert (finding.kind, finding.position) == (Problem.CHAIN_BROKEN, victim.first_position + 1)


def _seal_without_the_check(monkeypatch, pending_rows):
    """A sealer that chains what the queue names, however often (the attacker's own)."""
    monkeypatch.setattr(chain, "_not_yet_chained", lambda cursor, pending: pending)
    with triggers_disabled("audit_pendingentry"):
        for source, entry_id in pending_rows:
            raw(
                "INSERT INTO audit_pendingentry (source, entry_id) VALUES (%s, %s)",
                [source, entry_id],
            )
    integrity.seal()


def _insert_unsealed(like: int) -> int:
    with triggers_disabled():
        return raw(
            "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, request_id, "
            "details) SELECT occurred_at, 'per.polis', organisation_name, roles, action, "
            "object_type, object_id, fields, purpose, legal_basis, outcome, request_id, details "
            "FROM audit_accessevent WHERE id = %s RETURNING id",
            [like],
        )[0][0]


def test_an_entry_in_two_blocks_is_found_even_when_the_counts_agree(block_chain, monkeypatch):
    """Chained again in a later block (by a sealer without the check), and an entry slipped
    in beside it so that the log holds as many entries as the chain names."""
    twice = block_chain["first"][2]
    _insert_unsealed(twice)
    _seal_without_the_check(monkeypatch, [("access", twice)])
    assert ChainBlock.objects.filter(entry_ids__contains=[twice]).count() == 2
    finding = _verify().finding
    assert (finding.kind, finding.entry_id) == (Problem.CHAIN_BROKEN, twice)
    assert "sealed twice" in finding.message
    last = ChainBlock.objects.order_by("-first_position").first()
    assert finding.position == last.first_position


def test_an_entry_twice_in_one_block_is_found(block_chain, monkeypatch):
    fresh = consultations(1)[0]
    monkeypatch.setattr(chain, "_not_yet_chained", lambda cursor, pending: pending * 2)
    integrity.seal()
    last = ChainBlock.objects.order_by("-first_position").first()
    assert last.entry_ids == [fresh, fresh]
    finding = _verify().finding
    assert (finding.kind, finding.entry_id) == (Problem.CHAIN_BROKEN, fresh)
    assert finding.position == last.first_position + 1


def test_an_entry_outside_any_block_is_found(block_chain):
    inserted = _insert_unsealed(block_chain["first"][0])
    finding = _verify().finding
    assert (finding.kind, finding.source, finding.entry_id) == (
        Problem.INSERTED,
        "access",
        inserted,
    )


def test_the_sealer_skips_a_queue_row_of_an_entry_already_in_a_block(block_chain):
    chained = block_chain["first"][3]
    blocks_before = ChainBlock.objects.count()
    with triggers_disabled("audit_pendingentry"):
        raw("INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)", [chained])
    fresh = consultations(1)[0]
    assert integrity.seal() == 1
    assert ChainBlock.objects.count() == blocks_before + 1
    assert ChainBlock.objects.filter(entry_ids__contains=[chained]).count() == 1
    assert _position(fresh) == _assert_gap_free()
    assert _verify().ok


def test_a_checkpoint_that_no_longer_matches_is_found(block_chain, signing_key):
    """The last block sealed anew (same entries, another time): the chain holds together but
    its head differs from the signed one."""
    integrity.write_checkpoint()
    last = ChainBlock.objects.order_by("-first_position").first()
    with triggers_disabled("audit_chainblock", "audit_pendingentry"):
        raw("DELETE FROM audit_chainblock WHERE first_position = %s", [last.first_position])
        for entry_id in last.entry_ids:
            raw(
                "INSERT INTO audit_pendingentry (source, entry_id) VALUES (%s, %s)",
                [last.source, entry_id],
            )
    integrity.seal()
    finding = integrity.verify(seal_first=False).finding
    assert (finding.kind, finding.position) == (Problem.REWRITTEN, last.last_position)


def test_a_signed_head_inside_a_block_is_found(block_chain, signing_key, monkeypatch):
    """A checkpoint at a position a block now covers in its middle: no running hash there."""
    block = _block_of("access", block_chain["first"][5])
    monkeypatch.setattr(
        integrity.checkpoints, "head", lambda using: (block.first_position + 1, block.chain_hash)
    )
    integrity.write_checkpoint()
    finding = integrity.verify(seal_first=False).finding
    assert (finding.kind, finding.position) == (Problem.REWRITTEN, block.first_position + 1)


def test_a_chain_of_formats_1_2_and_3_verifies_and_names_tampering(db, monkeypatch, small_blocks):
    stretches = {}
    for entry_format in (chain.FORMAT_JSON, chain.FORMAT_LINES, chain.FORMAT_BLOCKS):
        monkeypatch.setattr(chain, "SEAL_FORMAT", entry_format)
        integrity.seal()
        stretches[entry_format] = consultations(9, purpose=AWKWARD)
        integrity.seal()
    formats = list(ChainLink.objects.order_by("position").values_list("format", flat=True))
    assert set(formats) == {1, 2} and formats == sorted(formats)
    result = _verify()
    assert result.ok, result.finding
    assert result.entries == ChainLink.objects.count() + sum(
        len(ids) for ids in ChainBlock.objects.values_list("entry_ids", flat=True)
    )
    for entry_format, ids in stretches.items():
        victim = ids[4]
        ((original,),) = raw("SELECT purpose FROM audit_accessevent WHERE id = %s", [victim])
        with triggers_disabled():
            raw("UPDATE audit_accessevent SET purpose = 'x' WHERE id = %s", [victim])
        finding = _verify().finding
        assert (finding.kind, finding.entry_id) == (Problem.EDITED, victim), entry_format
        with triggers_disabled():
            raw("UPDATE audit_accessevent SET purpose = %s WHERE id = %s", [original, victim])
    assert _verify().ok


def test_the_last_link_deleted_before_the_first_block_is_named(db, monkeypatch, small_blocks):
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    integrity.seal()
    consultations(3)
    integrity.seal()
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_BLOCKS)
    consultations(3)
    integrity.seal()
    last_link = ChainLink.objects.order_by("-position").first().position
    with triggers_disabled():
        raw("DELETE FROM audit_chainlink WHERE position = %s", [last_link])
    finding = _verify().finding
    assert (finding.kind, finding.position) == (Problem.DELETED, last_link)


def test_blocks_are_append_only(block_chain):
    from django.db import ProgrammingError, transaction

    for sql in (
        "UPDATE audit_chainblock SET source = source",
        "DELETE FROM audit_chainblock",
        "TRUNCATE audit_chainblock",
    ):
        with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
            raw("SET CONSTRAINTS ALL IMMEDIATE")
            raw(sql)


# --- In worker processes (committed for real: other connections see the log) ------------

committed = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "audit"]
)


@pytest.fixture
def committed_blocks(monkeypatch, small_blocks, settings):
    settings.AUDIT_SEAL_INTERVAL = None  # sealed here only
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    integrity.seal()
    links = consultations(5)
    integrity.seal()
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_BLOCKS)
    first = consultations(13, details={"text": AWKWARD})
    integrity.seal()
    second = consultations(11)
    integrity.seal()
    return {"links": links, "first": first, "second": second}


@committed
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ranges_that_begin_inside_a_block_verify(committed_blocks, workers):
    """The ranges of the worker processes are cut by position; a block is walked by the
    range it begins in, and the next range starts after it."""
    last = blocks.last_position(connection.cursor())
    cuts = [first for first, _ in verification._ranges(last, workers * 4)]
    spans = ChainBlock.objects.values_list("first_position", "last_position")
    assert workers == 1 or any(first < cut <= end for cut in cuts for first, end in spans)
    result = integrity.verify(directory=None, workers=workers)
    assert result.ok, result.finding
    assert result.entries == last
    assert result.head == integrity.head()[1]


@committed
@pytest.mark.parametrize("workers", [1, 2])
def test_tampering_is_named_by_the_worker_processes(committed_blocks, workers):
    victim = committed_blocks["second"][6]
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET details = '{\"x\": 1}' WHERE id = %s", [victim])
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.entry_id, finding.position) == (
        Problem.EDITED,
        victim,
        _position(victim),
    )


@committed
@pytest.mark.parametrize("workers", [1, 2])
def test_an_entry_in_blocks_of_two_ranges_is_found(committed_blocks, monkeypatch, workers):
    twice = committed_blocks["first"][1]
    _insert_unsealed(twice)
    _seal_without_the_check(monkeypatch, [("access", twice)])
    finding = integrity.verify(directory=None, workers=workers, seal_first=False).finding
    assert (finding.kind, finding.entry_id) == (Problem.CHAIN_BROKEN, twice)


@committed
def test_an_entry_in_a_link_and_a_block_is_found(committed_blocks, monkeypatch):
    twice = committed_blocks["links"][2]
    _insert_unsealed(twice)
    _seal_without_the_check(monkeypatch, [("access", twice)])
    finding = integrity.verify(directory=None, workers=2, seal_first=False).finding
    assert (finding.kind, finding.entry_id) == (Problem.CHAIN_BROKEN, twice)
    assert finding.position == ChainBlock.objects.order_by("-first_position")[0].first_position


def test_the_event_page_finds_an_entry_in_a_block(block_chain, monkeypatch):
    """``selectors.sealing_of`` (the auditor's event page): the entry's position in its
    block, the block's sealing time and running hash; a link of format 2 as before."""
    from audit.selectors import sealing_of

    victim = block_chain["first"][6]
    block = _block_of("access", victim)
    sealing = sealing_of("access", victim)
    assert (sealing.position, sealing.sealed_at, sealing.chain_hash) == (
        _position(victim),
        block.sealed_at,
        block.chain_hash,
    )
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    (linked,) = consultations(1)
    integrity.seal()
    link = ChainLink.objects.get(source="access", entry_id=linked)
    assert sealing_of("access", linked).position == link.position
    assert sealing_of("access", consultations(1)[0]) is None  # queued, not sealed


def test_a_signed_head_at_a_blocks_end_is_checked_by_the_fast_path(block_chain, signing_key, fast):
    integrity.write_checkpoint()
    consultations(5)
    integrity.write_checkpoint()
    result = integrity.verify(seal_first=False)
    assert result.ok, result.finding
    assert result.checkpoints == 2
    assert fast and all(answer is not None for answer in fast)


def test_a_copy_of_an_entry_under_its_own_id_fails_verification(block_chain):
    victim = block_chain["first"][1]
    with triggers_disabled():
        raw(
            "INSERT INTO audit_accessevent (id, occurred_at, username, organisation_name, "
            "roles, action, object_type, object_id, person_id, fields, purpose, legal_basis, "
            "outcome, request_id, client_address, details, user_id) OVERRIDING SYSTEM VALUE "
            "SELECT id, occurred_at + interval '1 microsecond', username, organisation_name, "
            "roles, action, object_type, object_id, person_id, fields, purpose, legal_basis, "
            "outcome, request_id, client_address, details, user_id "
            "FROM audit_accessevent WHERE id = %s",
            [victim],
        )
    assert AccessEvent.objects.filter(pk=victim).count() == 2
    assert not _verify().ok
