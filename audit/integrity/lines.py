"""The verifier's fast path: a chunk of the chain checked from its rows as text lines.

For the chunk of positions ``start``..``end`` the database sends one text per query
(``string_agg`` of ``concat_ws``: the values as the definition reads them, joined by
tabs, no escaping; UTF-8 bytes in binary): the links (position, source, entry id,
sealed-at, entry hash, running hash), and per source the entries in the id range of the
chunk's links. An entry's document is spliced from its line into a template of the
canonical JSON object (keys sorted): a text column as ``"<text>"``, an integer as its
digits, NULL as ``null``, a JSON column as orjson re-dumps it with sorted keys — the
bytes of ``_Layout.fast_encode`` of the row. A line whose text columns hold anything
JSON must escape (a quote, a backslash, a control character) is not spliced at all, nor
is a line with a tab or newline in a value (its fields do not count up).

The chunk is accepted only when there is exactly one link per position, every link's
source is known, each running hash follows from the one before, and every entry a link
names is a line whose document hashes to that link's stored entry hash. Anything else
answers None/False, and the caller walks the chunk by the definition
(``verification._walk_range``, ``_Layout.matches``), which names the problem.
"""

from __future__ import annotations

import binascii
import hashlib
import operator
from collections.abc import Callable

import orjson
import psycopg
from django.db import models

from audit.integrity.chain import _ISO_UTC_SQL, CHAIN_TAG, SOURCES, layout

# Every byte but the control characters JSON escapes; tabs and newlines separate.
_ALLOWED_BYTES = bytes(b for b in range(256) if b >= 0x20 or b in (0x09, 0x0A))
_JSON_CACHE_SIZE = 4096

LINKS_SQL_TEXT = (
    "SELECT convert_to(string_agg(concat_ws(E'\\t', position, source, entry_id, "  # noqa: S608
    + _ISO_UTC_SQL.format(column="sealed_at")
    + ", entry_hash, chain_hash), E'\\n'), 'UTF8') FROM audit_chainlink "
    "WHERE position BETWEEN %s AND %s"
)

_INTEGER_TYPES = frozenset(
    ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField")
)
# Text columns whose text is never empty: NULL is read as ''.
_NEVER_EMPTY = (models.UUIDField, models.GenericIPAddressField, models.DateTimeField)


def _kind(model_field: models.Field) -> str | None:
    """How a column's value appears in the document: text, integer or JSON (None: not
    spliced, e.g. a boolean, a float or a text that may be NULL or empty; the source is
    then checked by the definition)."""
    if isinstance(model_field, models.JSONField):
        return "json"
    if isinstance(model_field, models.ForeignKey):
        model_field = model_field.target_field
    if model_field.get_internal_type() in _INTEGER_TYPES:
        return "integer"
    if isinstance(model_field, _NEVER_EMPTY) or (
        isinstance(model_field, models.CharField | models.TextField) and not model_field.null
    ):
        return "text"
    return None


