"""Tamper evidence: the hash chain, its sealing, signed checkpoints and verification.

Design (docs/adr/0005-audit-log.md):

- Writers never touch the chain. A trigger queues every committed log entry
  (access event or change record) in ``audit_pendingentry``.
- :func:`seal` takes a transaction-scoped advisory lock, empties the queue and
  appends the entries to the chain: each at a gap-free position, with the SHA-256 of
  its canonical encoding, under a running hash over what came before. Chain formats
  1 and 2 wrote one ``ChainLink`` per entry; format 3 (ADR 0031, session 22; the one
  written now) writes one ``ChainBlock`` per source and seal (at most ``BLOCK_SIZE``
  entries), its running hash over the block's ids and entry digests.
  The chain is therefore in *commit order*; a writer's transaction can never
  fork it, roll back under it or hold it up, and the lock is held only for the
  few milliseconds of one seal. ``record_event`` seals after each commit.
- :func:`write_checkpoint` signs (Ed25519) the position and head hash and
  writes them to a file outside the database.
- :func:`verify` recomputes every entry hash and every link, checks every
  checkpoint's signature and that the chain still holds each checkpoint's head,
  and that no entry sits outside the chain. It names the first bad entry.

Canonical encoding of an entry: a JSON object of *every* column of its row
(sorted keys, no whitespace, UTF-8, NULL as ``null`` — never ``""``;
timestamps as UTC ISO 8601 with microseconds; JSON columns as canonical JSON
themselves), prefixed by a domain-separation tag and the entry's source.
"""

from __future__ import annotations

from audit.integrity import chain, checkpoints, partitions, verification
from audit.integrity.chain import (
    CHAIN_TAG,
    CHECKPOINT_FORMAT,
    ENTRY_TAG,
    GENESIS,
    LINKS_SQL,
    SEAL_LOCK_KEY,
    SOURCES,
    Source,
    canonical_entry,
    chain_hash,
    fetch_rows,
    head,
    layout,
    seal,
    utc_iso,
)
from audit.integrity.checkpoints import (
    CheckpointError,
    checkpoint_dir,
    generate_signing_key,
    key_id,
    load_signing_key,
    signed_message,
    trusted_public_keys,
    write_checkpoint,
)
from audit.integrity.verification import (
    VERIFY_CHUNK,
    Checkpoint,
    Finding,
    Problem,
    VerificationResult,
    checkpoint_max_age,
    load_checkpoints,
    verify,
)

__all__ = [
    "CHAIN_TAG",
    "CHECKPOINT_FORMAT",
    "ENTRY_TAG",
    "GENESIS",
    "LINKS_SQL",
    "SEAL_LOCK_KEY",
    "SOURCES",
    "VERIFY_CHUNK",
    "Checkpoint",
    "CheckpointError",
    "Finding",
    "Problem",
    "Source",
    "VerificationResult",
    "canonical_entry",
    "chain",
    "chain_hash",
    "checkpoint_dir",
    "checkpoint_max_age",
    "checkpoints",
    "fetch_rows",
    "generate_signing_key",
    "head",
    "key_id",
    "layout",
    "load_checkpoints",
    "load_signing_key",
    "partitions",
    "seal",
    "signed_message",
    "trusted_public_keys",
    "utc_iso",
    "verification",
    "verify",
    "write_checkpoint",
]
