"""Envelope encryption with AES-256-GCM: data keys under KEKs, values under data keys.

Sealed value (what an encrypted column holds), format 1::

    0x01 | data-key id (16 bytes, a UUID) | nonce (12 random bytes) | ciphertext + tag (16)

The associated data is ``header | table | column | row id``, so a sealed value
decrypts only in the column and row it was written for, under the format it
claims. The data-key id does not depend on the KEK, so KEK rotation never
touches a sealed value.

Wrapped data key (what the key store holds)::

    nonce (12) | AES-256-GCM(KEK[version], key) with associated data
    "samverkan-dek/1 | owner type | owner id | data-key id | KEK version"

so a wrapped key moved to another owner, another key id or another version
label does not unwrap.

Random 96-bit nonces: a data key seals the few dozen values of one data subject
over its lifetime, a KEK wraps one key per subject per rotation; both stay many
orders of magnitude below the 2**32 messages per key that NIST SP 800-38D allows
for random nonces.

Pure ``cryptography``; no Django.
"""

from __future__ import annotations

import functools
import hmac
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from casework.crypto.errors import DataKeyUnwrapError, DecryptionError
from casework.crypto.keyring import KEY_BYTES, Keyring

FORMAT_V1 = 1
_FORMAT_V1 = bytes([FORMAT_V1])
KEY_ID_LEN = 16
HEADER_LEN = 1 + KEY_ID_LEN
NONCE_LEN = 12
TAG_LEN = 16
_DEK_AAD_PREFIX = b"samverkan-dek/1"


class Sealed:
    """An encrypted field value as it sits on a model instance: opaque bytes.

    Printing, formatting or logging it shows only its length, so a template, the
    admin or a log line can never reveal the plaintext by accident - there is no
    plaintext here. Only ``casework.services`` and ``casework.selectors`` open it.
    """

    __slots__ = ("blob",)

    def __init__(self, blob: bytes | bytearray | memoryview) -> None:
        self.blob = bytes(blob)

    def __repr__(self) -> str:
        return f"<Sealed {len(self.blob)} bytes>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and hmac.compare_digest(self.blob, other.blob)

    def __hash__(self) -> int:
        return hash(self.blob)

    def __len__(self) -> int:
        return len(self.blob)

    @property
    def key_id(self) -> uuid.UUID | None:
        """The id of the data key it was sealed under (``None`` if malformed)."""
        if len(self.blob) < HEADER_LEN or self.blob[0] != FORMAT_V1:
            return None
        return uuid.UUID(bytes=self.blob[1:HEADER_LEN])


class DataKeyMaterial:
    """An unwrapped data key, ready to seal and open. ``repr`` shows its id only.

    :meth:`or_else` gives a key that seals under this one and also opens what was
    sealed under an older key (a case's values not yet moved from its person's key,
    docs/adr/0023): the sealed value's header names the key it needs.
    """

    __slots__ = ("_aead", "_older", "header", "id")

    def __init__(self, key_id: uuid.UUID, key: bytes | None) -> None:
        if key is not None:
            if len(key) != KEY_BYTES:
                raise ValueError("a data key is 32 bytes")
            self._aead = AESGCM(key)
        self.id = key_id
        self.header = _FORMAT_V1 + key_id.bytes  # the sealed-value header of this key
        self._older: dict[bytes, DataKeyMaterial] = {}

    def __repr__(self) -> str:
        return f"<DataKeyMaterial {self.id}>"

    def or_else(self, *older: DataKeyMaterial | None) -> DataKeyMaterial:
        """This key, also opening values sealed under ``older`` keys (``None`` skipped)."""
        opens = dict(self._older)
        for key in older:
            if key is not None:
                # A widened older key brings what it opens (a case not moved yet, whose
                # person has a new key and a previous one).
                opens |= {key.header: key, **key._older}
        opens.pop(self.header, None)
        if opens == self._older:
            return self
        widened = DataKeyMaterial(self.id, None)
        widened._aead = self._aead
        widened._older = opens
        return widened

    def opener(self, header: bytes) -> DataKeyMaterial | None:
        """The key that opens a value with this sealed-value ``header``, if held."""
        if header == self.header:
            return self
        return self._older.get(header)


def new_data_key() -> tuple[uuid.UUID, bytes]:
    """A fresh data-key id and 256-bit key (from the OS random generator)."""
    return uuid.uuid4(), AESGCM.generate_key(bit_length=256)


def _dek_aad(key_id: uuid.UUID, owner_type: str, owner_id: uuid.UUID, version: int) -> bytes:
    return b"|".join(
        [
            _DEK_AAD_PREFIX,
            owner_type.encode(),
            str(owner_id).encode(),
            str(key_id).encode(),
            str(version).encode(),
        ]
    )


