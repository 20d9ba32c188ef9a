"""Concurrent writers: one unforked, gap-free, verifiable chain; rollbacks leave no trace.

These tests commit for real (``transaction=True``), with threads that each hold
their own database connection, as web workers do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, connections, transaction

from audit import integrity
from audit.models import AccessEvent, ChainLink, ChangeRecord
from audit.services import Action, record_event
from casework.models import Organisation

from .helpers import assert_one_verified_chain, position_of, sealed_entries, triggers_disabled

pytestmark = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "audit"]
)

WRITERS = 8
EVENTS_PER_WRITER = 40
ROOT = Path(__file__).resolve().parents[2]


def _run_writers(target) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(WRITERS)

    def run(number: int) -> None:
        try:
            barrier.wait()
            target(number)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_eight_concurrent_writers_make_one_unforked_chain(settings):
    settings.AUDIT_SEAL_INTERVAL = 0  # every commit tries to seal: maximal contention

    def write(number: int) -> None:
        for index in range(EVENTS_PER_WRITER):
            record_event(
                action=Action.CONSULT,
                purpose=f"writer {number}",
                details={"writer": number, "index": index},
            )

    assert _run_writers(write) == []
    assert AccessEvent.objects.filter(action=Action.CONSULT).count() == WRITERS * EVENTS_PER_WRITER
    assert sealed_entries()  # the writers sealed while writing
    integrity.seal()  # what they left for the next seal
    # Each writer's events are in the chain in its own order.
    for number in range(WRITERS):
        ids = list(AccessEvent.objects.filter(details__writer=number).values_list("id", flat=True))
        positions = [position_of("access", pk) for pk in sorted(ids)]
        assert positions == sorted(positions)
    assert_one_verified_chain()


def test_transactions_that_roll_back_leave_no_event_and_no_gap():
    def write(number: int) -> None:
        for index in range(10):
            try:
                with transaction.atomic():
                    record_event(action=Action.CHANGE, details={"writer": number, "i": index})
                    Organisation.objects.create(name=f"Org {number}-{index}", kind="other")
                    record_event(action=Action.CHANGE, details={"writer": number, "i": index})
                    if index % 3 == 0:
                        raise RuntimeError("the change fails")
            except RuntimeError:
                pass

    assert _run_writers(write) == []
    kept = [i for i in range(10) if i % 3]
    assert AccessEvent.objects.filter(action=Action.CHANGE).count() == WRITERS * len(kept) * 2
    assert Organisation.objects.filter(name__startswith="Org ").count() == WRITERS * len(kept)
    assert not AccessEvent.objects.filter(details__i__in=[0, 3, 6, 9]).exists()
    assert_one_verified_chain()


def test_a_denied_access_survives_the_rollback_of_its_transaction():
    with pytest.raises(PermissionError), transaction.atomic():
        Organisation.objects.create(name="Rullas tillbaka", kind="other")
        record_event(action=Action.CHANGE, details={"kept": False})
        record_event(
            action=Action.ACCESS_DENIED,
            outcome="denied",
            details={"path": "/arenden/", "kept": True},
            independent=True,
        )
        raise PermissionError
    assert not Organisation.objects.filter(name="Rullas tillbaka").exists()
    events = AccessEvent.objects.exclude(action=Action.ACCOUNT_CHANGE)
    assert list(events.values_list("action", "details__kept")) == [(Action.ACCESS_DENIED, True)]
    assert_one_verified_chain()


def test_a_failed_login_survives_the_rollback_of_its_transaction(django_user_model):
    from django.contrib.auth import authenticate

    django_user_model.objects.create_user("per.polis", password="rätt-lösenord-123")

    with pytest.raises(RuntimeError), transaction.atomic():
        assert authenticate(username="per.polis", password="fel-lösenord") is None
        raise RuntimeError("the request fails afterwards")
    failed = AccessEvent.objects.get(action=Action.LOGIN_FAILED)
    assert failed.username == "per.polis"
    assert failed.outcome == "denied"
    assert "fel-lösenord" not in str(AccessEvent.objects.values_list())


def _command(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    settings = connection.settings_dict
    host = settings["HOST"] or ""
    socket = host.startswith("/")  # the embedded server listens on a socket directory
    url = (
        f"postgres://{settings['USER']}:{settings.get('PASSWORD') or ''}@"
        f"{'' if socket else host}:{settings['PORT']}/{settings['NAME']}"
        + (f"?host={quote(host)}" if socket else "")
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SAMVERKAN_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "SAMVERKAN_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "keys" / "audit-signing.pem"),
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "audit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_exits_zero_with_the_count_or_one_naming_the_entry(tmp_path):
    for index in range(5):
        record_event(action=Action.CONSULT, details={"i": index})
    assert _command("keygen", tmp_path=tmp_path).returncode == 0
    checkpoint = _command("checkpoint", tmp_path=tmp_path)
    assert checkpoint.returncode == 0, checkpoint.stderr
    ok = _command("verify", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    count = len(sealed_entries())
    assert count == AccessEvent.objects.count() + ChangeRecord.objects.count()
    assert f"OK: {count} entries verified against 1 signed checkpoints" in ok.stdout

    target = AccessEvent.objects.filter(action=Action.CONSULT).order_by("id")[2]
    position = position_of("access", target.pk)
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_accessevent SET purpose = 'efterhandskonstruktion' WHERE id = %s",
            [target.pk],
        )
    bad = _command("verify", tmp_path=tmp_path)
    assert bad.returncode == 1
    assert f"position {position}, access entry #{target.pk}: edited" in bad.stderr


def _consultations_verified(count: int, *, workers: int):
    """``count`` consultations recorded and sealed: the chain verifies with ``workers``
    up to its head."""
    for index in range(count):
        record_event(action=Action.CONSULT, details={"i": index})
    integrity.seal()
    result = integrity.verify(directory=None, workers=workers)
    assert result.ok, result.finding
    assert result.head == integrity.head()[1]
    return result


def _assert_the_first_edit_is_found(first: int, second: int, edit: str, *, workers: int):
    """The consultations numbered ``first`` and ``second`` edited (``SET edit``), the later
    first: verification with ``workers`` reports the earlier one."""
    consultations = AccessEvent.objects.filter(action=Action.CONSULT).order_by("id")
    early, late = consultations[first], consultations[second]
    with triggers_disabled(), connection.cursor() as cursor:
        for event in (late, early):
            cursor.execute(f"UPDATE audit_accessevent SET {edit} WHERE id = %s", [event.pk])  # noqa: S608
    finding = integrity.verify(directory=None, workers=workers).finding
    assert (finding.kind, finding.entry_id) == ("edited", early.pk)


def test_parallel_verification_finds_the_first_bad_entry(monkeypatch):
    monkeypatch.setattr(integrity.verification, "VERIFY_CHUNK", 10)
    result = _consultations_verified(200, workers=3)
    assert result.entries == len(sealed_entries()) >= 200
    _assert_the_first_edit_is_found(57, 151, "details = '{}'", workers=3)


def _other_sessions() -> set[int]:
    """The other client sessions on this test database whose last statement read the
    chain or the log (a verification's reader; their backend pids). Sessions of anything else in the
    process (a live server's or a worker's thread of an earlier test) are not counted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND query ~ %s",
            ["audit_(chainlink|chainblock|accessevent|changerecord)"],
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_one_process_reading_ahead_finds_the_first_bad_entry(monkeypatch):
    """Outside a transaction a second connection reads the next chunk while this one is
    hashed: the result is the same as reading one chunk after the other."""
    monkeypatch.setattr(integrity.verification, "VERIFY_CHUNK", 7)
    # Sessions open before the walks (e.g. the audit alias's own connection) are not the
    # reader's: only a session the walks opened and left open would be a leak.
    before = _other_sessions()
    result = _consultations_verified(60, workers=1)
    assert result.entries == len(sealed_entries())
    _assert_the_first_edit_is_found(23, 41, "purpose = 'x'", workers=1)
    # The reader's connection is closed with the walk: no connection is left behind.
    assert _left_open(before) == set()


def _left_open(before: set[int], bound: float = 2.0) -> set[int]:
    """The reader sessions still open that were not open ``before``. A closed connection's
    backend leaves pg_stat_activity a moment after the client has closed it (milliseconds),
    so this waits up to ``bound`` seconds for that; a connection the walk left open (checked
    with the reader's close() removed) is still there then."""
    deadline = time.monotonic() + bound
    while (extra := _other_sessions() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return extra


@pytest.mark.parametrize("tamper", ["edit", "delete link", "swap"])
def test_tampering_in_the_last_range_is_found_with_the_default_processes(monkeypatch, tamper):
    """The processes share the chain out in ranges; tampering only in the last range (the
    earlier ones intact) is found and named at its position, as in one process. A chain of
    links (format 2: a link is deleted); blocks: ``test_chain_blocks``."""
    from audit.management.commands.audit import DEFAULT_VERIFY_WORKERS

    monkeypatch.setattr(integrity.chain, "SEAL_FORMAT", integrity.chain.FORMAT_LINES)
    workers = max(DEFAULT_VERIFY_WORKERS, 2)
    monkeypatch.setattr(integrity.verification, "VERIFY_CHUNK", 5)
    _consultations_verified(120, workers=workers)
    last = ChainLink.objects.order_by("-position").first().position
    ranges = integrity.verification._ranges(last, workers * 4)
    assert len(ranges) > 1 and last >= workers * 5  # several ranges, more than one process
    start = ranges[-1][0]
    link = ChainLink.objects.filter(source="access", position__gt=start).order_by("position")[1]
    with triggers_disabled(), connection.cursor() as cursor:
        if tamper == "edit":
            cursor.execute(
                "UPDATE audit_accessevent SET purpose = 'x' WHERE id = %s", [link.entry_id]
            )
        elif tamper == "delete link":
            cursor.execute("DELETE FROM audit_chainlink WHERE position = %s", [link.position])
        else:
            following = ChainLink.objects.get(position=link.position + 1)
            assert following.source == "access"
            for old, new in ((link.entry_id, -1), (following.entry_id, link.entry_id)):
                cursor.execute("UPDATE audit_accessevent SET id = %s WHERE id = %s", [new, old])
            cursor.execute(
                "UPDATE audit_accessevent SET id = %s WHERE id = -1", [following.entry_id]
            )
    finding = integrity.verify(directory=None, workers=workers).finding
    expected = {"edit": "edited", "delete link": "deleted", "swap": "reordered"}[tamper]
    assert (finding.kind, finding.position) == (expected, link.position)
    assert integrity.verify(directory=None, workers=1).finding.position == link.position