class EntryLines:
    """One source's entries of a chunk as text lines, and the splicing of a line.

    A line holds the text and integer columns in the document's key order, then the JSON
    columns (so that the check for bytes JSON would escape is over the front of the
    line). A NULL is read as ``null`` where no value's text is (an integer, a JSON
    column) and as '' where no value's text is empty (uuid, inet, timestamp).
    """

    def __init__(self, source: str) -> None:
        entry_layout = layout(source)
        fields = {f.column: f for f in SOURCES[source]._meta.concrete_fields}
        kinds = {column: _kind(fields[column]) for column in entry_layout.columns}
        self.usable = None not in kinds.values()
        self.prefix = entry_layout.entry_prefix
        expressions = dict(zip(entry_layout.columns, entry_layout.expressions, strict=True))
        keys = sorted(entry_layout.columns)
        plain = [c for c in keys if kinds[c] != "json"]
        selected = plain + [c for c in keys if kinds[c] == "json"]
        values = []
        for column in selected:
            expression = expressions[column]
            if fields[column].null:
                empty = "''" if kinds[column] == "text" else "'null'"
                expression = f"coalesce(({expression})::text, {empty})"
            values.append(expression)
        # The entries in the id range of the chunk's links (one range scan per
        # partition, as ``fetch_rows`` reads them); none when the range is more than
        # twice as wide as the links are many (the definition's walk reads those).
        self.sql = (
            "WITH l AS MATERIALIZED (SELECT entry_id FROM audit_chainlink "  # noqa: S608
            "WHERE source = %s AND position BETWEEN %s AND %s) "
            f"SELECT convert_to(string_agg(concat_ws(E'\\t', {', '.join(values)}), E'\\n'), "
            "'UTF8') "
            f"FROM {entry_layout.table} WHERE id BETWEEN "
            "(SELECT min(entry_id) FROM l) AND (SELECT max(entry_id) FROM l) "
            "AND (SELECT max(entry_id) - min(entry_id) < 2 * count(*) FROM l)"
        )
        self.selected = tuple(selected)
        self.width = len(selected)
        self.id_part = selected.index("id")
        self.json_parts = tuple(range(len(plain), self.width))
        # Indices in the split line in the document's key order.
        self._order = [selected.index(column) for column in keys]
        self._kinds = [kinds[column] for column in keys]
        self._keys = keys
        self.nullable_text = tuple(
            selected.index(c) for c in plain if kinds[c] == "text" and fields[c].null
        )
        self._templates: dict[tuple[int, ...], bytes] = {}
        self.template = self.template_for(())
        self.arguments = operator.itemgetter(*self._order)

    def template_for(self, nulls: tuple[int, ...]) -> bytes:
        """The document's template when the text columns at ``nulls`` are NULL."""
        template = self._templates.get(nulls)
        if template is None:
            pieces = []
            for column, kind, index in zip(self._keys, self._kinds, self._order, strict=True):
                if index in nulls:
                    value = b"null%.0s"
                elif kind == "text":
                    value = b'"%s"'
                else:
                    value = b"%s"
                pieces.append(orjson.dumps(column).replace(b"%", b"%%") + b":" + value)
            template = self._templates[nulls] = b"{" + b",".join(pieces) + b"}"
        return template

    def documents(self) -> Callable[[list[bytes], bytes], bytes | None]:
        """``document(parts, line) -> bytes``: the document of a line (``parts`` its
        values), or None where it cannot be spliced (the definition must decide). The
        line holds no control character but tabs (``check`` looks at the whole text)."""
        json_parts = self.json_parts
        nullable, template, template_for = self.nullable_text, self.template, self.template_for
        arguments = self.arguments
        loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
        errors = (orjson.JSONDecodeError, orjson.JSONEncodeError)
        canonical: dict[bytes, bytes] = {}

        def document(parts: list[bytes], line: bytes) -> bytes | None:
            cut = len(line)  # the tab before the JSON columns
            for _ in json_parts:
                cut = line.rfind(b"\t", 0, cut)
            if line.find(b'"', 0, cut) >= 0 or line.find(b"\\", 0, cut) >= 0:
                return None
            for index in json_parts:
                text = parts[index]
                value = canonical.get(text)
                if value is None:
                    try:
                        value = dumps(loads(text), option=sort_keys)
                    except errors:
                        return None
                    if len(canonical) >= _JSON_CACHE_SIZE:
                        canonical.clear()
                    canonical[text] = value
                parts[index] = value
            if nullable and line.find(b"\t\t", 0, cut + 1) >= 0:
                return template_for(tuple(i for i in nullable if not parts[i])) % arguments(parts)
            return template % arguments(parts)

        return document

    def checker(self) -> Callable[[bytes, dict[bytes, bytes]], bool]:
        """``check(text, wanted) -> bool``: whether each entry named in ``wanted`` (entry
        id -> stored entry hash, as text) is a line of ``text`` that hashes to it. Lines
        of other entries (in the id range, sealed elsewhere in the chain) are skipped."""
        document = self.documents()
        width, id_part = self.width, self.id_part
        prefix, sha256, hexlify = self.prefix, hashlib.sha256, binascii.hexlify

        def check(data: bytes, wanted: dict[bytes, bytes]) -> bool:
            if data.translate(None, _ALLOWED_BYTES):
                return False  # a control character in a value
            for line in data.split(b"\n") if data else ():
                parts = line.split(b"\t")
                if len(parts) != width:
                    return False
                stored = wanted.pop(parts[id_part], None)
                if stored is None:
                    continue
                spliced = document(parts, line)
                if spliced is None or hexlify(sha256(prefix + spliced).digest()) != stored:
                    return False
            return not wanted

        return check


_entry_lines: dict[str, EntryLines] = {}


def entry_lines() -> dict[str, EntryLines]:
    """The sources whose entries can be spliced, by source code."""
    if not _entry_lines:
        for source in SOURCES:
            lines = EntryLines(source)
            if lines.usable:
                _entry_lines[source] = lines
    return _entry_lines


def fetch_lines(cursor, start: int, end: int) -> tuple[bytes, dict[str, bytes]]:
    """The text of the links ``start``..``end`` and of each source's entries (as UTF-8
    bytes, in binary: no decoding to ``str`` and back)."""
    with psycopg.Cursor(cursor.connection) as raw:

        def text(sql: str, params: list) -> bytes:
            raw.execute(sql, params, binary=True)
            return raw.fetchone()[0] or b""

        return text(LINKS_SQL_TEXT, [start, end]), {
            source: text(lines.sql, [source, start, end]) for source, lines in entry_lines().items()
        }


def check_lines(
    fetched: tuple[bytes, dict[str, bytes]],
    previous: bytes,
    start: int,
    end: int,
    heads: dict[int, list],
    checkers: dict[str, Callable[[bytes, dict[bytes, bytes]], bool]],
) -> bytes | None:
    """The running hash at ``end`` (its bytes) when links ``start``..``end`` and their
    entries all hold and follow from ``previous``; None otherwise.

    The links' text is in no particular order: out of position order, a running hash
    does not follow and the definition's walk (in order) decides."""
    link_data, entry_data = fetched
    lines = link_data.split(b"\n") if link_data else []
    if len(lines) != end - start + 1:  # positions are unique: exactly start..end
        return None
    wanted: dict[bytes, dict[bytes, bytes]] = {source.encode(): {} for source in checkers}
    sha256, hexlify, unhexlify = hashlib.sha256, binascii.hexlify, binascii.unhexlify
    try:
        for line in lines:
            position, source, entry_id, sealed_at, entry_hash, chain_hash = line.split(b"\t")
            wanted[source][entry_id] = entry_hash
            previous = sha256(
                CHAIN_TAG
                + previous
                + b"%b\n%b\n%b\n%b\n" % (position, source, entry_id, sealed_at)
                + unhexlify(entry_hash)
            ).digest()
            if hexlify(previous) != chain_hash:
                return None
    except (KeyError, ValueError):  # an unknown source, a line of another shape, not hex
        return None
    if sum(map(len, wanted.values())) != len(lines):  # an entry named by two links
        return None
    for position in heads:
        if start <= position <= end:
            stored = lines[position - start].rsplit(b"\t", 1)[1].decode()
            if any(checkpoint.head != stored for checkpoint in heads[position]):
                return None
    for source, entries in wanted.items():
        if entries and not checkers[source.decode()](entry_data[source.decode()], entries):
            return None
    return previous
