"""The sealer thread: a commit wakes it, it seals off the writer's path, one thread a
process, and it stops cleanly (sealing what is queued, closing its connections).

The rest of the suite seals inline (``tests/conftest.py``); these tests switch the
thread on and commit for real.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from audit import integrity
from audit.models import AccessEvent, PendingEntry
from audit.services import Action, _sealer, record_event, stop_sealer

from .helpers import position_of

pytestmark = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "audit"]
)


@pytest.fixture
def sealer_thread(settings):
    settings.AUDIT_SEALER = "thread"
    settings.AUDIT_SEAL_INTERVAL = 0.05
    yield _sealer
    stop_sealer()
    assert _sealer._thread is None or not _sealer._thread.is_alive()


def _wait_until(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_commit_is_sealed_by_the_thread_not_by_the_writer(sealer_thread, monkeypatch):
    sealed_by: list[str] = []
    real_seal = integrity.seal

    def seal(**kwargs):
        sealed_by.append(threading.current_thread().name)
        return real_seal(**kwargs)

    monkeypatch.setattr(integrity, "seal", seal)
    with transaction.atomic():
        event = record_event(action=Action.CONSULT, purpose="sealer test")
        # Nothing is sealed before the commit.
        assert sealed_by == []
    assert _wait_until(lambda: position_of("access", event.pk) is not None)
    assert set(sealed_by) == {"samverkan-audit-sealer"}
    assert not PendingEntry.objects.exists()
    assert integrity.verify(directory=None).ok


def test_a_rolled_back_write_wakes_no_one(sealer_thread, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(_sealer, "wake", lambda using: calls.append(using))
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(action=Action.CONSULT, purpose="sealer test")
        raise RuntimeError("rolled back")
    assert calls == []
    assert not AccessEvent.objects.filter(purpose="sealer test").exists()


def test_many_commits_one_thread_every_entry_sealed_in_order(sealer_thread):
    ids = [record_event(action=Action.CONSULT, details={"n": n}).pk for n in range(60)]
    assert _wait_until(lambda: not PendingEntry.objects.exists())
    threads = [t for t in threading.enumerate() if t.name == "samverkan-audit-sealer"]
    assert len(threads) == 1
    positions = [position_of("access", pk) for pk in ids]
    assert positions == sorted(positions)
    assert integrity.verify(directory=None).ok


def test_stop_seals_what_is_queued_and_closes_the_connections(sealer_thread, settings):
    before = _other_backends()
    # The thread pauses an hour after its first seal: the stop must end the pause, not
    # wait it out (the join below would give up with the thread still alive).
    settings.AUDIT_SEAL_INTERVAL = 3600
    record_event(action=Action.CONSULT, purpose="first")
    assert _wait_until(lambda: not PendingEntry.objects.exists())
    last = record_event(action=Action.CONSULT, purpose="queued while it sleeps")
    _sealer.stop(timeout=60)
    assert not _sealer._thread.is_alive()
    assert position_of("access", last.pk) is not None
    assert _wait_until(lambda: _other_backends() == before)


def _thread_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_the_thread_keeps_its_session_between_seals(sealer_thread, settings):
    # CONN_MAX_AGE = 0 (the default) closes a request's session at its end; the thread's
    # is kept (SEALER_CONNECTION_AGE): a seal each second must not start a server backend
    # each second (docs/adr/0032, session 18).
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    before = _thread_backends()
    first = record_event(action=Action.CONSULT, purpose="first seal")
    assert _wait_until(lambda: position_of("access", first.pk) is not None)
    kept = _thread_backends() - before
    assert len(kept) == 1  # the thread's session, still open after its seal
    second = record_event(action=Action.CONSULT, purpose="second seal")
    assert _wait_until(lambda: position_of("access", second.pk) is not None)
    assert _thread_backends() - before == kept  # the same session sealed again
    stop_sealer()
    assert _wait_until(lambda: not (_thread_backends() & kept))  # closed when it stops


def test_a_broken_session_of_the_thread_is_replaced(sealer_thread, caplog):
    before = _thread_backends()
    first = record_event(action=Action.CONSULT, purpose="first seal")
    assert _wait_until(lambda: position_of("access", first.pk) is not None)
    (kept,) = _thread_backends() - before
    with connection.cursor() as cursor:  # the server ends the thread's session
        cursor.execute("SELECT pg_terminate_backend(%s)", [kept])
    assert _wait_until(lambda: kept not in _thread_backends())
    second = record_event(action=Action.CONSULT, purpose="after the session ended")
    assert _wait_until(lambda: position_of("access", second.pk) is not None)
    assert integrity.verify(directory=None).ok


def test_a_failing_seal_is_logged_without_values_and_retried(sealer_thread, monkeypatch, caplog):
    real_seal = integrity.seal
    failures = []

    def seal(**kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("database went away")
        return real_seal(**kwargs)

    monkeypatch.setattr(integrity, "seal", seal)
    event = record_event(action=Action.CONSULT, purpose="Känsligt syfte")
    assert _wait_until(lambda: position_of("access", event.pk) is not None)
    assert failures == [1]
    messages = [r.getMessage() for r in caplog.records if r.name == "audit.services"]
    assert any("sealing the audit chain failed" in m for m in messages)
    assert not any("Känsligt" in m for m in messages)
