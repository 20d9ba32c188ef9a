"""Issue 14, finding 7: the chain cannot be jammed, and `audit verify` needs a fresh checkpoint.

- A row in the pending-seal queue that the trigger did not write (a duplicate of a
  queued or sealed entry, an id that does not exist yet) used to make every seal,
  checkpoint and verification fail for good. The queue now takes rows only from its
  trigger, has one row per entry, and the sealer skips what is already chained.
- `audit verify` used to report success with no checkpoint at all; it now fails
  when there is none or when the newest is older than AUDIT_CHECKPOINT_MAX_AGE.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from audit import integrity
from audit.integrity import Problem
from audit.models import AccessEvent, ChangeRecord, PendingEntry
from audit.services import Action, record_event

from .helpers import position_of, raw, sealed_entries, times_sealed, triggers_disabled

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sealed(db):
    """A few events, all sealed; returns the last one."""
    for index in range(3):
        last = record_event(action=Action.CONSULT, details={"i": index})
    integrity.seal()
    return last


def _try_insert(sql: str, params=()) -> bool:
    """Run ``sql`` as the application would (raw SQL, default connection), in a
    savepoint; whether it was accepted."""
    try:
        with transaction.atomic():
            raw(sql, params)
    except DatabaseError:
        return False
    return True


def _everything_still_works() -> None:
    record_event(action=Action.LOGIN, purpose="efter")
    assert integrity.seal() >= 1
    integrity.write_checkpoint()
    result = integrity.verify()
    assert result.ok, result.finding
    assert result.entries == AccessEvent.objects.count() + ChangeRecord.objects.count()


# --- The queue cannot be jammed ----------------------------------------------


def test_a_duplicate_queue_row_for_a_sealed_entry_jams_nothing(sealed, signing_key):
    """The issue's reproduction: after the application's duplicate, sealing, checkpoints
    and verification still work."""
    _try_insert(
        "INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)", [sealed.pk]
    )
    _everything_still_works()
    call_command("audit", "verify")


@pytest.mark.parametrize("what", ["sealed", "queued", "future"])
def test_the_application_cannot_insert_into_the_queue(sealed, what):
    """Only the trigger of the log tables writes queue rows, whoever the caller is."""
    if what == "sealed":
        entry_id = sealed.pk
    elif what == "queued":
        entry_id = record_event(action=Action.LOGIN).pk
        assert PendingEntry.objects.filter(source="access", entry_id=entry_id).exists()
    else:
        entry_id = sealed.pk + 1000
    with pytest.raises(DatabaseError, match="audit_pendingentry"), transaction.atomic():
        raw("INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)", [entry_id])


def test_the_queue_holds_one_row_per_entry(sealed):
    """Even past the guard (an owner who disables it), a second row for a queued entry
    is refused by the unique constraint."""
    queued = record_event(action=Action.LOGIN)
    with (
        triggers_disabled("audit_pendingentry"),
        pytest.raises(IntegrityError, match="audit_pending_one_per_entry"),
        transaction.atomic(),
    ):
        raw("INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)", [queued.pk])


def test_the_sealer_skips_what_is_already_chained(sealed, signing_key, caplog):
    """Rows that got into the queue behind the guard (an owner disabling it) are
    skipped: nothing is chained twice, and the seal goes on with the rest."""
    before = len(sealed_entries())
    change = ChangeRecord.objects.order_by("id").first()
    with triggers_disabled("audit_pendingentry"):
        raw("INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)", [sealed.pk])
        if change is not None:
            raw(
                "INSERT INTO audit_pendingentry (source, entry_id) VALUES ('history', %s)",
                [change.pk],
            )
    fresh = record_event(action=Action.LOGIN)
    assert integrity.seal() == 1
    assert len(sealed_entries()) == before + 1
    assert position_of("access", fresh.pk) == before + 1
    assert times_sealed("access", sealed.pk) == 1
    assert not PendingEntry.objects.exists()
    assert "already in the chain" in caplog.text
    _everything_still_works()


def test_an_entry_below_the_highest_chained_id_is_looked_up_and_sealed(db, signing_key, caplog):
    """A late commit: an entry whose id is below one already chained (its transaction
    took the id first and committed last) is looked up in the chain and, not found there,
    sealed; a queue row naming the highest chained entry is skipped. (The sealer looks up
    only ids at or below its source's highest chained id: docs/adr/0032, Session 17.)"""
    late = record_event(action=Action.CONSULT, details={"late": True})
    raw("DELETE FROM audit_pendingentry WHERE source = 'access' AND entry_id = %s", [late.pk])
    later = record_event(action=Action.CONSULT, details={"late": False})
    integrity.seal()
    assert position_of("access", late.pk) is None
    assert max(e for _, s, e in sealed_entries() if s == "access") == later.pk
    with triggers_disabled("audit_pendingentry"):
        for entry in (late, later):
            raw(
                "INSERT INTO audit_pendingentry (source, entry_id) VALUES ('access', %s)",
                [entry.pk],
            )
    assert integrity.seal() == 1
    assert times_sealed("access", late.pk) == 1
    assert times_sealed("access", later.pk) == 1
    assert not PendingEntry.objects.exists()
    assert "already in the chain" in caplog.text
    _everything_still_works()


def test_the_queue_has_a_unique_constraint():
    names = {constraint.name for constraint in PendingEntry._meta.constraints}
    assert "audit_pending_one_per_entry" in names


# --- Verification needs a fresh signed checkpoint ----------------------------


def _verify_command_fails() -> str:
    """``manage.py audit verify`` exits with 1; returns its message."""
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify")
    assert raised.value.returncode == 1
    return str(raised.value)


def test_verify_fails_without_any_checkpoint(sealed, signing_key):
    result = integrity.verify()
    assert not result.ok
    assert result.finding.kind == Problem.NO_CHECKPOINT
    assert "no signed checkpoint" in result.finding.message
    message = _verify_command_fails()
    assert "no signed checkpoint" in message
    assert "audit checkpoint" in message


def test_verify_fails_when_no_checkpoint_directory_is_configured(sealed, settings):
    settings.AUDIT_CHECKPOINT_DIR = ""
    finding = integrity.verify().finding
    assert finding.kind == Problem.NO_CHECKPOINT
    assert "SAMVERKAN_AUDIT_CHECKPOINT_DIR" in finding.message


def test_an_empty_log_without_a_checkpoint_fails_too(db, signing_key):
    """Decision (ADR 0005 addendum): an empty log is not proof of anything either — an
    emptied log looks the same. The message says so and what to do."""
    with triggers_disabled(
        "audit_accessevent",
        "audit_changerecord",
        "audit_chainlink",
        "audit_chainblock",
        "audit_pendingentry",
    ):
        raw("DELETE FROM audit_pendingentry")
        raw("DELETE FROM audit_chainlink")
        raw("DELETE FROM audit_chainblock")
        raw("DELETE FROM audit_changerecord")
        raw("DELETE FROM audit_accessevent")
    result = integrity.verify()
    assert result.finding.kind == Problem.NO_CHECKPOINT
    assert "the log is empty" in result.finding.message
    integrity.write_checkpoint()  # the checkpoint of the empty log, right after install
    assert integrity.verify().ok


def _later(monkeypatch, delta: dt.timedelta) -> None:
    now = timezone.now() + delta
    monkeypatch.setattr(integrity.verification.timezone, "now", lambda: now)


def test_verify_fails_when_the_newest_checkpoint_is_older_than_the_maximum_age(
    sealed, signing_key, monkeypatch
):
    integrity.write_checkpoint()
    _later(monkeypatch, dt.timedelta(hours=1, minutes=59))
    assert integrity.verify().ok  # default: 2 hours
    _later(monkeypatch, dt.timedelta(hours=2, minutes=1))
    result = integrity.verify()
    assert result.finding.kind == Problem.STALE_CHECKPOINT
    assert "older than 2:00:00" in result.finding.message
    assert "stale checkpoint" in _verify_command_fails()


def test_only_the_newest_checkpoint_counts_and_the_age_is_a_setting(
    sealed, signing_key, monkeypatch, settings
):
    integrity.write_checkpoint()
    _later(monkeypatch, dt.timedelta(hours=3))
    integrity.write_checkpoint()  # a fresh one beside the old
    assert integrity.verify().ok
    settings.AUDIT_CHECKPOINT_MAX_AGE = 60
    _later(monkeypatch, dt.timedelta(hours=3, minutes=2))
    assert integrity.verify().finding.kind == Problem.STALE_CHECKPOINT


def test_the_checkpoint_time_is_the_signed_one(sealed, signing_key, monkeypatch):
    """Renaming or touching the file does not make an old checkpoint fresh."""
    path, _document = integrity.write_checkpoint()
    os.utime(path)
    path.rename(path.with_name("checkpoint-999999999999-29991231T000000000000Z.json"))
    _later(monkeypatch, dt.timedelta(hours=3))
    assert integrity.verify().finding.kind == Problem.STALE_CHECKPOINT


def test_the_maximum_age_comes_from_the_environment():
    code = "from django.conf import settings; print(settings.AUDIT_CHECKPOINT_MAX_AGE)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    default = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert default.stdout.strip() == "7200"
    configured = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE": "600"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert configured.stdout.strip() == "600"
    readme = (ROOT / "README.md").read_text()
    assert "`SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE`" in readme


# --- The auditor's page says the same -----------------------------------------


@pytest.fixture
def auditor(demo, client):
    client.force_login(demo["greta.granskare"])
    return client


def test_the_integrity_page_names_a_missing_checkpoint(auditor, signing_key):
    page = auditor.post("/granskning/integritet/").content.decode()
    assert 'data-verification="failed"' in page
    assert "data-finding-kind>no checkpoint<" in page
    assert "Ingen signerad kontrollpunkt" in page
    integrity.write_checkpoint()
    page = auditor.post("/granskning/integritet/").content.decode()
    assert 'data-verification="ok"' in page


def test_the_integrity_page_names_a_stale_checkpoint(auditor, demo, signing_key, monkeypatch):
    integrity.write_checkpoint()
    _later(monkeypatch, dt.timedelta(hours=5))
    # Five hours on, the earlier session has timed out (ADR 0016): sign in again.
    auditor.force_login(demo["greta.granskare"])
    page = auditor.post("/granskning/integritet/").content.decode()
    assert 'data-verification="failed"' in page
    assert "data-finding-kind>stale checkpoint<" in page
    assert "äldre än" in page


def test_a_temporary_table_cannot_take_the_queue_or_the_history(db):
    """A session may create temporary tables, which come first in its search path: one
    named like the queue or the change history must not receive their rows."""
    from casework.models import Organisation

    raw("CREATE TEMP TABLE audit_pendingentry (LIKE public.audit_pendingentry INCLUDING ALL)")
    raw("CREATE TEMP TABLE audit_changerecord (LIKE public.audit_changerecord INCLUDING ALL)")
    try:
        event = record_event(action=Action.LOGIN)
        organisation = Organisation.objects.create(name="Skuggskolan", kind="school")
        assert raw("SELECT count(*) FROM pg_temp.audit_pendingentry") == [(0,)]
        assert raw("SELECT count(*) FROM pg_temp.audit_changerecord") == [(0,)]
        queued = raw(
            "SELECT count(*) FROM public.audit_pendingentry WHERE source = 'access' "
            "AND entry_id = %s",
            [event.pk],
        )
        assert queued == [(1,)]
        history = raw(
            "SELECT count(*) FROM public.audit_changerecord WHERE table_name = "
            "'casework_organisation' AND row_id = %s",
            [str(organisation.pk)],
        )
        assert history == [(1,)]
    finally:
        raw("DROP TABLE IF EXISTS pg_temp.audit_pendingentry, pg_temp.audit_changerecord")
