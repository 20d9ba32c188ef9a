"""Reads run together prepared once per database session (``casework.compiled.run_together``
with ``prepared=True``; docs/adr/0036-fast-pages.md, session 21): the first use on a session
sends each read's ``PREPARE`` with the ``EXECUTE``s, later uses the ``EXECUTE``s alone — one
execution either way, the same rows as the reads unprepared — no audit context goes with them,
a session that lost them prepares them again, a query that failed after preparing is not taken
for prepared, and past the bound the least recently used read is deallocated."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import history
from casework import compiled
from casework.compiled import CompiledQuery, RawRows, run_together
from casework.models import Organisation
from casework.services import statements
from tests.conftest import COMMITTED_DB

_BY_ID = CompiledQuery(
    lambda organisation_id: Organisation.objects.filter(pk=organisation_id),
    organisation_id=-5_120_000_777,
)
_NAMED = CompiledQuery(
    lambda name: Organisation.objects.filter(name=name).order_by("pk"),
    name="session 21: no organisation's name",
)
# A literal percent sign beside a parameter used twice.
_RAW = RawRows("SELECT %(word)s::text || '%%', %(word)s::text || %(n)s::text")


def _on_server() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'samverkan\\_read\\_%%'"
        )
        return {row[0] for row in cursor.fetchall()}


def _deallocate_all() -> None:
    """What a pooler's session reset would do: every prepared statement of the session
    gone, the reads' and the transition engine's (``casework.services.statements``)."""
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")


def _fresh_session() -> None:
    """Nothing prepared on this session (as a new one): the server's statements and the
    bookkeeping of both kinds, so that no later test on this session takes a name for
    prepared that is not."""
    _deallocate_all()
    compiled._sessions.pop(connection.connection, None)
    statements._sessions.pop(connection.connection, None)


def _reads(organisation: Organisation) -> list[tuple]:
    return [
        (_BY_ID, {"organisation_id": organisation.pk}),
        (_RAW, {"word": "ord", "n": 21}),
        (_NAMED, {"name": organisation.name}),
    ]


def _run(reads, **options) -> tuple[list, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        found = run_together(*reads, **options)
    return found, [query["sql"] for query in captured.captured_queries]


def _columns(found) -> list:
    return [
        [
            {k: v for k, v in vars(row).items() if k != "_state"} if hasattr(row, "_meta") else row
            for row in rows
        ]
        for rows in found
    ]


def _ids(found) -> list:
    return [[row.pk for row in found[0]], found[1], [row.pk for row in found[2]]]


@pytest.fixture
def organisation(db):
    return Organisation.objects.create(name="Session 21 100%-skolan", kind="school")


@pytest.mark.django_db
def test_prepared_once_then_executed_giving_the_rows_unprepared(organisation):
    connection.ensure_connection()
    _fresh_session()
    plain, [sent] = _run(_reads(organisation))
    assert "PREPARE" not in sent and "EXECUTE" not in sent
    first, [prepares] = _run(_reads(organisation), prepared=True)
    assert prepares.count("PREPARE samverkan_read_") == 3
    assert prepares.count("EXECUTE samverkan_read_") == 3
    again, [executes] = _run(_reads(organisation), prepared=True)
    assert "PREPARE" not in executes and executes.count("EXECUTE samverkan_read_") == 3
    assert len(_on_server()) == 3
    assert (
        _ids(first)
        == _ids(again)
        == _ids(plain)
        == [
            [organisation.pk],
            [("ord%", "ord21")],
            [organisation.pk],
        ]
    )
    # The same instances as unprepared (every column, Django's converters).
    assert _columns(first) == _columns(again) == _columns(plain)


@pytest.mark.django_db
def test_a_read_used_twice_in_one_query_is_prepared_once(organisation):
    connection.ensure_connection()
    _fresh_session()
    other = Organisation.objects.create(name="Session 21 fritidsgården", kind="leisure")
    found, [sent] = _run(
        [(_BY_ID, {"organisation_id": organisation.pk}), (_BY_ID, {"organisation_id": other.pk})],
        prepared=True,
    )
    assert sent.count("PREPARE") == 1 and sent.count("EXECUTE") == 2
    assert [[row.pk for row in rows] for rows in found] == [[organisation.pk], [other.pk]]


@pytest.mark.django_db
def test_no_audit_context_goes_with_a_prepared_read(organisation):
    """A query of prepared reads changes nothing: ``audit.history`` sets no context for it
    (a ``set_config`` prefixed would be the query's first result)."""
    connection.ensure_connection()
    _fresh_session()
    with history.context({"request_id": "r-21"}):
        first, [prepares] = _run(_reads(organisation), prepared=True)
        again, [executes] = _run(_reads(organisation), prepared=True)
    assert prepares.startswith("PREPARE samverkan_read_")
    assert executes.startswith("EXECUTE samverkan_read_")
    assert _ids(first) == _ids(again) == [[organisation.pk], [("ord%", "ord21")], [organisation.pk]]
    # The transition engine's prepared statement still carries it.
    assert history._is_dml("EXECUTE samverkan_move_0123 (1)")
    assert history._is_dml("PREPARE samverkan_move_0123 AS UPDATE x SET y = 1")
    assert not history._is_dml("EXECUTE samverkan_read_0123 (1)")


def test_only_a_select_is_prepared_as_a_read():
    with pytest.raises(ValueError):
        compiled._prepared_forms("UPDATE casework_organisation SET name = %s", 0)
    with pytest.raises(ValueError):
        compiled._prepared_forms("WITH x AS (DELETE FROM casework_organisation) SELECT 1", 0)


@pytest.mark.django_db
def test_a_lost_statement_inside_a_transaction_raises_and_is_prepared_next(organisation):
    connection.ensure_connection()
    _fresh_session()
    _run(_reads(organisation), prepared=True)
    _deallocate_all()
    statements._sessions.pop(connection.connection, None)  # the engine's: not under test
    with pytest.raises(ProgrammingError), transaction.atomic():
        _run(_reads(organisation), prepared=True)
    found, [sent] = _run(_reads(organisation), prepared=True)
    assert sent.count("PREPARE samverkan_read_") == 3
    assert _ids(found) == [[organisation.pk], [("ord%", "ord21")], [organisation.pk]]


@COMMITTED_DB
def test_a_lost_statement_outside_a_transaction_is_prepared_again_at_once():
    organisation = Organisation.objects.create(name="Session 21 100%-skolan", kind="school")
    _run(_reads(organisation), prepared=True)
    _deallocate_all()
    statements._sessions.pop(connection.connection, None)  # the engine's: not under test
    found, sent = _run(_reads(organisation), prepared=True)
    # Refused by the server (a read: nothing done), then prepared and run.
    assert ["PREPARE" in sql for sql in sent] == [False, True]
    assert _ids(found) == [[organisation.pk], [("ord%", "ord21")], [organisation.pk]]
    assert len(_on_server()) == 3


@pytest.mark.django_db
def test_a_failed_query_that_prepared_prepares_under_new_names(organisation):
    """A query whose ``PREPARE``s took effect but whose read failed: the next use takes
    none of its names for prepared (nor for unprepared)."""
    connection.ensure_connection()
    _fresh_session()
    dividing = RawRows("SELECT 1 / %(d)s::int")
    with pytest.raises(DatabaseError), transaction.atomic():
        _run([*_reads(organisation), (dividing, {"d": 0})], prepared=True)
    refused = _on_server()
    found, [sent] = _run([*_reads(organisation), (dividing, {"d": 1})], prepared=True)
    assert sent.count("PREPARE samverkan_read_") == 4
    assert found[3] == [(1,)]
    names = set(compiled._sessions[connection.connection].names)
    assert len(names) == 4 and not names & refused
    assert all(name.endswith("_1") for name in names)


@pytest.mark.django_db
def test_past_the_bound_the_least_recently_used_read_is_deallocated(organisation, monkeypatch):
    monkeypatch.setattr(compiled, "PREPARED_READS_PER_SESSION", 1)
    connection.ensure_connection()
    _fresh_session()
    by_id = [(_BY_ID, {"organisation_id": organisation.pk})]
    by_name = [(_NAMED, {"name": organisation.name})]
    _run(by_id, prepared=True)
    (kept,) = _on_server()
    found, [second] = _run(by_name, prepared=True)
    assert "PREPARE" in second and f"DEALLOCATE {kept}" in second
    assert [row.pk for row in found[0]] == [organisation.pk]
    assert _on_server() == set(compiled._sessions[connection.connection].names)
    assert len(_on_server()) == 1 and kept not in _on_server()
    found, [third] = _run(by_id, prepared=True)  # prepared again when it comes back
    assert "PREPARE" in third and [row.pk for row in found[0]] == [organisation.pk]
    assert _on_server() == {kept}
