"""Chain format 2 (ADR 0031, session 19): an entry hashed as its row's COPY text line.

The tamper tests of ``test_integrity`` and ``test_partitions`` run against chains of both
formats (their fixtures take ``chain_format``); here: a chain that changes format verifies,
the COPY walk accepts an intact chunk and declines every tampered one (the per-link walk
then names the problem), and the Python writer of a COPY line (``verify-archive``) is
byte-equal to PostgreSQL's.
"""

from __future__ import annotations

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import integrity
from audit.integrity import Problem, chain, lines, verification
from audit.models import AccessEvent, ChainLink

from .helpers import answers_of, consultations, raw, swap_entry_ids, triggers_disabled

AWKWARD = "tab\there, new\nline, cr\r, back\\slash, \\N, bell\x07, del\x7f, 'quote\" 🦔 é"


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of three links: a short chain has many, and both walks meet at their edges."""
    monkeypatch.setattr(lines, "VERIFY_CHUNK", 3)
    monkeypatch.setattr(verification, "VERIFY_CHUNK", 3)


@pytest.fixture
def accepted(monkeypatch):
    """What the COPY walk answered for each chunk offered to it."""
    return answers_of(monkeypatch, verification, "walk_chunk")


@pytest.fixture
def mixed_chain(db, monkeypatch, small_chunks):
    """Links of format 1, then of format 2 (the sealer switched between two seals)."""
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_JSON)
    first = consultations(7, purpose=AWKWARD)
    integrity.seal()
    monkeypatch.setattr(chain, "SEAL_FORMAT", chain.FORMAT_LINES)
    second = consultations(8, purpose=AWKWARD, details={"text": AWKWARD, "n": [1, {"b": None}]})
    integrity.seal()
    return {"format1": first, "format2": second}


def _position(entry_id: int) -> int:
    return ChainLink.objects.get(source="access", entry_id=entry_id).position


def test_a_chain_that_changes_format_verifies(mixed_chain, accepted):
    formats = list(ChainLink.objects.values_list("format", flat=True))
    assert formats == sorted(formats) and {1, 2} <= set(formats)
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert result.entries == len(formats)
    assert any(answer is not None for answer in accepted)  # the COPY walk did the work


def test_the_copy_walk_accepts_an_intact_chunk_with_its_running_hash(mixed_chain):
    last = ChainLink.objects.order_by("position").last()
    first = _position(mixed_chain["format2"][0])
    before = ChainLink.objects.get(position=first - 1).chain_hash
    with connection.cursor() as cursor:
        digest = lines.walk_chunk(cursor.connection, first, last.position, bytes.fromhex(before))
        assert digest == bytes.fromhex(last.chain_hash)
        # A chunk reaching into format 1 is left to the per-link walk.
        assert lines.walk_chunk(cursor.connection, first - 1, last.position, b"\0" * 32) is None


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("UPDATE audit_accessevent SET purpose = purpose || 'x' WHERE id = {id}", Problem.EDITED),
        (
            """UPDATE audit_accessevent SET details = '{{"x": 1}}' WHERE id = {id}""",
            Problem.EDITED,
        ),
        (
            "UPDATE audit_accessevent SET person_id = gen_random_uuid() WHERE id = {id}",
            Problem.EDITED,
        ),
        ("DELETE FROM audit_accessevent WHERE id = {id}", Problem.DELETED),
        ("DELETE FROM audit_chainlink WHERE position = {position}", Problem.DELETED),
        (
            "UPDATE audit_chainlink SET format = 3 - format WHERE position = {position}",
            Problem.EDITED,
        ),
        ("UPDATE audit_chainlink SET format = 3 WHERE position = {position}", None),
        (
            "UPDATE audit_chainlink SET sealed_at = sealed_at + interval '1 microsecond' "
            "WHERE position = {position}",
            Problem.CHAIN_BROKEN,
        ),
        (
            "UPDATE audit_chainlink SET entry_hash = md5(entry_hash) || md5(entry_hash) "
            "WHERE position = {position}",
            Problem.EDITED,
        ),
    ],
)
@pytest.mark.parametrize("which", ["format1", "format2"])
def test_tampering_on_either_side_of_the_change_is_named(mixed_chain, accepted, sql, kind, which):
    victim = mixed_chain[which][4]
    position = _position(victim)
    with triggers_disabled():
        raw(sql.format(id=victim, position=position))
    finding = integrity.verify(directory=None, seal_first=False).finding
    assert finding is not None, sql
    assert finding.position == position or finding.entry_id == victim
    if kind is not None:
        assert finding.kind == kind
    else:
        assert finding.kind == Problem.CHAIN_BROKEN and "chain format" in finding.message


def test_a_swap_of_two_format_2_entries_is_named_as_reordered(mixed_chain):
    # Two entries in one chunk of three links (the diagnosis looks within the chunk).
    first, second = next(
        (a, b)
        for a, b in zip(mixed_chain["format2"], mixed_chain["format2"][1:], strict=False)
        if (_position(a) - 1) // 3 == (_position(b) - 1) // 3
    )
    swap_entry_ids(first, second)
    finding = integrity.verify(directory=None, seal_first=False).finding
    assert finding.kind == Problem.REORDERED
    assert finding.position == _position(first)


def test_a_sealed_entry_hash_is_the_hash_of_its_copy_line(mixed_chain):
    entry_layout = integrity.layout("access")
    for entry_id in mixed_chain["format2"]:
        with connection.cursor() as cursor:
            line = chain.fetch_lines(cursor.connection, "access", [entry_id])[entry_id]
        link = ChainLink.objects.get(source="access", entry_id=entry_id)
        assert entry_layout.line_hash(line) == link.entry_hash
        # verify-archive's writer of the line, from the values as the export holds them
        with connection.cursor() as cursor:
            cursor.execute(entry_layout.select_sql, [[entry_id]])
            assert entry_layout.copy_line(cursor.fetchone()) == line


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    row=st.tuples(
        st.none() | _TEXT, st.none() | st.integers(-(2**63), 2**63 - 1), st.none() | _TEXT
    )
)
def test_the_python_copy_line_is_what_postgresql_writes(db, row):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS copy_probe (a text, b bigint, c text)")
        cursor.execute("TRUNCATE copy_probe")
        cursor.execute("INSERT INTO copy_probe VALUES (%s, %s, %s)", list(row))
        written = list(
            chain.copy_lines(cursor.connection, b"COPY (SELECT a, b, c FROM copy_probe) TO STDOUT")
        )
    assert written == [integrity.layout("access").copy_line(row)]


def test_a_copy_of_an_entry_under_its_own_id_fails_verification(mixed_chain):
    victim = mixed_chain["format2"][1]
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
    assert not integrity.verify(directory=None, seal_first=False).ok


@pytest.mark.django_db(transaction=True)
def test_reading_copy_lines_lets_other_threads_run_while_the_server_works():
    """The sealer's thread reads COPY lines while requests run in the same process: the
    wait for the server must not hold the GIL. The COPY waits for a lock this thread
    holds and releases only by running Python; a wait that held the GIL would stall the
    release until the COPY's lock timeout refused it."""
    import threading

    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    holder = psycopg.connect(**params, autocommit=True)
    reader = psycopg.connect(**params, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(4242)")
        reader.execute("SET lock_timeout = '5s'")
        outcome: dict = {}
        started = threading.Event()

        def read() -> None:
            started.set()
            try:
                outcome["lines"] = list(
                    chain.copy_lines(reader, b"COPY (SELECT pg_advisory_lock(4242)) TO STDOUT")
                )
            except psycopg.Error as error:
                outcome["error"] = type(error).__name__

        thread = threading.Thread(target=read)
        thread.start()
        started.wait()
        # Until the reader's COPY is waiting for the lock, then release it from here.
        while (
            thread.is_alive()
            and not holder.execute(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
        ):
            pass
        holder.execute("SELECT pg_advisory_unlock(4242)")
        thread.join()
        assert outcome == {"lines": [b"\n"]}
    finally:
        holder.close()
        reader.close()
