"""Bring the statistics summary up to date (idempotent; run from cron, e.g. nightly).

Counts into ``statistics_monthlycount`` every month that has ended since the last
run, for every programme (the first run counts the whole history, once; later runs
only the month or months that ended since), and with them the summary's roll-ups
(``YearlyCount``, ``MonthlyTotal``: the years and month totals the views read). The
dashboard then never counts the history on a view: its first render reads the summary
and counts only the running month live (docs/adr/0033-statistics-summary.md).

``--rebuild``: forget the summary first and count everything again (after a data
migration or a correction that should rewrite published months).

Prints counts of months only: the summary holds no person and no case.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from casework.statistics import registry, summary


class Command(BaseCommand):
    help = "Counts ended months into the statistics summary (incremental; for a timer)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="forget the summary and count everything"
        )
        parser.add_argument(
            "--programme",
            action="append",
            default=[],
            help="only this programme (code; may be repeated)",
        )

    def handle(self, *args, rebuild: bool, programme: list[str], **options):
        known = registry.programmes()
        unknown = sorted(set(programme) - set(known))
        if unknown:
            raise CommandError(
                _("Unknown programme: %(codes)s (known: %(known)s)")
                % {"codes": ", ".join(unknown), "known": ", ".join(known)}
            )
        specs = [known[code] for code in programme] if programme else list(known.values())
        for spec in specs if rebuild else ():
            summary.rebuild(spec)
        for spec in specs:
            start = time.perf_counter()
            counted = summary.fill(spec)
            seconds = time.perf_counter() - start
            if counted is None:
                line = _("%(programme)s: whole history counted (%(seconds).1f s)")
            elif counted:
                line = _("%(programme)s: %(months)d month(s) counted (%(seconds).1f s)")
            else:
                line = _("%(programme)s: up to date")
            self.stdout.write(
                line % {"programme": spec.code, "months": counted or 0, "seconds": seconds}
            )
