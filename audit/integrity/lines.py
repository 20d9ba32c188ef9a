"""Reading the chain in chunks for the verifier, and its walk over links of chain
format 2 (ADR 0031, session 19).

A format-2 entry hash is ``SHA-256(ENTRY_TAG_V2 + source + "\\n" + line)``, where ``line``
is what ``COPY (SELECT <the layout's expressions> …) TO STDOUT`` writes for the entry's
row (text format: tabs, newlines and backslashes escaped, NULL as ``\\N``). So the
verifier hashes the bytes PostgreSQL sends, as they come: no value is built in Python.
The database supplies the rows' values only, never a hash.

:func:`walk_chunk` is an acceptance shortcut for a chunk of links: it accepts the chunk
only when every link is of format 2, every entry a link names is there exactly once and
hashes to the link's stored entry hash, and every running hash follows from the one
before. Anything else (a link of format 1, a gap, an archived or missing entry, any
edit) returns ``None``, and the per-link walk of ``audit.integrity.verification`` checks
the chunk again and names what is wrong.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from audit.integrity.chain import (
    CHAIN_TAG_V2,
    FORMAT_LINES,
    LINKS_COPY_SQL,
    LINKS_WITH_FORMAT_SQL,
    SOURCES,
    copy_lines,
    fetch_lines,
    fetch_rows,
    id_condition,
    layout,
)

VERIFY_CHUNK = 5000

# A link's COPY line ends "<entry hash>\t<chain hash>\t2\n"; before that, its hashed text
# "<position>\t<source>\t<entry id>\t<sealed at>\t" (tabs where the hash input has newlines).
_TAIL = 64 + 1 + 64 + 3
_FORMAT_2 = b"\t2\n"
_SOURCES = {source.encode(): source for source in SOURCES}


def fetch_chunk(cursor, start: int, last: int) -> tuple[list[tuple], dict, dict]:
    """The links from ``start`` (at most ``VERIFY_CHUNK``, up to ``last``) and their
    entries: the rows of format-1 links and the COPY lines of format-2 links, by source.

    Positions are gap-free, so the chunk is the position range itself: a range the
    planner reads straight from the index (asked for "from ``start`` to ``last``,
    the first N", it may read the whole rest of the chain for every chunk).
    """
    cursor.execute(LINKS_WITH_FORMAT_SQL, [start, min(last, start + VERIFY_CHUNK - 1)])
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
            cursor.execute(
                LINKS_WITH_FORMAT_SQL, [following, min(last, following + VERIFY_CHUNK - 1)]
            )
            links = cursor.fetchall()
    rows = {
        source: fetch_rows(
            cursor,
            source,
            [link[2] for link in links if link[1] == source and link[6] != FORMAT_LINES],
        )
        for source in {link[1] for link in links}
    }
    lines = {
        source: fetch_lines(
            cursor.connection,
            source,
            [link[2] for link in links if link[1] == source and link[6] == FORMAT_LINES],
        )
        for source in {link[1] for link in links} & SOURCES.keys()
    }
    return links, rows, lines


def chunks(cursor, first: int, last: int, *, prefetch: bool, using: str) -> Iterator[tuple]:
    """The chunks of links ``first``..``last`` in order, each with its entries.

    With ``prefetch`` a second connection (a thread of its own) reads the next
    chunk while the caller hashes this one: the database's work and ours overlap.
    Positions are gap-free, so the next chunk starts ``VERIFY_CHUNK`` further on;
    where they are not, the caller stops at the gap and the read-ahead is dropped.
    """
    if not prefetch:
        start = first
        while start <= last:
            links, rows, lines = fetch_chunk(cursor, start, last)
            if not links:
                return
            yield links, rows, lines
            start = links[-1][0] + 1
        return

    def fetch(start: int):
        with connections[using].cursor() as own_cursor:
            return fetch_chunk(own_cursor, start, last)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-verify") as reader:
        try:
            pending = reader.submit(fetch, first)
            start = first
            while True:
                links, rows, lines = pending.result()
                if not links:
                    return
                start = links[-1][0] + 1
                if start <= last:
                    pending = reader.submit(fetch, start)
                yield links, rows, lines
                if start > last:
                    return
        finally:
            # The reader's own connection (Django's connections are per thread).
            reader.submit(lambda: connections[using].close()).result()


def read_chunk(connection, start: int, end: int) -> tuple[list[tuple], dict] | None:
    """The links ``start``..``end`` (parsed from their COPY lines) and the digests of the
    entries they name (each hashed as its line arrives), by source and id; ``None`` when
    the links are not a whole chunk of format 2 or an entry id comes twice (the per-link
    walk decides)."""
    sha256 = hashlib.sha256
    links = []
    wanted: dict[bytes, list[bytes]] = {}
    sound = True
    for line in copy_lines(connection, LINKS_COPY_SQL.format(start=start, end=end).encode()):
        head = line[:-_TAIL]
        fields = head.split(b"\t")
        if line[-3:] != _FORMAT_2 or len(fields) != 5:
            sound = False  # read on to the end: the COPY must be drained
            continue
        links.append((head, fields[1], fields[2], line[-_TAIL:-68], line[-67:-3]))
        wanted.setdefault(fields[1], []).append(fields[2])
    # Positions are unique: as many links as positions is every position once, in order.
    if not sound or len(links) != end - start + 1 or not wanted.keys() <= _SOURCES.keys():
        return None
    digests: dict[bytes, dict[bytes, bytes]] = {}
    for source, entry_ids in wanted.items():
        entry_layout = layout(_SOURCES[source])
        condition, _ = id_condition(map(int, entry_ids))
        prefix, found, count = entry_layout.line_prefix, {}, 0
        for line in copy_lines(connection, entry_layout.copy_sql(condition)):
            found[line[: line.index(b"\t")]] = sha256(prefix + line).digest()
            count += 1
        if len(found) != count:  # an id twice (a copy of an entry): the walk decides
            return None
        digests[source] = found
    return links, digests


def check_chunk(links: list[tuple], digests: dict, previous: bytes) -> bytes | None:
    """The running hash (bytes) of the last of ``links`` when every link's entry digest
    (``digests`` as :func:`read_chunk` returns them) and running hash follow ``previous``;
    else ``None``."""
    sha256 = hashlib.sha256
    for head, source, entry_id, stored_entry_hash, stored_chain_hash in links:
        digest = digests[source].pop(entry_id, None)
        if digest is None or hexlify(digest) != stored_entry_hash:
            return None
        previous = sha256(CHAIN_TAG_V2 + previous + head.replace(b"\t", b"\n") + digest).digest()
        if hexlify(previous) != stored_chain_hash:
            return None
    return previous


def walk_chunk(connection, start: int, end: int, previous: bytes) -> bytes | None:
    """The running hash (bytes) of link ``end`` when links ``start``..``end`` are an intact
    chunk of format 2 following ``previous``; ``None`` when the per-link walk must decide."""
    read = read_chunk(connection, start, end)
    return None if read is None else check_chunk(*read, previous)
