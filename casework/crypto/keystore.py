"""The key store: data keys (DEK), wrapped under the keyring's KEK, in their own database.

Every function here works on the ``keystore`` database alias (see
``casework.routers``) and commits its own short transaction there, so a data
key is durable before the row that needs it is written, and a destroyed key is
gone before the erasure is recorded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import psycopg
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone

from audit.history import ByteaArray, UuidArray, register_binary_arrays
from casework.crypto.envelope import (
    DataKeyMaterial,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from casework.crypto.errors import DataKeyMissing
from casework.crypto.keyring import Keyring, get_keyring
from casework.routers import KEYSTORE

logger = logging.getLogger(__name__)

PERSON = "casework.person"
# A GVI group's name and notes are sealed under a data key of the group's own.
GROUP = "workflows.group"
# Everything that belongs to one case (its texts, actions, decisions, timeline, the
# programme's records of it) is sealed under the case's own data key (owner id: the
# ``casework.Case`` primary key), so that retention can destroy one case's data while
# the person's identity and other cases stay readable (docs/adr/0023-keys-per-case.md).
CASE = "casework.case"
# A person's previous data key, retired when their cases moved to keys of their own
# (``reseal_case_keys``): it seals nothing new, but still opens what was sealed under it
# — their identity until it is moved, and the change history from before the move,
# which holds copies of their cases' values. It is destroyed when one of their cases is
# culled and when the person is erased (docs/adr/0023-keys-per-case.md). Loading a
# person's key gives the current key widened with it (``DataKeyMaterial.or_else``).
PERSON_PREVIOUS = "casework.person.previous"
# Destroying (or deleting) an owner's key destroys these keys of the same owner too.
_GOES_WITH = {PERSON: (PERSON, PERSON_PREVIOUS)}


def current_keyring() -> Keyring:
    """The keyring of this installation (``settings.KEYRING_FILE``), re-read when it changes."""
    return get_keyring(settings.KEYRING_FILE)


def _model():
    from casework.models import DataKey

    return DataKey


def create_data_key(*, owner_type: str, owner_id: uuid.UUID) -> DataKeyMaterial:
    """Make, wrap and store a new data key for an owner; committed before returning
    (``IntegrityError`` if the owner has one already). Inside :func:`spare_keys`, the
    first one made brings the spares with it, in the same statement."""
    ahead = _ahead.get()
    if ahead is None or not ahead.wanted:
        return create_keys([(owner_type, owner_id)])[owner_type, owner_id]
    spares = [(spare_type, uuid.uuid4()) for spare_type in ahead.wanted]
    ahead.wanted = []
    made = create_keys([(owner_type, owner_id), *spares])
    for spare_type, spare_id in spares:
        ahead.spares[spare_type] = (spare_id, made[spare_type, spare_id])
    return made[owner_type, owner_id]


class _Ahead:
    """The spare keys of a :func:`spare_keys` scope: the owner types still wanted (none
    made yet) and the spares made, by owner type."""

    def __init__(self, owner_types: Iterable[str]) -> None:
        self.wanted = list(owner_types)
        self.spares: dict[str, tuple[uuid.UUID, DataKeyMaterial]] = {}


_ahead: ContextVar[_Ahead | None] = ContextVar("keystore_spare_keys", default=None)


@contextlib.contextmanager
def spare_keys(*owner_types: str) -> Iterator[None]:
    """Inside, the first data key made (:func:`create_data_key`) is stored together with
    one spare key of each of ``owner_types``, each for a new owner id: one statement and
    one commit for them all, still before any row that needs them. An owner created
    next takes its spare (:func:`take_spare_key`) and that id. A spare nobody took is
    destroyed at the end (best effort: a key left behind opens nothing)."""
    ahead = _Ahead(owner_types)
    token = _ahead.set(ahead)
    try:
        yield
    finally:
        _ahead.reset(token)
        for owner_type, (owner_id, _key) in ahead.spares.items():
            try:
                destroy_data_key(owner_type=owner_type, owner_id=owner_id)
            except Exception:
                logger.warning("Could not destroy the unused spare data key of %s", owner_type)


def take_spare_key(owner_type: str) -> tuple[uuid.UUID, DataKeyMaterial] | None:
    """The spare key of ``owner_type`` made in this :func:`spare_keys` scope, with the
    owner id it was made for (the new owner takes that id); ``None`` when there is none,
    and then none is made later in the scope either."""
    ahead = _ahead.get()
    if ahead is None:
        return None
    if owner_type in ahead.wanted:
        ahead.wanted.remove(owner_type)
    return ahead.spares.pop(owner_type, None)


# New keys of owners of any types, one row each, in one statement.
_INSERT_ROWS = (
    "INSERT INTO {table} (id, owner_type, owner_id, kek_version, wrapped_key, created_at) "
    "VALUES {rows}"
)


def create_keys(
    owners: Iterable[tuple[str, uuid.UUID]],
) -> dict[tuple[str, uuid.UUID], DataKeyMaterial]:
    """Make, wrap and store a new data key for each (owner type, owner id), by that pair:
    one statement, committed before returning (on its own, or with the caller's key-store
    transaction). ``IntegrityError`` (and no key stored) if an owner has one already."""
    keyring = current_keyring()
    version = keyring.current
    now = timezone.now()
    made: dict[tuple[str, uuid.UUID], DataKeyMaterial] = {}
    params: list = []
    for owner_type, owner_id in owners:
        key_id, key, wrapped = _new_wrapped(
            keyring, version, owner_type=owner_type, owner_id=owner_id
        )
        params += [key_id, owner_type, owner_id, version, wrapped, now]
        made[owner_type, owner_id] = DataKeyMaterial(key_id, key)
    if not made:
        return {}
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(made))
    # Outside a key-store transaction the single statement commits on its own.
    with connections[KEYSTORE].cursor() as cursor:
        cursor.execute(_INSERT_ROWS.format(table=table, rows=rows), params)
    return made


def _new_wrapped(
    keyring, version: int, *, owner_type: str, owner_id: uuid.UUID
) -> tuple[uuid.UUID, bytes, bytes]:
    """A new data key for an owner: (key id, key, the key wrapped under KEK ``version``)."""
    key_id, key = new_data_key()
    _, wrapped = wrap_data_key(
        keyring, key_id=key_id, owner_type=owner_type, owner_id=owner_id, key=key, version=version
    )
    return key_id, key, wrapped


# New keys of one owner type, one row per (id, owner, wrapped key), in one statement.
_INSERT_KEYS = (
    "INSERT INTO {table} (id, owner_type, owner_id, kek_version, wrapped_key, created_at) "
    "SELECT v.id, %s, v.owner_id, %s, v.wrapped_key, %s "
    "FROM unnest(%b::uuid[], %b::uuid[], %b::bytea[]) AS v(id, owner_id, wrapped_key)"
)


def create_data_keys(
    *, owner_type: str, owner_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, DataKeyMaterial]:
    """Make, wrap and store new data keys for several owners in one key-store
    transaction (one statement, binary parameters), committed before returning. An
    owner that has a key already keeps it (``datakey_one_per_owner``) and is left out
    of the answer."""
    keyring = current_keyring()
    made: dict[uuid.UUID, tuple[uuid.UUID, DataKeyMaterial]] = {}
    ids, owners, wrapped_keys = [], [], []
    version = keyring.current
    for owner_id in owner_ids:
        key_id, key, wrapped = _new_wrapped(
            keyring, version, owner_type=owner_type, owner_id=owner_id
        )
        ids.append(key_id)
        owners.append(owner_id)
        wrapped_keys.append(wrapped)
        made[key_id] = (owner_id, DataKeyMaterial(key_id, key))
    if not ids:
        return {}
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    with transaction.atomic(using=KEYSTORE):
        connections[KEYSTORE].ensure_connection()
        with psycopg.Cursor(connections[KEYSTORE].connection) as cursor:
            register_binary_arrays(cursor)
            cursor.execute(
                _INSERT_KEYS.format(table=table) + " ON CONFLICT DO NOTHING RETURNING id",
                [
                    owner_type,
                    version,
                    timezone.now(),
                    UuidArray(ids),
                    UuidArray(owners),
                    ByteaArray(wrapped_keys),
                ],
                binary=True,
            )
            kept = [row[0] for row in cursor.fetchall()]
    return {made[key_id][0]: made[key_id][1] for key_id in kept}


def retire_person_keys(person_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DataKeyMaterial]:
    """Give these persons a new data key and keep their current one as their previous key
    (``PERSON_PREVIOUS``: re-wrapped for that owner type, as the wrapping binds it), in
    one key-store transaction committed before returning. A person who has a previous
    key already, or no key (erased), is left alone. Returns the new keys (widened with
    the previous ones) by person id.

    Nothing is sealed under the new key yet: everything of the person still opens (the
    previous key comes with every load of the person's key), new writes seal under the
    new one, and the previous key can then be destroyed (with the change history from
    before the move: ``destroy_data_keys(owner_type=PERSON_PREVIOUS, …)``) once what is
    still under it has been moved (``casework.services.case_keys``)."""
    person_ids = list(person_ids)
    if not person_ids:
        return {}
    keyring = current_keyring()
    version = keyring.current
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    now = timezone.now()
    made: dict[uuid.UUID, DataKeyMaterial] = {}
    with _cache_lock:
        for owner_id in person_ids:
            _cache.pop((PERSON, owner_id), None)
    with transaction.atomic(using=KEYSTORE):
        connections[KEYSTORE].ensure_connection()
        with psycopg.Cursor(connections[KEYSTORE].connection) as cursor:
            register_binary_arrays(cursor)
            cursor.execute(
                "SELECT d.id, d.owner_type, d.owner_id, d.kek_version, d.wrapped_key "  # noqa: S608 - fixed table name
                f"FROM {table} AS d "
                "WHERE d.owner_type = %s AND d.owner_id = ANY(%b) AND NOT EXISTS ("
                f"SELECT 1 FROM {table} AS p WHERE p.owner_type = %s AND p.owner_id = d.owner_id"
                ") ORDER BY d.owner_id FOR UPDATE OF d",
                [PERSON, UuidArray(person_ids), PERSON_PREVIOUS],
                binary=True,
            )
            rows = cursor.fetchall()
            if not rows:
                return {}
            old_ids, rewrapped, new_ids, owners, wrapped_new = [], [], [], [], []
            for row in rows:
                key_id, _, owner_id, _, _ = row
                key = _unwrap(keyring, row)
                _, again = wrap_data_key(
                    keyring,
                    key_id=key_id,
                    owner_type=PERSON_PREVIOUS,
                    owner_id=owner_id,
                    key=key,
                    version=version,
                )
                old_ids.append(key_id)
                rewrapped.append(again)
                new_id, new_key, wrapped_key = _new_wrapped(
                    keyring, version, owner_type=PERSON, owner_id=owner_id
                )
                new_ids.append(new_id)
                owners.append(owner_id)
                wrapped_new.append(wrapped_key)
                made[owner_id] = DataKeyMaterial(new_id, new_key).or_else(
                    DataKeyMaterial(key_id, key)
                )
            cursor.execute(
                f"UPDATE {table} AS d SET owner_type = %s, kek_version = %s, "  # noqa: S608
                "wrapped_key = v.wrapped_key, rewrapped_at = %s "
                "FROM unnest(%b::uuid[], %b::bytea[]) AS v(id, wrapped_key) WHERE d.id = v.id",
                [PERSON_PREVIOUS, version, now, UuidArray(old_ids), ByteaArray(rewrapped)],
                binary=True,
            )
            cursor.execute(
                _INSERT_KEYS.format(table=table),
                [
                    PERSON,
                    version,
                    now,
                    UuidArray(new_ids),
                    UuidArray(owners),
                    ByteaArray(wrapped_new),
                ],
                binary=True,
            )
    with _cache_lock:  # should a reader have put an old one back meanwhile
        for owner_id in person_ids:
            _cache.pop((PERSON, owner_id), None)
    return made


def _unwrap(keyring: Keyring, row: tuple) -> bytes:
    """The data key of a key-store row ``(id, owner_type, owner_id, kek_version,
    wrapped_key)``."""
    key_id, owner_type, owner_id, version, wrapped = row
    return unwrap_data_key(
        keyring,
        key_id=key_id,
        owner_type=owner_type,
        owner_id=owner_id,
        version=version,
        wrapped=wrapped,
    )


def _missing(owner_type: str, owner_id: uuid.UUID) -> DataKeyMissing:
    return DataKeyMissing(
        f"{owner_type} {owner_id} has no data key: it was destroyed by an erasure (an "
        f"interrupted erasure is completed by running `manage.py erase_person {owner_id}` "
        "again) or was never made. Its encrypted data cannot be read."
    )


# --- The data-key cache -------------------------------------------------------------
#
# A key-store read costs a round trip to another database; a user working on a
# case reads the same person's key on every page and step. Unwrapped keys are
# therefore kept in this process for ``settings.DATA_KEY_CACHE_SECONDS`` (the
# pattern of "data key caching" in envelope encryption), at most
# ``_CACHE_SIZE`` of them. The keyring's KEKs, which unwrap every key, live in
# the same memory for the life of the process, so the cache adds no new
# exposure. Destroying a key drops it here at once; other processes forget it
# within the cache time (docs/adr/0004), and the selectors refuse an erased
# person whatever keys they hold.

_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, uuid.UUID], tuple[float, DataKeyMaterial]] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(owner_type: str, owner_ids: list[uuid.UUID]) -> dict[uuid.UUID, DataKeyMaterial]:
    seconds = settings.DATA_KEY_CACHE_SECONDS
    if not seconds:
        return {}
    now = time.monotonic()
    found = {}
    with _cache_lock:
        for owner_id in owner_ids:
            entry = _cache.get((owner_type, owner_id))
            if entry is None:
                continue
            if now - entry[0] >= seconds:
                del _cache[(owner_type, owner_id)]
                continue
            found[owner_id] = entry[1]
    return found


def _remember(owner_type: str, keys: dict[uuid.UUID, DataKeyMaterial]) -> None:
    if not settings.DATA_KEY_CACHE_SECONDS or not keys:
        return
    now = time.monotonic()
    with _cache_lock:
        for owner_id, material in keys.items():
            _cache[(owner_type, owner_id)] = (now, material)
            _cache.move_to_end((owner_type, owner_id))
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def forget_data_keys() -> None:
    """Empty this process's data-key cache (tests; after restoring a key store)."""
    with _cache_lock:
        _cache.clear()


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
    return load_keys({owner_type: owner_ids}).get(owner_type, {})


def load_keys(
    owners: dict[str, Iterable[uuid.UUID]],
) -> dict[str, dict[uuid.UUID, DataKeyMaterial]]:
    """The unwrapped data keys of owners of several types (one query for all of them, or
    none from the cache), by owner type and id; missing ones are left out."""
    found: dict[str, dict[uuid.UUID, DataKeyMaterial]] = {}
    missing: dict[str, list[uuid.UUID]] = {}
    for owner_type, owner_ids in owners.items():
        owner_ids = list(owner_ids)
        found[owner_type] = _cached(owner_type, owner_ids)
        wanted = [owner_id for owner_id in owner_ids if owner_id not in found[owner_type]]
        if wanted:
            missing[owner_type] = wanted
    if not missing:
        return found
    keyring = current_keyring()
    wanted = dict(missing)
    if PERSON in missing:
        # A person's previous key (if any) comes with their key, in the same query.
        wanted[PERSON_PREVIOUS] = list({*wanted.get(PERSON_PREVIOUS, ()), *missing[PERSON]})
    # One array parameter per owner type (thousands of ids in one query: a cull, a
    # re-sealing), not one placeholder per id.
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    where = " OR ".join(["(owner_type = %s AND owner_id = ANY(%s))"] * len(wanted))
    with connections[KEYSTORE].cursor() as cursor:
        cursor.execute(
            f"SELECT id, owner_type, owner_id, kek_version, wrapped_key FROM {table} "  # noqa: S608
            f"WHERE {where}",
            [item for owner_type, ids in wanted.items() for item in (owner_type, ids)],
        )
        rows = cursor.fetchall()
    loaded: dict[str, dict[uuid.UUID, DataKeyMaterial]] = {t: {} for t in missing}
    loaded.setdefault(PERSON_PREVIOUS, {})
    for row in rows:
        key_id, owner_type, owner_id, _, _ = row
        loaded[owner_type][owner_id] = DataKeyMaterial(key_id, _unwrap(keyring, row))
    previous = loaded.pop(PERSON_PREVIOUS)
    if PERSON in loaded:
        persons = loaded[PERSON]
        for owner_id, key in persons.items():
            persons[owner_id] = key.or_else(previous.get(owner_id))
    if PERSON_PREVIOUS in missing:
        loaded[PERSON_PREVIOUS] = previous
    # Only keys committed in the key store are remembered (not one this
    # process made in a key-store transaction that may still roll back).
    remember = not connections[KEYSTORE].in_atomic_block
    for owner_type, keys in loaded.items():
        if remember:
            _remember(owner_type, keys)
        found[owner_type] |= keys
    return found


def destroy_data_key(*, owner_type: str, owner_id: uuid.UUID) -> bool:
    """Delete an owner's data key (committed at once); ``False`` if it was already gone."""
    return bool(delete_data_keys(owner_type=owner_type, owner_ids=[owner_id]))


def destroy_data_keys(*, owner_type: str, owner_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Delete several owners' data keys in one key-store transaction (committed at once);
    returns the owners whose key was there (the others were already gone)."""
    owner_ids = list(owner_ids)
    if not owner_ids:
        return set()
    _forget(owner_type, owner_ids)
    table = connections[KEYSTORE].ops.quote_name(_model()._meta.db_table)
    types = list(_GOES_WITH.get(owner_type, (owner_type,)))
    with transaction.atomic(using=KEYSTORE):
        connections[KEYSTORE].ensure_connection()
        with psycopg.Cursor(connections[KEYSTORE].connection) as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE owner_type = ANY(%s) AND owner_id = ANY(%s) "  # noqa: S608
                "RETURNING owner_type, owner_id",
                [types, owner_ids],
                binary=True,
            )
            destroyed = {owner for kind, owner in cursor.fetchall() if kind == owner_type}
    _forget(owner_type, owner_ids)  # and once more, should a reader have put one back
    return destroyed


def _forget(owner_type: str, owner_ids: list[uuid.UUID]) -> None:
    """Drop these owners' keys from this process's cache (a person's cached key holds
    their previous key too)."""
    types = {owner_type, PERSON} if owner_type == PERSON_PREVIOUS else {owner_type}
    with _cache_lock:
        for kind in types:
            for owner_id in owner_ids:
                _cache.pop((kind, owner_id), None)


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
            f"SELECT id, owner_type, owner_id, kek_version, wrapped_key FROM {table} "  # noqa: S608 - fixed table name
            "WHERE kek_version = %s ORDER BY id LIMIT %s FOR UPDATE",
            [from_version, batch_size],
        )
        ids, wrapped_keys = [], []
        for row in cursor.fetchall():
            key_id, owner_type, owner_id, _, _ = row
            _, rewrapped = wrap_data_key(
                keyring,
                key_id=key_id,
                owner_type=owner_type,
                owner_id=owner_id,
                key=_unwrap(keyring, row),
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


def owner_ids(*, owner_type: str) -> list[uuid.UUID]:
    """The owner ids of every data key of ``owner_type`` (ids only, no key material)."""
    return list(_model().objects.filter(owner_type=owner_type).values_list("owner_id", flat=True))


def delete_data_keys(*, owner_type: str, owner_ids: Iterable[uuid.UUID]) -> int:
    """Delete the data keys of several owners (committed at once; dropped from this
    process's cache); how many were deleted."""
    owner_ids = list(owner_ids)
    with _cache_lock:
        for owner_id in owner_ids:
            _cache.pop((owner_type, owner_id), None)
    types = _GOES_WITH.get(owner_type, (owner_type,))
    with transaction.atomic(using=KEYSTORE):
        deleted, _ = _model().objects.filter(owner_type=owner_type, owner_id__in=owner_ids).delete()
        if len(types) > 1:
            _model().objects.filter(owner_type__in=types[1:], owner_id__in=owner_ids).delete()
    with _cache_lock:  # and once more, should a reader have put one back meanwhile
        for owner_id in owner_ids:
            _cache.pop((owner_type, owner_id), None)
    return deleted
