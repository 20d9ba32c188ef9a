"""Signing keys and signed checkpoints of the chain's head, written outside the database."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.utils import timezone

from audit.integrity.chain import CHECKPOINT_FORMAT, head, seal, utc_iso

# --- Signing keys and checkpoints -------------------------------------------


class CheckpointError(Exception):
    """The checkpoint cannot be written (no signing key, no directory)."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_signing_key(path: Path) -> Ed25519PublicKey:
    """Create a new Ed25519 key at ``path`` (mode 0600) and its public key at ``path.pub``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_key = private_key.public_key()
    _public_key_path(path).write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_key


def _public_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load_signing_key(path: Path | str | None = None) -> Ed25519PrivateKey:
    path = Path(path or settings.AUDIT_SIGNING_KEY_FILE or "")
    if not str(path) or not path.is_file():
        raise CheckpointError(
            f"No audit signing key at {str(path) or '(SAMVERKAN_AUDIT_SIGNING_KEY_FILE unset)'}: "
            "create one with `python manage.py audit keygen` (and keep it outside the database "
            "and its backups), or set SAMVERKAN_AUDIT_SIGNING_KEY_FILE."
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} does not hold an Ed25519 private key.")
    return key


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys whose checkpoint signatures are accepted, by key id.

    The signing key's public half (from the key, or ``<key>.pub`` where only
    that is present, e.g. on an auditor's machine) and every file listed in
    ``AUDIT_TRUSTED_PUBLIC_KEYS`` (keys of earlier years after a rotation).
    """
    keys: dict[str, Ed25519PublicKey] = {}
    candidates: list[Ed25519PublicKey] = []
    signing_path = Path(settings.AUDIT_SIGNING_KEY_FILE or "")
    if str(signing_path) and signing_path.is_file():
        candidates.append(load_signing_key(signing_path).public_key())
    paths = [_public_key_path(signing_path)] if str(signing_path) else []
    paths += [Path(p) for p in getattr(settings, "AUDIT_TRUSTED_PUBLIC_KEYS", [])]
    for path in paths:
        if path.is_file():
            public_key = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(public_key, Ed25519PublicKey):
                candidates.append(public_key)
    for public_key in candidates:
        keys[key_id(public_key)] = public_key
    return keys


def signed_message(document: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_dir() -> Path:
    directory = str(settings.AUDIT_CHECKPOINT_DIR or "")
    if not directory:
        raise CheckpointError(
            "SAMVERKAN_AUDIT_CHECKPOINT_DIR is not set: checkpoints must be written outside "
            "the database."
        )
    return Path(directory)


def write_checkpoint(
    *, using: str = "default", signing_key: Ed25519PrivateKey | None = None
) -> tuple[Path, dict[str, Any]]:
    """Seal, then sign the chain's head and write it as a file in ``AUDIT_CHECKPOINT_DIR``."""
    signing_key = signing_key or load_signing_key()
    directory = checkpoint_dir()
    seal(using=using)
    position, head_hash = head(using=using)
    now = timezone.now()
    document: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "position": position,
        "head": head_hash,
        "created_at": utc_iso(now),
        "key_id": key_id(signing_key.public_key()),
    }
    document["signature"] = base64.b64encode(signing_key.sign(signed_message(document))).decode()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{position:012d}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    temporary = directory / f".{name}.tmp"
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, directory / name)
    return directory / name, document
