"""Verification: every entry hash and link recomputed, every checkpoint's signature and
head checked, and no entry outside the chain."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import multiprocessing
import threading
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from audit.integrity import blocks
from audit.integrity.chain import (
    CHAIN_TAGS,
    CHECKPOINT_FORMAT,
    FORMAT_BLOCKS,
    FORMAT_LINES,
    GENESIS,
    SOURCES,
    Source,
    layout,
    seal,
    utc_iso,
)
from audit.integrity.checkpoints import signed_message, trusted_public_keys
from audit.integrity.lines import VERIFY_CHUNK, chunks, fetch_chunk, walk_chunk
from audit.integrity.partitions import archived_entries
from audit.integrity.problems import Finding, Problem

# --- Verification -----------------------------------------------------------


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
    link: tuple, entry: tuple | bytes, links: list[tuple], actual_hash: str
) -> tuple[str, str]:
    """Tell an edited entry from one that was moved to another place in the chain."""
    position, source, _entry_id, _stored, *_, link_format = link
    entry_layout = layout(source)
    for other in links:
        other_position, other_source, other_entry_id, other_hash, *_, other_format = other
        if other_position == position or other_source != source or other_format != link_format:
            continue
        if link_format == FORMAT_LINES:
            renumbered = entry_layout.line_hash(entry, entry_id=other_entry_id)
        else:
            renumbered = entry_layout.entry_hash(entry, entry_id=other_entry_id)
        if actual_hash == other_hash or renumbered == other_hash:
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
    # The entry ids of the blocks walked (``blocks.Spans``): no entry may be in two.
    spans: list[tuple] = field(default_factory=list)


class _Walk:
    """The per-link walk: each link's position, entry, entry hash and running hash, and
    the signed heads at their positions. It names the first problem it finds."""

    def __init__(self, result: _RangeResult, first: int, previous: bytes | None, heads, archived):
        self.result, self.expected, self.previous = result, first, previous
        self.heads, self.archived = heads, archived or {}
        # The inner loop of the log's first format: a shortcut per source, the
        # definition only where it disagrees.
        self.hashers = {source: layout(source).fast_hasher() for source in SOURCES}

    def fail(self, kind: str, message: str, link: tuple | None = None, **where) -> bool:
        if link is not None:
            where |= {"position": link[0], "source": link[1], "entry_id": link[2]}
        self.result.finding = Finding(kind, message, **where)
        return False

    def check(self, links: list[tuple], rows: dict, lines: dict) -> bool:
        """Walk one chunk; False (and the finding) at the first problem."""
        for link in links:
            if not self._check_link(link, links, rows, lines):
                return False
            self.result.entries += 1
            self.expected += 1
        return True

    def _entry_digest(self, link, links, rows, lines) -> bytes | bool | None:
        """The entry's hash (bytes), None to take the stored one, False on a finding."""
        _position, source, entry_id, stored_entry_hash, _, _, link_format = link
        entry = (lines if link_format == FORMAT_LINES else rows)[source].get(entry_id)
        if entry is None:
            if entry_id in self.archived.get(source, ()):
                # Detached for the archive: the export is checked against this link's
                # entry hash (``audit verify-archive``); here the link holds.
                self.result.archived += 1
                return None
            return self.fail(Problem.DELETED, "the entry sealed here is no longer in the log", link)
        if link_format == FORMAT_LINES:
            actual_hash = layout(source).line_hash(entry)
            if actual_hash == stored_entry_hash:
                return bytes.fromhex(actual_hash)
        else:
            digest = self.hashers[source](entry)
            if digest is not None and digest.hex() == stored_entry_hash:
                return digest
            intact, actual_hash = layout(source).matches(entry, stored_entry_hash)
            if intact:
                return None  # the stored entry hash, which the definition gave
        kind, message = _diagnose_mismatch(link, entry, links, actual_hash)
        return self.fail(kind, message, link)

    def _check_link(self, link, links, rows, lines) -> bool:
        position, source, entry_id, stored_entry_hash, stored_chain_hash, sealed_at, link_format = (
            link
        )
        if position != self.expected:
            return self.fail(
                Problem.DELETED,
                f"the chain jumps from position {self.expected - 1} to {position}: "
                f"the entries sealed at positions {self.expected} to {position - 1} were removed",
                position=self.expected,
            )
        if source not in self.hashers:
            return self.fail(Problem.CHAIN_BROKEN, f"unknown source {source!r}", position=position)
        tag = CHAIN_TAGS.get(link_format)
        if tag is None:
            return self.fail(Problem.CHAIN_BROKEN, f"unknown chain format {link_format!r}", link)
        entry_digest = self._entry_digest(link, links, rows, lines)
        if entry_digest is False:
            return False
        try:
            if entry_digest is None:
                entry_digest = bytes.fromhex(stored_entry_hash)
            if self.previous is None:
                digest, follows = bytes.fromhex(stored_chain_hash), True
            else:
                digest = hashlib.sha256(
                    tag
                    + self.previous
                    + f"{position}\n{source}\n{entry_id}\n{sealed_at}\n".encode()
                    + entry_digest
                ).digest()
                follows = digest.hex() == stored_chain_hash
        except ValueError:  # a stored hash that is not even hexadecimal
            follows = False
        if not follows:
            return self.fail(
                Problem.CHAIN_BROKEN,
                "the link does not follow from the one before it: a link was inserted, "
                "removed or altered",
                link,
            )
        self.previous = digest  # the stored running hash: it is the one computed
        for checkpoint in self.heads.get(position, ()):
            if checkpoint.head != stored_chain_hash:
                return self.fail(
                    Problem.REWRITTEN,
                    f"the chain's hash at position {position} differs from the signed "
                    "checkpoint: the log up to here was rewritten",
                    link,
                    checkpoint=checkpoint.name,
                )
        return True


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
    """Check links and blocks ``first``..``last``: positions, entries, entry hashes, running
    hashes.

    Each link or block is checked against the *stored* hash of the one before it, so
    ranges can be checked independently (and in parallel); together they prove the whole
    chain. A block is walked by the range it begins in, wherever it ends. Stretches of links
    go to :func:`_walk_links`, stretches of blocks (format 3) to ``blocks.walk_blocks``.
    """
    result = _RangeResult()
    # The stored running hash before the range (its bytes); None when that link or block
    # is gone or its hash is not even hexadecimal: the range before reports that.
    start, previous_text = blocks.range_start(cursor, first)
    try:
        previous = None if previous_text is None else bytes.fromhex(previous_text)
    except ValueError:
        previous = None
    walk = _Walk(result, start, previous, heads, archived)
    while start <= last:
        kind = blocks.kind_at(cursor, start)
        if kind == FORMAT_BLOCKS:
            following = blocks.walk_blocks(cursor, walk, start, last, result.spans)
            if following is None:
                return result
        elif kind is not None:
            upto = blocks.next_block(cursor, start)
            upto = last if upto is None else min(last, upto - 1)
            if not _walk_links(cursor, walk, start, upto, kind, prefetch=prefetch, using=using):
                return result
            following = walk.expected
        if kind is None or following == start:
            following = blocks.next_position(cursor, start)
            if following is not None and following <= last:
                result.finding = Finding(
                    Problem.DELETED,
                    f"the chain jumps from position {start - 1} to {following}: the entries "
                    f"sealed at positions {start} to {following - 1} were removed",
                    position=start,
                )
                return result
            break
        start = following
    if walk.expected <= last:
        result.finding = Finding(
            Problem.DELETED,
            f"the entries sealed at positions {walk.expected} to {last} were removed",
            position=walk.expected,
        )
    result.last_hash = walk.previous.hex() if walk.previous is not None else previous_text
    return result


