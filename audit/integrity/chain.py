"""The hash chain: the canonical encoding of a log entry and the sealing that appends
entries to the chain (see the package's docstring)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import select
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.db import connections, models, transaction
from django.utils import timezone
from psycopg import pq

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
# Chain format 2 (ADR 0031, session 19): an entry's canonical bytes are the line that
# ``COPY (SELECT <the layout's expressions>) TO STDOUT`` writes for its row.
ENTRY_TAG_V2 = b"samverkan-audit-entry-v2\n"
CHAIN_TAG_V2 = b"samverkan-audit-chain-v2\n"
# Chain format 3 (ADR 0031, session 22): one ``ChainBlock`` per sealed block of entries of one
# source, its running hash over the block's positions, ids and format-2 entry digests.
CHAIN_TAG_V3 = b"samverkan-audit-chain-v3\n"
FORMAT_JSON = 1
FORMAT_LINES = 2
FORMAT_BLOCKS = 3
# The formats of a ``ChainLink`` (format 3 is never a link: a link that says so is broken).
CHAIN_TAGS = {FORMAT_JSON: CHAIN_TAG, FORMAT_LINES: CHAIN_TAG_V2}
# The most entries in one block (a backlog is sealed in blocks of this size).
BLOCK_SIZE = 5000
# The format :func:`seal` writes (tests set 1 or 2 to build chains of the earlier formats).
SEAL_FORMAT = FORMAT_BLOCKS
GENESIS = "0" * 64
# pg_advisory_xact_lock key of the sealer ("SAMVAUDT" as a 63-bit integer).
SEAL_LOCK_KEY = 0x53414D5641554454
CHECKPOINT_FORMAT = "samverkan-audit-checkpoint/1"


# --- Canonical encoding -----------------------------------------------------


# Timestamps are rendered by PostgreSQL straight into the canonical form
# (UTC, ISO 8601, microseconds), the same string ``utc_iso`` makes in Python.
_ISO_UTC_SQL = "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


LINKS_SQL = (
    "SELECT position, source, entry_id, entry_hash, chain_hash, "  # noqa: S608 (constants)
    + _ISO_UTC_SQL.format(column="sealed_at")
    + " FROM audit_chainlink WHERE position BETWEEN %s AND %s ORDER BY position"
)
# The same links with their format (the verifier's walk), and as COPY lines (its walk
# over format 2, ``audit.integrity.lines``; built from integers only).
LINKS_WITH_FORMAT_SQL = LINKS_SQL.replace(" FROM", ", format FROM", 1)
LINKS_COPY_SQL = (
    "COPY (SELECT position, source, entry_id, "  # noqa: S608 (constants; bounds as integers)
    + _ISO_UTC_SQL.format(column="sealed_at")
    + ", entry_hash, chain_hash, format FROM audit_chainlink"
    " WHERE position BETWEEN {start:d} AND {end:d} ORDER BY position) TO STDOUT"
)


def utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    """Fallback for values handed in as Python objects rather than read as text."""
    if isinstance(value, dt.datetime):
        return utc_iso(value)
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


# COPY's text format escapes the backslash and these control characters (others stay).
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)

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

    @property
    def entry_prefix(self) -> bytes:
        """What precedes the canonical document in the entry hash's input."""
        return ENTRY_TAG + self.source.encode() + b"\n"

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

    def fast_hasher(self):
        """``hash(row) -> digest or None``: :meth:`fast_encode` and the entry hash (its
        32 bytes) in one closure over local names (the verifier's inner loop; None where
        orjson cannot encode the row, and the definition must decide)."""
        columns = self.columns
        json_columns = self.json_columns
        prefix = self.entry_prefix
        loads, dumps, sort_keys = _fast_loads, orjson.dumps, orjson.OPT_SORT_KEYS
        sha256 = hashlib.sha256
        errors = (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, ValueError)

        def fast_hash(row: tuple) -> bytes | None:
            document = dict(zip(columns, row, strict=True))
            for index, column in json_columns:
                value = row[index]
                if value.__class__ is str:
                    document[column] = loads(value)
            try:
                return sha256(prefix + dumps(document, option=sort_keys)).digest()
            except errors:
                return None

        return fast_hash

    def sealing_hasher(self):
        """``hash(row) -> hex digest``: :meth:`entry_hash` of the row, always the same
        value, for the sealer's loop. By orjson where it writes the definition's bytes,
        else by the definition.

        orjson writes the same bytes as the definition's encoder for strings (every code
        point), integers, booleans, null, lists and objects with sorted keys; it differs
        for floats, and reads an integer beyond 64 bits as a float. So the shortcut is
        taken only for a row whose plain columns are strings, integers, booleans or
        null and whose JSON values, as orjson reads them, hold no float (an integer
        beyond 64 bits at the top raises, and the definition decides)."""
        columns = self.columns
        json_columns = self.json_columns
        prefix = self.entry_prefix
        definition = self.entry_hash
        loads, dumps, sort_keys = _fast_loads, orjson.dumps, orjson.OPT_SORT_KEYS
        sha256 = hashlib.sha256
        plain = frozenset((str, int, bool, type(None)))

        def entry_hash(row: tuple) -> str:
            if not plain.issuperset(map(type, row)):
                return definition(row)
            document = dict(zip(columns, row, strict=True))
            for index, column in json_columns:
                value = row[index]
                if value.__class__ is not str:
                    continue
                try:
                    value = document[column] = loads(value)
                except orjson.JSONDecodeError:  # text orjson refuses: the definition decides
                    return definition(row)
                stack = [value]
                while stack:  # no float anywhere in it
                    item = stack.pop()
                    kind = item.__class__
                    if kind is dict:
                        stack.extend(item.values())
                    elif kind is list:
                        stack.extend(item)
                    elif kind is float:
                        return definition(row)
            try:
                return sha256(prefix + dumps(document, option=sort_keys)).hexdigest()
            except orjson.JSONEncodeError:
                return definition(row)

        return entry_hash

    # --- Format 2: the row's COPY text line ---------------------------------------

    @property
    def line_prefix(self) -> bytes:
        """What precedes the row's COPY line in a format-2 entry hash's input."""
        return ENTRY_TAG_V2 + self.source.encode() + b"\n"

    def copy_sql(self, condition: str) -> bytes:
        """``COPY`` of the rows meeting ``condition`` (built here from integers only), each
        value in the text form of :attr:`expressions`: none depends on a session setting."""
        expressions = ", ".join(self.expressions)
        return (
            f"COPY (SELECT {expressions} FROM {self.table} WHERE {condition}) TO STDOUT"  # noqa: S608
        ).encode()

    def copy_line(self, row: tuple) -> bytes:
        """The COPY text line of ``row`` as :meth:`copy_sql` reads it (integers, texts
        and NULL): what PostgreSQL writes, escapes included (``verify-archive`` checks an
        export's rows by it; tests hold it byte-equal to the server's output)."""
        return (
            "\t".join(
                "\\N" if value is None else str(value).translate(_COPY_ESCAPES) for value in row
            )
            + "\n"
        ).encode()

    def line_hash(self, line: bytes, *, entry_id: int | None = None) -> str:
        """The format-2 entry hash of a COPY line (optionally as if it had id ``entry_id``)."""
        if entry_id is not None:
            line = str(entry_id).encode() + line[line.index(b"\t") :]
        return hashlib.sha256(self.line_prefix + line).hexdigest()

    def matches(self, row: tuple, stored_hash: str) -> tuple[bool, str]:
        """Whether ``row`` still hashes to ``stored_hash``, and its hash by the definition
        when it does not (for the diagnosis)."""
        try:
            digest = self.fast_hasher()(row)
            if digest is not None and digest.hex() == stored_hash:
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
    previous: str,
    *,
    position: int,
    source: str,
    entry_id: int,
    entry_hash: str,
    sealed_at: str,
    format: int = FORMAT_JSON,
) -> str:
    """The running hash at ``position``; ``sealed_at`` in the canonical UTC ISO form. The
    link's text is the same in both formats, only the tag differs."""
    digest = hashlib.sha256(CHAIN_TAGS[format])
    digest.update(bytes.fromhex(previous))
    digest.update(f"{position}\n{source}\n{entry_id}\n{sealed_at}\n".encode())
    digest.update(bytes.fromhex(entry_hash))
    return digest.hexdigest()


