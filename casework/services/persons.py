"""Writes of case data: the only code that seals personal data.

Keyword-only functions taking the acting ``user`` (``None`` for the system: a
management command, the demo seed) and the ``purpose``. Each writes its
access-log event (``CREATE``, ``CHANGE``, ``ERASE``, ``KEY_ROTATION``) in the same
transaction as the change it records, naming fields, never values.

Write order across the two databases (docs/adr/0004-field-encryption.md):
a new data key is committed in the key store *before* the person row that
needs it; an erasure deletes the data key *first* (the data is unreadable at
once), then marks the person erased. A failure in between leaves an orphan key
(harmless, swept by ``keys sweep``) or a person whose key is gone (completed by
running the erasure again) - never readable data that should be gone.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action, record_event, record_events
from casework import personnummer as pnr
from casework import policy
from casework.crypto import keyring as keyring_file
from casework.crypto.blind_index import personnummer_index
from casework.crypto.errors import KeyRetirementRefused, KeyringError, RotationInProgress
from casework.crypto.keystore import (
    CASE,
    PERSON,
    count_by_version,
    create_data_key,
    current_keyring,
    delete_data_keys,
    destroy_data_key,
    destroy_data_keys,
    load_data_key,
    owner_ids_created_before,
    rewrap_batch,
)
from casework.crypto.keystore import owner_ids as keystore_owner_ids
from casework.crypto.records import open_value, seal_value
from casework.models import Case, Person
from casework.routers import KEYSTORE
from casework.selectors.persons import (
    PERSON_OBJECT,
    PersonErased,
    deny_person,
    find_person,
    match_by_personnummer,
    require_purpose,
)
from casework.services.case_keys import destroy_person_case_keys

if TYPE_CHECKING:
    from casework.models import User

logger = logging.getLogger(__name__)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of the optional arguments of :func:`update_person`: leave the field as it is."""

TEXT_LIMITS = {"name": 200, "address": 300, "phone": 40, "note": 10_000}
PLAIN_FIELDS = ("birth_year", "gender", "area", "protected_identity")
# Advisory-lock class for "registering this blind-index value" (pg_advisory_xact_lock(int, int)).
_REGISTRATION_LOCK = 0x5A5E
# Session advisory lock on the key store held by a running rotation.
_ROTATION_LOCK = 0x5A5E_0001


