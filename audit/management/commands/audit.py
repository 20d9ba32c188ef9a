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

Output is plain English for operators (ADR 0003).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit import integrity


class Command(BaseCommand):
    help = "Audit-log integrity: keygen, seal, checkpoint, verify."

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
            default=min(4, os.cpu_count() or 1),
            help="processes that check ranges of a large chain in parallel",
        )

    def handle(self, *args, subcommand: str, **options):
        return getattr(self, f"_{subcommand}")(**options)

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
        self.stdout.write(
            f"OK: {result.entries} entries verified against {result.checkpoints} signed "
            f"checkpoints; head {result.head}."
        )
