"""The crypto layer without the database: keyring file, data keys, sealed values, blind index."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid

import pytest

from casework.crypto import envelope, keyring
from casework.crypto.blind_index import INDEX_BITS, personnummer_index
from casework.crypto.errors import DataKeyUnwrapError, DecryptionError, KeyringError

WHERE = {"table": "casework_person", "column": "name", "row_id": uuid.UUID(int=1)}


def _keys_in(path) -> list[str]:
    data = json.loads(path.read_text())
    return [*data["keks"].values(), data["blind_index_key"]]


def _assert_no_key_material(message: str, path) -> None:
    for key in _keys_in(path):
        assert key not in message
        assert base64.b64decode(key).hex() not in message


# --- Keyring file ------------------------------------------------------------------


def test_generate_writes_a_private_file_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "secrets" / "keyring.json"
    ring = keyring.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ring.versions == [1] and ring.current == 1
    before = path.read_bytes()
    with pytest.raises(KeyringError, match="refusing to overwrite"):
        keyring.generate(path)
    assert path.read_bytes() == before


def test_repr_of_a_keyring_shows_no_key(tmp_path):
    path = tmp_path / "keyring.json"
    ring = keyring.generate(path)
    _assert_no_key_material(repr(ring), path)
    assert "versions=[1]" in repr(ring)


def test_add_and_remove_versions(tmp_path):
    path = tmp_path / "keyring.json"
    first = keyring.generate(path)
    second = keyring.add_version(path)
    assert second.versions == [1, 2] and second.current == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The blind-index key is not rotated with the KEKs.
    assert second.index_subkey("x") == first.index_subkey("x")
    with pytest.raises(KeyringError, match="current version"):
        keyring.remove_version(path, 2)
    third = keyring.remove_version(path, 1)
    assert third.versions == [2]
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not a Samverkan keyring"),
        (b'{"format": "other"}', "not a Samverkan keyring"),
        (b'{"format": "samverkan-keyring/1", "keks": {}}', "no KEK versions"),
        (b'{"format": "samverkan-keyring/1", "keks": {"x": "AAAA"}}', "positive integers"),
        (b'{"format": "samverkan-keyring/1", "keks": {"1": "!!!"}}', "KEK version 1 is not valid"),
        (b'{"format": "samverkan-keyring/1", "keks": {"1": "AAAA"}}', "not a 32-byte key"),
    ],
)
def test_an_invalid_keyring_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "keyring.json"
    path.write_bytes(content)
    with pytest.raises(KeyringError, match=message) as info:
        keyring.load(path)
    assert str(path) in str(info.value)


def test_invalid_current_version_and_index_key(tmp_path):
    path = tmp_path / "keyring.json"
    keyring.generate(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "current": 7}))
    with pytest.raises(KeyringError, match="'current' must name"):
        keyring.load(path)
    path.write_text(json.dumps({**data, "blind_index_key": "c2hvcnQ="}))
    with pytest.raises(KeyringError, match="blind-index key is not a 32-byte key") as info:
        keyring.load(path)
    _assert_no_key_material(str(info.value), path)


def test_a_missing_keyring_file_names_the_way_out(tmp_path):
    with pytest.raises(KeyringError, match="keys generate") as info:
        keyring.get_keyring(tmp_path / "nowhere.json")
    assert "nowhere.json" in str(info.value)
    with pytest.raises(KeyringError, match="SAMVERKAN_KEYRING_FILE"):
        keyring.get_keyring(None)


def test_get_keyring_rereads_a_changed_file(tmp_path):
    path = tmp_path / "keyring.json"
    keyring.generate(path)
    assert keyring.get_keyring(path).versions == [1]
    assert keyring.get_keyring(path) is keyring.get_keyring(path)
    keyring.add_version(path)
    assert keyring.get_keyring(path).versions == [1, 2]


def test_an_unknown_kek_version_is_a_clear_error(tmp_path):
    path = tmp_path / "keyring.json"
    ring = keyring.generate(path)
    with pytest.raises(KeyringError, match="KEK version 3 is not in the keyring file"):
        ring.kek(3)


def test_bootstrap_entry_point_needs_no_django(tmp_path):
    path = tmp_path / "keyring.json"
    assert keyring._main(["generate", str(path)]) == 0
    assert keyring._main(["generate", str(path)]) == 1


# --- Data keys ---------------------------------------------------------------------


@pytest.fixture
def ring(tmp_path):
    return keyring.generate(tmp_path / "keyring.json")


OWNER = uuid.UUID(int=7)


def _wrap(ring, owner_id=OWNER):
    key_id, key = envelope.new_data_key()
    version, wrapped = envelope.wrap_data_key(
        ring, key_id=key_id, owner_type="casework.person", owner_id=owner_id, key=key
    )
    return key_id, key, version, wrapped


def _unwrap(ring, key_id, wrapped, change=None):
    """Unwrap what ``_wrap`` wrapped (KEK version 1, the same owner), ``change`` applied."""
    where = {"key_id": key_id, "owner_type": "casework.person", "owner_id": OWNER}
    return envelope.unwrap_data_key(ring, version=1, wrapped=wrapped, **{**where, **(change or {})})


def test_data_key_round_trip(ring):
    key_id, key, version, wrapped = _wrap(ring)
    assert version == 1 and len(wrapped) == 12 + 32 + 16
    assert key not in wrapped
    assert _unwrap(ring, key_id, wrapped) == key


@pytest.mark.parametrize(
    "change",
    [
        {"owner_id": uuid.UUID(int=8)},  # another owner
        {"owner_type": "gvi.group"},
        {"key_id": uuid.UUID(int=9)},
    ],
)
def test_a_wrapped_key_is_bound_to_its_owner_and_id(ring, change):
    key_id, _key, _version, wrapped = _wrap(ring)
    with pytest.raises(DataKeyUnwrapError):
        _unwrap(ring, key_id, wrapped, change)


def test_a_wrong_keyring_is_a_clear_error_without_key_material(ring, tmp_path):
    key_id, key, _version, wrapped = _wrap(ring)
    other_path = tmp_path / "other.json"
    other = keyring.generate(other_path)
    with pytest.raises(DataKeyUnwrapError, match="does not unwrap under KEK version 1") as info:
        _unwrap(other, key_id, wrapped)
    message = str(info.value)
    _assert_no_key_material(message, other_path)
    _assert_no_key_material(message, ring.path)
    assert key.hex() not in message and base64.b64encode(key).decode() not in message


def test_data_key_repr_shows_no_key():
    key_id, key = envelope.new_data_key()
    material = envelope.DataKeyMaterial(key_id, key)
    assert repr(material) == f"<DataKeyMaterial {key_id}>"


# --- Sealed values -----------------------------------------------------------------


@pytest.fixture
def dek():
    return envelope.DataKeyMaterial(*envelope.new_data_key())


@pytest.mark.parametrize("plaintext", [b"", b"Zelmira", "åäö ✓ 🙂".encode(), os.urandom(5000)])
def test_seal_and_open(dek, plaintext):
    sealed = envelope.seal(dek, plaintext, **WHERE)
    assert sealed.blob[0] == 1 and sealed.key_id == dek.id
    assert len(sealed.blob) == 1 + 16 + 12 + len(plaintext) + 16
    assert envelope.open_sealed(dek, sealed, **WHERE) == plaintext


def test_the_same_value_seals_differently_every_time(dek):
    assert envelope.seal(dek, b"x", **WHERE) != envelope.seal(dek, b"x", **WHERE)


@pytest.mark.parametrize(
    "other",
    [
        {"table": "casework_guardian"},
        {"column": "address"},
        {"row_id": uuid.UUID(int=2)},
    ],
)
def test_associated_data_binds_table_column_and_row(dek, other):
    sealed = envelope.seal(dek, b"Zelmira", **WHERE)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        envelope.open_sealed(dek, sealed, **{**WHERE, **other})


def test_every_altered_byte_is_detected(dek):
    sealed = envelope.seal(dek, b"Zelmira Kvastbinder", **WHERE)
    for position in range(len(sealed.blob)):
        altered = bytearray(sealed.blob)
        altered[position] ^= 0x01
        with pytest.raises(DecryptionError) as info:
            envelope.open_sealed(dek, envelope.Sealed(altered), **WHERE)
        assert "Zelmira" not in str(info.value)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02" + bytes(60), bytes(20)])
def test_malformed_values_are_clear_errors(dek, blob):
    with pytest.raises(DecryptionError, match="malformed"):
        envelope.open_sealed(dek, envelope.Sealed(blob), **WHERE)


def test_a_value_sealed_under_another_data_key_is_refused(dek):
    other = envelope.DataKeyMaterial(*envelope.new_data_key())
    sealed = envelope.seal(other, b"Zelmira", **WHERE)
    with pytest.raises(DecryptionError, match="another data key"):
        envelope.open_sealed(dek, sealed, **WHERE)


def test_a_sealed_value_prints_no_plaintext(dek):
    sealed = envelope.seal(dek, b"Zelmira", **WHERE)
    assert repr(sealed) == str(sealed) == f"<Sealed {len(sealed.blob)} bytes>"
    assert f"{sealed}" == str(sealed)


# --- Blind index -------------------------------------------------------------------


def test_blind_index_is_keyed_truncated_and_stable(ring, tmp_path):
    first = personnummer_index(ring, "198803200016")
    assert 0 <= first < 2**INDEX_BITS
    assert personnummer_index(ring, "198803200016") == first
    other_ring = keyring.generate(tmp_path / "other.json")
    values = {personnummer_index(other_ring, "198803200016"), first}
    assert len(values) == 2  # another index key, another value (p = 2**-22 of a clash)
    spread = {personnummer_index(ring, f"1988032{n:05d}") for n in range(2000)}
    assert len(spread) > 1990  # 2 000 numbers, ~1 expected collision among 4 M values
