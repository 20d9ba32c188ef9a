"""The keyring: versioned key-encryption keys (KEK) and the blind-index key.

The keyring is a JSON file outside the database (``SAMVERKAN_KEYRING_FILE``),
readable by the application account only (mode 0600)::

    {
      "format": "samverkan-keyring/1",
      "current": 2,
      "keks": {"1": "<base64 of 32 bytes>", "2": "<base64 of 32 bytes>"},
      "blind_index_key": "<base64 of 32 bytes>",
      "written": "2026-11-27T10:00:00Z"
    }

``current`` is the version that wraps new data keys; older versions stay until
``keys rotate`` has re-wrapped every data key and ``keys retire`` removes them.
The blind-index key is separate from the KEKs and is not rotated with them.

This module does not import Django: the settings and the production checks use
it before the apps are loaded. Nothing here puts key material into a message,
a ``repr`` or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from casework.crypto.errors import KeyringError

FORMAT = "samverkan-keyring/1"
KEY_BYTES = 32
FILE_MODE = 0o600
GENERATE_HINT = "create one with `python manage.py keys generate`"


class Keyring:
    """The keys of one keyring file, loaded. Holds no plaintext data, only keys.

    ``repr`` shows the path and the versions, never a key.
    """

    __slots__ = ("_aeads", "_index_key", "_index_subkeys", "_keks", "current", "path")

    def __init__(
        self, *, path: Path, current: int, keks: Mapping[int, bytes], index_key: bytes
    ) -> None:
        self.path = Path(path)
        self.current = current
        self._keks = dict(keks)
        self._index_key = index_key
        self._aeads: dict[int, AESGCM] = {}
        self._index_subkeys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<Keyring {self.path} versions={self.versions} current={self.current}>"

    @property
    def versions(self) -> list[int]:
        return sorted(self._keks)

    def has_version(self, version: int) -> bool:
        return version in self._keks

    def kek(self, version: int) -> AESGCM:
        """The AES-256-GCM cipher of KEK ``version`` (:class:`KeyringError` if absent)."""
        aead = self._aeads.get(version)
        if aead is None:
            try:
                key = self._keks[version]
            except KeyError:
                raise KeyringError(
                    f"KEK version {version} is not in the keyring file {self.path} "
                    f"(it holds versions {self.versions}). The file is outdated or was "
                    "replaced, or the version was retired while data keys still used it."
                ) from None
            aead = self._aeads[version] = AESGCM(key)
        return aead

    def index_subkey(self, purpose: str) -> bytes:
        """A blind-index key for one index, derived from the blind-index key.

        Each index (``"casework.person.personnummer"`` …) gets its own key, so two
        indexes over related values cannot be compared with each other.
        """
        subkey = self._index_subkeys.get(purpose)
        if subkey is None:
            message = b"samverkan-blind-index/1|" + purpose.encode()
            subkey = hmac.new(self._index_key, message, hashlib.sha256).digest()
            self._index_subkeys[purpose] = subkey
        return subkey

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "current": self.current,
            "keks": {str(v): _b64(k) for v, k in sorted(self._keks.items())},
            "blind_index_key": _b64(self._index_key),
            "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return json.dumps(data, indent=2) + "\n"

    def with_new_version(self) -> Keyring:
        version = max(self._keks) + 1
        keks = {**self._keks, version: secrets.token_bytes(KEY_BYTES)}
        return Keyring(path=self.path, current=version, keks=keks, index_key=self._index_key)

    def without_version(self, version: int) -> Keyring:
        keks = {v: k for v, k in self._keks.items() if v != version}
        return Keyring(path=self.path, current=self.current, keks=keks, index_key=self._index_key)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _key(value: object, what: str, path: Path) -> bytes:
    """Decode one base64 key; the message names the entry, never its content."""
    if not isinstance(value, str):
        raise KeyringError(f"The keyring file {path} is invalid: {what} is not a base64 string.")
    try:
        key = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyringError(
            f"The keyring file {path} is invalid: {what} is not valid base64."
        ) from None
    if len(key) != KEY_BYTES:
        raise KeyringError(
            f"The keyring file {path} is invalid: {what} is not a {KEY_BYTES}-byte key."
        )
    return key


def load(path: Path | str) -> Keyring:
    """Read and check a keyring file; :class:`KeyringError` with a clear message if unusable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyringError(
            f"The keyring file {path} does not exist. Set SAMVERKAN_KEYRING_FILE to the "
            f"keyring of this installation, or {GENERATE_HINT}."
        ) from None
    except OSError as exc:
        raise KeyringError(
            f"The keyring file {path} cannot be read ({exc.strerror or type(exc).__name__})."
        ) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyringError(f"The keyring file {path} is not valid JSON.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeyringError(f"The keyring file {path} is not a Samverkan keyring ({FORMAT}).")
    keks_raw = data.get("keks")
    if not isinstance(keks_raw, dict) or not keks_raw:
        raise KeyringError(f"The keyring file {path} is invalid: it holds no KEK versions.")
    keks: dict[int, bytes] = {}
    for name, value in keks_raw.items():
        if not (isinstance(name, str) and name.isascii() and name.isdigit() and int(name) > 0):
            raise KeyringError(
                f"The keyring file {path} is invalid: KEK versions must be positive integers."
            )
        keks[int(name)] = _key(value, f"KEK version {int(name)}", path)
    current = data.get("current")
    if not isinstance(current, int) or isinstance(current, bool) or current not in keks:
        raise KeyringError(
            f"The keyring file {path} is invalid: 'current' must name one of its KEK "
            f"versions {sorted(keks)}."
        )
    index_key = _key(data.get("blind_index_key"), "the blind-index key", path)
    return Keyring(path=path, current=current, keks=keks, index_key=index_key)


def _write(path: Path, keyring: Keyring, *, exclusive: bool) -> None:
    """Write the keyring with mode 0600: a new file, or atomically replacing the old one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = path if exclusive else path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, FILE_MODE)
    except FileExistsError:
        raise KeyringError(
            f"The keyring file {target} already exists; refusing to overwrite it "
            "(the data encrypted under its keys would become unreadable)."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(keyring.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        if not exclusive:
            os.replace(target, path)
    except BaseException:
        if not exclusive:
            target.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def generate(path: Path | str) -> Keyring:
    """Create a new keyring file (KEK version 1 and a blind-index key); never overwrites."""
    path = Path(path)
    keyring = Keyring(
        path=path,
        current=1,
        keks={1: secrets.token_bytes(KEY_BYTES)},
        index_key=secrets.token_bytes(KEY_BYTES),
    )
    _write(path, keyring, exclusive=True)
    return keyring


def add_version(path: Path | str) -> Keyring:
    """Add a new KEK version to the file and make it current; return the new keyring."""
    keyring = load(path).with_new_version()
    _write(Path(path), keyring, exclusive=False)
    return keyring


def remove_version(path: Path | str, version: int) -> Keyring:
    """Remove KEK ``version`` from the file (the caller checks that no data key uses it)."""
    keyring = load(path)
    if not keyring.has_version(version):
        raise KeyringError(f"KEK version {version} is not in the keyring file {keyring.path}.")
    if version == keyring.current:
        raise KeyringError(f"KEK version {version} is the current version and cannot be removed.")
    keyring = keyring.without_version(version)
    _write(Path(path), keyring, exclusive=False)
    return keyring


# --- The running process's keyring ------------------------------------------

_cache: dict[Path, tuple[tuple[int, int, int], Keyring]] = {}
_cache_lock = threading.Lock()


def get_keyring(path: Path | str | None) -> Keyring:
    """The keyring at ``path``, re-read whenever the file changes.

    A ``keys rotate`` in another process adds a version to the file; running
    processes pick it up at their next use, so a data key re-wrapped under the
    new version never meets a process that cannot unwrap it.
    """
    if not path:
        raise KeyringError(
            f"No keyring file is configured: set SAMVERKAN_KEYRING_FILE, or {GENERATE_HINT}."
        )
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise KeyringError(
            f"The keyring file {path} does not exist. Set SAMVERKAN_KEYRING_FILE to the "
            f"keyring of this installation, or {GENERATE_HINT}."
        ) from None
    signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
    keyring = load(path)
    with _cache_lock:
        _cache[path] = (signature, keyring)
    return keyring


def _main(argv: list[str] | None = None) -> int:
    """``python -m casework.crypto.keyring generate PATH``: bootstrap without Django settings.

    Production settings refuse to load without a keyring file, so the first one
    of a production installation is made with this entry point.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m casework.crypto.keyring")
    parser.add_argument("command", choices=["generate"])
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        generate(args.path)
    except KeyringError as exc:
        print(f"keyring: {exc}", file=sys.stderr)
        return 1
    print(f"Keyring created: {args.path} (mode 0600). Back it up apart from the database.")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
