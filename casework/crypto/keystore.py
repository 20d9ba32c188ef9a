"""The key store: data keys (DEK), wrapped under the keyring's KEK, in their own database.

Every function here works on the ``keystore`` database alias (see
``casework.routers``) and commits its own short transaction there, so a data
key is durable before the row that needs it is written, and a destroyed key is
gone before the erasure is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone

from casework.crypto.envelope import (
    DataKeyMaterial,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from casework.crypto.errors import DataKeyMissing
from casework.crypto.keyring import Keyring, get_keyring
from casework.routers import KEYSTORE

PERSON = "casework.person"
# A GVI group's name and notes are sealed under a data key of the group's own.
GROUP = "workflows.group"


def current_keyring() -> Keyring:
    """The keyring of this installation (``settings.KEYRING_FILE``), re-read when it changes."""
    return get_keyring(settings.KEYRING_FILE)


def _model():
    from casework.models import DataKey

    return DataKey


def create_data_key(*, owner_type: str, owner_id: uuid.UUID) -> DataKeyMaterial:
    """Make, wrap and store a new data key for an owner; committed before returning."""
    keyring = current_keyring()
    key_id, key = new_data_key()
    version, wrapped = wrap_data_key(
        keyring, key_id=key_id, owner_type=owner_type, owner_id=owner_id, key=key
    )
    with transaction.atomic(using=KEYSTORE):
        _model().objects.create(
            id=key_id,
            owner_type=owner_type,
            owner_id=owner_id,
            kek_version=version,
            wrapped_key=wrapped,
        )
    return DataKeyMaterial(key_id, key)


def _missing(owner_type: str, owner_id: uuid.UUID) -> DataKeyMissing:
    return DataKeyMissing(
        f"{owner_type} {owner_id} has no data key: it was destroyed by an erasure (an "
        f"interrupted erasure is completed by running `manage.py erase_person {owner_id}` "
        "again) or was never made. Its encrypted data cannot be read."
    )


def load_data_key(*, owner_type: str, owner_id: uuid.UUID) -> DataKeyMaterial:
    """The unwrapped data key of an owner; :class:`DataKeyMissing` if it is gone."""
    keys = load_data_keys(owner_type=owner_type, owner_ids=[owner_id])
    try:
        return keys[owner_id]
    except KeyError:
        raise _missing(owner_type, owner_id) from None


def load_data_keys(
    *, owner_type: str, owner_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, DataKeyMaterial]:
    """The unwrapped data keys of several owners (one query); missing ones are left out."""
    owner_ids = list(owner_ids)
    if not owner_ids:
        return {}
    keyring = current_keyring()
    rows = (
        _model()
        .objects.filter(owner_type=owner_type, owner_id__in=owner_ids)
        .values_list("id", "owner_id", "kek_version", "wrapped_key")
    )
    keys = {}
    for key_id, owner_id, version, wrapped in rows:
        key = unwrap_data_key(
            keyring,
            key_id=key_id,
            owner_type=owner_type,
            owner_id=owner_id,
            version=version,
            wrapped=wrapped,
        )
        keys[owner_id] = DataKeyMaterial(key_id, key)
    return keys


def destroy_data_key(*, owner_type: str, owner_id: uuid.UUID) -> bool:
    """Delete an owner's data key (committed at once); ``False`` if it was already gone."""
    with transaction.atomic(using=KEYSTORE):
        deleted, _ = _model().objects.filter(owner_type=owner_type, owner_id=owner_id).delete()
    return bool(deleted)


def count_by_version() -> dict[int, int]:
    """How many data keys each KEK version wraps."""
    rows = _model().objects.values("kek_version").annotate(n=Count("id")).order_by("kek_version")
    return {row["kek_version"]: row["n"] for row in rows}


def rewrap_batch(keyring: Keyring, *, from_version: int, batch_size: int) -> int:
    """Re-wrap up to ``batch_size`` data keys of KEK ``from_version`` under the current KEK.

    One key-store transaction: the rows are locked, unwrapped, wrapped again and
    updated in one statement. Returns how many were re-wrapped (0: none left).
    """
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    target = keyring.current
    with transaction.atomic(using=KEYSTORE), connections[KEYSTORE].cursor() as cursor:
        cursor.execute(
            f"SELECT id, owner_type, owner_id, wrapped_key FROM {table} "  # noqa: S608 - fixed table name
            "WHERE kek_version = %s ORDER BY id LIMIT %s FOR UPDATE",
            [from_version, batch_size],
        )
        ids, wrapped_keys = [], []
        for key_id, owner_type, owner_id, wrapped in cursor.fetchall():
            key = unwrap_data_key(
                keyring,
                key_id=key_id,
                owner_type=owner_type,
                owner_id=owner_id,
                version=from_version,
                wrapped=wrapped,
            )
            _, rewrapped = wrap_data_key(
                keyring, key_id=key_id, owner_type=owner_type, owner_id=owner_id, key=key
            )
            ids.append(key_id)
            wrapped_keys.append(rewrapped)
        if ids:
            cursor.execute(
                f"UPDATE {table} AS d SET wrapped_key = v.wrapped_key, kek_version = %s, "  # noqa: S608
                "rewrapped_at = %s FROM unnest(%s::uuid[], %s::bytea[]) AS v(id, wrapped_key) "
                "WHERE d.id = v.id",
                [target, timezone.now(), ids, wrapped_keys],
            )
    return len(ids)


def owner_ids_created_before(*, owner_type: str, before, after_id: uuid.UUID | None, limit: int):
    """Owner ids of data keys made before ``before``, in key-id order (for sweeping orphans)."""
    queryset = _model().objects.filter(owner_type=owner_type, created_at__lt=before)
    if after_id is not None:
        queryset = queryset.filter(id__gt=after_id)
    return list(queryset.order_by("id").values_list("id", "owner_id")[:limit])


def delete_data_keys(*, owner_type: str, owner_ids: Iterable[uuid.UUID]) -> int:
    with transaction.atomic(using=KEYSTORE):
        deleted, _ = (
            _model().objects.filter(owner_type=owner_type, owner_id__in=list(owner_ids)).delete()
        )
    return deleted
