"""The verifier's walk over blocks of chain format 3 (ADR 0031, session 22).

A block (``ChainBlock``) covers positions ``first``..``last`` of one source: its entry ids
in chain order, their format-2 entry digests (``SHA-256(ENTRY_TAG_V2 + source + "\\n" +
line)``, the row's COPY line) and the running hash after it, ``chain.block_hash`` over the
hash before it, the positions, source, sealing time, ids and digests.

:func:`walk_blocks` checks the blocks that follow one another from a position on, a chunk
of them at a time. The fast path reads a chunk's blocks and their entries as COPY lines,
hashes every entry line as it arrives and each block from the digests it computed, and
accepts the chunk only when every block follows and its stored digests are the computed
ones. Anything
else — a gap, a missing, archived or doubled entry, a block whose positions and ids disagree,
a signed head inside the chunk, any edit — sends the chunk to :func:`_diagnose`, which
checks its blocks one by one with their stored digests and names the first bad entry (or
block). The database supplies values only, never a hash: every digest compared is computed
here.

Each block's entries are checked to be there, once, within the block's chunk; that no entry
is in two chunks' blocks is :func:`check_sealed_once`'s, from the id spans the walk records:
by source, (lowest id, highest id, first and last position) of each chunk (or block) walked.
Every id of the chunk lies in its span, so two chunks can share an entry only where their
spans overlap.
"""

from __future__ import annotations

import bisect
import hashlib
from binascii import hexlify
from collections import defaultdict
from collections.abc import Iterable

import psycopg

from audit.integrity.chain import (
    _ISO_UTC_SQL,
    GENESIS,
    SOURCES,
    block_hash,
    copy_lines,
    fetch_lines,
    ids_text,
    layout,
)
from audit.integrity.problems import Problem

BLOCKS_SQL = (
    "SELECT first_position, last_position, source, "  # noqa: S608 (constants)
    + _ISO_UTC_SQL.format(column="sealed_at")
    + ", entry_ids, entry_digests, chain_hash FROM audit_chainblock"
    " WHERE first_position BETWEEN %s AND %s ORDER BY first_position"
)
BLOCKS_COPY_SQL = (
    "COPY (SELECT first_position, last_position, source, "  # noqa: S608 (bounds as integers)
    + _ISO_UTC_SQL.format(column="sealed_at")
    + ", entry_ids, entry_digests, chain_hash FROM audit_chainblock"
    " WHERE first_position BETWEEN {start:d} AND {end:d} ORDER BY first_position) TO STDOUT"
)
_SOURCES = {source.encode(): source for source in SOURCES}
_DIGITS = b"0123456789,"


def kind_at(cursor, position: int) -> int | None:
    """What begins at ``position``: a link's format (1 or 2), 3 for a block, None for nothing."""
    cursor.execute(
        "SELECT coalesce((SELECT format FROM audit_chainlink WHERE position = %s),"
        " (SELECT 3 FROM audit_chainblock WHERE first_position = %s))",
        [position, position],
    )
    return cursor.fetchone()[0]


def next_block(cursor, position: int) -> int | None:
    """The first position of the first block at or after ``position``."""
    cursor.execute(
        "SELECT min(first_position) FROM audit_chainblock WHERE first_position >= %s", [position]
    )
    return cursor.fetchone()[0]


def next_position(cursor, position: int) -> int | None:
    """The first position after ``position`` at which a link or a block begins."""
    cursor.execute(
        "SELECT least((SELECT min(position) FROM audit_chainlink WHERE position > %s),"
        " (SELECT min(first_position) FROM audit_chainblock WHERE first_position > %s))",
        [position, position],
    )
    return cursor.fetchone()[0]


def last_position(cursor) -> int:
    """The chain's last position (0 when empty)."""
    cursor.execute(
        "SELECT greatest((SELECT coalesce(max(position), 0) FROM audit_chainlink),"
        " (SELECT coalesce(max(last_position), 0) FROM audit_chainblock))"
    )
    return cursor.fetchone()[0]


