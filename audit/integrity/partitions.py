"""Monthly partitions of the access log: creating them ahead, and detaching a month for the
archive so that verification still holds (docs/adr/0031-partitioned-access-log.md).

- :func:`create_partitions` makes the partitions of the current month and the next
  ``ahead`` months (``manage.py audit partitions``, daily beside the checkpoint). An
  event whose month has no partition lands in the DEFAULT partition, so no insert ever
  fails; creating the month later moves such rows into it unchanged.
- :func:`summarise_period_index` brings the BRIN index of every partition's moments up to
  date (``manage.py audit summarise``, daily): the block ranges written since its last
  run are summarised, so that a period's scan reads its own ranges, not the month's.
- :func:`archive_month` seals, exports a past month's events with their chain links to a
  JSON-lines file, writes a manifest signed with the checkpoint key (also kept in
  ``ArchivedPartition``), and detaches the partition. The chain keeps every link, so
  ``audit verify`` still checks every running hash; for an access event that is gone from
  the live table it accepts the link's stored entry hash only when a *signed* manifest
  names the event's id.
- :func:`verify_archive` checks an export on its own: the manifest's signature, the file's
  SHA-256, every event's hash (by the canonical encoding, the definition; for a link of
  chain format 2 the row's COPY line, written from the exported values by
  ``_Layout.copy_line``) against its link, and every link's running hash from the hash
  before it; with a database at hand also that each link is the chain's link at that
  position. Events in blocks (chain format 3, ADR 0031 session 22) are exported with their
  block's line before them (positions, source, sealing time, running hash, the hash before
  it, every id and stored digest of the block, which may hold events of other months): the
  block's running hash is checked over its ids and digests, each event's digest against its
  place in the block, and, with a database, each block against the chain's.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import connections, transaction
from django.utils import timezone

from audit.integrity.chain import (
    CHAIN_TAGS,
    FORMAT_BLOCKS,
    FORMAT_JSON,
    FORMAT_LINES,
    GENESIS,
    LINKS_SQL,
    Source,
    block_hash,
    chain_hash,
    ids_text,
    layout,
    seal,
)
from audit.integrity.checkpoints import key_id, load_signing_key, signed_message

ARCHIVE_FORMAT = "samverkan-audit-archive/1"
MONTHS_AHEAD = 3
_PARENT = "audit_accessevent"


class PartitionError(Exception):
    """A partition cannot be archived (a plain-English reason for the operator)."""


def partition_name(month: dt.date) -> str:
    return f"{_PARENT}_{month:%Y_%m}"


def first_of_month(value: dt.date) -> dt.date:
    return value.replace(day=1)


def add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def partitions(*, using: str = "default") -> list[tuple[str, str]]:
    """Every attached partition of the access log and its bounds, in name order."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [_PARENT],
        )
        return cursor.fetchall()


def create_partitions(
    *, ahead: int = MONTHS_AHEAD, since: dt.date | None = None, using: str = "default"
) -> list[str]:
    """Create the partitions of this month and the next ``ahead`` (and, with ``since``, of
    every month from that one on: before a bulk load of past events); return the new ones.
    """
    existing = {name for name, _ in partitions(using=using)}
    this_month = first_of_month(timezone.now().astimezone(dt.UTC).date())
    first = min(first_of_month(since), this_month) if since else this_month
    months = (first.year - this_month.year) * 12 + first.month - this_month.month
    created = []
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for offset in range(months, ahead + 1):
            month = add_months(this_month, offset)
            if partition_name(month) in existing:
                continue
            cursor.execute("SELECT audit_create_event_partition(%s)", [month])
            created.append(cursor.fetchone()[0])
    return created


