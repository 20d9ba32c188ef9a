"""Chain format 3 (ADR 0031, session 22) and the archive: a month whose events lie in blocks
(blocks that also hold events of the months around it) is exported, verified on its own and
against the chain, detached, and ``audit verify`` still checks every block."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from audit import integrity
from audit.integrity import Problem, chain
from audit.integrity.partitions import partition_name
from audit.models import ArchivedPartition, ChainBlock, ChainLink

from .helpers import raw, triggers_disabled
from .test_partitions import EARLIER, PAST, _at, _insert


@pytest.fixture
def block_months(db, monkeypatch):
    """Events of two past months and this one, sealed in blocks of four: the past month's
    events share blocks with both neighbours."""
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_BLOCKS)
    monkeypatch.setattr(chain, "BLOCK_SIZE", 4)
    for month in (EARLIER, PAST):
        raw("SELECT audit_create_event_partition(%s)", [month])
    integrity.seal()
    log = {"earlier": _insert(_at(EARLIER)), "past": _insert(_at(PAST), 6)}
    log["now"] = _insert(_at(PAST.replace(year=PAST.year + 1)), 2)
    integrity.seal()
    assert not ChainLink.objects.filter(source="access").exists()
    return log


@pytest.fixture
def archived(block_months, signing_key, tmp_path):
    out = tmp_path / "archive"
    call_command(
        "audit", "archive", "--month", f"{PAST:%Y-%m}", "--out", str(out), stdout=io.StringIO()
    )
    return out / f"{partition_name(PAST)}.manifest.json"


def _verify(**kwargs):
    return integrity.verify(directory=None, **kwargs)


def test_the_past_months_events_share_blocks_with_other_months(block_months):
    past = set(block_months["past"])
    shared = [
        block
        for block in ChainBlock.objects.filter(source="access")
        if past & set(block.entry_ids) and not set(block.entry_ids) <= past
    ]
    assert len(shared) >= 2


def test_a_detached_month_of_blocks_leaves_a_log_that_verifies(block_months, archived):
    record = ArchivedPartition.objects.get()
    assert record.entries == 6
    assert record.id_ranges == [[min(block_months["past"]), max(block_months["past"])]]
    result = _verify()
    assert result.ok, result.finding
    assert result.archived == 6


def test_the_export_of_blocks_verifies_on_its_own_and_against_the_chain(block_months, archived):
    keys = integrity.trusted_public_keys()
    check = integrity.partitions.verify_archive(archived, keys)
    assert check.ok, check.problem
    assert check.entries == 6
    assert integrity.partitions.verify_archive(archived, keys, using="default").ok
    call_command(
        "audit", "verify-archive", str(archived), "--against-database", stdout=io.StringIO()
    )


def _rewrite(archived, change) -> None:
    export = archived.with_name(f"{partition_name(PAST)}.jsonl")
    lines = export.read_text().splitlines()
    change(lines)
    export.write_text("\n".join(lines) + "\n")


def _edit_item(lines, wanted, edit) -> None:
    index = next(i for i, line in enumerate(lines[1:], 1) if wanted(json.loads(line)))
    item = json.loads(lines[index])
    edit(item, json.loads(lines[0]))
    lines[index] = json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _row(item, header):
    item["row"][header["columns"].index("purpose")] = "ändrat"


def _digest(item, header):
    item["digests"] = "00" + item["digests"][2:]


def _ids(item, header):
    item["ids"] = item["ids"][::-1]


def _place(item, header):
    item["position"] += 1


@pytest.mark.parametrize(
    ("wanted", "edit"),
    [
        (lambda item: "row" in item, _row),
        (lambda item: "block" in item, _digest),
        (lambda item: "block" in item, _ids),
        (lambda item: "row" in item, _place),
        (lambda item: "row" in item, None),
    ],
    ids=["row", "digest", "ids", "position", "dropped event"],
)
def test_a_tampered_export_of_blocks_fails(block_months, archived, wanted, edit):
    if edit is None:

        def change(lines):
            del lines[next(i for i, line in enumerate(lines) if '"row"' in line)]

    else:

        def change(lines):
            _edit_item(lines, wanted, edit)

    _rewrite(archived, change)
    check = integrity.partitions.verify_archive(archived, integrity.trusted_public_keys())
    assert not check.ok
    with pytest.raises(CommandError, match="FAILED"):
        call_command("audit", "verify-archive", str(archived))


def test_an_export_against_a_changed_block_in_the_database_fails(block_months, archived):
    block = ChainBlock.objects.filter(entry_ids__contains=[block_months["past"][0]]).get()
    with triggers_disabled("audit_chainblock"):
        raw(
            "UPDATE audit_chainblock SET sealed_at = sealed_at + interval '1 second'"
            " WHERE first_position = %s",
            [block.first_position],
        )
    keys = integrity.trusted_public_keys()
    assert integrity.partitions.verify_archive(archived, keys).ok
    assert "differs" in integrity.partitions.verify_archive(archived, keys, using="default").problem


def test_a_changed_digest_of_an_archived_event_is_found(block_months, archived):
    victim = block_months["past"][2]
    block = ChainBlock.objects.filter(entry_ids__contains=[victim]).get()
    index = block.entry_ids.index(victim)
    with triggers_disabled("audit_chainblock"):
        raw(
            "UPDATE audit_chainblock SET entry_digests = overlay(entry_digests placing"
            " '\\x00' from %s) WHERE first_position = %s",
            [32 * index + 1, block.first_position],
        )
    finding = _verify(seal_first=False).finding
    assert (finding.kind, finding.position) == (Problem.CHAIN_BROKEN, block.first_position)


def test_after_detaching_tampering_with_a_live_event_of_a_shared_block_is_found(
    block_months, archived
):
    victim = block_months["now"][0]
    with triggers_disabled("audit_accessevent"):
        raw("DELETE FROM audit_accessevent WHERE id = %s", [victim])
    finding = _verify(seal_first=False).finding
    assert (finding.kind, finding.entry_id) == (Problem.DELETED, victim)


def test_a_month_with_an_event_outside_any_block_is_not_archived(
    block_months, signing_key, tmp_path
):
    block = ChainBlock.objects.filter(entry_ids__contains=[block_months["earlier"][0]]).get()
    with triggers_disabled("audit_chainblock"):
        raw("DELETE FROM audit_chainblock WHERE first_position = %s", [block.first_position])
    with pytest.raises(CommandError, match="not sealed"):
        call_command("audit", "archive", "--month", f"{EARLIER:%Y-%m}", "--out", str(tmp_path))