def wrap_data_key(
    keyring: Keyring,
    *,
    key_id: uuid.UUID,
    owner_type: str,
    owner_id: uuid.UUID,
    key: bytes,
    version: int | None = None,
) -> tuple[int, bytes]:
    """Wrap ``key`` under KEK ``version`` (default: current); return (version, wrapped)."""
    version = keyring.current if version is None else version
    nonce = os.urandom(NONCE_LEN)
    aad = _dek_aad(key_id, owner_type, owner_id, version)
    return version, nonce + keyring.kek(version).encrypt(nonce, key, aad)


def unwrap_data_key(
    keyring: Keyring,
    *,
    key_id: uuid.UUID,
    owner_type: str,
    owner_id: uuid.UUID,
    version: int,
    wrapped: bytes,
) -> bytes:
    """The raw data key; :class:`DataKeyUnwrapError` if it does not authenticate."""
    kek = keyring.kek(version)
    wrapped = bytes(wrapped)
    aad = _dek_aad(key_id, owner_type, owner_id, version)
    try:
        if len(wrapped) != NONCE_LEN + KEY_BYTES + TAG_LEN:
            raise InvalidTag
        return kek.decrypt(wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], aad)
    except InvalidTag:
        raise DataKeyUnwrapError(
            f"Data key {key_id} (of {owner_type} {owner_id}) does not unwrap under KEK "
            f"version {version} of the keyring {keyring.path}: the keyring file is not the "
            "one this key store was written with, or the key-store row was altered."
        ) from None


@functools.lru_cache(maxsize=4096)
def _location(table: str, column: str, row_id: object) -> bytes:
    """``|table|column|row id`` of the associated data (cached: str(UUID) is slow)."""
    return f"|{table}|{column}|{row_id}".encode()


def seal(
    dek: DataKeyMaterial, plaintext: bytes, *, table: str, column: str, row_id: object
) -> Sealed:
    """Encrypt ``plaintext`` for ``table.column`` of row ``row_id``."""
    header = dek.header
    nonce = os.urandom(NONCE_LEN)
    aad = header + _location(table, column, row_id)
    return Sealed(header + nonce + dek._aead.encrypt(nonce, plaintext, aad))


def open_sealed(
    dek: DataKeyMaterial, sealed: Sealed, *, table: str, column: str, row_id: object
) -> bytes:
    """Decrypt a sealed value of ``table.column`` of row ``row_id``.

    :class:`DecryptionError` when it is malformed, sealed under another data key,
    altered, or copied from another row, column or table.
    """
    blob = sealed.blob
    if len(blob) < HEADER_LEN + NONCE_LEN + TAG_LEN or blob[0] != FORMAT_V1:
        raise DecryptionError(
            f"The encrypted value in {_where(table, column, row_id)} is malformed (not format 1)."
        )
    header = blob[:HEADER_LEN]
    if header != dek.header and (dek := dek.opener(header)) is None:
        raise DecryptionError(
            f"The encrypted value in {_where(table, column, row_id)} was sealed under another "
            "data key (copied from another data subject's row?)."
        )
    nonce, body = blob[HEADER_LEN : HEADER_LEN + NONCE_LEN], blob[HEADER_LEN + NONCE_LEN :]
    try:
        return dek._aead.decrypt(nonce, body, header + _location(table, column, row_id))
    except InvalidTag:
        raise DecryptionError(
            f"The encrypted value in {_where(table, column, row_id)} does not authenticate: it "
            "was altered, or copied from another row, column or table."
        ) from None


def random_nonces(count: int) -> list[bytes]:
    """``count`` random AES-GCM nonces from one read of the OS random generator (a bulk
    re-sealing: one system call instead of one per value)."""
    pool = os.urandom(NONCE_LEN * count)
    return [pool[i : i + NONCE_LEN] for i in range(0, len(pool), NONCE_LEN)]


def reseal(
    source: DataKeyMaterial,
    target: DataKeyMaterial,
    blob: bytes,
    *,
    location: bytes,
    nonce: bytes,
    where: tuple[str, str, object],
) -> bytes:
    """A sealed value (``blob``, under ``source``) sealed again under ``target`` for the
    same place: ``location`` is ``|table|column|row id`` as bytes (computed once per row
    by the caller, ``where`` names the place for the error), ``nonce`` a fresh random
    nonce (:func:`random_nonces`). Same format and associated data as :func:`seal` and
    :func:`open_sealed`; :class:`DecryptionError` if the value does not authenticate."""
    header = blob[:HEADER_LEN]
    body = blob[HEADER_LEN + NONCE_LEN :]
    try:
        if header != source.header or len(body) < TAG_LEN:
            raise InvalidTag
        plaintext = source._aead.decrypt(
            blob[HEADER_LEN : HEADER_LEN + NONCE_LEN], body, header + location
        )
    except InvalidTag:
        raise DecryptionError(
            f"The encrypted value in {_where(*where)} does not authenticate: it was altered, "
            "or copied from another row, column or table."
        ) from None
    target_header = target.header
    return target_header + nonce + target._aead.encrypt(nonce, plaintext, target_header + location)


def _where(table: str, column: str, row_id: object) -> str:
    return f"{table}.{column} of row {row_id}"
