"""Send the webhooks' due events, then tidy up (run from a timer, e.g. every minute).

1. Sends every due delivery (``casework.services.webhooks.deliver_due``): one at a time,
   claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (runs may overlap), signed, with a
   5 s timeout; a failure is retried later with backoff. ``--once``: only what was due
   when the run started, each once; by default it goes on until nothing is due.
2. Deletes deliveries delivered more than 30 days ago (the given-up ones stay for the
   admin) and the idempotency answers past ``API_IDEMPOTENCY_HOURS``
   (``casework.api.http.forget_idempotent_requests``).

The output is counts only: no address, no secret, no payload.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from casework.api.http import forget_idempotent_requests
from casework.services.webhooks import deliver_due, forget_delivered


class Command(BaseCommand):
    help = (
        "Send the webhooks' due events (retrying failures with backoff), then delete "
        "deliveries delivered over 30 days ago and idempotency answers past "
        "API_IDEMPOTENCY_HOURS. --once: only what is due at the start, each once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="One pass over the deliveries due now (default: until nothing is due).",
        )

    def handle(self, *args, once: bool = False, **options) -> None:
        counts = deliver_due(once=once)
        forgotten = forget_delivered()
        idempotent = forget_idempotent_requests()
        self.stdout.write(
            f"webhooks: {counts['delivered']} delivered, {counts['pending']} to retry, "
            f"{counts['failed']} given up; deleted {forgotten} old deliveries and "
            f"{idempotent} idempotency answers"
        )
