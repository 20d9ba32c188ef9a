"""Move the sealed values of cases opened before keys per case from their person's data key
to the case's own: ``manage.py reseal_case_keys [--batch-size N] [--max-batches N]``.

Resumable and idempotent (docs/adr/0023-keys-per-case.md): each batch is committed on its
own, a run continues where an interrupted one stopped, and a finished one does nothing.
Progress goes to stderr; the output holds counts only, never a value or a key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from casework.crypto.errors import CryptoError
from casework.management.commands.keys import Progress
from casework.services.case_reseal import DEFAULT_BATCH, reseal_case_keys

PURPOSE = "Nycklar per ärende (manage.py reseal_case_keys)"


class Command(BaseCommand):
    help = (
        "Flyttar ärendenas krypterade uppgifter från personens datanyckel till ärendets egen, "
        "i omgångar. Kan avbrytas och köras igen; en färdig flytt gör ingenting."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
        parser.add_argument(
            "--max-batches", type=int, default=None, help="stop after this many batches"
        )
        parser.add_argument("--reason", default=PURPOSE, help="recorded in the access log")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="batches at a time, each in a process of its own with its own connections",
        )

    def handle(
        self, *args, batch_size: int, max_batches: int | None, reason: str, workers: int, **options
    ):
        if batch_size < 1 or (max_batches is not None and max_batches < 1) or workers < 1:
            raise CommandError("--batch-size, --max-batches och --workers måste vara positiva tal.")
        progress = Progress(self.stderr, "Flyttar ärenden till egna nycklar")
        try:
            result = reseal_case_keys(
                purpose=reason,
                batch_size=batch_size,
                max_batches=max_batches,
                workers=workers,
                progress=progress,
            )
        except CryptoError as exc:
            raise CommandError(str(exc)) from None
        finally:
            progress.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.cases} ärenden flyttade till egna nycklar "
                f"({result.values} värden omkrypterade, {result.batches} omgångar)."
            )
        )
        if result.remaining:
            self.stdout.write(
                self.style.WARNING(
                    f"{result.remaining} ärenden återstår: kör kommandot igen för att fortsätta."
                )
            )
