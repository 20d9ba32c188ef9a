"""Tamper evidence: the hash chain, its sealing, signed checkpoints and verification.

Design (docs/adr/0005-audit-log.md):

- Writers never touch the chain. A trigger queues every committed log entry
  (access event or change record) in ``audit_pendingentry``.
- :func:`seal` takes a transaction-scoped advisory lock, empties the queue and
  appends one ``ChainLink`` per entry: a gap-free position, the SHA-256 of the
  entry's canonical encoding, and the running hash over the previous link.
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

import base64
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from audit.models import AccessEvent, ChainLink, ChangeRecord

Source = ChainLink.Source
logger = logging.getLogger(__name__)

# Models whose rows are chained, by source code.
SOURCES: dict[str, type[models.Model]] = {
    Source.ACCESS: AccessEvent,
    Source.HISTORY: ChangeRecord,
}

ENTRY_TAG = b"samverkan-audit-entry-v1\n"
CHAIN_TAG = b"samverkan-audit-chain-v1\n"
GENESIS = "0" * 64
# pg_advisory_xact_lock key of the sealer ("SAMVAUDT" as a 63-bit integer).
SEAL_LOCK_KEY = 0x53414D5641554454
CHECKPOINT_FORMAT = "samverkan-audit-checkpoint/1"
VERIFY_CHUNK = 5000


# --- Canonical encoding -----------------------------------------------------


# Timestamps are rendered by PostgreSQL straight into the canonical form
# (UTC, ISO 8601, microseconds), the same string ``_utc_iso`` makes in Python.
_ISO_UTC_SQL = "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


_LINKS_SQL = (
    "SELECT position, source, entry_id, entry_hash, chain_hash, "  # noqa: S608 (constants)
    + _ISO_UTC_SQL.format(column="sealed_at")
    + " FROM audit_chainlink WHERE position BETWEEN %s AND %s ORDER BY position"
)


def _utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    """Fallback for values handed in as Python objects rather than read as text."""
    if isinstance(value, dt.datetime):
        return _utc_iso(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)  # UUID, inet, Decimal


# Sorted keys, no whitespace, UTF-8 (not \u escapes), no NaN/Infinity.
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain
)


def _select_expression(model_field: models.Field) -> str:
    column = model_field.column
    if isinstance(model_field, models.DateTimeField):
        return _ISO_UTC_SQL.format(column=column)
    if isinstance(model_field, models.GenericIPAddressField):
        return f"host({column})"
    if isinstance(model_field, models.UUIDField | models.JSONField):
        return f"{column}::text"
    return column


_loads = json.JSONDecoder().decode
_fast_loads = orjson.loads
_EMPTY_JSON: dict[str, Any] = {"[]": [], "{}": {}}


@dataclass(frozen=True)
class _Layout:
    """How to read and encode the rows of one source.

    Every column is read as the text (or integer/boolean) that goes into the
    canonical document; JSON columns are parsed and re-serialised canonically.
    """

    source: str
    table: str
    columns: tuple[str, ...]
    expressions: tuple[str, ...]
    json_columns: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, source: str, model: type[models.Model]) -> _Layout:
        fields = model._meta.concrete_fields
        return cls(
            source=source,
            table=model._meta.db_table,
            columns=tuple(f.column for f in fields),
            expressions=tuple(_select_expression(f) for f in fields),
            json_columns=tuple(
                (index, f.column)
                for index, f in enumerate(fields)
                if isinstance(f, models.JSONField)
            ),
        )

    @property
    def select_sql(self) -> str:
        # Identifiers from the model's own metadata, never from input.
        expressions = ", ".join(self.expressions)
        return f"SELECT {expressions} FROM {self.table} WHERE id = ANY(%s)"  # noqa: S608

    @property
    def select_range_sql(self) -> str:
        expressions = ", ".join(self.expressions)
        return f"SELECT {expressions} FROM {self.table} WHERE id BETWEEN %s AND %s"  # noqa: S608

    def encode(self, row: tuple, *, entry_id: int | None = None) -> bytes:
        """The canonical bytes of one row (optionally as if it had id ``entry_id``)."""
        document = dict(zip(self.columns, row, strict=True))
        for index, column in self.json_columns:
            value = row[index]
            if isinstance(value, str):
                document[column] = _EMPTY_JSON[value] if value in _EMPTY_JSON else _loads(value)
        if entry_id is not None:
            document["id"] = entry_id
        return _CANONICAL_JSON.encode(document).encode()

    def entry_hash(self, row: tuple, *, entry_id: int | None = None) -> str:
        digest = hashlib.sha256(ENTRY_TAG)
        digest.update(self.source.encode() + b"\n")
        digest.update(self.encode(row, entry_id=entry_id))
        return digest.hexdigest()

    def fast_encode(self, row: tuple) -> bytes:
        """The canonical bytes of ``row`` by orjson: the same bytes as :meth:`encode` for
        every row the log writes (strings, integers, booleans, null, lists, objects).

        Only the verifier uses it, and only as a shortcut: where its hash does not
        match, the entry is hashed again by :meth:`encode`, the definition.
        """
        document = dict(zip(self.columns, row, strict=True))
        for index, column in self.json_columns:
            value = row[index]
            if isinstance(value, str):
                document[column] = _fast_loads(value)
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)

    def matches(self, row: tuple, stored_hash: str) -> tuple[bool, str]:
        """Whether ``row`` still hashes to ``stored_hash``, and its hash by the definition
        when it does not (for the diagnosis)."""
        try:
            digest = hashlib.sha256(ENTRY_TAG)
            digest.update(self.source.encode() + b"\n")
            digest.update(self.fast_encode(row))
            if digest.hexdigest() == stored_hash:
                return True, stored_hash
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
            pass  # e.g. an integer beyond 64 bits: the definition decides
        actual = self.entry_hash(row)
        return actual == stored_hash, actual


_layouts: dict[str, _Layout] = {}


def layout(source: str) -> _Layout:
    if source not in _layouts:
        _layouts[source] = _Layout.of(source, SOURCES[source])
    return _layouts[source]


def canonical_entry(source: str, row: tuple) -> bytes:
    """The canonical encoding of a row of ``source`` (columns in model order)."""
    return layout(source).encode(row)


def chain_hash(
    previous: str, *, position: int, source: str, entry_id: int, entry_hash: str, sealed_at: str
) -> str:
    """The running hash at ``position``; ``sealed_at`` in the canonical UTC ISO form."""
    digest = hashlib.sha256(CHAIN_TAG)
    digest.update(bytes.fromhex(previous))
    digest.update(f"{position}\n{source}\n{entry_id}\n{sealed_at}\n".encode())
    digest.update(bytes.fromhex(entry_hash))
    return digest.hexdigest()


def _fetch_rows(cursor, source: str, ids: list[int]) -> dict[int, tuple]:
    if not ids:
        return {}
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        # Sealed in commit order, a chunk's ids are nearly contiguous: one range
        # scan is much cheaper than thousands of index probes.
        cursor.execute(layout(source).select_range_sql, [low, high])
        wanted = set(ids)
        return {row[0]: row for row in cursor.fetchall() if row[0] in wanted}
    cursor.execute(layout(source).select_sql, [ids])
    return {row[0]: row for row in cursor.fetchall()}


# --- Sealing ----------------------------------------------------------------


def seal(*, using: str = "default", wait: bool = True) -> int:
    """Append every committed, queued entry to the chain; return how many were sealed.

    With ``wait=False`` it gives way (returns 0) when another session is sealing.
    """
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return 0
        cursor.execute("DELETE FROM audit_pendingentry RETURNING id, source, entry_id")
        pending = _not_yet_chained(cursor, sorted(cursor.fetchall()))
        if not pending:
            return 0
        rows = {
            source: _fetch_rows(cursor, source, [e for _, s, e in pending if s == source])
            for source in {s for _, s, _ in pending}
        }
        cursor.execute(
            "SELECT position, chain_hash FROM audit_chainlink ORDER BY position DESC LIMIT 1"
        )
        head = cursor.fetchone()
        position, previous = head if head else (0, GENESIS)
        sealed_at = timezone.now()
        sealed_iso = _utc_iso(sealed_at)
        links = []
        for _, source, entry_id in pending:
            row = rows[source].get(entry_id)
            if row is None:  # removed behind the triggers' back; verify reports it
                continue
            position += 1
            entry_hash = layout(source).entry_hash(row)
            previous = chain_hash(
                previous,
                position=position,
                source=source,
                entry_id=entry_id,
                entry_hash=entry_hash,
                sealed_at=sealed_iso,
            )
            links.append((position, source, entry_id, entry_hash, previous, sealed_at))
        cursor.executemany(
            "INSERT INTO audit_chainlink "
            "(position, source, entry_id, entry_hash, chain_hash, sealed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            links,
        )
        return len(links)


def _not_yet_chained(cursor, pending: list[tuple]) -> list[tuple]:
    """The queue rows to seal: one per entry, none of an entry already in the chain.

    The trigger queues each entry once, and only it may write the queue; a row
    that names a chained entry (or one named twice) came from elsewhere. Skipping
    it keeps sealing going — chaining it again would break the chain's one link
    per entry and fail every seal from then on. It is logged (ids only, no values).
    """
    if not pending:
        return pending
    chained: set[tuple[str, int]] = set()
    for source in {s for _, s, _ in pending}:
        cursor.execute(
            "SELECT entry_id FROM audit_chainlink WHERE source = %s AND entry_id = ANY(%s)",
            [source, [e for _, s, e in pending if s == source]],
        )
        chained.update((source, entry_id) for (entry_id,) in cursor.fetchall())
    kept, seen, skipped = [], set(), []
    for row in pending:
        key = (row[1], row[2])
        if key in chained or key in seen:
            skipped.append(key)
            continue
        seen.add(key)
        kept.append(row)
    if skipped:
        logger.warning(
            "sealing skipped %d queue rows naming entries already in the chain or queued "
            "twice (not written by the log's trigger): %s",
            len(skipped),
            ", ".join(f"{source} #{entry_id}" for source, entry_id in skipped[:10]),
        )
    return kept


def head(*, using: str = "default") -> tuple[int, str]:
    """Position and hash of the chain's last link (``(0, GENESIS)`` when empty)."""
    link = ChainLink.objects.using(using).order_by("-position").first()
    return (link.position, link.chain_hash) if link else (0, GENESIS)