def _walk_links(
    cursor, walk: _Walk, start: int, last: int, kind: int, *, prefetch: bool, using: str
) -> bool:
    """Check links ``start``..``last`` (a stretch without blocks); False on a finding.

    Links of format 1 go through the per-link walk (with a read-ahead connection); from
    the first chunk that ends in a link of format 2 on, each chunk is first offered to the
    COPY walk of ``audit.integrity.lines``, and the per-link walk checks the chunks it
    declines."""
    lines_format = kind == FORMAT_LINES
    heads = walk.heads

    def offered(start: int, end: int) -> bool:
        """Whether chunk ``start``..``end`` is for the COPY walk (no signed head in it)."""
        return not any(start <= at <= end for at in heads)

    while start <= last:
        if not lines_format:
            read = chunks(cursor, start, last, prefetch=prefetch, using=using)
            with closing(read):
                for links, rows, lines in read:
                    if not walk.check(links, rows, lines):
                        return False
                    start = links[-1][0] + 1
                    if links[-1][6] == FORMAT_LINES:
                        lines_format = True
                        break
                else:
                    break  # every chunk read
            continue
        end = min(last, start + VERIFY_CHUNK - 1)
        digest = None
        if walk.previous is not None and offered(start, end):
            digest = walk_chunk(cursor.connection, start, end, walk.previous)
        if digest is not None:
            walk.previous, walk.expected = digest, end + 1
            walk.result.entries += end - start + 1
            start = end + 1
            continue
        links, rows, lines = fetch_chunk(cursor, start, last)
        if not links:
            break
        if not walk.check(links, rows, lines):
            return False
        start = links[-1][0] + 1
    return True


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
    meanwhile: Callable[[], None] = lambda: None,
) -> None:
    """Walk the whole chain (in ``workers`` processes); ``meanwhile`` is called once the
    walk has started (after the fork: a thread it starts is not copied into the workers)."""
    heads: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        heads.setdefault(checkpoint.position, []).append(checkpoint)
    for checkpoint in heads.get(0, []):
        if checkpoint.head != GENESIS:
            result.finding = Finding(
                Problem.REWRITTEN, "the empty log's head differs", checkpoint=checkpoint.name
            )
            return
    last = blocks.last_position(cursor)
    if workers > 1 and last >= workers * VERIFY_CHUNK:
        # Links up to ``last`` are committed and never change: separate
        # connections (separate snapshots) see the same ones.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            meanwhile()
            parts = pool.map(
                _walk_range_in_worker,
                [(first, end, heads, using, archived) for first, end in _ranges(last, workers * 4)],
            )
    else:
        meanwhile()
        parts = [
            _walk_range(
                cursor,
                1,
                last,
                heads,
                prefetch=prefetch,
                using=using,
                archived=archived,
            )
        ]
    for part in parts:
        result.entries += part.entries
        if part.finding is not None:
            result.finding = part.finding  # ranges are in order: the first is the earliest
            return
    with connections[using].cursor() as fresh:
        twice = blocks.check_sealed_once(fresh, [span for part in parts for span in part.spans])
    if twice is not None:
        source, entry_id, position, earlier = twice
        result.finding = Finding(
            Problem.CHAIN_BROKEN,
            f"the entry is sealed twice, here and at position {earlier}: a block was altered",
            position=position,
            source=source,
            entry_id=entry_id,
        )
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
        sealed = _count(
            cursor,
            "SELECT (SELECT count(*) FROM audit_chainlink WHERE source = %s)"
            " + (SELECT coalesce(sum(cardinality(entry_ids)), 0) FROM audit_chainblock"
            " WHERE source = %s)",
            [source, source],
        )
        queued = _count(
            cursor, "SELECT count(*) FROM audit_pendingentry WHERE source = %s", [source]
        )
        if entries == sealed + queued:
            continue
        cursor.execute(
            "WITH blocked AS (SELECT unnest(entry_ids) AS id FROM audit_chainblock"  # noqa: S608
            f" WHERE source = %s) SELECT e.id FROM {table} e WHERE NOT EXISTS ("
            " SELECT 1 FROM audit_chainlink l WHERE l.source = %s AND l.entry_id = e.id)"
            " AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = e.id)"
            " AND NOT EXISTS ("
            " SELECT 1 FROM audit_pendingentry p WHERE p.source = %s AND p.entry_id = e.id)"
            " ORDER BY e.id LIMIT 1",
            [source, source, source],
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


class _UnsealedCheck(threading.Thread):
    """:func:`_check_unsealed` in one snapshot of a connection of its own, while the chain
    is walked (its counts are the only other full reads of the log)."""

    def __init__(self, using: str, archived_count: int) -> None:
        super().__init__(name="audit-verify-unsealed", daemon=True)
        self.using, self.archived_count = using, archived_count
        self.result = VerificationResult()
        self.error: BaseException | None = None

    def run(self) -> None:
        connection = connections[self.using]
        try:
            with transaction.atomic(using=self.using), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                _check_unsealed(cursor, self.result, {Source.ACCESS: self.archived_count})
        except BaseException as error:  # raised in the caller's thread
            self.error = error
        finally:
            connection.close()

    def outcome(self, result: VerificationResult) -> None:
        """Wait for the check (or run it, if the walk never started it); its figures and
        finding into ``result``."""
        if self.ident is None:
            self.start()
        self.join()
        if self.error is not None:
            raise self.error
        result.pending, result.finding = self.result.pending, self.result.finding


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
        since = blocks.last_position(cursor) - newest.position
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
    # Outside a transaction the counts of the unsealed check run beside the walk.
    unsealed = _UnsealedCheck(using, archived_count) if separate else None
    try:
        with connection.cursor() as cursor:
            _walk_chain(
                cursor,
                result,
                checkpoints,
                workers=workers if separate else 1,
                prefetch=separate,
                using=using,
                archived=archived,
                meanwhile=unsealed.start if unsealed else lambda: None,
            )
    finally:
        if unsealed is not None and unsealed.ident is not None:
            unsealed.join()
    result.archived = archived_count
    if result.finding is None and unsealed is not None:
        unsealed.outcome(result)
    elif result.finding is None:
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