# The blocks one INSERT of a seal writes (7 parameters each, within the protocol's 65,535).
BLOCKS_PER_INSERT = 5000


def ids_text(ids) -> bytes:
    """A block's entry ids as :func:`block_hash` takes them: decimal, comma-separated."""
    return ",".join(map(str, ids)).encode()


def block_hash(
    previous: bytes,
    *,
    first: int,
    last: int,
    source: str,
    sealed_at: str,
    ids_text: bytes,
    digests: bytes,
) -> bytes:
    """The running hash after a block of format 3 (its 32 bytes): over the hash before it,
    the block's first and last positions, source and sealing time (canonical UTC ISO form),
    its entry ids in chain order (decimal, comma-separated: ``ids_text``) and their format-2
    entry digests (32 bytes each, in the same order).

    Injective: the text fields end in newlines and hold none; the ids hold no newline; the
    digests' length, 32 * (last - first + 1), follows from the positions."""
    return hashlib.sha256(
        CHAIN_TAG_V3
        + previous
        + f"{first}\n{last}\n{source}\n{sealed_at}\n".encode()
        + ids_text
        + b"\n"
        + digests
    ).digest()


# The chain's head: its last link or block (positions are gap-free across both).
HEAD_SQL = (
    "SELECT position, chain_hash FROM ("
    "(SELECT position, chain_hash FROM audit_chainlink ORDER BY position DESC LIMIT 1)"
    " UNION ALL (SELECT last_position, chain_hash FROM audit_chainblock"
    " ORDER BY last_position DESC LIMIT 1)) AS h ORDER BY position DESC LIMIT 1"
)


