"""Key management: ``keys generate|status|rotate|retire`` and KEK rotation."""

from __future__ import annotations

import json
import stat
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from audit.models import AccessEvent
from casework import selectors, services
from casework.crypto import keyring
from casework.crypto.errors import KeyRetirementRefused, RotationInProgress
from casework.models import DataKey, Person
from tests.casework.conftest import ANNA, PURPOSE, persons_db

pytestmark = persons_db

NUMBERS = ["880320-0016", "811228-9841", "890102-3286", "900161-1236", "000229-1235"]


@pytest.fixture
def five_persons(fresh_keyring, worker):
    return [
        services.create_person(
            user=worker, purpose=PURPOSE, name=f"Person {n}", personnummer=number, address="X 1"
        )
        for n, number in enumerate(NUMBERS)
    ]


def _all_readable(worker, persons) -> bool:
    for n, person in enumerate(persons):
        details = selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=person.pk)
        assert details.name == f"Person {n}"
    return True


def _ciphertexts():
    return {
        p.pk: tuple(getattr(p, n) for n in Person.ENCRYPTED_FIELDS) for p in Person.objects.all()
    }


def _key_material(path) -> list[str]:
    data = json.loads(path.read_text())
    return [*data["keks"].values(), data["blind_index_key"]]


# --- generate / status ------------------------------------------------------------------


def test_generate_refuses_to_overwrite(settings, tmp_path):
    settings.KEYRING_FILE = tmp_path / "k" / "keyring.json"
    out = StringIO()
    call_command("keys", "generate", stdout=out)
    assert stat.S_IMODE(settings.KEYRING_FILE.stat().st_mode) == 0o600
    content = settings.KEYRING_FILE.read_bytes()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("keys", "generate", stdout=StringIO())
    call_command("keys", "generate", "--if-missing", stdout=out)
    assert settings.KEYRING_FILE.read_bytes() == content
    for key in _key_material(settings.KEYRING_FILE):
        assert key not in out.getvalue()


def test_status_counts_data_keys_per_version_and_shows_no_key(fresh_keyring, five_persons):
    out = StringIO()
    call_command("keys", "status", stdout=out)
    text = out.getvalue()
    assert "KEK-versioner: 1 (aktuell: 1)" in text
    assert "v1: 5 (aktuell)" in text
    for key in _key_material(fresh_keyring):
        assert key not in text


# --- rotate / retire ------------------------------------------------------------------------


def test_rotation_rewraps_every_data_key_and_touches_no_data(worker, fresh_keyring, five_persons):
    ciphertexts = _ciphertexts()
    wrapped_before = dict(DataKey.objects.values_list("id", "wrapped_key"))
    out, err = StringIO(), StringIO()
    call_command("keys", "rotate", "--batch-size", "2", stdout=out, stderr=err)
    assert "Ny KEK-version v2: 5 datanycklar" in out.getvalue()
    assert "100% 5/5" in err.getvalue()  # the progress bar, on stderr
    assert keyring.load(fresh_keyring).versions == [1, 2]
    assert set(DataKey.objects.values_list("kek_version", flat=True)) == {2}
    wrapped_after = dict(DataKey.objects.values_list("id", "wrapped_key"))
    assert wrapped_after.keys() == wrapped_before.keys()
    assert all(bytes(wrapped_after[k]) != bytes(wrapped_before[k]) for k in wrapped_after)
    assert _ciphertexts() == ciphertexts  # no sealed value was re-encrypted
    assert _all_readable(worker, five_persons)
    event = AccessEvent.objects.get(action="key_rotation")
    assert event.user is None
    assert event.details == {"kek_version": 2, "rewrapped": 5, "resumed": False, "complete": True}

    # The old KEK can now be removed, and everything is still readable.
    call_command("keys", "retire", "1", stdout=StringIO())
    assert keyring.load(fresh_keyring).versions == [2]
    assert _all_readable(worker, five_persons)
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer=NUMBERS[2])


def test_retiring_a_kek_in_use_or_current_is_refused(fresh_keyring, five_persons):
    with pytest.raises(CommandError, match="current version"):
        call_command("keys", "retire", "1", stdout=StringIO())
    keyring.add_version(fresh_keyring)  # a new version, but no re-wrapping yet
    with pytest.raises(KeyRetirementRefused, match="still wraps 5 data keys"):
        services.retire_key_version(purpose="test", version=1)
    assert keyring.load(fresh_keyring).versions == [1, 2]


def test_an_interrupted_rotation_resumes_and_nothing_is_unreadable_meanwhile(
    worker, fresh_keyring, five_persons
):
    class Interrupted(Exception):
        pass

    def crash_after_first_batch(done, total):
        if done >= 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        services.rotate_data_keys(purpose="test", batch_size=2, progress=crash_after_first_batch)
    versions = sorted(DataKey.objects.values_list("kek_version", flat=True))
    assert versions == [1, 1, 1, 2, 2]
    assert _all_readable(worker, five_persons)  # half-way: both versions work
    interrupted = AccessEvent.objects.get(action="key_rotation")
    assert interrupted.details["complete"] is False and interrupted.details["rewrapped"] == 2

    result = services.rotate_data_keys(purpose="test", batch_size=2)
    assert (result.version, result.rewrapped, result.resumed) == (2, 3, True)
    assert keyring.load(fresh_keyring).versions == [1, 2]  # resumed: no third version
    assert set(DataKey.objects.values_list("kek_version", flat=True)) == {2}
    assert _all_readable(worker, five_persons)
    services.retire_key_version(purpose="test", version=1)
    assert _all_readable(worker, five_persons)


def test_new_persons_use_the_current_version(worker, fresh_keyring, five_persons):
    services.rotate_data_keys(purpose="test")
    person = services.create_person(
        user=worker, purpose=PURPOSE, **{**ANNA, "personnummer": "991231-1231"}
    )
    assert DataKey.objects.get(owner_id=person.pk).kek_version == 2


def test_only_one_rotation_at_a_time(fresh_keyring, five_persons):
    params = connections["keystore"].settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=params["NAME"],
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
    )
    from casework.services.persons import _ROTATION_LOCK

    with psycopg.connect(conninfo, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_ROTATION_LOCK])
        with pytest.raises(RotationInProgress):
            services.rotate_data_keys(purpose="test")
    assert keyring.load(fresh_keyring).versions == [1]


def test_rotation_refuses_when_a_version_is_missing_from_the_file(fresh_keyring, five_persons):
    keyring.add_version(fresh_keyring)
    data = json.loads(fresh_keyring.read_text())
    del data["keks"]["1"]
    fresh_keyring.write_text(json.dumps(data))
    with pytest.raises(CommandError, match=r"KEK versions \[1\], which the keyring file"):
        call_command("keys", "rotate", stdout=StringIO(), stderr=StringIO())