def hash_before(cursor, position: int) -> str | None:
    """The stored running hash at ``position`` (the end of a link or a block); None when
    nothing ends there."""
    if position == 0:
        return GENESIS
    cursor.execute(
        "SELECT coalesce((SELECT chain_hash FROM audit_chainlink WHERE position = %s),"
        " (SELECT chain_hash FROM audit_chainblock WHERE last_position = %s))",
        [position, position],
    )
    return cursor.fetchone()[0]


def range_start(cursor, first: int) -> tuple[int, str | None]:
    """Where a range of the walk that begins at ``first`` starts, and the stored hash before
    it: a block begun before ``first`` is walked by the range before (it walks every block
    that begins in it, wherever the block ends), so this range starts after it."""
    cursor.execute(
        "SELECT last_position, chain_hash FROM audit_chainblock WHERE first_position < %s"
        " ORDER BY first_position DESC LIMIT 1",
        [first],
    )
    row = cursor.fetchone()
    if row is not None and row[0] >= first:
        return row[0] + 1, row[1]
    return first, hash_before(cursor, first - 1)


def _fast_chunk(
    connection, start: int, end: int, previous: bytes, heads: list[int], signed: dict | None = None
):
    """The blocks beginning in ``start``..``end`` checked from their entries' COPY lines:
    ``(next position, running hash, entries, spans)`` when they all follow ``previous``, one
    after another from ``start``; None when :func:`_diagnose` must decide (or no block begins
    at ``start``)."""
    blocks = []
    for line in copy_lines(connection, BLOCKS_COPY_SQL.format(start=start, end=end).encode()):
        blocks.append(line[:-1].split(b"\t"))  # read on to the end: the COPY must be drained
    if not blocks:
        return None
    expected = start
    wanted: dict[bytes, list[tuple[int, int]]] = defaultdict(list)  # source: (low, high) ids
    parsed = []
    for fields in blocks:
        if len(fields) != 7:
            return None
        first, last, source, sealed_at, ids, stored_digests, stored = fields
        first, last = int(first), int(last)
        count = last - first + 1
        if ids[:1] != b"{" or ids[-1:] != b"}":
            return None
        ids = ids[1:-1]
        if (
            first != expected
            or count < 1
            or source not in _SOURCES
            or ids.translate(None, _DIGITS)
            or ids.count(b",") != count - 1
        ):
            return None
        index = bisect.bisect_left(heads, first)
        if index < len(heads) and heads[index] < last:
            return None  # a signed head inside the block: the diagnosis names it
        try:
            low, high = int(ids.partition(b",")[0]), int(ids.rpartition(b",")[2])
        except ValueError:  # an empty id (",," or none at all)
            return None
        wanted[source].append((min(low, high), max(low, high)))
        parsed.append((first, last, source, sealed_at, ids, stored_digests, stored))
        expected = last + 1
    digests: dict[bytes, dict[bytes, bytes]] = {}
    spans = []
    sha256 = hashlib.sha256
    for source, bounds in wanted.items():
        entry_layout = layout(_SOURCES[source])
        low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
        entries = sum(f[1] - f[0] + 1 for f in parsed if f[2] == source)
        if high - low >= 2 * entries:
            return None  # ids far apart: checked block by block
        prefix, found, lines = entry_layout.line_prefix, {}, 0
        for line in copy_lines(connection, entry_layout.copy_sql(f"id BETWEEN {low} AND {high}")):
            found[line[: line.index(b"\t")]] = sha256(prefix + line).digest()
            lines += 1
        if len(found) != lines:
            return None  # an id twice (a copy of an entry): the diagnosis decides
        digests[source] = found
        # Every id of these blocks is a key of ``found``: between ``low`` and ``high``.
        spans.append((_SOURCES[source], low, high, start, expected - 1))
    entries = 0
    for first, last, source, sealed_at, ids, stored_digests, stored in parsed:
        found = digests[source]
        pop = found.pop
        try:
            joined = b"".join([pop(entry_id) for entry_id in ids.split(b",")])
        except KeyError:  # missing, archived, or twice in the chunk
            return None
        # The stored digests (bytea's COPY text: "\\x" and hex) must be the computed ones:
        # they name an entry in a diagnosis and stand for the entries of archived months.
        if stored_digests[3:] != hexlify(joined) or stored_digests[:3] != b"\\\\x":
            return None
        previous = block_hash(
            previous,
            first=first,
            last=last,
            source=_SOURCES[source],
            sealed_at=sealed_at.decode(),
            ids_text=ids,
            digests=joined,
        )
        if hexlify(previous) != stored:
            return None
        for checkpoint in (signed or {}).get(last, ()):  # a signed head at the block's end
            if checkpoint.head.encode() != stored:
                return None
        entries += last - first + 1
    return expected, previous, entries, spans