# --- Signing keys and checkpoints -------------------------------------------


class CheckpointError(Exception):
    """The checkpoint cannot be written (no signing key, no directory)."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_signing_key(path: Path) -> Ed25519PublicKey:
    """Create a new Ed25519 key at ``path`` (mode 0600) and its public key at ``path.pub``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_key = private_key.public_key()
    _public_key_path(path).write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_key


def _public_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load_signing_key(path: Path | str | None = None) -> Ed25519PrivateKey:
    path = Path(path or settings.AUDIT_SIGNING_KEY_FILE or "")
    if not str(path) or not path.is_file():
        raise CheckpointError(
            f"No audit signing key at {str(path) or '(SAMVERKAN_AUDIT_SIGNING_KEY_FILE unset)'}: "
            "create one with `python manage.py audit keygen` (and keep it outside the database "
            "and its backups), or set SAMVERKAN_AUDIT_SIGNING_KEY_FILE."
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} does not hold an Ed25519 private key.")
    return key


def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys whose checkpoint signatures are accepted, by key id.

    The signing key's public half (from the key, or ``<key>.pub`` where only
    that is present, e.g. on an auditor's machine) and every file listed in
    ``AUDIT_TRUSTED_PUBLIC_KEYS`` (keys of earlier years after a rotation).
    """
    keys: dict[str, Ed25519PublicKey] = {}
    candidates: list[Ed25519PublicKey] = []
    signing_path = Path(settings.AUDIT_SIGNING_KEY_FILE or "")
    if str(signing_path) and signing_path.is_file():
        candidates.append(load_signing_key(signing_path).public_key())
    paths = [_public_key_path(signing_path)] if str(signing_path) else []
    paths += [Path(p) for p in getattr(settings, "AUDIT_TRUSTED_PUBLIC_KEYS", [])]
    for path in paths:
        if path.is_file():
            public_key = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(public_key, Ed25519PublicKey):
                candidates.append(public_key)
    for public_key in candidates:
        keys[key_id(public_key)] = public_key
    return keys


def _signed_message(document: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_dir() -> Path:
    directory = str(settings.AUDIT_CHECKPOINT_DIR or "")
    if not directory:
        raise CheckpointError(
            "SAMVERKAN_AUDIT_CHECKPOINT_DIR is not set: checkpoints must be written outside "
            "the database."
        )
    return Path(directory)


def write_checkpoint(
    *, using: str = "default", signing_key: Ed25519PrivateKey | None = None
) -> tuple[Path, dict[str, Any]]:
    """Seal, then sign the chain's head and write it as a file in ``AUDIT_CHECKPOINT_DIR``."""
    signing_key = signing_key or load_signing_key()
    directory = checkpoint_dir()
    seal(using=using)
    position, head_hash = head(using=using)
    now = timezone.now()
    document: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "position": position,
        "head": head_hash,
        "created_at": _utc_iso(now),
        "key_id": key_id(signing_key.public_key()),
    }
    document["signature"] = base64.b64encode(signing_key.sign(_signed_message(document))).decode()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{position:012d}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    temporary = directory / f".{name}.tmp"
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, directory / name)
    return directory / name, document


