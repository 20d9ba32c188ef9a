"""Cull (gallra) the cases due under the retention rules: ``manage.py cull [--dry-run]``.

Idempotent, for a daily timer (docs/adr/0024-retention.md). ``--dry-run`` lists what
would be culled — case number, organisation, programme, rule and dates — and changes
nothing. The real run destroys each due case's data key, marks the case culled, writes
one access-log event per case and erases the persons left with nothing
(``casework.services.retention.cull``); a run that was interrupted is completed by the
next one. No personal data is ever printed.
"""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from casework.selectors.retention import Rules, due_cases
from casework.services.retention import cull


class Command(BaseCommand):
    help = (
        "Gallrar ärenden vars bevarandetid enligt gallringsreglerna har gått ut: ärendets "
        "datanyckel förstörs, ärendet markeras gallrat och händelsen loggas. Med --dry-run "
        "listas bara vad som skulle gallras (inga personuppgifter)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
        parser.add_argument(
            "--date",
            type=datetime.date.fromisoformat,
            help="cull as on this day (YYYY-MM-DD; default today)",
        )
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--workers", type=int, default=1, help="batches at a time, each on its own connection"
        )

    def handle(
        self,
        *args,
        dry_run: bool,
        date: datetime.date | None,
        batch_size: int,
        workers: int,
        **opts,
    ):
        if batch_size < 1:
            raise CommandError("--batch-size måste vara minst 1.")
        if workers < 1:
            raise CommandError("--workers måste vara minst 1.")
        if dry_run:
            self._dry_run(date, batch_size)
            return
        result = cull(today=date, batch_size=batch_size, workers=workers)
        self.stdout.write(
            self.style.SUCCESS(
                f"Gallrade ärenden: {len(result.culled)}; förstörda ärendenycklar: "
                f"{result.keys_destroyed}; raderade personer: {result.persons_erased}."
            )
        )

    def _dry_run(self, date: datetime.date | None, batch_size: int) -> None:
        today = date or timezone.localdate()
        count = 0
        self.stdout.write("ärende\torganisation\tprogram\tregel\träknas från\tgallras från\tsenast")
        for batch in due_cases(today=today, rules=Rules(), batch_size=batch_size):
            for due in batch:
                count += 1
                self.stdout.write(
                    f"{due.reference}\t{due.organisation}\t{due.programme}\t{due.rule.pk}\t"
                    f"{due.due.start}\t{due.due.due}\t{due.due.deadline}"
                )
        self.stdout.write(f"Skulle gallras: {count} ärenden per {today} (inget ändrat).")