def fetch_rows(cursor, source: str, ids: list[int]) -> dict[int, tuple]:
    if not ids:
        return {}
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        # Sealed in commit order, a chunk's ids are nearly contiguous: one range
        # scan is much cheaper than thousands of index probes.
        cursor.execute(layout(source).select_range_sql, [low, high])
        rows = cursor.fetchall()
        if len(rows) == len(ids) == high - low + 1:
            return {row[0]: row for row in rows}  # the range holds exactly the ids asked for
        wanted = set(ids)
        return {row[0]: row for row in rows if row[0] in wanted}
    cursor.execute(layout(source).select_sql, [ids])
    return {row[0]: row for row in cursor.fetchall()}


def _next_result(pgconn):
    """libpq's next result, waited for on the socket. ``get_result`` itself blocks while
    holding the GIL: in the sealer's thread that would stop every other thread of the
    process (a worker's requests) for as long as the server takes."""
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            return pgconn.get_result()
        select.select([pgconn.socket], [], [])


def copy_lines(connection, sql: bytes) -> Iterator[bytes]:
    """Each line (with its newline) of ``COPY … TO STDOUT`` on a psycopg ``connection``,
    read from libpq one message at a time; the wait for data is a ``select`` on the
    socket, so other threads run meanwhile. The lines are read to the end: stopping the
    iteration early leaves the connection unusable."""
    pgconn = connection.pgconn
    if not connection.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE:
        connection.execute("SELECT 1")  # psycopg opens the transaction the COPY belongs to
    pgconn.send_query(sql)
    result = _next_result(pgconn)
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        error = result.get_error_message() if result is not None else "no result"
        while _next_result(pgconn) is not None:
            pass
        raise psycopg.DatabaseError(error)
    get, consume, socket = pgconn.get_copy_data, pgconn.consume_input, pgconn.socket
    while True:
        size, data = get(1)
        if size > 0:
            yield data.tobytes()
        elif size == 0:
            select.select([socket], [], [])
            consume()
        else:
            break
    error = None
    while (result := _next_result(pgconn)) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK:
            error = result.get_error_message()
    if error:
        raise psycopg.DatabaseError(error)


