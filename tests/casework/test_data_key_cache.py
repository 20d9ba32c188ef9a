"""The data-key cache: one key-store read per person and cache time; erasure wins.

These tests commit (``transaction=True``): only keys committed in the key store
are remembered.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from casework.crypto import keystore
from casework.crypto.errors import DataKeyMissing
from casework.crypto.keystore import PERSON
from tests.conftest import COMMITTED_DB

# serialized_rollback as every transactional test here: a plain flush at the end would
# re-create content types and permissions that the next serialized test restores again.
pytestmark = COMMITTED_DB


def _reads(func) -> int:
    with CaptureQueriesContext(connections["keystore"]) as captured:
        func()
    return sum("casework_datakey" in query["sql"] for query in captured.captured_queries)


@pytest.fixture
def owner():
    owner_id = uuid.uuid4()
    material = keystore.create_data_key(owner_type=PERSON, owner_id=owner_id)
    return owner_id, material


def _load(owner_id):
    return keystore.load_data_key(owner_type=PERSON, owner_id=owner_id)


def test_a_key_is_read_from_the_key_store_once_within_the_cache_time(owner):
    owner_id, material = owner
    assert _reads(lambda: _load(owner_id)) == 1
    assert _reads(lambda: _load(owner_id)) == 0
    loaded = _load(owner_id)
    assert loaded.id == material.id
    assert loaded.header == material.header


def test_several_keys_read_only_the_ones_not_remembered(owner):
    owner_id, _ = owner
    other = uuid.uuid4()
    keystore.create_data_key(owner_type=PERSON, owner_id=other)
    _load(owner_id)
    keys = {}

    def load_both():
        keys.update(keystore.load_data_keys(owner_type=PERSON, owner_ids=[owner_id, other]))

    assert _reads(load_both) == 1
    assert set(keys) == {owner_id, other}
    assert _reads(load_both) == 0


def test_a_remembered_key_expires(owner, monkeypatch):
    owner_id, _ = owner
    _load(owner_id)
    now = keystore.time.monotonic()
    monkeypatch.setattr(keystore.time, "monotonic", lambda: now + 31)
    assert _reads(lambda: _load(owner_id)) == 1


def test_a_destroyed_key_is_forgotten_at_once(owner):
    owner_id, _ = owner
    _load(owner_id)
    assert keystore.destroy_data_key(owner_type=PERSON, owner_id=owner_id)
    with pytest.raises(DataKeyMissing):
        _load(owner_id)


def test_no_cache_time_means_every_load_reads_the_key_store(owner, settings):
    settings.DATA_KEY_CACHE_SECONDS = 0
    owner_id, _ = owner
    assert _reads(lambda: _load(owner_id)) == 1
    assert _reads(lambda: _load(owner_id)) == 1


def test_a_key_read_inside_a_key_store_transaction_is_not_remembered():
    owner_id = uuid.uuid4()
    with transaction.atomic(using="keystore"):
        keystore.create_data_key(owner_type=PERSON, owner_id=owner_id)
        _load(owner_id)
        transaction.set_rollback(True, using="keystore")
    with pytest.raises(DataKeyMissing):
        _load(owner_id)


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(keystore, "_CACHE_SIZE", 3)
    owners = [uuid.uuid4() for _ in range(5)]
    for owner_id in owners:
        keystore.create_data_key(owner_type=PERSON, owner_id=owner_id)
        _load(owner_id)
    assert len(keystore._cache) == 3
    assert _reads(lambda: _load(owners[0])) == 1  # the oldest went first
    assert _reads(lambda: _load(owners[-1])) == 0
