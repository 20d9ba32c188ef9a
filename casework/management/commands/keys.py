"""Key management for operators: ``keys generate|status|rotate|retire|sweep``.

Output never contains key material: versions, counts, paths only.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from casework import services
from casework.crypto import keyring
from casework.crypto.errors import CryptoError
from casework.crypto.keystore import count_by_version

ROTATE_PURPOSE = "KEK-rotation (manage.py keys rotate)"


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, every 10 % otherwise."""

    def __init__(self, stream, label: str, width: int = 30) -> None:
        self.stream, self.label, self.width = stream, label, width
        self.tty = stream.isatty()
        self.last_step = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if not self.tty:
            step = percent // 10
            if step == self.last_step:
                return
            self.last_step = step
        filled = self.width * percent // 100
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {percent:3d}% {done:,}/{total:,}".replace(",", " ")
        self.stream.write(("\r" if self.tty else "") + line, ending="" if self.tty else "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("")


class Command(BaseCommand):
    help = (
        "Nyckelhantering: generate (ny nyckelring), status, rotate (ny KEK-version, "
        "paketera om alla datanycklar), retire <version>, sweep (föräldralösa datanycklar)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        generate = sub.add_parser("generate", help="create the keyring file (never overwrites)")
        generate.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing (and succeed) when the keyring file already exists",
        )
        sub.add_parser("status", help="KEK versions and data keys per version")
        rotate = sub.add_parser("rotate", help="new KEK version; re-wrap every data key")
        rotate.add_argument("--batch-size", type=int, default=1000)
        rotate.add_argument("--reason", default=ROTATE_PURPOSE, help="recorded in the access log")
        retire = sub.add_parser("retire", help="remove an old KEK version no data key uses")
        retire.add_argument("version", type=int)
        retire.add_argument("--reason", default="KEK retired (manage.py keys retire)")
        sweep = sub.add_parser("sweep", help="delete data keys whose person does not exist")
        sweep.add_argument("--grace-hours", type=float, default=1.0)
        sweep.add_argument("--reason", default="Orphan data keys swept (manage.py keys sweep)")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except CryptoError as exc:
            raise CommandError(str(exc)) from None

    def _path(self):
        if not settings.KEYRING_FILE:
            raise CommandError("No keyring file is configured: set SAMVERKAN_KEYRING_FILE.")
        return settings.KEYRING_FILE

    def _generate(self, *, if_missing: bool, **options):
        path = self._path()
        if if_missing and path.exists():
            self.stdout.write(f"Nyckelringen finns redan: {path}")
            return
        keyring.generate(path)
        self.stdout.write(
            self.style.SUCCESS(f"Nyckelring skapad: {path} (läsbar endast av ägaren, 0600).")
        )
        self.stdout.write(
            "Säkerhetskopiera den skilt från databasen: utan den går ingen krypterad data att läsa."
        )

    def _status(self, **options):
        path = self._path()
        ring = keyring.load(path)
        mode = path.stat().st_mode & 0o777
        counts = count_by_version()
        self.stdout.write(f"Nyckelring: {path} (läge {mode:04o})")
        self.stdout.write(
            f"KEK-versioner: {', '.join(map(str, ring.versions))} (aktuell: {ring.current})"
        )
        self.stdout.write("Blindindexnyckel: finns")
        self.stdout.write("Datanycklar per KEK-version:")
        for version in sorted(set(ring.versions) | set(counts)):
            marks = []
            if version == ring.current:
                marks.append("aktuell")
            if not ring.has_version(version):
                marks.append("SAKNAS I NYCKELRINGEN")
            suffix = f" ({', '.join(marks)})" if marks else ""
            self.stdout.write(f"  v{version}: {counts.get(version, 0)}{suffix}")
        pending = sum(n for v, n in counts.items() if v != ring.current)
        if pending:
            self.stdout.write(
                self.style.WARNING(
                    f"{pending} datanycklar är inte på aktuell version: kör `keys rotate`."
                )
            )
        if mode & 0o077:
            self.stdout.write(
                self.style.WARNING(f"Nyckelringen är läsbar för andra: chmod 600 {path}")
            )

    def _rotate(self, *, batch_size: int, reason: str, **options):
        self._path()
        progress = Progress(self.stderr, "Ompaketerar datanycklar")
        try:
            result = services.rotate_data_keys(
                purpose=reason, batch_size=batch_size, progress=progress
            )
        finally:
            progress.close()
        verb = "Återupptog rotation till" if result.resumed else "Ny KEK-version"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} v{result.version}: {result.rewrapped} datanycklar ompaketerade. "
                "Äldre versioner kan tas bort med `keys retire <version>`."
            )
        )

    def _retire(self, *, version: int, reason: str, **options):
        self._path()
        services.retire_key_version(purpose=reason, version=version)
        self.stdout.write(self.style.SUCCESS(f"KEK-version {version} borttagen ur nyckelringen."))

    def _sweep(self, *, grace_hours: float, reason: str, **options):
        deleted = services.sweep_orphan_data_keys(
            purpose=reason, grace=timedelta(hours=grace_hours)
        )
        self.stdout.write(f"{deleted} föräldralösa datanycklar borttagna.")
