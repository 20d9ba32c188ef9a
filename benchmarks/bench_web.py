"""Web shell: health check and start-page throughput through the full middleware stack."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client

from benchmarks.__main__ import median_of

REQUESTS = 200


def run(report) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from casework.models import User

    anonymous = Client()
    seconds = median_of(lambda: [anonymous.get("/healthz") for _ in range(REQUESTS)])
    report("web: /healthz", REQUESTS / seconds, "req/s", ">= 500 req/s")

    client = Client()
    client.force_login(User.objects.get(username="anna.social"))
    seconds = median_of(lambda: [client.get("/arenden/inbox/") for _ in range(REQUESTS // 4)])
    report("web: task inbox page", (REQUESTS // 4) / seconds, "req/s", ">= 50 req/s")
