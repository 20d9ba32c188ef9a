"""Web shell: the health check and the pages people wait for, through the full middleware
stack (Django's test client, in this process).

For each page: requests per second in one process, the application CPU per request
(``time.process_time``: what the machine's other work does not change) and the database
statements per request (an ``execute_wrapper`` counting them). "2 cores' capacity" is
2000 ms over the CPU per request — the application side only: PostgreSQL's share is in
``bench_sig`` and
``bench_api``, which run gunicorn (issue 20's targets: task inbox and case list >= 150
req/s each; the case page's gunicorn figures are ``bench_sig``'s).
"""

from __future__ import annotations

import time

from django.core.management import call_command
from django.db import connection
from django.test import Client

from benchmarks.__main__ import median_of

REQUESTS = 200
PAGE_REQUESTS = 30
PAGE_TARGET = 150  # req/s, task inbox and case list (issue 20)


def run(report) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from casework.models import CaseMembership, User

    anonymous = Client()
    seconds = median_of(lambda: [anonymous.get("/healthz") for _ in range(REQUESTS)])
    report("web: /healthz", REQUESTS / seconds, "req/s", ">= 500 req/s")

    for username in ("anna.social", "sara.samordnare"):
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        case = (
            CaseMembership.objects.filter(user=user, valid_to__isnull=True, case__programme="sig")
            .values_list("case_id", flat=True)
            .first()
        )
        pages = [
            ("task inbox", "/arenden/inbox/", PAGE_TARGET),
            ("case list", "/arenden/fall/", PAGE_TARGET),
        ]
        if case is not None:
            pages.append(("case page", f"/arenden/fall/{case}/", 120))
        for label, path, target in pages:
            _page(report, client, f"web: {label} ({username})", path, target)


def _page(report, client: Client, label: str, path: str, target: int) -> None:
    for _ in range(3):  # warm: templates, caches
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(path)
    cpu: list[float] = []

    def load() -> None:
        start = time.process_time()
        for _ in range(PAGE_REQUESTS):
            client.get(path)
        cpu.append(time.process_time() - start)

    seconds = median_of(load, runs=3)
    cpu_ms = sorted(cpu)[len(cpu) // 2] / PAGE_REQUESTS * 1000
    report(label, PAGE_REQUESTS / seconds, "req/s", f">= {target} req/s (2 cores, with the db)")
    report(f"{label}, application CPU per request", cpu_ms, "ms", "")
    report(f"{label}, database statements per request", len(statements), "", "")
    report(
        f"{label}, capacity of 2 cores by application CPU",
        2000 / cpu_ms,
        "req/s",
        f">= {target} req/s",
    )