def walk_blocks(cursor, walk, start: int, last: int, spans: list[tuple]) -> int | None:
    """Walk the blocks that follow one another from ``start`` (each beginning at or before
    ``last``); return the position after the last one, or None with the walk's finding.
    ``walk`` is the per-link walk (``verification._Walk``): its running hash, expected
    position, result, signed heads and archived ids."""
    from audit.integrity.lines import VERIFY_CHUNK

    heads = sorted(walk.heads)
    while start <= last:
        end = min(last, start + VERIFY_CHUNK - 1)
        done = None
        if walk.previous is not None:
            done = _fast_chunk(cursor.connection, start, end, walk.previous, heads, walk.heads)
        if done is not None:
            following, walk.previous, entries, chunk_spans = done
            walk.result.entries += entries
            spans.extend(chunk_spans)
            walk.expected = start = following
            continue
        following = _diagnose(cursor, walk, start, end, spans)
        if following is None:
            return None
        if following == start:
            return start  # no block begins here
        start = following
    return start


def _diagnose(cursor, walk, start: int, end: int, spans: list[tuple]) -> int | None:
    """The blocks beginning in ``start``..``end`` checked one by one with their stored
    digests; the position after the last consecutive one, or None with the finding."""
    cursor.execute(BLOCKS_SQL, [start, end])
    read = cursor.fetchall()
    # The entries of the chunk's blocks, one COPY per source (a detached month's blocks all
    # come here: not one COPY per block).
    wanted: dict[str, set[int]] = defaultdict(set)
    for _, _, source, _, ids, _, _ in read:
        if source in SOURCES:
            wanted[source].update(ids)
    lines = {
        source: fetch_lines(cursor.connection, source, sorted(ids))
        for source, ids in wanted.items()
    }
    for first, last, source, sealed_at, ids, stored_digests, stored_hash in read:
        if first != walk.expected:
            return walk.expected  # a link, a gap or nothing: the caller decides
        block = (first, last, source, sealed_at, ids, bytes(stored_digests), stored_hash)
        if not _check_block(walk, block, lines.get(source, {})):
            return None
        if ids:
            spans.append((source, min(ids), max(ids), first, last))
        walk.expected = last + 1
    return walk.expected


