"""The verifier outside a transaction (ADR 0031, sessions 20 and 21): the COPY walk over
chunks of format 2 with a stretch of format 1 between them, in one process and in
several, and the unsealed check's counts beside the walk. These tests commit for real
(``transaction=True``): only then do other connections see the log.
"""

from __future__ import annotations

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
def small_chunks(monkeypatch):
    """Chunks of two links: a range of the walk's processes holds several."""
    monkeypatch.setattr(lines, "VERIFY_CHUNK", 2)
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 2)


@pytest.fixture
def format_1_between(monkeypatch, settings):
    """Links of format 2, then of format 1 (in the middle of a chunk), then of format 2
    again: the COPY walk declines chunks of the middle stretch and takes up after them."""
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
def test_the_walk_verifies_a_chain_that_leaves_format_2_and_comes_back(
    format_1_between, small_chunks, workers
):
    result = integrity.verify(directory=None, workers=workers)
    assert result.ok, result.finding
    assert result.entries == ChainLink.objects.count()
    assert result.head == ChainLink.objects.order_by("-position").first().chain_hash


@pytest.mark.parametrize("which", [0, 2])
@pytest.mark.parametrize("workers", [1, 2])
def test_an_edit_is_found_on_either_side_of_format_1(
    format_1_between, small_chunks, workers, which
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
def test_a_deleted_link_is_named(format_1_between, small_chunks, workers):
    """The COPY walk declines the chunk with the gap; the per-link walk names it."""
    position = _position(format_1_between[2][5])
    with triggers_disabled():
        raw("DELETE FROM audit_chainlink WHERE position = %s", [position])
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.position) == (Problem.DELETED, position)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_unsealed_check_beside_the_walk_names_an_inserted_entry(
    format_1_between, small_chunks, workers
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
