"""Model fields for encrypted values.

An encrypted column is ``bytea`` holding a sealed value (see
:mod:`casework.crypto.envelope`). On a model instance the attribute is a
:class:`~casework.crypto.envelope.Sealed` (or ``None``), never plaintext: the
value is opened only by ``casework.selectors`` and sealed only by
``casework.services``. Saving an instance writes the same bytes back, so an
unchanged value is never re-encrypted.

Filtering or ordering on an encrypted column would compare ciphertexts (random
nonces: meaningless) or tempt someone to decrypt every row; both raise
:class:`~django.core.exceptions.FieldError` naming the field and pointing to
the blind index. ``isnull`` is the one lookup allowed.
"""

from __future__ import annotations

import base64
import datetime

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.expressions import Col
from django.db.models.lookups import IsNull
from django.utils.functional import cached_property

from casework.crypto.envelope import Sealed


def _refusal(field: models.Field, what: str) -> FieldError:
    label = f"{field.model.__name__}.{field.name}" if hasattr(field, "model") else field.name
    return FieldError(
        f"{label} is encrypted and cannot be {what}: its column holds ciphertext. "
        "Find persons by personnummer with casework.selectors.find_person (blind index "
        "'personnummer_index'), or filter on a plain column."
    )


class EncryptedCol(Col):
    """The column of an encrypted field: selectable, but not usable for ordering.

    Django resolves the column of ``order_by("name")`` (and of lookups, but the
    only lookup allowed, :class:`EncryptedIsNull`, does not resolve it); plain
    SELECT columns are never resolved.
    """

    def resolve_expression(self, *args, **kwargs):
        raise _refusal(self.target, "ordered on")


class EncryptedIsNull(IsNull):
    """``field__isnull``: compiles the column without resolving it."""

    def process_lhs(self, compiler, connection, lhs=None):
        return compiler.compile(lhs or self.lhs)


class EncryptedField(models.BinaryField):
    """Base of the encrypted fields: a ``bytea`` column holding a :class:`Sealed` value."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("db_index") or kwargs.get("unique") or kwargs.get("primary_key"):
            raise TypeError(
                "An encrypted field cannot be indexed or unique (its values are random-looking "
                "ciphertexts): add a blind index column instead."
            )
        kwargs["null"] = True
        kwargs["blank"] = True
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        for key in ("null", "blank", "editable"):
            kwargs.pop(key, None)
        return name, path, args, kwargs

    # --- plaintext <-> bytes (used by casework.crypto.records) ---------------

    def encode(self, value) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes):
        raise NotImplementedError

    # --- database <-> Python --------------------------------------------------

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def to_python(self, value):
        if value is None or isinstance(value, Sealed):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return Sealed(value)
        if isinstance(value, str):  # serialised form (dumpdata/loaddata): base64
            return Sealed(base64.b64decode(value.encode("ascii")))
        raise self._plaintext_error(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if not isinstance(value, Sealed):
            raise self._plaintext_error(value)
        return connection.Database.Binary(value.blob)

    def get_default(self):
        return None

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return None if value is None else base64.b64encode(value.blob).decode("ascii")

    def _plaintext_error(self, value) -> TypeError:
        # The message names the type, never the value: it may be plaintext.
        return TypeError(
            f"{self.model.__name__}.{self.name} is encrypted and takes a sealed value, not "
            f"{type(value).__name__}: set it through casework.services."
        )

    # --- no lookups, no ordering -----------------------------------------------

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return EncryptedIsNull
        raise _refusal(self, f"filtered on (lookup '{lookup_name}')")

    def get_transform(self, lookup_name):
        raise _refusal(self, f"filtered on (transform '{lookup_name}')")

    def get_col(self, alias, output_field=None):
        if alias == self.model._meta.db_table and output_field in (None, self):
            return self.cached_col
        return EncryptedCol(alias, self, output_field)

    @cached_property
    def cached_col(self):
        return EncryptedCol(self.model._meta.db_table, self)

    def formfield(self, **kwargs):
        return None


class EncryptedTextField(EncryptedField):
    """Encrypted text (UTF-8)."""

    def encode(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"{self.name} takes text, not {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedDateField(EncryptedField):
    """Encrypted calendar date (ISO 8601 ``YYYY-MM-DD``)."""

    def encode(self, value: datetime.date) -> bytes:
        if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
            raise TypeError(f"{self.name} takes a date, not {type(value).__name__}")
        return value.isoformat().encode("ascii")

    def decode(self, data: bytes) -> datetime.date:
        return datetime.date.fromisoformat(data.decode("ascii"))