# --- Verification -----------------------------------------------------------


class Problem:
    """Kinds of problem the verifier names."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    CHAIN_BROKEN = "chain broken"
    TRUNCATED = "truncated behind a checkpoint"
    REWRITTEN = "rewritten behind a checkpoint"
    BAD_SIGNATURE = "bad signature"
    BAD_CHECKPOINT = "unreadable checkpoint"
    # The chain is consistent, but nothing outside the database vouches for it (recently).
    NO_CHECKPOINT = "no checkpoint"
    STALE_CHECKPOINT = "stale checkpoint"


@dataclass
class Finding:
    kind: str
    message: str
    position: int | None = None
    source: str | None = None
    entry_id: int | None = None
    checkpoint: str | None = None

    def __str__(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.source is not None and self.entry_id is not None:
            where.append(f"{self.source} entry #{self.entry_id}")
        if self.checkpoint:
            where.append(f"checkpoint {self.checkpoint}")
        return f"{', '.join(where)}: {self.kind}: {self.message}"


@dataclass
class VerificationResult:
    entries: int = 0
    checkpoints: int = 0
    pending: int = 0
    finding: Finding | None = None
    head: str = GENESIS
    checked_at: dt.datetime = field(default_factory=timezone.now)

    @property
    def ok(self) -> bool:
        return self.finding is None


@dataclass(frozen=True)
class Checkpoint:
    name: str
    position: int
    head: str
    created_at: dt.datetime


def load_checkpoints(
    directory: Path | None, public_keys: dict[str, Ed25519PublicKey]
) -> tuple[list[Checkpoint], Finding | None]:
    """Every checkpoint file in ``directory``, its signature checked."""
    if directory is None or not directory.is_dir():
        return [], None
    checkpoints = []
    for path in sorted(directory.glob("checkpoint-*.json")):
        try:
            document = json.loads(path.read_text())
            position, head_hash = int(document["position"]), str(document["head"])
            signature = base64.b64decode(document["signature"], validate=True)
            if document.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("unknown format")
            # The signed time (never the file's): how old the newest checkpoint is.
            created_at = dt.datetime.fromisoformat(str(document["created_at"]))
            if created_at.tzinfo is None:
                raise ValueError("created_at has no time zone")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return checkpoints, Finding(
                Problem.BAD_CHECKPOINT, f"cannot be read ({exc})", checkpoint=path.name
            )
        public_key = public_keys.get(str(document.get("key_id")))
        if public_key is None:
            return checkpoints, Finding(
                Problem.BAD_SIGNATURE,
                f"signed by unknown key {document.get('key_id')!r}",
                checkpoint=path.name,
            )
        try:
            public_key.verify(signature, _signed_message(document))
        except InvalidSignature:
            return checkpoints, Finding(
                Problem.BAD_SIGNATURE,
                "the signature does not match the checkpoint's content",
                checkpoint=path.name,
            )
        checkpoints.append(Checkpoint(path.name, position, head_hash, created_at))
    return checkpoints, None


def _count(cursor, sql: str, params: Iterable[Any] = ()) -> int:
    cursor.execute(sql, list(params))
    return cursor.fetchone()[0]


def _diagnose_mismatch(
    link: tuple, row: tuple, links: list[tuple], actual_hash: str
) -> tuple[str, str]:
    """Tell an edited entry from one that was moved to another place in the chain."""
    position, source, _entry_id, _stored, *_ = link
    entry_layout = layout(source)
    for other in links:
        other_position, other_source, other_entry_id, other_hash, *_ = other
        if other_position == position or other_source != source:
            continue
        if actual_hash == other_hash or (
            entry_layout.entry_hash(row, entry_id=other_entry_id) == other_hash
        ):
            return Problem.REORDERED, (
                f"it holds the entry sealed at position {other_position}: entries were swapped "
                "or moved"
            )
    return Problem.EDITED, "its content no longer matches the hash it was sealed with"


@dataclass
class _RangeResult:
    entries: int = 0
    last_hash: str | None = None
    finding: Finding | None = None


def _previous_hash(cursor, position: int) -> str | None:
    if position == 0:
        return GENESIS
    cursor.execute("SELECT chain_hash FROM audit_chainlink WHERE position = %s", [position])
    row = cursor.fetchone()
    return row[0] if row else None


def _fetch_chunk(cursor, start: int, last: int) -> tuple[list[tuple], dict[str, dict]]:
    """The links from ``start`` (at most ``VERIFY_CHUNK``, up to ``last``) and their entries.

    Positions are gap-free, so the chunk is the position range itself: a range the
    planner reads straight from the index (asked for "from ``start`` to ``last``,
    the first N", it may read the whole rest of the chain for every chunk).
    """
    cursor.execute(_LINKS_SQL, [start, min(last, start + VERIFY_CHUNK - 1)])
    links = cursor.fetchall()
    if not links:
        # A whole chunk's links are gone: go on from the next link there is (the walk
        # then names the gap exactly).
        cursor.execute(
            "SELECT min(position) FROM audit_chainlink WHERE position > %s AND position <= %s",
            [start, last],
        )
        following = cursor.fetchone()[0]
        if following is not None:
            cursor.execute(_LINKS_SQL, [following, min(last, following + VERIFY_CHUNK - 1)])
            links = cursor.fetchall()
    rows = {
        source: _fetch_rows(cursor, source, [link[2] for link in links if link[1] == source])
        for source in {link[1] for link in links}
    }
    return links, rows


def _chunks(cursor, first: int, last: int, *, prefetch: bool, using: str) -> Iterator[tuple]:
    """The chunks of links ``first``..``last`` in order, each with its entries.

    With ``prefetch`` a second connection (a thread of its own) reads the next
    chunk while the caller hashes this one: the database's work and ours overlap.
    Positions are gap-free, so the next chunk starts ``VERIFY_CHUNK`` further on;
    where they are not, the caller stops at the gap and the read-ahead is dropped.
    """
    if not prefetch:
        start = first
        while start <= last:
            links, rows = _fetch_chunk(cursor, start, last)
            if not links:
                return
            yield links, rows
            start = links[-1][0] + 1
        return

    def fetch(start: int):
        with connections[using].cursor() as own_cursor:
            return _fetch_chunk(own_cursor, start, last)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-verify") as reader:
        try:
            pending = reader.submit(fetch, first)
            start = first
            while True:
                links, rows = pending.result()
                if not links:
                    return
                start = links[-1][0] + 1
                if start <= last:
                    pending = reader.submit(fetch, start)
                yield links, rows
                if start > last:
                    return
        finally:
            # The reader's own connection (Django's connections are per thread).
            reader.submit(lambda: connections[using].close()).result()


def _walk_range(
    cursor,
    first: int,
    last: int,
    heads: dict[int, list[Checkpoint]],
    *,
    prefetch: bool = False,
    using: str = "default",
) -> _RangeResult:
    """Check links ``first``..``last``: positions, entries, entry hashes, running hashes.

    Each link is checked against the *stored* hash of the link before it, so
    ranges can be checked independently (and in parallel); together they prove
    the whole chain, link by link.
    """
    result = _RangeResult()
    # None when the link before the range is gone: the range before reports that.
    previous = _previous_hash(cursor, first - 1)
    expected = first
    for links, rows in _chunks(cursor, first, last, prefetch=prefetch, using=using):
        for link in links:
            position, source, entry_id, stored_entry_hash, stored_chain_hash, sealed_at = link
            if position != expected:
                result.finding = Finding(
                    Problem.DELETED,
                    f"the chain jumps from position {expected - 1} to {position}: "
                    f"the entries sealed at positions {expected} to {position - 1} were removed",
                    position=expected,
                )
                return result
            if source not in SOURCES:
                result.finding = Finding(
                    Problem.CHAIN_BROKEN, f"unknown source {source!r}", position=position
                )
                return result
            row = rows[source].get(entry_id)
            if row is None:
                result.finding = Finding(
                    Problem.DELETED,
                    "the entry sealed here is no longer in the log",
                    position=position,
                    source=source,
                    entry_id=entry_id,
                )
                return result
            intact, actual_hash = layout(source).matches(row, stored_entry_hash)
            if not intact:
                kind, message = _diagnose_mismatch(link, row, links, actual_hash)
                result.finding = Finding(
                    kind, message, position=position, source=source, entry_id=entry_id
                )
                return result
            if previous is not None and stored_chain_hash != chain_hash(
                previous,
                position=position,
                source=source,
                entry_id=entry_id,
                entry_hash=actual_hash,
                sealed_at=sealed_at,
            ):
                result.finding = Finding(
                    Problem.CHAIN_BROKEN,
                    "the link does not follow from the one before it: a link was inserted, "
                    "removed or altered",
                    position=position,
                    source=source,
                    entry_id=entry_id,
                )
                return result
            previous = stored_chain_hash
            for checkpoint in heads.get(position, []):
                if checkpoint.head != stored_chain_hash:
                    result.finding = Finding(
                        Problem.REWRITTEN,
                        f"the chain's hash at position {position} differs from the signed "
                        "checkpoint: the log up to here was rewritten",
                        position=position,
                        source=source,
                        entry_id=entry_id,
                        checkpoint=checkpoint.name,
                    )
                    return result
            result.entries += 1
            expected += 1
    if expected <= last:
        result.finding = Finding(
            Problem.DELETED,
            f"the entries sealed at positions {expected} to {last} were removed",
            position=expected,
        )
    result.last_hash = previous
    return result


def _walk_range_in_worker(args: tuple) -> _RangeResult:
    first, last, heads, using = args
    try:
        with connections[using].cursor() as cursor:
            return _walk_range(cursor, first, last, heads, prefetch=True, using=using)
    finally:
        connections.close_all()


def _ranges(last: int, parts: int) -> list[tuple[int, int]]:
    size = -(-last // parts)
    return [(start, min(start + size - 1, last)) for start in range(1, last + 1, size)]


def _walk_chain(
    cursor,
    result: VerificationResult,
    checkpoints: list[Checkpoint],
    *,
    workers: int,
    prefetch: bool,
    using: str,
) -> None:
    heads: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        heads.setdefault(checkpoint.position, []).append(checkpoint)
    for checkpoint in heads.get(0, []):
        if checkpoint.head != GENESIS:
            result.finding = Finding(
                Problem.REWRITTEN, "the empty log's head differs", checkpoint=checkpoint.name
            )
            return
    cursor.execute("SELECT coalesce(max(position), 0) FROM audit_chainlink")
    last = cursor.fetchone()[0]
    if workers > 1 and last >= workers * VERIFY_CHUNK:
        # Links up to ``last`` are committed and never change: separate
        # connections (separate snapshots) see the same ones.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            parts = pool.map(
                _walk_range_in_worker,
                [(first, end, heads, using) for first, end in _ranges(last, workers * 4)],
            )
    else:
        parts = [_walk_range(cursor, 1, last, heads, prefetch=prefetch, using=using)]
    for part in parts:
        result.entries += part.entries
        if part.finding is not None:
            result.finding = part.finding  # ranges are in order: the first is the earliest
            return
    result.head = parts[-1].last_hash if parts and parts[-1].last_hash else GENESIS
    for checkpoint in checkpoints:
        if checkpoint.position > last:
            result.finding = Finding(
                Problem.TRUNCATED,
                f"the signed checkpoint covers {checkpoint.position} entries but the chain "
                f"ends at position {last}: entries {last + 1} to {checkpoint.position} "
                "were removed",
                position=last + 1,
                checkpoint=checkpoint.name,
            )
            return


def _check_unsealed(cursor, result: VerificationResult) -> None:
    """Every entry must be in the chain, or queued for it; nothing may be queued twice."""
    result.pending = _count(cursor, "SELECT count(*) FROM audit_pendingentry")
    for source, model in SOURCES.items():
        table = model._meta.db_table
        entries = _count(cursor, f"SELECT count(*) FROM {table}")  # noqa: S608
        sealed = _count(cursor, "SELECT count(*) FROM audit_chainlink WHERE source = %s", [source])
        queued = _count(
            cursor, "SELECT count(*) FROM audit_pendingentry WHERE source = %s", [source]
        )
        if entries == sealed + queued:
            continue
        cursor.execute(
            f"SELECT e.id FROM {table} e WHERE NOT EXISTS ("  # noqa: S608
            " SELECT 1 FROM audit_chainlink l WHERE l.source = %s AND l.entry_id = e.id)"
            " AND NOT EXISTS ("
            " SELECT 1 FROM audit_pendingentry p WHERE p.source = %s AND p.entry_id = e.id)"
            " ORDER BY e.id LIMIT 1",
            [source, source],
        )
        row = cursor.fetchone()
        if row:
            result.finding = Finding(
                Problem.INSERTED,
                "the entry is in the log but was never sealed into the chain: it was added "
                "behind the log writer's back",
                source=source,
                entry_id=row[0],
            )
            return
        cursor.execute(
            f"SELECT p.entry_id FROM audit_pendingentry p WHERE p.source = %s AND NOT EXISTS ("  # noqa: S608
            f" SELECT 1 FROM {table} e WHERE e.id = p.entry_id) ORDER BY p.entry_id LIMIT 1",
            [source],
        )
        row = cursor.fetchone()
        result.finding = Finding(
            Problem.DELETED,
            "the entry was removed before it was sealed",
            source=source,
            entry_id=row[0] if row else None,
        )
        return


def _check_checkpoints_cover(
    cursor,
    result: VerificationResult,
    checkpoints: list[Checkpoint],
    directory: Path | None,
    max_age: dt.timedelta,
) -> None:
    """A consistent chain proves nothing against someone who rewrites it as a whole:
    there must be a signed checkpoint, and the newest must be younger than ``max_age``."""
    if not checkpoints:
        if directory is None:
            where = "SAMVERKAN_AUDIT_CHECKPOINT_DIR is not set"
        else:
            where = f"there is none in {directory}"
        empty = result.entries == 0 and result.pending == 0
        if empty:
            what = (
                "the log is empty, and an emptied log looks just the same. Write the first "
                "checkpoint right after installation"
            )
        else:
            what = (
                f"nothing outside the database vouches for the {result.entries} entries of the "
                "chain, so a log rewritten as a whole could not be told from the real one. "
                "Write one"
            )
        result.finding = Finding(
            Problem.NO_CHECKPOINT,
            f"no signed checkpoint ({where}): {what} with `manage.py audit checkpoint` and "
            "schedule it at least hourly.",
        )
        return
    newest = max(checkpoints, key=lambda checkpoint: checkpoint.created_at)
    age = timezone.now() - newest.created_at
    if age > max_age:
        cursor.execute("SELECT coalesce(max(position), 0) FROM audit_chainlink")
        since = cursor.fetchone()[0] - newest.position
        age_text = dt.timedelta(seconds=int(age.total_seconds()))
        result.finding = Finding(
            Problem.STALE_CHECKPOINT,
            f"the newest signed checkpoint was made at {_utc_iso(newest.created_at)} "
            f"({age_text} ago), "
            f"older than {max_age} (SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE): the {since} entries "
            "sealed since are vouched for by nothing outside the database. Check that "
            "`manage.py audit checkpoint` runs on schedule.",
            checkpoint=newest.name,
        )


def checkpoint_max_age() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "AUDIT_CHECKPOINT_MAX_AGE", 7200))


def verify(
    *,
    using: str = "default",
    directory: Path | bool | None = True,
    public_keys: dict[str, Ed25519PublicKey] | None = None,
    seal_first: bool = True,
    workers: int = 1,
    max_checkpoint_age: dt.timedelta | None = None,
) -> VerificationResult:
    """Recompute the whole chain and check it against the signed checkpoints.

    ``directory=True`` reads the checkpoints from ``AUDIT_CHECKPOINT_DIR``, a path
    from there; either way the log fails verification without a signed checkpoint
    or when the newest is older than ``max_checkpoint_age`` (default: the setting
    ``AUDIT_CHECKPOINT_MAX_AGE``). ``None`` checks the chain alone (its internal
    consistency, no checkpoint needed). ``workers > 1`` checks ranges of a large
    chain in that many processes (only outside a transaction, where the other
    connections see the same committed log).
    """
    if seal_first:
        seal(using=using)
    needs_checkpoint = directory is not None
    if directory is True:
        configured = str(settings.AUDIT_CHECKPOINT_DIR or "")
        directory = Path(configured) if configured else None
    result = VerificationResult()
    if public_keys is None:
        public_keys = trusted_public_keys() if directory else {}
    checkpoints, finding = load_checkpoints(directory or None, public_keys)
    result.checkpoints = len(checkpoints)
    if finding:
        result.finding = finding
        return result
    connection = connections[using]
    # Uncommitted entries are invisible to other connections: inside a
    # transaction, one connection does it all.
    separate = not connection.in_atomic_block
    with connection.cursor() as cursor:
        _walk_chain(
            cursor,
            result,
            checkpoints,
            workers=workers if separate else 1,
            prefetch=separate,
            using=using,
        )
    if result.finding is None:
        # One snapshot for the counts when we own the transaction.
        with transaction.atomic(using=using), connection.cursor() as cursor:
            blocks = connection.atomic_blocks
            if len(blocks) == 1 and not blocks[0]._from_testcase:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            _check_unsealed(cursor, result)
    if result.finding is None and needs_checkpoint:
        with connection.cursor() as cursor:
            _check_checkpoints_cover(
                cursor,
                result,
                checkpoints,
                directory or None,
                max_checkpoint_age or checkpoint_max_age(),
            )
    return result
