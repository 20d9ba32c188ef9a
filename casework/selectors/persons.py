"""Reads of case data: the only code that decrypts personal data.

Every function takes the requesting ``user`` and the ``purpose`` of the access
(keyword-only), asks ``casework.policy``, and writes exactly one access-log
event per call in the same transaction as the decryption: a consultation
(``CONSULT``) naming the fields decrypted, never their values, or a denial
(``ACCESS_DENIED``).

Two kinds of event are committed on their own instead, so that they outlive the
caller's transaction (docs/adr/0015-lookups-leave-a-trace.md): denials, and
lookups by personnummer — whatever the request does afterwards, its answer may
already tell the user whether the number is registered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from audit.services import Action, record_event, record_refusal
from casework import personnummer as pnr
from casework import policy
from casework.crypto.blind_index import personnummer_index
from casework.crypto.keystore import PERSON, current_keyring, load_data_key, load_data_keys
from casework.crypto.records import open_value
from casework.models import Person

if TYPE_CHECKING:
    from casework.models import User

PERSON_OBJECT = "casework.person"
# How every page shows an erased person (their name, wherever a name would be).
ERASED_LABEL = _("(erased)")


class PersonErased(Exception):
    """The person was erased: the data key is destroyed and nothing can be decrypted."""

    def __init__(self, person_id: uuid.UUID) -> None:
        super().__init__(f"Person {person_id} has been erased; the encrypted data is gone.")
        self.person_id = person_id


@dataclass(frozen=True)
class PersonDetails:
    """The decrypted view of a person, for one request. ``repr`` shows no personal data.

    Only the fields named in ``fields`` were decrypted; the others are ``None``.
    """

    id: uuid.UUID
    birth_year: int
    gender: str
    area: str
    protected_identity: int
    fields: tuple[str, ...]
    name: str | None = field(default=None, repr=False)
    personnummer: str | None = field(default=None, repr=False)
    birth_date: date | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    note: str | None = field(default=None, repr=False)
    # Set for an erased person: nothing was decrypted, ``name`` is ERASED_LABEL.
    erased_at: datetime | None = None

    @property
    def personnummer_display(self) -> str | None:
        return pnr.display(self.personnummer) if self.personnummer else None

    @classmethod
    def of(cls, person: Person, *, fields, **values: Any) -> PersonDetails:
        """``person``'s plain statistics columns and the decrypted ``fields`` (``values``)."""
        return cls(
            id=person.pk,
            birth_year=person.birth_year,
            gender=person.gender,
            area=person.area,
            protected_identity=person.protected_identity,
            fields=fields,
            **values,
        )

    @classmethod
    def of_erased(cls, person: Person) -> PersonDetails:
        """An erased person as the pages show them: "(erased)", the plain statistics
        columns and nothing else (the data key is gone; nothing is decrypted)."""
        return cls.of(
            person,
            fields=(),
            name=ERASED_LABEL,
            erased_at=person.erased_at,
        )


# --- Shared by selectors and services -------------------------------------------


def require_purpose(purpose: str) -> str:
    purpose = (purpose or "").strip()
    if not purpose:
        raise ValidationError(
            _("State the purpose of the access (it is recorded in the access log)."),
            code="purpose_required",
        )
    return purpose


def deny_person(
    *,
    user,
    purpose: str,
    what: str,
    person_id: uuid.UUID | str | None = None,
    legal_basis: str = "",
) -> PermissionDenied:
    """Record a denied access (committed on its own) and return the exception to raise."""
    record_refusal(
        user=user,
        object_type=PERSON_OBJECT,
        object_id=str(person_id or ""),
        person_id=person_id,
        purpose=purpose,
        legal_basis=legal_basis,
        details={"operation": what},
    )
    return PermissionDenied(_("You do not have access to this person's data."))


# Persons whose blind index is a value (an index scan on ``person_pnr_blind_idx``): their
# ids and sealed personnummer only (a plain statement: no query to compile per look-up).
_CANDIDATES = f"SELECT id, personnummer FROM {Person._meta.db_table} WHERE personnummer_index = %s"  # noqa: S608 - a model's table


def _candidates(index: int, exclude: uuid.UUID | None = None) -> list[Person]:
    """Persons whose blind index is ``index`` (but ``exclude``), with only their id and
    sealed personnummer loaded."""
    if exclude is None:
        return list(Person.objects.raw(_CANDIDATES, [index]))
    return list(Person.objects.raw(_CANDIDATES + " AND id <> %s", [index, exclude]))


def match_by_personnummer(
    normalised: str, *, exclude: uuid.UUID | None = None
) -> tuple[Person | None, int]:
    """The non-erased person with this personnummer, and how many candidates were opened.

    Candidates come from the blind index (an index scan); each is confirmed by
    decrypting its personnummer. No access-log event: the callers write it.
    """
    candidates = _candidates(personnummer_index(current_keyring(), normalised), exclude)
    keys = load_data_keys(owner_type=PERSON, owner_ids=[c.pk for c in candidates])
    for candidate in candidates:
        dek = keys.get(candidate.pk)
        if dek is not None and open_value(candidate, "personnummer", dek) == normalised:
            return candidate, len(candidates)
    return None, len(candidates)


def data_key_of(person: Person):
    """The person's data key, or ``None`` for an erased person (the key is destroyed:
    their sealed values read as ``None``, see ``casework.selectors.cases.open_or_none``)."""
    if person.erased_at is not None:
        return None
    return load_data_key(owner_type=PERSON, owner_id=person.pk)


# --- Selectors ------------------------------------------------------------------


