"""Database routing: the data keys live in the key-store database, everything else does not.

Crypto-shredding must also work against old backups of the main database, so
the wrapped data keys are kept in a database of their own (alias
``keystore``), backed up on a short retention of its own
(docs/adr/0004-field-encryption.md).
"""

from __future__ import annotations

KEYSTORE = "keystore"
_KEY_MODELS = frozenset({("casework", "datakey")})


def _is_key_model(app_label: str, model_name: str | None) -> bool:
    return model_name is not None and (app_label, model_name.lower()) in _KEY_MODELS


class KeystoreRouter:
    """``casework.DataKey`` lives in ``keystore`` only, and nothing else lives there."""

    def db_for_read(self, model, **hints):
        return KEYSTORE if _is_key_model(model._meta.app_label, model._meta.model_name) else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        first = _is_key_model(obj1._meta.app_label, obj1._meta.model_name)
        second = _is_key_model(obj2._meta.app_label, obj2._meta.model_name)
        return None if first == second else False

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == KEYSTORE:
            return _is_key_model(app_label, model_name)
        if _is_key_model(app_label, model_name):
            return False
        return None