def summarise_period_index(*, using: str = "default") -> int:
    """Summarise the block ranges of every partition's BRIN index that have none yet (each
    partition's ``occurred_at`` index, ``brin_summarize_new_values``); return how many.

    A block range without a summary matches every period: until it has one, a scan of an
    hour of a month reads the whole month (at 2 M events a month, 63,000 blocks instead of
    a few hundred). ``autosummarize`` asks autovacuum to summarise each range as appends
    fill it, but only where autovacuum runs and its queue of such requests is not full (a
    bulk load fills hundreds of ranges at once, and a queue's overflow is dropped); this
    daily run summarises whatever is left. It reads only the ranges that have no summary
    and takes no lock that blocks appends (docs/adr/0037, session 17)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(brin_summarize_new_values(x.indexrelid)), 0)::bigint"
            " FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid"
            " JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE i.inhparent = %s::regclass AND a.amname = 'brin'",
            [_PARENT],
        )
        return cursor.fetchone()[0]


# --- Archived months, as the verifier sees them -----------------------------------------


@dataclass(frozen=True)
class IdRanges:
    """Sorted, disjoint, inclusive id ranges; ``id in ranges`` by bisection."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, ranges: list[list[int]]) -> IdRanges:
        ordered = sorted((int(low), int(high)) for low, high in ranges)
        return cls(tuple(low for low, _ in ordered), tuple(high for _, high in ordered))

    def __contains__(self, entry_id: object) -> bool:
        index = bisect.bisect_right(self.starts, entry_id) - 1
        return index >= 0 and entry_id <= self.ends[index]


def _manifest_document(record: Any) -> dict[str, Any]:
    return {
        "format": ARCHIVE_FORMAT,
        "month": f"{record.month:%Y-%m}",
        "table": record.table_name,
        "entries": record.entries,
        "first_position": record.first_position,
        "last_position": record.last_position,
        "id_ranges": record.id_ranges,
        "export_name": record.export_name,
        "export_sha256": record.export_sha256,
        "detached_at": record.detached_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "key_id": record.key_id,
    }


def _signature_holds(document: dict[str, Any], signature: str, public_keys: dict) -> bool:
    public_key: Ed25519PublicKey | None = public_keys.get(str(document.get("key_id")))
    if public_key is None:
        return False
    try:
        public_key.verify(base64.b64decode(signature, validate=True), signed_message(document))
    except (InvalidSignature, ValueError):
        return False
    return True


def archived_entries(
    public_keys: dict[str, Ed25519PublicKey], *, using: str = "default"
) -> tuple[dict[str, IdRanges], int, str | None]:
    """The ids of detached months by source, their number, and the name of the first
    archive record whose signature does not hold (None when all hold)."""
    from audit.models import ArchivedPartition

    ranges: list[list[int]] = []
    count = 0
    for record in ArchivedPartition.objects.using(using).order_by("month"):
        if not _signature_holds(_manifest_document(record), record.signature, public_keys):
            return {}, 0, f"{record.month:%Y-%m}"
        ranges.extend(record.id_ranges)
        count += record.entries
    if not ranges:
        return {}, 0, None
    return {Source.ACCESS: IdRanges.of(ranges)}, count, None


# --- Archiving a month ------------------------------------------------------------------


def _row_expressions() -> str:
    return ", ".join(layout(Source.ACCESS).expressions)


_ID_RANGES_SQL = """
WITH bounds AS (SELECT min(id) AS low, max(id) AS high FROM {table}),
chained AS (
    SELECT l.entry_id FROM audit_chainlink l CROSS JOIN bounds
     WHERE l.source = 'access' AND l.entry_id BETWEEN bounds.low AND bounds.high
    UNION ALL
    SELECT u.id FROM audit_chainblock b CROSS JOIN bounds
     CROSS JOIN LATERAL unnest(b.entry_ids) AS u(id)
     WHERE b.source = 'access' AND b.entry_ids[cardinality(b.entry_ids)] >= bounds.low
       AND u.id BETWEEN bounds.low AND bounds.high
),
sealed AS (
    SELECT c.entry_id, (p.id IS NOT NULL) AS inside
      FROM chained c LEFT JOIN {table} p ON p.id = c.entry_id
),
islands AS (
    SELECT entry_id, inside,
           row_number() OVER (ORDER BY entry_id)
         - row_number() OVER (PARTITION BY inside ORDER BY entry_id) AS island
      FROM sealed
)
SELECT min(entry_id), max(entry_id) FROM islands WHERE inside GROUP BY island ORDER BY 1
"""


