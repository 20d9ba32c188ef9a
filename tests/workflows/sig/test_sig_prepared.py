"""The transition's statement is prepared on the server once per database session
(docs/adr/0032-one-statement-transition.md, Session 17): its first use on a session sends
``PREPARE`` and ``EXECUTE`` in one query, later uses ``EXECUTE`` alone — still one
statement a transition, the same rows — and the prepared statement outlives a rolled-back
transaction, is planned again after a schema change, is prepared again on a new session
and after the session lost it, and a first use that failed is not taken for prepared."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import history
from audit.models import AccessEvent, ChangeRecord
from casework.models import CaseEvent
from casework.services import cases as services
from casework.services import statements
from tests.conftest import COMMITTED_DB
from tests.workflows.racing import record
from tests.workflows.sig import prepared
from tests.workflows.sig.factories import PURPOSE, sig_case
from workflows.sig.models import Status

REASON = "Screeningen påbörjas: bedömning av behov."


def forget_prepared_reads() -> None:
    """After ``DEALLOCATE ALL``: the reads prepared on this session are gone too
    (``casework.compiled``, docs/adr/0036 session 21); forgotten, so that a later test's
    page inside a transaction does not take them for prepared (not under test here)."""
    from casework import compiled

    compiled._sessions.pop(connection.connection, None)


def begin_screening(users, case, reason: str | None = REASON) -> list[str]:
    """``begin_screening`` of ``case`` by Sara; the engine's statements sent (not the
    user's roles, read once per user object, nor savepoints)."""
    with CaptureQueriesContext(connection) as captured:
        services.transition(
            user=users["sara.samordnare"],
            case=case,
            name="begin_screening",
            purpose=PURPOSE,
            reason=reason,
        )
    return [query["sql"] for query in captured.captured_queries if prepared.name(query["sql"])]


def screened(case, before: dict) -> bool:
    """Whether ``case`` moved to screening with one timeline entry and one event more."""
    after = record(case)
    return (after["status"], after["version"], after["timeline"], after["transitions"]) == (
        Status.SCREENING,
        before["version"] + 1,
        before["timeline"] + 1,
        before["transitions"] + 1,
    )


def moved_once(users, reason: str | None = REASON) -> tuple[str, bool]:
    """A referred case moved to screening: the prepared statement it executed and
    whether that use prepared it (asserting one statement and the rows it wrote)."""
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    sent = begin_screening(users, case, reason)
    assert len(sent) == 1, sent
    assert screened(case, before)
    return prepared.name(sent[0]), prepared.prepares(sent[0])


@pytest.mark.django_db(databases=["default", "keystore", "audit"])
def test_a_statement_is_prepared_once_and_executed_after(users):
    name, _first = moved_once(users)  # prepared now or by an earlier test on this session
    assert name in prepared.on_server()
    again, prepares = moved_once(users)
    assert (again, prepares) == (name, False)  # the same shape: EXECUTE only


@pytest.mark.django_db(databases=["default", "keystore", "audit"])
def test_the_prepared_statement_outlives_a_rolled_back_transaction(users):
    class Undone(Exception):
        pass

    case = sig_case(users, Status.REFERRED)
    before = record(case)
    with pytest.raises(Undone), transaction.atomic():
        name = prepared.name(begin_screening(users, case)[0])
        raise Undone
    assert record(case) == before  # nothing of it kept …
    assert name in prepared.on_server()  # … but the prepared statement
    assert moved_once(users) == (name, False)


@pytest.mark.django_db(databases=["default", "keystore", "audit"])
def test_a_schema_change_plans_the_prepared_statement_again(users):
    name, _first = moved_once(users)
    with connection.cursor() as cursor:
        # The earlier transition's deferred checks first (a table with pending trigger
        # events cannot be altered in the same transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # What a migration may do under a running process: a new column on each of the
        # tables the statement writes, a new index.
        for table in ("casework_case", "workflows_sigcase", "casework_caseevent"):
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN session_17_probe integer")
        cursor.execute("CREATE INDEX session_17_probe ON casework_caseevent (to_state)")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    assert moved_once(users) == (name, False)


