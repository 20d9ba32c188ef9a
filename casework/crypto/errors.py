"""Errors of the encryption layer.

Messages name files, key versions, tables, columns and row ids - never key
material and never a plaintext value, so they are safe in logs and error pages.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every encryption-layer error."""


class KeyringError(CryptoError):
    """The keyring file is missing, unreadable or invalid, or lacks a key version."""


class DataKeyMissing(CryptoError):
    """The data key of a data subject does not exist: it was destroyed (erasure) or never made."""


class DataKeyUnwrapError(CryptoError):
    """A wrapped data key does not authenticate under the keyring's key of its version."""


class DecryptionError(CryptoError):
    """A sealed value does not authenticate: altered, moved, or sealed under another key."""


class RotationInProgress(CryptoError):
    """Another key rotation holds the rotation lock."""


class KeyRetirementRefused(CryptoError):
    """A key-encryption key cannot be retired: it is current or data keys still use it."""
