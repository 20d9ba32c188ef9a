"""The verifier outside a transaction (ADR 0031, session 20): the COPY walk in one
process reads the next chunk on a second connection while it hashes this one, and the
unsealed check's counts run beside the walk. These tests commit for real
(``transaction=True``): only then do other connections see the log.
"""

from __future__ import annotations

import threading

import pytest

from audit import integrity
from audit.integrity import Problem, chain, lines, verification
from audit.models import AccessEvent, ChainLink
from audit.services import Action, record_event

from .helpers import raw, triggers_disabled

pytestmark = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "audit"]
)


@pytest.fixture
def reads(monkeypatch, tmp_path):
    """Chunks of two links (a range of the walk's processes holds several); the chunks of
    format 2 read in a read-ahead thread (in a file: the worker processes write to it)."""
    monkeypatch.setattr(lines, "VERIFY_CHUNK", 2)
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 2)
    record = tmp_path / "reads"
    record.touch()
    real = lines.read_chunk

    def spy(connection, start, end):
        if threading.current_thread().name.startswith("audit-verify"):
            with record.open("a") as file:
                file.write(f"{start}\n")
        return real(connection, start, end)

    monkeypatch.setattr(lines, "read_chunk", spy)
    return lambda: [int(start) for start in record.read_text().split()]


@pytest.fixture
def format_1_between(monkeypatch, settings):
    """Links of format 2, then of format 1 (in the middle of a chunk), then of format 2
    again: the read-ahead meets chunks the COPY walk declines and goes on after them."""
    settings.AUDIT_SEAL_INTERVAL = None  # sealed here only: what is queued stays queued
    stretches = []
    for entry_format, count in ((chain.FORMAT_LINES, 9), (chain.FORMAT_JSON, 6)):
        monkeypatch.setattr(chain, "SEAL_FORMAT", entry_format)
        stretches.append([_consult(i).pk for i in range(count)])
        integrity.seal()
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    stretches.append([_consult(i).pk for i in range(13)])
    integrity.seal()
    return stretches


def _consult(index: int) -> AccessEvent:
    return record_event(action=Action.CONSULT, details={"i": index, "text": "tab\there"})


def _position(entry_id: int) -> int:
    return ChainLink.objects.get(source="access", entry_id=entry_id).position


@pytest.mark.parametrize("workers", [1, 2])
def test_the_read_ahead_verifies_a_chain_that_leaves_format_2_and_comes_back(
    format_1_between, reads, workers
):
    result = integrity.verify(directory=None, workers=workers)
    assert result.ok, result.finding
    assert result.entries == ChainLink.objects.count()
    assert result.head == ChainLink.objects.order_by("-position").first().chain_hash
    ahead = reads()
    if workers == 1:
        # Chunks were read ahead, after the format-1 stretch as well as before it.
        assert ahead and max(ahead) > _position(format_1_between[2][0])
    else:
        # A process a core: none is left idle for a read-ahead.
        assert ahead == []


@pytest.mark.parametrize("which", [0, 2])
@pytest.mark.parametrize("workers", [1, 2])
def test_an_edit_is_found_with_the_read_ahead_on_either_side_of_format_1(
    format_1_between, reads, workers, which
):
    victim = format_1_between[which][-3]
    with triggers_disabled():
        raw("UPDATE audit_accessevent SET purpose = 'x' WHERE id = %s", [victim])
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.entry_id, finding.position) == (
        Problem.EDITED,
        victim,
        _position(victim),
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_deleted_link_drops_the_read_ahead_and_is_named(format_1_between, reads, workers):
    """The per-link walk stops at the gap where the read-ahead expected a whole chunk."""
    position = _position(format_1_between[2][5])
    with triggers_disabled():
        raw("DELETE FROM audit_chainlink WHERE position = %s", [position])
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.position) == (Problem.DELETED, position)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_unsealed_check_beside_the_walk_names_an_inserted_entry(
    format_1_between, reads, workers
):
    """Its counts run on their own connection while the chain is walked; an entry added
    behind the log writer's back is still named, and the queue still counted."""
    with triggers_disabled():
        (inserted,) = raw(
            "INSERT INTO audit_accessevent (occurred_at, username, organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, "
            "request_id, details) SELECT occurred_at, 'per.polis', organisation_name, roles, "
            "action, object_type, object_id, fields, purpose, legal_basis, outcome, "
            "request_id, details FROM audit_accessevent WHERE id = %s RETURNING id",
            [format_1_between[0][0]],
        )
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.source, finding.entry_id) == (
        Problem.INSERTED,
        "access",
        inserted[0],
    )
    with triggers_disabled():
        raw("DELETE FROM audit_accessevent WHERE id = %s", [inserted[0]])
    _consult(99)  # queued, not sealed
    result = integrity.verify(directory=None, workers=workers, seal_first=False)
    assert result.ok, result.finding
    assert result.pending == 1