def _text(value: Any, name: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError({name: ValidationError(_("This field is required."), "required")})
        return None
    if not isinstance(value, str):
        raise ValidationError({name: ValidationError(_("Enter text."), "invalid")})
    value = value.strip()
    if len(value) > TEXT_LIMITS[name]:
        message = _("Ensure this value has at most %(limit)d characters.")
        raise ValidationError(
            {name: ValidationError(message, "max_length", {"limit": TEXT_LIMITS[name]})}
        )
    return value


def _choice(value: Any, name: str, choices) -> Any:
    if value not in choices.values:
        raise ValidationError(
            {name: ValidationError(_("Select a valid choice."), "invalid_choice")}
        )
    return value


def _gender_from(normalised: str) -> str:
    return Person.Gender.MALE if pnr.legal_gender(normalised) == "M" else Person.Gender.FEMALE


def _lock_registration(index: int) -> None:
    """Serialise registrations of the same blind-index value (no duplicate persons)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_REGISTRATION_LOCK, index])


def _discard_data_key(owner_id: uuid.UUID) -> None:
    """Best effort: a key left behind is an orphan, harmless and swept later."""
    try:
        destroy_data_key(owner_type=PERSON, owner_id=owner_id)
    except Exception:
        logger.warning("Could not discard the unused data key of person %s", owner_id)


def _duplicate(
    *, user: User | None, purpose: str, legal_basis: str, existing: Person
) -> ValidationError:
    """The user learns that the number is registered: that is an access, so it is logged,
    on its own (the caller's transaction rolls back with the error; the event stays)."""
    record_event(
        action=Action.CONSULT,
        user=user,
        obj=existing,
        person_id=existing.pk,
        fields=["personnummer"],
        purpose=purpose,
        legal_basis=legal_basis,
        details={"lookup": "duplicate check"},
        independent=True,
    )
    message = _("A person with this personal identity number is already registered.")
    return ValidationError({"personnummer": ValidationError(message, "duplicate")})


# --- Persons -----------------------------------------------------------------------


def check_registration(*, name: Any, personnummer: Any, area: Any = Person.Area.OTHER) -> str:
    """The checks :func:`create_person` makes of the typed name, personnummer and area,
    without looking at the register; return the normalised personnummer.

    A form that registers a person only if the number is new runs these first, for
    every number, so that its answer to bad input never depends on whether the
    number is registered (docs/adr/0015-lookups-leave-a-trace.md). Raises one
    ``ValidationError`` naming every bad field.
    """
    errors: dict[str, list[ValidationError]] = {}
    normalised = ""
    try:
        normalised = pnr.normalise(personnummer)
    except ValidationError as exc:
        errors["personnummer"] = exc.error_list
    for check in (
        lambda: _text(name, "name", required=True),
        lambda: _choice(area, "area", Person.Area),
    ):
        try:
            check()
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    return normalised


def create_person(
    *, user: User | None, purpose: str, name: str, personnummer: str, **details
) -> Person:
    """Register a person: a new data key, the encrypted fields, the blind index.

    ``personnummer`` in any accepted form; birth year and date come from it, and
    the gender too unless given. ``details``: ``gender``, ``area``,
    ``protected_identity``, ``address``, ``phone``, ``note``, ``legal_basis`` and
    ``person_id`` (see :func:`_create_person`). Raises ``ValidationError`` (field errors,
    or a duplicate personnummer), ``PermissionDenied``.
    """
    return _create_person(
        user=user, purpose=purpose, name=name, personnummer=personnummer, **details
    )


def _create_person(
    *,
    user: User | None,
    purpose: str,
    name: str,
    personnummer: str,
    gender: str | None = None,
    area: str = Person.Area.OTHER,
    protected_identity: int = Person.ProtectedIdentity.NONE,
    address: str | None = None,
    phone: str | None = None,
    note: str | None = None,
    legal_basis: str = "",
    person_id: uuid.UUID | None = None,
    locked: bool = False,
) -> Person:
    """:func:`create_person`; ``locked``: the caller holds the registration lock of this
    personnummer for its transaction and has found no one with it under that lock."""
    purpose = require_purpose(purpose)
    if user is not None and not policy.can_process_person_data(user):
        raise deny_person(user=user, purpose=purpose, what="create", legal_basis=legal_basis)
    try:
        normalised = pnr.normalise(personnummer)
    except ValidationError as exc:
        raise ValidationError({"personnummer": exc.error_list}) from None
    values = {
        "name": _text(name, "name", required=True),
        "personnummer": normalised,
        "birth_date": pnr.birth_date(normalised),
        "address": _text(address, "address"),
        "phone": _text(phone, "phone"),
        "note": _text(note, "note"),
    }
    person = Person(
        id=person_id or uuid.uuid4(),
        birth_year=values["birth_date"].year,
        gender=_choice(gender, "gender", Person.Gender) if gender else _gender_from(normalised),
        area=_choice(area, "area", Person.Area),
        protected_identity=_choice(
            protected_identity, "protected_identity", Person.ProtectedIdentity
        ),
        personnummer_index=personnummer_index(current_keyring(), normalised),
    )
    # 1. The data key, committed in the key store before the row that needs it.
    dek = create_data_key(owner_type=PERSON, owner_id=person.pk)
    existing = None
    try:
        with transaction.atomic(savepoint=False):
            if not locked:
                _lock_registration(person.personnummer_index)
                existing, _candidates = match_by_personnummer(normalised)
            if existing is None:
                for field_name, value in values.items():
                    seal_value(person, field_name, value, dek)
                person.save(force_insert=True)
                record_event(
                    action=Action.CREATE,
                    user=user,
                    obj=person,
                    person_id=person.pk,
                    fields=[n for n, v in values.items() if v is not None] + list(PLAIN_FIELDS),
                    purpose=purpose,
                    legal_basis=legal_basis,
                )
    except BaseException:
        _discard_data_key(person.pk)
        raise
    if existing is not None:
        _discard_data_key(person.pk)
        raise _duplicate(user=user, purpose=purpose, legal_basis=legal_basis, existing=existing)
    return person


def find_or_create_person(*, user: User, purpose: str, personnummer: str, **details) -> Person:
    """The registered person with this personnummer (``find_person``, which logs the
    lookup), or a new one (:func:`create_person`; ``details``: its other arguments).

    One look-up, under the registration lock of the personnummer held to the end of the
    transaction (the caller's, or one of its own): nobody registers the same number
    between the look-up and the registration."""
    with transaction.atomic(savepoint=False):
        # An invalid personnummer is refused by find_person, before any look-up.
        with contextlib.suppress(ValidationError):
            _lock_registration(personnummer_index(current_keyring(), pnr.normalise(personnummer)))
        person = find_person(user=user, purpose=purpose, personnummer=personnummer)
        if person is None:
            person = _create_person(
                user=user, purpose=purpose, personnummer=personnummer, locked=True, **details
            )
    return person


def update_person(
    *,
    user: User | None,
    purpose: str,
    person_id: uuid.UUID | str,
    legal_basis: str = "",
    name: str = UNSET,
    personnummer: str = UNSET,
    address: str | None = UNSET,
    phone: str | None = UNSET,
    note: str | None = UNSET,
    gender: str = UNSET,
    area: str = UNSET,
    protected_identity: int = UNSET,
) -> list[str]:
    """Change the given fields of a person; return the names of those that changed.

    A submitted value equal to the stored one is left alone (its ciphertext is not
    rewritten). Writes one ``CHANGE`` event per call naming the changed fields
    (and, under ``details``, the submitted ones: comparing is also an access).
    """
    purpose = require_purpose(purpose)
    if user is not None and not policy.can_process_person_data(user):
        raise deny_person(
            user=user, purpose=purpose, what="change", person_id=person_id, legal_basis=legal_basis
        )
    encrypted: dict[str, Any] = {}
    if name is not UNSET:
        encrypted["name"] = _text(name, "name", required=True)
    if personnummer is not UNSET:
        try:
            normalised = pnr.normalise(personnummer)
        except ValidationError as exc:
            raise ValidationError({"personnummer": exc.error_list}) from None
        encrypted["personnummer"] = normalised
        encrypted["birth_date"] = pnr.birth_date(normalised)
    for field_name, value in (("address", address), ("phone", phone), ("note", note)):
        if value is not UNSET:
            encrypted[field_name] = _text(value, field_name)
    plain: dict[str, Any] = {}
    if gender is not UNSET:
        plain["gender"] = _choice(gender, "gender", Person.Gender)
    if area is not UNSET:
        plain["area"] = _choice(area, "area", Person.Area)
    if protected_identity is not UNSET:
        plain["protected_identity"] = _choice(
            protected_identity, "protected_identity", Person.ProtectedIdentity
        )

    duplicate = None
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person_id)
        if person.erased_at is not None:
            raise PersonErased(person.pk)
        dek = load_data_key(owner_type=PERSON, owner_id=person.pk)
        changed = [f for f, v in encrypted.items() if open_value(person, f, dek) != v]
        changed += [f for f, v in plain.items() if getattr(person, f) != v]
        if "personnummer" in changed:
            index = personnummer_index(current_keyring(), encrypted["personnummer"])
            _lock_registration(index)
            duplicate, _candidates = match_by_personnummer(
                encrypted["personnummer"], exclude=person.pk
            )
            person.personnummer_index = index
            person.birth_year = encrypted["birth_date"].year
        if duplicate is None:
            for field_name in changed:
                if field_name in encrypted:
                    seal_value(person, field_name, encrypted[field_name], dek)
                else:
                    setattr(person, field_name, plain[field_name])
            if changed:
                person.updated_at = timezone.now()
                extra = ["personnummer_index", "birth_year"] if "personnummer" in changed else []
                person.save(update_fields=[*changed, *extra, "updated_at"])
            record_event(
                action=Action.CHANGE,
                user=user,
                obj=person,
                person_id=person.pk,
                fields=changed + (["birth_year"] if "personnummer" in changed else []),
                purpose=purpose,
                legal_basis=legal_basis,
                details={"submitted": sorted([*encrypted, *plain])},
            )
    if duplicate is not None:
        raise _duplicate(user=user, purpose=purpose, legal_basis=legal_basis, existing=duplicate)
    return changed


def erase_person(
    *, user: User | None, purpose: str, person_id: uuid.UUID | str, legal_basis: str = ""
) -> Person:
    """Erase a person by destroying the data key (crypto-shredding).

    1. the data key, and the data key of every case of the person, are deleted from
       the key store and committed: from this
       moment nothing sealed for the person - in this database, its replicas or
       any backup - can be decrypted (other processes forget a cached copy of
       the key within ``DATA_KEY_CACHE_SECONDS``; docs/adr/0004);
    2. the person is marked erased, the encrypted columns and the blind index
       are emptied, and the ``ERASE`` event is written (one transaction).

    The plain statistics columns stay. Running it again completes an
    interrupted erasure and is otherwise a no-op.
    """
    purpose = require_purpose(purpose)
    if user is not None and not policy.can_erase_person(user):
        raise deny_person(
            user=user, purpose=purpose, what="erase", person_id=person_id, legal_basis=legal_basis
        )
    person = Person.objects.get(pk=person_id)
    _erase(user=user, purpose=purpose, legal_basis=legal_basis, person_ids=[person.pk])
    return Person.objects.get(pk=person.pk)


def erase_persons(*, purpose: str, person_ids: list[uuid.UUID]) -> int:
    """The system's erasure of several persons at once (``manage.py cull``: the persons
    left with nothing but culled cases): :func:`erase_person`'s steps, one key-store
    transaction and one transaction here for the whole batch. Returns how many were
    erased now (not already erased)."""
    return _erase(
        user=None, purpose=require_purpose(purpose), legal_basis="", person_ids=person_ids
    )


def _erase(*, user, purpose: str, legal_basis: str, person_ids: list[uuid.UUID]) -> int:
    destroyed = destroy_data_keys(owner_type=PERSON, owner_ids=person_ids)
    # And the key of every case of theirs (docs/adr/0023): before anything is recorded.
    case_keys_destroyed = destroy_person_case_keys(person_ids)
    fields = [*Person.ENCRYPTED_FIELDS, "personnummer_index"]
    with transaction.atomic():
        pending = list(
            Person.objects.select_for_update()
            .filter(pk__in=person_ids, erased_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not pending:
            return 0
        Person.objects.filter(pk__in=pending).update(
            **dict.fromkeys(fields), erased_at=timezone.now()
        )
        record_events(
            *(
                {
                    "action": Action.ERASE,
                    "user": user,
                    "object_type": PERSON_OBJECT,
                    "object_id": str(person_id),
                    "person_id": person_id,
                    "fields": fields,
                    "purpose": purpose,
                    "legal_basis": legal_basis,
                    "details": {
                        "data_key_destroyed": person_id in destroyed,
                        "case_keys_destroyed": case_keys_destroyed.get(person_id, 0),
                    },
                }
                for person_id in pending
            )
        )
    return len(pending)


# --- Keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationResult:
    version: int
    rewrapped: int
    resumed: bool


class _RotationLock:
    """A session advisory lock on the key store: one rotation at a time."""

    def __enter__(self):
        with connections[KEYSTORE].cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_ROTATION_LOCK])
            if not cursor.fetchone()[0]:
                raise RotationInProgress(
                    "Another key rotation is running (it holds the key store's rotation lock)."
                )
        return self

    def __exit__(self, *exc_info):
        with connections[KEYSTORE].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_ROTATION_LOCK])


