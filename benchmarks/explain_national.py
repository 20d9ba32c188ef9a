"""The statements of ``bench_national``'s operations and their plans, on a kept data set.

``python -m benchmarks.explain_national [operation …] [--min-ms M] [--cold]`` after
``python -m benchmarks bench_national --keep`` (same ``DATABASE_URL``): runs each operation
once to warm it (unless ``--cold``), then once more recording every statement it sends
(alias, milliseconds, SQL), and prints them with ``EXPLAIN (ANALYZE, BUFFERS)`` of each
read (``SELECT``, ``WITH``, a ``UNION`` of them) that took ``--min-ms`` (default 5) or
more. An operation is named by a part of its name (``review``, ``statistics``); without
one, all of them. Nothing is written but what the operations write themselves (their
access-log events).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("operations", nargs="*", help="parts of operation names (default: all)")
    parser.add_argument("--min-ms", type=float, default=5.0, help="explain statements this slow")
    parser.add_argument("--cold", action="store_true", help="no warming run first")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections
    from django.test.utils import setup_databases, setup_test_environment

    from benchmarks.__main__ import kept_dir
    from benchmarks.bench_national import STATE, Measurements
    from benchmarks.national_data import DataSet

    setup_test_environment()
    kept = kept_dir()
    if not (kept / STATE).is_file():
        print(f"explain_national: nothing kept in {kept} (bench_national --keep first)")
        return 2
    settings.KEYRING_FILE = kept / "keyring.json"
    setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=set())
    data = DataSet.restore(json.loads((kept / STATE).read_text())["data"])
    operations = Measurements(data).operations()
    for name, operation in operations.items():
        if args.operations and not any(part in name for part in args.operations):
            continue
        if not args.cold:
            operation.func()
        statements: list[tuple[str, float, str, object]] = []

        def record(execute, sql, params, many, context, statements=statements):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                alias = context["connection"].alias
                statements.append((alias, (time.perf_counter() - start) * 1000, sql, params))

        wrappers = [c.execute_wrapper(record) for c in connections.all()]
        for wrapper in wrappers:
            wrapper.__enter__()
        start = time.perf_counter()
        try:
            operation.func()
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
        total = (time.perf_counter() - start) * 1000
        in_database = sum(ms for _alias, ms, _sql, _params in statements)
        print(f"\n=== {name}: {total:.1f} ms, {len(statements)} statements, {in_database:.1f} ms")
        for alias, ms, sql, params in statements:
            print(f"--- [{alias}] {ms:8.2f} ms  {' '.join(sql.split())[:300]}")
            if ms < args.min_ms or not sql.lstrip().upper().startswith(("SELECT", "WITH", "(")):
                continue
            with connections[alias].cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                for (line,) in cursor.fetchall():
                    print(f"      {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
