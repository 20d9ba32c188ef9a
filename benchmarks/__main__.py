"""Run every benchmark module and write benchmarks/results.json."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MODULES = [
    "bench_web",
    "bench_crypto",
    "bench_audit",
    "bench_sig",
    "bench_statistics",
    "bench_api",
    "bench_retention",
    "bench_case_keys",
]


def median_of(func, *, runs: int = 5) -> float:
    """Median wall time in seconds of ``func()`` over ``runs`` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="benchmark modules to run (default: all)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from casework.crypto import keyring

    results: list[dict] = []

    def report(name: str, value: float, unit: str, target: str) -> None:
        results.append({"name": name, "value": round(value, 3), "unit": unit, "target": target})
        print(f"{name:<48} {value:>12.3f} {unit:<10} target: {target}", flush=True)

    # Benchmarks run in throw-away test databases (the main one and the key
    # store) with a throw-away keyring: never the demo data, never real keys.
    keys_dir = tempfile.TemporaryDirectory(prefix="samverkan-bench-keys-")
    settings.KEYRING_FILE = Path(keys_dir.name) / "keyring.json"
    keyring.generate(settings.KEYRING_FILE)
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        for module_name in args.only or MODULES:
            module = importlib.import_module(f"benchmarks.{module_name}")
            module.run(report)
        # Written before the teardown, so that a failing teardown loses no figure.
        (ROOT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    finally:
        from audit.services import stop_sealer

        stop_sealer()  # its connection would keep the test databases from being dropped
        wait_until_alone()
        teardown_databases(old_config, verbosity=0)
        keys_dir.cleanup()
    return 0


def wait_until_alone(timeout: float = 15.0) -> None:
    """Close this process's connections, then wait (at most ``timeout`` seconds) until no
    other session uses a test database.

    The audit log's own alias (``audit``, for events that must outlive the caller's
    transaction) is a second session on the main database, which Django's teardown does
    not close: dropping the database failed with "database … is being accessed by other
    users". A benchmark's gunicorn has exited when ``stop()`` returns, but PostgreSQL
    ends its workers' sessions a moment later."""
    from django.db import connections

    connections.close_all()
    deadline = time.monotonic() + timeout
    for connection in connections.all():
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                others = cursor.fetchone()[0]
                if others == 0:
                    break
                if time.monotonic() > deadline:
                    print(f"benchmarks: {others} other session(s) still open", file=sys.stderr)
                    break
                time.sleep(0.1)
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
