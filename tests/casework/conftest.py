"""Fixtures for the person and encryption tests: both databases, users, persons."""

from __future__ import annotations

import pytest

from casework import services
from casework.crypto import keyring

BOTH_DATABASES = ["default", "keystore"]
persons_db = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.fixture
def fresh_keyring(settings, tmp_path):
    """A keyring of this test's own (for tests that rotate, retire or replace keys)."""
    path = tmp_path / "keys" / "keyring.json"
    keyring.generate(path)
    settings.KEYRING_FILE = path
    return path


@pytest.fixture
def worker(demo):
    """A social worker: may register, find and read persons."""
    return demo["anna.social"]


PURPOSE = "Förbereda nätverksmöte"

ANNA = {
    "name": "Zelmira Kvastbinder",
    "personnummer": "19880320-0016",
    "address": "Gravörvägen 17, 702 81 Örebro",
    "phone": "070-174 06 42",
    "note": "Vill bli kontaktad på eftermiddagar. ✓ åäö",
}
BERTIL = {
    "name": "Ruben Tvärstrimma",
    "personnummer": "811228-9841",
    "address": "Lövstigen 3, 703 41 Örebro",
}


@pytest.fixture
def make_person(worker):
    def _make(data=None, **extra):
        values = {**(data or ANNA), **extra}
        return services.create_person(user=worker, purpose=PURPOSE, **values)

    return _make