def id_condition(ids: Iterable[int]) -> tuple[str, set[int]]:
    """A condition on ``id`` for the ids (integers: the SQL is built from them) and the
    set of ids wanted: a range where they are nearly contiguous, else a list."""
    wanted = {int(entry_id) for entry_id in ids}
    low, high = min(wanted), max(wanted)
    if high - low < 2 * len(wanted):
        return f"id BETWEEN {low} AND {high}", wanted
    return f"id = ANY('{{{','.join(map(str, sorted(wanted)))}}}'::bigint[])", wanted


def fetch_lines(connection, source: str, ids: list[int]) -> dict[int, bytes]:
    """The COPY lines (format 2) of the entries ``ids`` of ``source``, by id."""
    if not ids:
        return {}
    condition, wanted = id_condition(ids)
    lines = {}
    for line in copy_lines(connection, layout(source).copy_sql(condition)):
        entry_id = int(line[: line.index(b"\t")])
        if entry_id in wanted:
            lines[entry_id] = line
    return lines


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
        entry_format = SEAL_FORMAT
        fetch = fetch_rows if entry_format == FORMAT_JSON else _fetch_lines_of_cursor
        rows = {
            source: fetch(cursor, source, [e for _, s, e in pending if s == source])
            for source in {s for _, s, _ in pending}
        }
        cursor.execute(HEAD_SQL)
        head = cursor.fetchone()
        position, previous = head if head else (0, GENESIS)
        sealed_at = timezone.now()
        sealed_iso = utc_iso(sealed_at)
        if entry_format == FORMAT_BLOCKS:
            return _seal_blocks(
                connections[using], pending, rows, position, previous, sealed_at, sealed_iso
            )
        links = []
        if entry_format == FORMAT_JSON:
            hashers = {source: layout(source).sealing_hasher() for source in rows}
        else:
            hashers = {source: layout(source).line_hash for source in rows}
        for _, source, entry_id in pending:
            row = rows[source].get(entry_id)
            if row is None:  # removed behind the triggers' back; verify reports it
                continue
            position += 1
            entry_hash = hashers[source](row)
            previous = chain_hash(
                previous,
                position=position,
                source=source,
                entry_id=entry_id,
                entry_hash=entry_hash,
                sealed_at=sealed_iso,
                format=entry_format,
            )
            links.append((position, source, entry_id, entry_hash, previous, sealed_at))
        _insert_links(connections[using], links, sealed_at, entry_format)
        return len(links)


def _seal_blocks(
    connection,
    pending: list[tuple],
    lines: dict[str, dict[int, bytes]],
    position: int,
    previous: str,
    sealed_at: dt.datetime,
    sealed_iso: str,
) -> int:
    """Append the pending entries as blocks of format 3: by source (in source order), each
    source's entries in ascending id order, at most ``BLOCK_SIZE`` to a block; one row a
    block, all in one statement. Returns how many entries were sealed."""
    running = bytes.fromhex(previous)
    blocks = []
    for source in sorted(lines):
        found = lines[source]
        # An entry removed behind the triggers' back is not sealed; verify reports it.
        ids = sorted(e for _, s, e in pending if s == source and e in found)
        prefix = layout(source).line_prefix
        for start in range(0, len(ids), BLOCK_SIZE):
            block_ids = ids[start : start + BLOCK_SIZE]
            first, last = position + 1, position + len(block_ids)
            listed = ids_text(block_ids)
            digests = b"".join(hashlib.sha256(prefix + found[e]).digest() for e in block_ids)
            running = block_hash(
                running,
                first=first,
                last=last,
                source=source,
                sealed_at=sealed_iso,
                ids_text=listed,
                digests=digests,
            )
            blocks.append((first, last, source, f"{{{listed.decode()}}}", digests, running.hex()))
            position = last
    # A statement a BLOCKS_PER_INSERT blocks, a row of parameters a block (a backlog of a
    # million is 200 rows; the protocol takes at most 65,535 parameters a statement).
    with psycopg.Cursor(connection.connection) as cursor:
        for start in range(0, len(blocks), BLOCKS_PER_INSERT):
            batch = blocks[start : start + BLOCKS_PER_INSERT]
            values = ", ".join(["(%s, %s, %s, %s::bigint[], %b, %s, %s)"] * len(batch))
            cursor.execute(
                "INSERT INTO audit_chainblock (first_position, last_position, source, entry_ids,"  # noqa: S608 (placeholders only)
                f" entry_digests, chain_hash, sealed_at) VALUES {values}",
                [value for block in batch for value in (*block, sealed_at)],
            )
    return sum(last - first + 1 for first, last, *_ in blocks)