# Each event of the month with its link and the running hash before that link.
_EXPORT_SQL = (
    "SELECT l.position, l.source, l.entry_id, l.entry_hash, l.chain_hash, "
    "to_char(l.sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "coalesce(p.chain_hash, %s), l.format, e.* "
    "FROM (SELECT {expressions} FROM {table}) e "
    "JOIN audit_chainlink l ON l.source = 'access' AND l.entry_id = e.id "
    "LEFT JOIN audit_chainlink p ON p.position = l.position - 1 "
    "ORDER BY l.position"
)
# Each event of the month in a block (chain format 3) with its block, the running hash
# before the block, and its place in the block (1-based). The blocks that can hold an event
# of the month are those whose highest id is at least the month's lowest.
_EXPORT_BLOCKS_SQL = (
    "SELECT b.first_position, b.last_position, b.source, "
    "to_char(b.sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "b.chain_hash, coalesce((SELECT chain_hash FROM audit_chainlink"
    " WHERE position = b.first_position - 1), (SELECT chain_hash FROM audit_chainblock"
    " WHERE last_position = b.first_position - 1), %s), "
    "b.entry_ids, encode(b.entry_digests, 'hex'), u.place, e.* "
    "FROM (SELECT {expressions} FROM {table}) e "
    "JOIN audit_chainblock b ON b.source = 'access'"
    " AND b.entry_ids[cardinality(b.entry_ids)] >= (SELECT min(id) FROM {table}) "
    "CROSS JOIN LATERAL unnest(b.entry_ids) WITH ORDINALITY AS u(id, place) "
    "WHERE u.id = e.id ORDER BY b.first_position, u.place"
)


def archive_month(
    month: dt.date,
    directory: Path,
    *,
    drop: bool = False,
    signing_key: Ed25519PrivateKey | None = None,
    using: str = "default",
) -> tuple[Path, dict[str, Any]]:
    """Export the events of ``month`` with their links, sign a manifest, detach the partition.

    Returns the manifest's path and content. Refuses the current and future months, a
    month with no partition, and a month with an event not yet sealed into the chain.
    """
    from audit.models import ArchivedPartition

    signing_key = signing_key or load_signing_key()
    month = first_of_month(month)
    this_month = first_of_month(timezone.now().astimezone(dt.UTC).date())
    if month >= this_month:
        raise PartitionError(f"{month:%Y-%m} is not over yet: only a past month can be archived.")
    table = partition_name(month)
    if table not in {name for name, _ in partitions(using=using)}:
        raise PartitionError(f"The access log has no partition for {month:%Y-%m} ({table}).")
    seal(using=using)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    export_name = f"{table}.jsonl"
    export_path = directory / export_name
    manifest_path = directory / f"{table}.manifest.json"
    if export_path.exists() or manifest_path.exists():
        raise PartitionError(f"{export_path} exists already: an export is never overwritten.")
    connection = connections[using]
    entry_layout = layout(Source.ACCESS)
    temporary = directory / f".{export_name}.tmp"
    try:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                # No event may come or go while the month is exported and detached.
                cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
                cursor.execute(
                    "WITH blocked AS (SELECT unnest(entry_ids) AS id FROM audit_chainblock"  # noqa: S608
                    " WHERE source = 'access' AND entry_ids[cardinality(entry_ids)] >="
                    f" (SELECT min(id) FROM {table})) SELECT e.id FROM {table} e"
                    " WHERE NOT EXISTS (SELECT 1 FROM audit_chainlink l"
                    " WHERE l.source = 'access' AND l.entry_id = e.id)"
                    " AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = e.id) LIMIT 1"
                )
                unsealed = cursor.fetchone()
                if unsealed:
                    raise PartitionError(
                        f"Event #{unsealed[0]} of {month:%Y-%m} is not sealed into the chain "
                        "yet: run `manage.py audit seal` (or `audit verify`) first."
                    )
                cursor.execute(_ID_RANGES_SQL.format(table=table))
                id_ranges = [[low, high] for low, high in cursor.fetchall()]
            digest = hashlib.sha256()
            entries, first_position, last_position = 0, None, None
            header = {
                "format": ARCHIVE_FORMAT,
                "month": f"{month:%Y-%m}",
                "table": table,
                "columns": list(entry_layout.columns),
            }
            with temporary.open("wb") as handle:
                line = json.dumps(header, ensure_ascii=False).encode() + b"\n"
                handle.write(line)
                digest.update(line)
                # A server-side cursor: a month of a national log does not fit in memory.
                with connection.connection.cursor(name="audit_archive_export") as export:
                    export.itersize = 10_000
                    export.execute(
                        _EXPORT_SQL.format(expressions=_row_expressions(), table=table), [GENESIS]
                    )
                    for record in export:
                        link, previous, link_format, row = (
                            record[:6],
                            record[6],
                            record[7],
                            record[8:],
                        )
                        item = {"link": link, "previous": previous, "row": row}
                        item["format"] = link_format
                        line = (
                            json.dumps(
                                item,
                                ensure_ascii=False,
                                separators=(",", ":"),
                            ).encode()
                            + b"\n"
                        )
                        handle.write(line)
                        digest.update(line)
                        entries += 1
                        first_position = first_position or link[0]
                        last_position = link[0]
                with connection.connection.cursor(name="audit_archive_blocks") as export:
                    export.itersize = 10_000
                    export.execute(
                        _EXPORT_BLOCKS_SQL.format(expressions=_row_expressions(), table=table),
                        [GENESIS],
                    )
                    written = None
                    for record in export:
                        for line in _block_lines(record, written):
                            handle.write(line)
                            digest.update(line)
                        written = record[0]
                        position = record[0] + record[8] - 1
                        entries += 1
                        first_position = min(first_position or position, position)
                        last_position = max(last_position or position, position)
            key = signing_key.public_key()
            archive = ArchivedPartition(
                month=month,
                table_name=table,
                entries=entries,
                first_position=first_position,
                last_position=last_position,
                id_ranges=id_ranges,
                export_name=export_name,
                export_sha256=digest.hexdigest(),
                detached_at=timezone.now(),
                key_id=key_id(key),
            )
            document = _manifest_document(archive)
            archive.signature = base64.b64encode(
                signing_key.sign(signed_message(document))
            ).decode()
            archive.save(using=using)
            with connection.cursor() as cursor:
                # PostgreSQL alters no table with deferred checks pending in the transaction.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"ALTER TABLE {_PARENT} DETACH PARTITION {table}")
                if drop:
                    cursor.execute(f"DROP TABLE {table}")
                else:
                    # The cloned triggers went with the detach: the table stays append-only
                    # until it is dropped after the export is safe in the archive.
                    cursor.execute(
                        f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
                    )
            # The log's own record that a month of it left the database (ids, no values).
            from audit.services import Action, record_event

            record_event(
                action=Action.EXPORT,
                object_type="audit.accessevent",
                object_id=table,
                purpose="Arkivering av en månad av åtkomstloggen",
                details={
                    "month": f"{month:%Y-%m}",
                    "entries": entries,
                    "export_sha256": archive.export_sha256,
                    "dropped": drop,
                },
            )
            os.replace(temporary, export_path)
    finally:
        temporary.unlink(missing_ok=True)
    document["signature"] = archive.signature
    manifest_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return manifest_path, document


def _json_line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _block_lines(record: tuple, written: int | None) -> list[bytes]:
    """An event of a block (format 3) as export lines: the block's own line first (once:
    its positions, source, sealing time, running hash, the hash before it, every id and
    digest of it), then the event's position and row."""
    first, last, source, sealed_at, stored_chain, previous, ids, digests, place = record[:9]
    out = []
    if first != written:
        block = [first, last, source, sealed_at, stored_chain]
        out.append(
            _json_line(
                {"block": block, "previous": previous, "ids": ids, "digests": digests, "format": 3}
            )
        )
    out.append(_json_line({"position": first + place - 1, "row": record[9:], "format": 3}))
    return out


# --- Verifying an export on its own ----------------------------------------------------


@dataclass
class ArchiveCheck:
    entries: int = 0
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_archive(
    manifest_path: Path,
    public_keys: dict[str, Ed25519PublicKey],
    *,
    using: str | None = None,
) -> ArchiveCheck:
    """Check an exported month against its signed manifest (and, with ``using``, against the
    chain in that database)."""
    result = ArchiveCheck()
    manifest_path = Path(manifest_path)
    try:
        document = json.loads(manifest_path.read_text())
        signature = str(document.pop("signature"))
    except (OSError, ValueError, KeyError) as exc:
        result.problem = f"the manifest {manifest_path.name} cannot be read ({exc})"
        return result
    if document.get("format") != ARCHIVE_FORMAT:
        result.problem = f"the manifest has an unknown format {document.get('format')!r}"
        return result
    if not _signature_holds(document, signature, public_keys):
        result.problem = "the manifest's signature does not hold (or its key is not trusted)"
        return result
    export_path = manifest_path.parent / str(document["export_name"])
    entry_layout = layout(Source.ACCESS)
    ids = IdRanges.of(document["id_ranges"])
    digest = hashlib.sha256()
    links: list[tuple] = []
    exported_blocks = _ExportedBlocks()
    try:
        handle = export_path.open("rb")
    except OSError as exc:
        result.problem = f"the export cannot be read ({exc})"
        return result
    with handle:
        for number, line in enumerate(handle):
            digest.update(line)
            item = json.loads(line)
            if number == 0:
                if item.get("columns") != list(entry_layout.columns):
                    result.problem = "the export's columns are not the access log's"
                    return result
                continue
            if item.get("format") == FORMAT_BLOCKS:
                problem = exported_blocks.check(item, ids)
                if problem is not None:
                    result.problem = problem
                    return result
                result.entries += "row" in item
                continue
            position, source, entry_id, entry_hash, stored_chain, sealed_at = item["link"]
            row = tuple(item["row"])
            where = f"position {position}, access entry #{entry_id}"
            if source != Source.ACCESS or row[0] != entry_id or entry_id not in ids:
                result.problem = f"{where}: the line does not belong to this month's export"
                return result
            # Exports made before chain format 2 have no "format": all their links are 1.
            link_format = item.get("format", FORMAT_JSON)
            if link_format == FORMAT_LINES:
                actual_hash = entry_layout.line_hash(entry_layout.copy_line(row))
            else:
                actual_hash = entry_layout.entry_hash(row)
            if actual_hash != entry_hash:
                result.problem = f"{where}: the event no longer matches its sealed hash"
                return result
            if link_format not in CHAIN_TAGS or stored_chain != chain_hash(
                item["previous"],
                position=position,
                source=source,
                entry_id=entry_id,
                entry_hash=entry_hash,
                sealed_at=sealed_at,
                format=link_format,
            ):
                result.problem = f"{where}: the link does not follow from the hash before it"
                return result
            links.append((position, source, entry_id, entry_hash, stored_chain, sealed_at))
            result.entries += 1
    if digest.hexdigest() != document["export_sha256"]:
        result.problem = "the export's SHA-256 differs from the signed manifest's"
        return result
    if result.entries != document["entries"]:
        result.problem = (
            f"the export holds {result.entries} events, the signed manifest {document['entries']}"
        )
        return result
    if using is not None and links:
        _compare_with_chain(links, result, using=using)
    if using is not None and result.ok and exported_blocks.blocks:
        _compare_blocks_with_chain(exported_blocks.blocks, result, using=using)
    return result


class _ExportedBlocks:
    """The blocks (chain format 3) of an export: each block's line is checked (its running
    hash from the hash before it, over its ids and digests), then each event of it (its
    place in the block, its id, its digest from its row's COPY line)."""

    def __init__(self) -> None:
        self.blocks: list[tuple] = []
        self.current: tuple | None = None

    def check(self, item: dict[str, Any], month_ids: IdRanges) -> str | None:
        if "block" in item:
            return self._block(item)
        position, row = item["position"], tuple(item["row"])
        entry_id = row[0]
        where = f"position {position}, access entry #{entry_id}"
        if self.current is None or not self.current[0] <= position <= self.current[1]:
            return f"{where}: the line does not belong to this month's export"
        first, _last, entry_ids, digests = self.current
        index = position - first
        if entry_ids[index] != entry_id or entry_id not in month_ids:
            return f"{where}: the line does not belong to this month's export"
        entry_layout = layout(Source.ACCESS)
        actual = hashlib.sha256(entry_layout.line_prefix + entry_layout.copy_line(row)).digest()
        if actual != digests[32 * index : 32 * index + 32]:
            return f"{where}: the event no longer matches its sealed hash"
        return None

    def _block(self, item: dict[str, Any]) -> str | None:
        first, last, source, sealed_at, stored_chain = item["block"]
        entry_ids = [int(entry_id) for entry_id in item["ids"]]
        try:
            digests = bytes.fromhex(item["digests"])
            previous = bytes.fromhex(item["previous"])
        except (TypeError, ValueError):
            return f"position {first}: the block's digests or the hash before it are not hashes"
        if (
            source != Source.ACCESS
            or len(entry_ids) != last - first + 1
            or len(digests) != 32 * len(entry_ids)
            or len(set(entry_ids)) != len(entry_ids)
            or stored_chain
            != block_hash(
                previous,
                first=first,
                last=last,
                source=source,
                sealed_at=sealed_at,
                ids_text=ids_text(entry_ids),
                digests=digests,
            ).hex()
        ):
            return f"position {first}: the block does not follow from the hash before it"
        self.current = (first, last, entry_ids, digests)
        self.blocks.append((first, last, source, sealed_at, stored_chain, entry_ids, digests))
        return None


def _compare_blocks_with_chain(exported: list[tuple], result: ArchiveCheck, *, using: str) -> None:
    """Each exported block must be the chain's block at its position, byte for byte."""
    from audit.integrity.blocks import BLOCKS_SQL

    with connections[using].cursor() as cursor:
        for block in exported:
            cursor.execute(BLOCKS_SQL, [block[0], block[0]])
            stored = cursor.fetchone()
            if stored is None or (*stored[:5], bytes(stored[5]), stored[6]) != (
                *block[:4],
                block[5],
                block[6],
                block[4],
            ):
                result.problem = (
                    f"position {block[0]}: the exported block differs from the chain's block "
                    "in the database"
                )
                return


def _compare_with_chain(links: list[tuple], result: ArchiveCheck, *, using: str) -> None:
    """Each exported link must be the chain's link at its position, byte for byte."""
    with connections[using].cursor() as cursor:
        for start in range(0, len(links), 5000):
            batch = links[start : start + 5000]
            cursor.execute(LINKS_SQL, [batch[0][0], batch[-1][0]])
            stored = {link[0]: tuple(link) for link in cursor.fetchall()}
            for link in batch:
                if stored.get(link[0]) != link:
                    result.problem = (
                        f"position {link[0]}: the exported link differs from the chain's link "
                        "in the database"
                    )
                    return
