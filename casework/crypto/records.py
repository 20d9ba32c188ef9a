"""Sealing and opening the encrypted fields of a model instance.

Internal to ``casework.services`` (sealing) and ``casework.selectors`` (opening):
those two modules check access and write the access log around every call. A
test fails if any other module of the application imports this one.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from casework.crypto.envelope import DataKeyMaterial, open_sealed, seal
from casework.fields import EncryptedField

_fields: dict[tuple[type, str], EncryptedField] = {}


def _field(instance: models.Model, name: str) -> EncryptedField:
    key = (type(instance), name)
    field = _fields.get(key)
    if field is None:
        field = instance._meta.get_field(name)
        if not isinstance(field, EncryptedField):
            raise TypeError(f"{type(instance).__name__}.{name} is not an encrypted field")
        _fields[key] = field
    return field


def seal_value(instance: models.Model, name: str, value: Any, dek: DataKeyMaterial) -> None:
    """Encrypt ``value`` into field ``name`` of ``instance`` (``None`` clears it)."""
    field = _field(instance, name)
    if value is None:
        setattr(instance, field.attname, None)
        return
    if instance.pk is None:
        raise ValueError("a value is sealed for a row id: give the instance its primary key first")
    sealed = seal(
        dek,
        field.encode(value),
        # The table that holds the column: with multi-table inheritance a
        # parent's field lives in the parent's table, whichever class seals it.
        table=field.model._meta.db_table,
        column=field.column,
        row_id=instance.pk,
    )
    setattr(instance, field.attname, sealed)


def open_value(instance: models.Model, name: str, dek: DataKeyMaterial) -> Any:
    """The plaintext of field ``name`` of ``instance`` (``None`` if empty)."""
    field = _field(instance, name)
    sealed = getattr(instance, field.attname)
    if sealed is None:
        return None
    plaintext = open_sealed(
        dek, sealed, table=field.model._meta.db_table, column=field.column, row_id=instance.pk
    )
    return field.decode(plaintext)