def _fetch_lines_of_cursor(cursor, source: str, ids: list[int]) -> dict[int, bytes]:
    return fetch_lines(cursor.connection, source, ids)


def _insert_links(
    connection,
    links: list[tuple],
    sealed_at: dt.datetime,
    entry_format: int = FORMAT_JSON,
) -> None:
    """Append the links in one statement: a seal after a bulk change has tens of
    thousands of them. Each column goes as one comma-separated text, split by the
    server (``string_to_array``): joined in C, where an array parameter is dumped
    element by element in Python (integers, source codes and hex digests: no comma
    in any)."""
    if not links:
        return
    positions, sources, entry_ids, entry_hashes, chain_hashes, _sealed = zip(*links, strict=True)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            "INSERT INTO audit_chainlink "
            "(position, source, entry_id, entry_hash, chain_hash, sealed_at, format) "
            "SELECT v.position::bigint, v.source, v.entry_id::bigint, v.entry_hash, "
            "v.chain_hash, %s, %s FROM unnest(string_to_array(%s, ','), string_to_array(%s, ','), "
            "string_to_array(%s, ','), string_to_array(%s, ','), string_to_array(%s, ',')) "
            "AS v(position, source, entry_id, entry_hash, chain_hash) ORDER BY 1",
            [
                sealed_at,
                entry_format,
                ",".join(map(str, positions)),
                ",".join(sources),
                ",".join(map(str, entry_ids)),
                ",".join(entry_hashes),
                ",".join(chain_hashes),
            ],
        )


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
    sources = sorted({s for _, s, _ in pending})
    with psycopg.Cursor(cursor.connection) as raw:
        # An entry whose id is above every id of its source in the chain is not in it:
        # only those at or below that highest id are looked up (entries are sealed soon
        # after their commit, so nearly always none). One index probe per source.
        # Blocks (format 3) hold their ids in ascending order: a block's highest id is its
        # last, which an index covers (the sealer's own invariant, relied on here only to
        # skip; the verifier trusts no such thing).
        raw.execute(
            "SELECT s.source, greatest((SELECT max(entry_id) FROM audit_chainlink"
            " WHERE source = s.source), (SELECT max(entry_ids[cardinality(entry_ids)])"
            " FROM audit_chainblock WHERE source = s.source))"
            " FROM unnest(%s::text[]) AS s(source)",
            [sources],
        )
        highest = dict(raw.fetchall())
        for source in sources:
            if highest.get(source) is None:
                continue  # nothing of the source chained yet
            ids = [e for _, s, e in pending if s == source and e <= highest[source]]
            if not ids:
                continue
            # The ids as one binary bigint[] parameter: quoted into the SQL text (Django
            # binds on the client) they are a constant int2/int4 array that PostgreSQL
            # compared with every link of the source in turn — seconds for a seal of some
            # thousand entries.
            raw.execute(
                "SELECT entry_id FROM audit_chainlink "
                "WHERE source = %s AND entry_id = ANY(%b::bigint[])",
                [source, ids],
            )
            chained.update((source, entry_id) for (entry_id,) in raw.fetchall())
            # The blocks that can hold one of them: those whose highest id is at least the
            # lowest asked for (nearly always none, or the last few).
            raw.execute(
                "SELECT u.id FROM audit_chainblock b CROSS JOIN LATERAL unnest(b.entry_ids)"
                " AS u(id) WHERE b.source = %s AND b.entry_ids[cardinality(b.entry_ids)] >= %s"
                " AND u.id = ANY(%b::bigint[])",
                [source, min(ids), ids],
            )
            chained.update((source, entry_id) for (entry_id,) in raw.fetchall())
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
    with connections[using].cursor() as cursor:
        cursor.execute(HEAD_SQL)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)