@pytest.mark.django_db(databases=["default", "keystore", "audit"])
def test_a_lost_statement_inside_a_transaction_raises_and_is_prepared_next(users):
    name, _first = moved_once(users)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's session reset would do
    forget_prepared_reads()
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    with pytest.raises(DatabaseError), transaction.atomic():
        begin_screening(users, case)
    assert record(case) == before
    assert moved_once(users) == (name, True)


@COMMITTED_DB
def test_a_new_session_prepares_again(users):
    name, _first = moved_once(users)
    connection.close()
    assert prepared.on_server() == set()
    assert moved_once(users) == (name, True)
    assert moved_once(users) == (name, False)


@COMMITTED_DB
def test_a_lost_statement_outside_a_transaction_is_prepared_again_at_once(users):
    name, _first = moved_once(users)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    forget_prepared_reads()
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    sent = begin_screening(users, case)
    # Refused by the server (nothing written: the statement is atomic), then prepared.
    assert [prepared.prepares(sql) for sql in sent] == [False, True]
    assert screened(case, before)
    assert name in prepared.on_server()


@COMMITTED_DB
def test_a_failed_first_use_prepares_under_a_new_name(users):
    """A first use whose PREPARE took effect but whose statement failed: the next use
    does not take the name for unprepared (its PREPARE would fail) nor for prepared."""
    connection.close()  # a new session: the next transition is a first use
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE casework_caseevent ADD CONSTRAINT session_17_refuse"
            " CHECK (transition <> 'begin_screening') NOT VALID"
        )
    try:
        with pytest.raises(DatabaseError):
            begin_screening(users, case)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE casework_caseevent DROP CONSTRAINT session_17_refuse")
    assert record(case) == before
    (refused,) = prepared.on_server()  # the PREPARE outlived the failed statement
    name, prepares = moved_once(users)
    assert prepares and name != refused
    assert prepared.on_server() == {refused, name}


@COMMITTED_DB
def test_the_history_context_goes_with_the_first_and_later_uses(users):
    """The request's context (``set_config`` prefixed to the query) reaches the change
    records of the statement's first use (``PREPARE …; EXECUTE …``) and later ones."""
    sara = users["sara.samordnare"]
    connection.close()
    uses = []
    for request_id in ("r-first", "r-later"):
        case = sig_case(users, Status.REFERRED)
        known = set(ChangeRecord.objects.values_list("id", flat=True))
        metadata = {"user_id": sara.pk, "username": sara.username, "request_id": request_id}
        with history.context(metadata):
            sent = begin_screening(users, case)
        uses.append(prepared.prepares(sent[-1]))
        records = ChangeRecord.objects.exclude(id__in=known).filter(row_id=str(case.pk))
        assert "workflows_sigcase" in {record.table_name for record in records}
        assert {record.context["request_id"] for record in records} == {request_id}
        assert CaseEvent.objects.filter(case_id=case.pk, transition="begin_screening").exists()
        assert AccessEvent.objects.filter(
            object_id=str(case.pk), details__transition="begin_screening"
        ).exists()
    assert uses == [True, False]


@COMMITTED_DB
def test_past_the_cap_the_least_recently_used_statement_is_deallocated(users, monkeypatch):
    monkeypatch.setattr(statements, "PREPARED_PER_SESSION", 1)
    connection.close()  # a new session: nothing prepared yet
    with_reason, _first = moved_once(users)
    without, prepares = moved_once(users, reason=None)  # another shape: no reason's value
    assert prepares and without != with_reason
    assert prepared.on_server() == {without}
    assert moved_once(users) == (with_reason, True)  # prepared again when it comes back
    assert prepared.on_server() == {with_reason}