def _check_block(walk, block: tuple, lines: dict[int, bytes]) -> bool:
    first, last, source, sealed_at, ids, stored_digests, stored_hash = block
    where = {"position": first, "source": source, "entry_id": ids[0] if ids else None}
    if source not in SOURCES:
        return walk.fail(Problem.CHAIN_BROKEN, f"unknown source {source!r}", position=first)
    if len(ids) != last - first + 1 or len(stored_digests) != 32 * len(ids):
        return walk.fail(
            Problem.CHAIN_BROKEN,
            f"the block's positions {first} to {last}, its {len(ids)} entry ids and its "
            f"{len(stored_digests) // 32} entry digests do not agree: the block was altered",
            **where,
        )
    seen: set[int] = set()
    for index, entry_id in enumerate(ids):
        if entry_id in seen:
            return walk.fail(
                Problem.CHAIN_BROKEN,
                "the entry is sealed twice in the block: the block was altered",
                position=first + index,
                source=source,
                entry_id=entry_id,
            )
        seen.add(entry_id)
    entry_layout = layout(source)
    stored = [stored_digests[i : i + 32] for i in range(0, len(stored_digests), 32)]
    archived = walk.archived.get(source, ())
    for index, entry_id in enumerate(ids):
        at = {"position": first + index, "source": source, "entry_id": entry_id}
        line = lines.get(entry_id)
        if line is None:
            if entry_id in archived:
                walk.result.archived += 1
                continue  # detached for the archive: ``verify-archive`` checks it
            return walk.fail(Problem.DELETED, "the entry sealed here is no longer in the log", **at)
        digest = hashlib.sha256(entry_layout.line_prefix + line).digest()
        if digest == stored[index]:
            continue
        moved = [
            first + other
            for other, other_id in enumerate(ids)
            if other != index
            and stored[other]
            in (digest, bytes.fromhex(entry_layout.line_hash(line, entry_id=other_id)))
        ]
        if moved:
            return walk.fail(
                Problem.REORDERED,
                f"it holds the entry sealed at position {moved[0]}: entries were swapped or moved",
                **at,
            )
        return walk.fail(
            Problem.EDITED, "its content no longer matches the hash it was sealed with", **at
        )
    if walk.previous is None:
        follows = True  # the range before names the link or block before this one
        computed = None
    else:
        computed = block_hash(
            walk.previous,
            first=first,
            last=last,
            source=source,
            sealed_at=sealed_at,
            ids_text=ids_text(ids),
            digests=stored_digests,
        )
        follows = computed.hex() == stored_hash
    if not follows:
        return walk.fail(
            Problem.CHAIN_BROKEN,
            "the block does not follow from the link or block before it: a block was "
            "inserted, removed or altered",
            **where,
        )
    try:
        walk.previous = computed if computed is not None else bytes.fromhex(stored_hash)
    except ValueError:
        return walk.fail(Problem.CHAIN_BROKEN, "the block's running hash is not a hash", **where)
    walk.result.entries += len(ids)
    for position in range(first, last + 1):
        for checkpoint in walk.heads.get(position, ()):
            if position != last or checkpoint.head != stored_hash:
                return walk.fail(
                    Problem.REWRITTEN,
                    f"the chain's hash at position {position} differs from the signed "
                    "checkpoint: the log up to here was rewritten",
                    position=position,
                    source=source,
                    entry_id=ids[position - first],
                    checkpoint=checkpoint.name,
                )
    return True


def check_sealed_once(cursor, spans: Iterable[tuple]) -> tuple[str, int, int, int] | None:
    """No entry in two blocks, nor in a block and a link: ``(source, entry id, position,
    earlier position)`` of the entry sealed twice whose second place comes first, else None.

    Spans that overlap no other (nearly all: a seal's entries follow the last seal's) cannot
    share an entry; only the blocks of overlapping spans are read again (their ids), and
    compared with each other and with the links of their ids."""
    by_source: dict[str, list[tuple]] = defaultdict(list)
    for span in spans:
        by_source[span[0]].append(span)
    twice = []
    with psycopg.Cursor(cursor.connection) as raw:
        for source, items in by_source.items():
            items.sort(key=lambda span: span[1])
            suspect: set[tuple] = set()
            highest = None
            for span in items:
                if highest is not None and span[1] <= highest[2]:
                    suspect.update((highest, span))
                if highest is None or span[2] > highest[2]:
                    highest = span
            raw.execute(
                "SELECT min(entry_id), max(entry_id) FROM audit_chainlink WHERE source = %s",
                [source],
            )
            low, high = raw.fetchone()
            if low is not None:
                suspect.update(s for s in items if s[1] <= high and s[2] >= low)
            places: dict[int, list[int]] = defaultdict(list)
            for span in suspect:
                raw.execute(
                    "SELECT first_position, entry_ids FROM audit_chainblock"
                    " WHERE first_position BETWEEN %s AND %s AND source = %s",
                    [span[3], span[4], source],
                )
                for first, ids in raw.fetchall():
                    for index, entry_id in enumerate(ids):
                        places[entry_id].append(first + index)
            if low is not None and places:
                raw.execute(
                    "SELECT entry_id, position FROM audit_chainlink"
                    " WHERE source = %s AND entry_id = ANY(%b::bigint[])",
                    [source, list(places)],
                )
                for entry_id, position in raw.fetchall():
                    places[entry_id].append(position)
            for entry_id, positions in places.items():
                positions = sorted(set(positions))  # a block read twice (two spans) counts once
                if len(positions) > 1:
                    twice.append((source, entry_id, positions[1], positions[0]))
    return min(twice, key=lambda item: item[2]) if twice else None
