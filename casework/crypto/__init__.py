"""Field-level encryption: keyring, data keys, sealed values and blind indexes.

The layers (docs/adr/0004-field-encryption.md):

* :mod:`~casework.crypto.keyring` - the key-encryption keys (KEK, versioned) and
  the blind-index key, in a JSON file outside the database;
* :mod:`~casework.crypto.envelope` - AES-256-GCM: data keys (DEK) wrapped under a
  KEK, and field values sealed under a DEK with associated data;
* :mod:`~casework.crypto.keystore` - the wrapped DEKs, in their own database
  (alias ``keystore``), one per data subject;
* :mod:`~casework.crypto.records` - sealing and opening the encrypted fields of a
  model instance; used only by ``casework.services`` and ``casework.selectors``;
* :mod:`~casework.crypto.blind_index` - the truncated HMAC used to find a person
  by personnummer.

No exception raised here carries key material or plaintext.
"""
