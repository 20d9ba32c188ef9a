"""Run every benchmark module and write benchmarks/results.json.

Each module runs on its own: one that fails (an exception, an assertion) is recorded
with its error in ``results.json`` and the others still run and report; the exit code
is then non-zero. ``results.json`` is rewritten after every module, so that neither a
failing module nor a failing teardown loses a figure that was measured.

``python -m benchmarks [module …] [--scale S] [--output PATH] [--keep | --reuse]``: a
module is a name in ``benchmarks/`` (``bench_sig``) or a dotted path; ``--scale`` is
passed to the modules that take one (``bench_national``).

``--keep`` leaves the test databases (``test_<name>`` and its key store) in place after
the run, with the run's keyring and what the modules saved (``bench_national``: its data
set's state and the small data set's figures) in ``kept_dir()`` beside them; ``--reuse``
measures against them again without creating or loading anything (new migrations are
applied, as ``--keepdb`` does). Drop them with ``--drop`` when done.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import inspect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results.json"
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


class Runner:
    """Runs benchmark modules one after the other and keeps what each reported.

    ``results.json``::

        {"figures": [{"module", "name", "value", "unit", "target"}, …],
         "modules": [{"module", "status": "ok" | "failed", "seconds", "error"?, "traceback"?}],
         "failed": [module, …], "teardown": "ok" | "failed: …" | null,
         "started_at", "finished_at", "database": "server" | "embedded", "cpus"}
    """

    def __init__(self, output: Path = RESULTS, *, options: dict | None = None) -> None:
        self.output = output
        self.options = options or {}
        self.figures: list[dict] = []
        self.modules: list[dict] = []
        self.teardown: str | None = None
        self.started_at = _now()
        self._current = ""

    def report(self, name: str, value: float, unit: str, target: str) -> None:
        self.figures.append(
            {
                "module": self._current,
                "name": name,
                "value": round(value, 3),
                "unit": unit,
                "target": target,
            }
        )
        print(f"{name:<48} {value:>12.3f} {unit:<10} target: {target}", flush=True)
        self.write()

    def run_module(self, name: str) -> bool:
        """Import and run one module; record a failure instead of raising it."""
        self._current = name
        start = time.perf_counter()
        entry: dict = {"module": name}
        try:
            module = importlib.import_module(name if "." in name else f"benchmarks.{name}")
            run = module.run
            accepted = inspect.signature(run).parameters
            run(self.report, **{k: v for k, v in self.options.items() if k in accepted})
        except Exception as error:
            entry.update(
                status="failed",
                error=f"{type(error).__name__}: {error}"[:2000],
                traceback=traceback.format_exc()[-8000:],
            )
            print(f"benchmarks: {name} FAILED: {entry['error']}", file=sys.stderr, flush=True)
            traceback.print_exc()
            _recover()
        else:
            entry["status"] = "ok"
        entry["seconds"] = round(time.perf_counter() - start, 1)
        self.modules.append(entry)
        self._current = ""
        self.write()
        return entry["status"] == "ok"

    def run_all(self, names: Iterable[str]) -> None:
        for name in names:
            self.run_module(name)

    @property
    def failed(self) -> list[str]:
        return [m["module"] for m in self.modules if m["status"] != "ok"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or (self.teardown or "ok") != "ok" else 0

    def write(self) -> None:
        document = {
            "figures": self.figures,
            "modules": self.modules,
            "failed": self.failed,
            "teardown": self.teardown,
            "started_at": self.started_at,
            "finished_at": _now(),
            "database": "server" if os.environ.get("DATABASE_URL") else "embedded",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }
        temporary = self.output.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        temporary.replace(self.output)  # a reader never sees half a file

    def summary(self) -> None:
        for entry in self.modules:
            print(f"  {entry['module']:<40} {entry['status']:<7} {entry['seconds']:>8.1f} s")
        if self.teardown not in (None, "ok"):
            print(f"  teardown: {self.teardown}")
        print(f"benchmarks: results in {self.output}", flush=True)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _recover() -> None:
    """After a failed module: roll back what it left open and close every connection,
    so that the next module starts on clean sessions."""
    from django.db import connections

    for connection in connections.all():
        if connection.in_atomic_block:  # a block left open (not a `with`): forget it
            connection.atomic_blocks.clear()
            connection.savepoint_ids.clear()
            connection.in_atomic_block = False
            connection.needs_rollback = False
            connection.closed_in_transaction = False
        with contextlib.suppress(Exception):  # a broken connection is gone anyway
            connection.close()  # an open transaction ends (rolled back) with the session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--scale", type=float, help="data-set scale (bench_national; 1 = full)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where results go")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument(
        "--keep", action="store_true", help="keep the test databases and keyring after the run"
    )
    kept.add_argument(
        "--reuse", action="store_true", help="measure against the databases a --keep run kept"
    )
    kept.add_argument("--drop", action="store_true", help="drop the kept databases and keyring")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from casework.crypto import keyring

    lock = _one_run_at_a_time(settings.DATABASES["default"])
    if lock is None:
        return 2
    options = {"scale": args.scale} if args.scale is not None else {}
    kept = kept_dir()
    if args.drop:
        return _drop_kept(kept)
    if args.keep or args.reuse:
        options.update(kept=kept, reuse=args.reuse)
    runner = Runner(args.output, options=options)
    # Benchmarks run in throw-away test databases (the main one and the key
    # store) with a throw-away keyring: never the demo data, never real keys.
    # --keep / --reuse: the same, kept between runs (kept_dir()), until --drop.
    keys_dir = None
    if args.reuse:
        settings.KEYRING_FILE = kept / "keyring.json"
        if not settings.KEYRING_FILE.is_file():
            print(f"benchmarks: --reuse: nothing kept in {kept} (run with --keep first)")
            return 2
    elif args.keep:
        kept.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.KEYRING_FILE = kept / "keyring.json"
        settings.KEYRING_FILE.unlink(missing_ok=True)
        keyring.generate(settings.KEYRING_FILE)
    else:
        keys_dir = tempfile.TemporaryDirectory(prefix="samverkan-bench-keys-")
        settings.KEYRING_FILE = Path(keys_dir.name) / "keyring.json"
        keyring.generate(settings.KEYRING_FILE)
    # Nothing is serialized for rollbacks (a kept national data set is 29 GiB).
    old_config = setup_databases(
        verbosity=0, interactive=False, keepdb=args.reuse, serialized_aliases=set()
    )
    try:
        runner.run_all(args.only or MODULES)
    finally:
        if args.keep or args.reuse:
            runner.teardown = _teardown(lambda: None)  # the sealer stopped, sessions closed
            print(f"benchmarks: test databases kept; keyring and state in {kept}", flush=True)
        else:
            runner.teardown = _teardown(lambda: teardown_databases(old_config, verbosity=0))
        if keys_dir is not None:
            keys_dir.cleanup()
        runner.write()
        runner.summary()
    return runner.exit_code


def kept_dir() -> Path:
    """Where ``--keep`` puts the keyring and the modules' saved state, one per test
    database (beside the run lock)."""
    from django.db import connection

    name = connection.creation._get_test_db_name()
    return Path(tempfile.gettempdir()) / f"samverkan-bench-kept-{name}"


def _drop_kept(kept: Path) -> int:
    """``--drop``: drop the test databases a ``--keep`` run left and its keyring."""
    import shutil

    from django.db import connections

    for alias in ("default", "keystore"):
        creation = connections[alias].creation
        name = creation._get_test_db_name()
        with creation._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {connections[alias].ops.quote_name(name)}")
        print(f"benchmarks: dropped {name}", flush=True)
    shutil.rmtree(kept, ignore_errors=True)
    return 0


def _one_run_at_a_time(database: dict):
    """An exclusive lock on this machine for the test database the run will create and
    drop: a second run against the same server and name would drop it under the first
    one. ``None`` (with a message) when another run holds it."""
    import fcntl

    from django.db import connection

    name = connection.creation._get_test_db_name()
    host = database.get("HOST") or "local"
    path = Path(tempfile.gettempdir()) / f"samverkan-bench-{host.replace('/', '_')}-{name}.lock"
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(
            f"benchmarks: another run uses the test database {name} on {host}; "
            "wait for it to end (or set DATABASE_URL to another database)",
            file=sys.stderr,
        )
        handle.close()
        return None
    return handle  # held until the process ends


def _teardown(drop: Callable[[], None]) -> str:
    """Drop the test databases; "ok" or what failed (never raises: the figures are kept)."""
    try:
        from audit.services import stop_sealer

        stop_sealer()  # its connection would keep the test databases from being dropped
        wait_until_alone()
        drop()
    except Exception as error:
        traceback.print_exc()
        return f"failed: {type(error).__name__}: {error}"[:2000]
    return "ok"


def wait_until_alone(timeout: float = 15.0) -> None:
    """Close this process's connections, wait (at most ``timeout`` seconds) until no other
    session uses a test database, then end the sessions that are still there.

    The audit log's own alias (``audit``, for events that must outlive the caller's
    transaction) is a second session on the main database, which Django's teardown does
    not close: dropping the database failed with "database … is being accessed by other
    users". A benchmark's gunicorn has exited when ``stop()`` returns, but PostgreSQL
    ends its workers' sessions a moment later; a worker killed after the grace period
    may leave its session behind for longer. Only sessions on the benchmark's own
    throw-away test databases are ended."""
    from django.db import connections

    connections.close_all()
    deadline = time.monotonic() + timeout
    seen = set()
    for connection in connections.all():
        name = connection.settings_dict["NAME"]
        if name in seen:
            connection.close()
            continue
        seen.add(name)
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
                    print(
                        f"benchmarks: ending {others} other session(s) on the test database",
                        file=sys.stderr,
                    )
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    time.sleep(0.5)
                    break
                time.sleep(0.1)
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
