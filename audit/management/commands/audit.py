"""``manage.py audit keygen|seal|checkpoint|verify`` — the integrity of the audit log.

- ``keygen``: create the Ed25519 checkpoint-signing key (mode 0600) and its
  public half (``<key>.pub``) at ``SAMVERKAN_AUDIT_SIGNING_KEY_FILE``.
- ``seal``: seal committed entries into the hash chain (normally done after
  every commit; harmless to run from cron).
- ``checkpoint``: seal, then write a signed checkpoint of the chain's head to
  ``SAMVERKAN_AUDIT_CHECKPOINT_DIR`` (run daily or more often; copy the files
  to the other agency / write-once storage).
- ``verify``: seal, recompute the whole chain, check every checkpoint. Exit 0
  printing the number of entries verified, or 1 naming the first bad entry.
- ``partitions``: create the access log's monthly partitions of this month and the
  next ``--ahead`` (default 3); run daily with the checkpoint (ADR 0031).
- ``archive --month YYYY-MM --out DIR [--drop]``: export a past month with its chain
  links and a signed manifest, then detach (or drop) its partition.
- ``verify-archive MANIFEST [--against-database]``: check an exported month on its own
  (signature, file hash, every event's hash and link), optionally against the chain.
- ``summarise [--rebuild]``: count the days that ended since its last run into the log
  review's volume summary (``audit.volumes.summarise``; run daily with the checkpoint);
  ``--rebuild`` forgets it first (after an import of past events). It also summarises the
  block ranges of the partitions' BRIN index written since (``summarise_period_index``).

Output is plain English for operators (ADR 0003).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit import integrity

# Ranges of a large chain are checked in parallel, one process per core (up to four).
DEFAULT_VERIFY_WORKERS = min(4, os.cpu_count() or 1)


class Command(BaseCommand):
    help = (
        "Audit-log integrity: keygen, seal, checkpoint, verify, partitions, archive, "
        "verify-archive, summarise."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="subcommand")
        keygen = commands.add_parser("keygen", help="create the checkpoint-signing key")
        keygen.add_argument("--key-file", help="where to write it (default: the setting)")
        commands.add_parser("seal", help="seal committed entries into the hash chain")
        commands.add_parser("checkpoint", help="write a signed checkpoint of the chain's head")
        verify = commands.add_parser("verify", help="verify the chain and every checkpoint")
        verify.add_argument(
            "--checkpoint-dir", help="read checkpoints from here (default: the setting)"
        )
        verify.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_VERIFY_WORKERS,
            help="processes that check ranges of a large chain in parallel",
        )
        partitions = commands.add_parser(
            "partitions", help="create the access log's partitions of the coming months"
        )
        partitions.add_argument("--ahead", type=int, default=integrity.partitions.MONTHS_AHEAD)
        partitions.add_argument(
            "--since", help="also every month from this one (YYYY-MM), before a bulk load"
        )
        archive = commands.add_parser(
            "archive", help="export a past month of the access log and detach its partition"
        )
        archive.add_argument("--month", required=True, help="the month, as YYYY-MM")
        archive.add_argument("--out", required=True, help="directory for the export")
        archive.add_argument(
            "--drop", action="store_true", help="drop the detached partition at once"
        )
        verify_archive = commands.add_parser(
            "verify-archive", help="check an exported month against its signed manifest"
        )
        verify_archive.add_argument("manifest", help="the export's .manifest.json")
        verify_archive.add_argument(
            "--against-database",
            action="store_true",
            help="also check each exported link against the chain in the database",
        )

        summarise = commands.add_parser(
            "summarise", help="count the ended days into the log review's volume summary"
        )
        summarise.add_argument(
            "--rebuild", action="store_true", help="forget the summary and count it all again"
        )

    def handle(self, *args, subcommand: str, **options):
        return getattr(self, f"_{subcommand.replace('-', '_')}")(**options)

    def _keygen(self, *, key_file: str | None = None, **options) -> None:
        path = Path(key_file or settings.AUDIT_SIGNING_KEY_FILE or "")
        if not str(path):
            raise CommandError("Set SAMVERKAN_AUDIT_SIGNING_KEY_FILE or pass --key-file.")
        if path.exists():
            raise CommandError(
                f"{path} exists already; a signing key is never overwritten (move it away to "
                "rotate, and keep its .pub in AUDIT_TRUSTED_PUBLIC_KEYS)."
            )
        public_key = integrity.generate_signing_key(path)
        self.stdout.write(
            f"Signing key written to {path} (mode 0600), public key to {path}.pub; "
            f"key id {integrity.key_id(public_key)}."
        )

    def _summarise(self, *, rebuild: bool = False, **options) -> None:
        from audit import volumes

        if rebuild:
            volumes.rebuild()
        days = volumes.summarise()
        self.stdout.write(f"Volume summary: {days} days counted.")
        ranges = integrity.partitions.summarise_period_index()
        self.stdout.write(f"Period index: {ranges} block ranges summarised.")

    def _seal(self, **options) -> None:
        self.stdout.write(f"Sealed {integrity.seal()} entries.")

    def _checkpoint(self, **options) -> None:
        key_path = Path(settings.AUDIT_SIGNING_KEY_FILE or "")
        if not settings.PRODUCTION and str(key_path) and not key_path.exists():
            # Development and demo: make a key of their own on first use.
            integrity.generate_signing_key(key_path)
            self.stdout.write(f"No signing key yet: created a development key at {key_path}.")
        try:
            path, document = integrity.write_checkpoint()
        except integrity.CheckpointError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Checkpoint at position {document['position']} (head {document['head']}) "
            f"written to {path}."
        )

    def _verify(self, *, checkpoint_dir: str | None = None, workers: int = 1, **options) -> None:
        directory = Path(checkpoint_dir) if checkpoint_dir else True
        result = integrity.verify(directory=directory, workers=max(1, workers))
        if not result.ok:
            raise CommandError(f"Audit log verification FAILED at {result.finding}", returncode=1)
        archived = (
            f" ({result.archived} of them in archived months: their links checked)"
            if result.archived
            else ""
        )
        self.stdout.write(
            f"OK: {result.entries} entries verified{archived} against {result.checkpoints} "
            f"signed checkpoints; head {result.head}."
        )

    def _partitions(
        self,
        *,
        ahead: int = integrity.partitions.MONTHS_AHEAD,
        since: str | None = None,
        **options,
    ) -> None:
        if not 0 <= ahead <= 120:
            raise CommandError("--ahead must be between 0 and 120 months.")
        first = _month(since) if since else None
        if first and first.year < 2000:
            raise CommandError("--since must be a month from 2000 on.")
        created = integrity.partitions.create_partitions(ahead=ahead, since=first)
        self.stdout.write(
            f"Created {len(created)} partitions: {', '.join(created)}."
            if created
            else f"Every partition up to {ahead} months ahead exists already."
        )

    def _archive(self, *, month: str, out: str, drop: bool = False, **options) -> None:
        first_day = _month(month)
        try:
            path, document = integrity.partitions.archive_month(first_day, Path(out), drop=drop)
        except (integrity.partitions.PartitionError, integrity.CheckpointError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Archived {document['entries']} events of {document['month']}: export and signed "
            f"manifest in {path.parent}; the partition {document['table']} is "
            f"{'dropped' if drop else 'detached (drop it once the export is safe)'}."
        )

    def _verify_archive(self, *, manifest: str, against_database: bool = False, **options):
        result = integrity.partitions.verify_archive(
            Path(manifest),
            integrity.trusted_public_keys(),
            using="default" if against_database else None,
        )
        if not result.ok:
            raise CommandError(f"Archive verification FAILED: {result.problem}", returncode=1)
        self.stdout.write(f"OK: {result.entries} archived events verified.")


def _month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError as exc:
        raise CommandError(f"A month is written YYYY-MM, not {text!r}.") from exc