def rotate_data_keys(
    *,
    user: User | None = None,
    purpose: str,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> RotationResult:
    """Rotate the KEK: add a new version to the keyring and re-wrap every data key under it.

    Only the wrapped keys change; no sealed value is touched. Batches of
    ``batch_size`` keys are re-wrapped in their own key-store transactions, so an
    interrupted rotation keeps its progress: run again, it continues with the
    keys not yet on the current version instead of adding another version.
    Readers keep working throughout (the keyring holds both versions).
    ``progress(done, total)`` is called after each batch. One ``KEY_ROTATION``
    event per run (also when interrupted, marked incomplete).
    """
    purpose = require_purpose(purpose)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    with _RotationLock():
        keyring = current_keyring()
        counts = count_by_version()
        resumed = any(n for version, n in counts.items() if version != keyring.current)
        if not resumed:
            keyring = keyring_file.add_version(settings.KEYRING_FILE)
        old_versions = sorted(v for v in counts if v != keyring.current)
        missing = [v for v in old_versions if not keyring.has_version(v)]
        if missing:
            raise KeyringError(
                f"Data keys are wrapped under KEK versions {missing}, which the keyring file "
                f"{keyring.path} does not hold: restore those versions to the file first."
            )
        total = sum(counts[v] for v in old_versions)
        done = 0
        complete = False
        try:
            if progress:
                progress(done, total)
            for version in old_versions:
                while rewrapped := rewrap_batch(
                    keyring, from_version=version, batch_size=batch_size
                ):
                    done += rewrapped
                    if progress:
                        progress(done, total)
            complete = True
        finally:
            try:
                _log_keyring(
                    user=user,
                    purpose=purpose,
                    version=keyring.current,
                    kek_version=keyring.current,
                    rewrapped=done,
                    resumed=resumed,
                    complete=complete,
                )
            except Exception:
                if complete:
                    raise
                logger.warning("Could not record the interrupted key rotation")
    return RotationResult(version=keyring.current, rewrapped=done, resumed=resumed)


def retire_key_version(*, user: User | None = None, purpose: str, version: int) -> None:
    """Remove an old KEK from the keyring file, refusing while any data key uses it."""
    purpose = require_purpose(purpose)
    keyring = current_keyring()
    if version == keyring.current:
        raise KeyRetirementRefused(f"KEK version {version} is the current version.")
    in_use = count_by_version().get(version, 0)
    if in_use:
        raise KeyRetirementRefused(
            f"KEK version {version} still wraps {in_use} data keys: run `keys rotate` "
            "until it has re-wrapped them all."
        )
    keyring_file.remove_version(settings.KEYRING_FILE, version)
    _log_keyring(user=user, purpose=purpose, version=version, retired_version=version)


def _log_keyring(*, user, purpose: str, version: int, **details) -> None:
    """The ``KEY_ROTATION`` event of a change of the keyring (KEK ``version``), in its
    own transaction."""
    with transaction.atomic():
        record_event(
            action=Action.KEY_ROTATION,
            user=user,
            object_type="casework.keyring",
            object_id=f"v{version}",
            purpose=purpose,
            details=details,
        )


def discard_stale_demo_data_keys(*, purpose: str) -> int:
    """Delete the data keys a demo database left behind: keys of demo persons whose row
    is not in the main database. Returns how many; one ``ERASE`` event if any.

    Demo persons (``seed_demo``) have uuid5 ids derived from their synthetic numbers, so a
    fresh main database over the key store of an earlier run brings the same ids again,
    and their stale keys would stop the new registrations
    (``datakey_one_per_owner``). Every other person has a uuid4 id. Only uuid5 ids are
    touched, and only when no person row with that id exists right before the delete:
    the key of a person in the main database is never discarded. Other orphans (an
    interrupted registration) are left to :func:`sweep_orphan_data_keys` and its grace.
    """
    purpose = require_purpose(purpose)
    demo_ids = [
        owner_id for owner_id in keystore_owner_ids(owner_type=PERSON) if owner_id.version == 5
    ]
    stale = _without_person(demo_ids)
    deleted = delete_data_keys(owner_type=PERSON, owner_ids=stale) if stale else 0
    _log_key_deletion(
        user=None, purpose=purpose, count="stale_demo_data_keys_deleted", deleted=deleted
    )
    return deleted


def _without_person(owner_ids: list, model=Person) -> list:
    """The data-key owners of ``owner_ids`` that name no row of ``model`` (a person)."""
    existing = set(model.objects.filter(pk__in=owner_ids).values_list("pk", flat=True))
    return [owner_id for owner_id in owner_ids if owner_id not in existing]


def _log_key_deletion(*, user, purpose: str, count: str, deleted: int) -> None:
    """The ``ERASE`` event of ``deleted`` person data keys (the ``count`` detail), if any."""
    if deleted:
        with transaction.atomic():
            record_event(
                action=Action.ERASE,
                user=user,
                object_type="casework.datakey",
                purpose=purpose,
                details={count: deleted, "owner_type": PERSON_OBJECT},
            )


def sweep_orphan_data_keys(
    *,
    user: User | None = None,
    purpose: str,
    grace: timedelta = timedelta(hours=1),
    batch_size: int = 1000,
) -> int:
    """Delete data keys whose person or case row does not exist (an interrupted
    registration or opening of a case).

    Keys younger than ``grace`` are left alone: their person row may be about to
    be committed. Returns how many were deleted; one ``ERASE`` event if any.
    """
    purpose = require_purpose(purpose)
    cutoff = timezone.now() - grace
    deleted = 0
    for owner_type, model in ((PERSON, Person), (CASE, Case)):
        after = None
        while batch := owner_ids_created_before(
            owner_type=owner_type, before=cutoff, after_id=after, limit=batch_size
        ):
            after = batch[-1][0]
            orphans = _without_person([owner_id for _key_id, owner_id in batch], model)
            if orphans:
                deleted += delete_data_keys(owner_type=owner_type, owner_ids=orphans)
    _log_key_deletion(user=user, purpose=purpose, count="orphan_data_keys_deleted", deleted=deleted)
    return deleted
