"""Verification: every entry hash and link recomputed, every checkpoint's signature and
head checked, and no entry outside the chain."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from audit.integrity.chain import (
    CHAIN_TAG,
    CHECKPOINT_FORMAT,
    GENESIS,
    LINKS_SQL,
    SOURCES,
    Source,
    fetch_rows,
    layout,
    seal,
    utc_iso,
)
from audit.integrity.checkpoints import signed_message, trusted_public_keys
from audit.integrity.partitions import archived_entries

VERIFY_CHUNK = 5000


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
    # Entries of months detached for the archive (their links still checked here).
    archived: int = 0
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
            public_key.verify(signature, signed_message(document))
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
    archived: int = 0
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
    cursor.execute(LINKS_SQL, [start, min(last, start + VERIFY_CHUNK - 1)])
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
            cursor.execute(LINKS_SQL, [following, min(last, following + VERIFY_CHUNK - 1)])
            links = cursor.fetchall()
    rows = {
        source: fetch_rows(cursor, source, [link[2] for link in links if link[1] == source])
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
    archived: dict[str, Any] | None = None,
) -> _RangeResult:
    """Check links ``first``..``last``: positions, entries, entry hashes, running hashes.

    Each link is checked against the *stored* hash of the link before it, so
    ranges can be checked independently (and in parallel); together they prove
    the whole chain, link by link.
    """
    result = _RangeResult()
    # The stored running hash of the link before the range (its bytes); None when that
    # link is gone or its hash is not even hexadecimal: the range before reports that.
    previous_text = _previous_hash(cursor, first - 1)
    try:
        previous = None if previous_text is None else bytes.fromhex(previous_text)
    except ValueError:
        previous = None
    expected = first
    # The inner loop runs once per entry of the log: local names, one hash call per
    # entry and per link, the slower definition only where the shortcut disagrees.
    hashers = {source: layout(source).fast_hasher() for source in SOURCES}
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    archived_ids = archived or {}
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
            hasher = hashers.get(source)
            if hasher is None:
                result.finding = Finding(
                    Problem.CHAIN_BROKEN, f"unknown source {source!r}", position=position
                )
                return result
            row = rows[source].get(entry_id)
            if row is None:
                if entry_id in archived_ids.get(source, ()):
                    # Detached for the archive: the export is checked against this
                    # link's entry hash (``audit verify-archive``); here the link holds.
                    entry_digest = None  # the stored entry hash, below
                    result.archived += 1
                else:
                    result.finding = Finding(
                        Problem.DELETED,
                        "the entry sealed here is no longer in the log",
                        position=position,
                        source=source,
                        entry_id=entry_id,
                    )
                    return result
            else:
                entry_digest = hasher(row)
                if entry_digest is None or entry_digest.hex() != stored_entry_hash:
                    intact, actual_hash = layout(source).matches(row, stored_entry_hash)
                    if not intact:
                        kind, message = _diagnose_mismatch(link, row, links, actual_hash)
                        result.finding = Finding(
                            kind, message, position=position, source=source, entry_id=entry_id
                        )
                        return result
                    entry_digest = None  # the stored entry hash, which the definition gave
            try:
                if entry_digest is None:
                    entry_digest = fromhex(stored_entry_hash)
                if previous is None:
                    digest, follows = fromhex(stored_chain_hash), True
                else:
                    digest = sha256(
                        CHAIN_TAG
                        + previous
                        + f"{position}\n{source}\n{entry_id}\n{sealed_at}\n".encode()
                        + entry_digest
                    ).digest()
                    follows = digest.hex() == stored_chain_hash
            except ValueError:  # a stored hash that is not even hexadecimal
                follows = False
            if not follows:
                result.finding = Finding(
                    Problem.CHAIN_BROKEN,
                    "the link does not follow from the one before it: a link was inserted, "
                    "removed or altered",
                    position=position,
                    source=source,
                    entry_id=entry_id,
                )
                return result
            previous = digest  # the stored running hash: it is the one computed
            if position in heads:
                for checkpoint in heads[position]:
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
    result.last_hash = previous.hex() if previous is not None else previous_text
    return result


def _walk_range_in_worker(args: tuple) -> _RangeResult:
    first, last, heads, using, archived = args
    try:
        with connections[using].cursor() as cursor:
            return _walk_range(
                cursor, first, last, heads, prefetch=True, using=using, archived=archived
            )
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
    archived: dict[str, Any] | None = None,
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
                [(first, end, heads, using, archived) for first, end in _ranges(last, workers * 4)],
            )
    else:
        parts = [
            _walk_range(cursor, 1, last, heads, prefetch=prefetch, using=using, archived=archived)
        ]
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


def _check_unsealed(
    cursor, result: VerificationResult, archived_counts: dict[str, int] | None = None
) -> None:
    """Every entry must be in the chain, or queued for it; nothing may be queued twice.

    Entries of detached months count as present: their links are in the chain and were
    checked against the signed archive records (``archived_counts`` by source)."""
    result.pending = _count(cursor, "SELECT count(*) FROM audit_pendingentry")
    for source, model in SOURCES.items():
        table = model._meta.db_table
        entries = _count(cursor, f"SELECT count(*) FROM {table}")  # noqa: S608
        entries += (archived_counts or {}).get(source, 0)
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
            f"the newest signed checkpoint was made at {utc_iso(newest.created_at)} "
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
    archived, archived_count, bad_archive = archived_entries(
        public_keys or trusted_public_keys(), using=using
    )
    if bad_archive:
        result.finding = Finding(
            Problem.BAD_SIGNATURE,
            f"the record of the month {bad_archive} detached for the archive is not signed by "
            "a trusted key: it cannot vouch for the events missing from the live log",
        )
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
            archived=archived,
        )
    result.archived = archived_count
    if result.finding is None:
        # One snapshot for the counts when we own the transaction.
        with transaction.atomic(using=using), connection.cursor() as cursor:
            blocks = connection.atomic_blocks
            if len(blocks) == 1 and not blocks[0]._from_testcase:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            _check_unsealed(cursor, result, {Source.ACCESS: archived_count})
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
