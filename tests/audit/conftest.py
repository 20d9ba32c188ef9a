"""Fixtures of the audit tests: checkpoint files and keys in a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _audit_files(settings, tmp_path):
    """Checkpoints and the signing key of each test live in its own temporary folder."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "audit-signing.pem"
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = []


@pytest.fixture
def signing_key(settings):
    from audit import integrity

    integrity.generate_signing_key(settings.AUDIT_SIGNING_KEY_FILE)
    return integrity.load_signing_key()


@pytest.fixture(params=[1, 2], ids=["format1", "format2"])
def chain_format(request, monkeypatch):
    """The chain format the sealer writes (ADR 0031, session 19): a test that takes this
    fixture runs against a chain of each format."""
    from audit.integrity import chain

    monkeypatch.setattr(chain, "SEAL_FORMAT", request.param)
    return request.param