def get_person_details(
    *,
    user: User,
    purpose: str,
    person_id: uuid.UUID | str,
    fields: Iterable[str] | None = None,
    legal_basis: str = "",
) -> PersonDetails:
    """Decrypt ``fields`` (default: all encrypted fields) of a person for ``user``.

    Writes one ``CONSULT`` event naming the fields. Raises ``PermissionDenied``
    (after a denial event), ``Person.DoesNotExist``, :class:`PersonErased`, or an
    encryption error (``casework.crypto.errors``) if the data cannot be opened.
    """
    purpose = require_purpose(purpose)
    names = Person.ENCRYPTED_FIELDS if fields is None else tuple(dict.fromkeys(fields))
    unknown = set(names) - set(Person.ENCRYPTED_FIELDS)
    if unknown:
        raise ValueError(f"not encrypted fields of Person: {sorted(unknown)}")
    if not policy.can_process_person_data(user):
        raise deny_person(
            user=user, purpose=purpose, what="read", person_id=person_id, legal_basis=legal_basis
        )
    with transaction.atomic():
        person = Person.objects.get(pk=person_id)
        if person.erased_at is not None:
            raise PersonErased(person.pk)
        dek = load_data_key(owner_type=PERSON, owner_id=person.pk)
        values = {name: open_value(person, name, dek) for name in names}
        record_event(
            action=Action.CONSULT,
            user=user,
            obj=person,
            person_id=person.pk,
            fields=names,
            purpose=purpose,
            legal_basis=legal_basis,
        )
    return PersonDetails.of(person, fields=names, **values)


def find_person(
    *, user: User, purpose: str, personnummer: str, legal_basis: str = ""
) -> Person | None:
    """The person with this personnummer (any accepted form), or ``None``.

    Looks candidates up by the blind index and confirms each by decrypting its
    personnummer. Invalid input raises ``ValidationError`` before any lookup.
    Writes one ``CONSULT`` event (field ``personnummer``; the person if found)
    per call, whether or not a person was found - the search itself is an access.
    The event is committed on its own: it stays when the caller's transaction
    rolls back (a stale form, a bad field after the lookup).
    """
    purpose = require_purpose(purpose)
    normalised = pnr.normalise(personnummer)
    if not policy.can_process_person_data(user):
        raise deny_person(user=user, purpose=purpose, what="find", legal_basis=legal_basis)
    return _look_up(
        normalised, user=user, purpose=purpose, lookup="personnummer", legal_basis=legal_basis
    )


def _look_up(normalised: str, *, user, purpose: str, lookup: str, legal_basis: str = ""):
    """The person with this (normalised) personnummer, or ``None``; the lookup's
    ``CONSULT`` event (``lookup``: which one) is committed on its own."""
    person, candidates = match_by_personnummer(normalised)
    record_event(
        action=Action.CONSULT,
        user=user,
        object_type=PERSON_OBJECT,
        object_id=str(person.pk) if person else "",
        person_id=person.pk if person else None,
        fields=["personnummer"],
        purpose=purpose,
        legal_basis=legal_basis,
        details={"lookup": lookup, "candidates": candidates, "found": bool(person)},
        independent=True,
    )
    return person


def person_age(person: Person, *, on: date, dek=None) -> int:
    """The person's age in whole years on ``on``, for rules (age ranges, under 18, under 21).

    Decrypts the date of birth to evaluate a rule, not to show it: nothing is
    disclosed to a user, so no consultation event. The answer is remembered on
    the instance for the rest of the request. A caller that holds the person's
    data key already passes it as ``dek`` (no second key-store read and unwrap).
    """
    cache = person.__dict__.setdefault("_age_on", {})
    if on not in cache:
        if person.erased_at is not None:
            raise PersonErased(person.pk)
        dek = dek or load_data_key(owner_type=PERSON, owner_id=person.pk)
        born = open_value(person, "birth_date", dek)
        cache[on] = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return cache[on]


def person_ids_for_audit(personnummer: str, *, user: User) -> list[uuid.UUID]:
    """The auditor's search by personnummer (``settings.AUDIT_PERSON_LOOKUP``).

    Auditors see no case data, but reviewing who read a person's data needs the
    person's id: candidates come from the blind index and are confirmed by
    decrypting their personnummer; nothing else is opened and only the id is
    returned. Writes one ``CONSULT`` event (purpose: log review), committed on its
    own. Raises ``ValueError`` for an invalid number (the audit search form shows it).
    """
    try:
        normalised = pnr.normalise(personnummer)
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    if not policy.can_view_access_log(user):
        raise deny_person(
            user=user, purpose=str(_("Log review")), what="audit lookup", legal_basis=""
        )
    person = _look_up(
        normalised,
        user=user,
        purpose=str(_("Log review: search of the access log by personal identity number")),
        lookup="audit",
    )
    return [person.pk] if person else []


def find_person_for_extract(personnummer: str, *, user: User | None) -> Person | None:
    """The person a register extract is asked for (data protection role, or an operator:
    ``user`` ``None``), by the blind index as every lookup; ``None``: no such person.

    Nothing but the personnummer is opened. Writes the lookup's ``CONSULT`` event,
    committed on its own. Invalid input raises ``ValidationError`` before any lookup.
    """
    normalised = pnr.normalise(personnummer)
    purpose = str(_("Register extract for the data subject (GDPR art. 15)"))
    if user is not None and not policy.can_produce_register_extract(user):
        raise deny_person(user=user, purpose=purpose, what="extract lookup")
    return _look_up(normalised, user=user, purpose=purpose, lookup="extract")
