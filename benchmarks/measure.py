"""What a benchmark spends besides wall time, for a machine shared with others: this
process's CPU time, the CPU time of the PostgreSQL sessions serving the benchmark's
databases, and the round trips to the database (every statement, ``COPY`` and commit of
this thread).

Wall time on a loaded machine says little; CPU time per operation and round trips per
batch say what the code costs wherever it runs.

    with Measured() as m:
        ...
    m.wall, m.cpu, m.db_cpu, m.round_trips
"""

from __future__ import annotations

import threading
import time

import psutil
import psycopg

_counts = {"on": False, "n": 0}
_lock = threading.Lock()
_patched = False


def _install() -> None:
    """Count every call that goes to the server and waits for its answer, in every
    thread but the access log's sealer (the benchmark's own work: the main thread and
    its batch workers)."""
    global _patched
    if _patched:
        return
    _patched = True

    def counted(method):
        def wrapper(self, *args, **kwargs):
            if _counts["on"] and not threading.current_thread().name.startswith(
                "samverkan-audit-sealer"
            ):
                with _lock:
                    _counts["n"] += 1
            return method(self, *args, **kwargs)

        return wrapper

    psycopg.Cursor.execute = counted(psycopg.Cursor.execute)
    psycopg.Cursor.executemany = counted(psycopg.Cursor.executemany)
    psycopg.Cursor.copy = counted(psycopg.Cursor.copy)
    psycopg.Connection.commit = counted(psycopg.Connection.commit)
    psycopg.Connection.rollback = counted(psycopg.Connection.rollback)


def _database_names() -> set[str]:
    from django.db import connections

    return {c.settings_dict["NAME"] for c in connections.all()}


def _backends(names: set[str]) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL session on these databases (found by the
    server's process titles, without a query)."""
    spent = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            title = " ".join(process.info["cmdline"] or ())
            if not title.startswith("postgres:") or not any(f" {n} " in title for n in names):
                continue
            times = process.cpu_times()
        except psutil.Error:
            continue
        spent[process.pid] = times.user + times.system
    return spent


class _Sampler(threading.Thread):
    """Samples the sessions' CPU every ``interval`` seconds: a batch worker's session
    ends before the benchmark does, and its last sample is kept."""

    def __init__(self, names: set[str], interval: float = 0.25) -> None:
        super().__init__(name="bench-db-cpu", daemon=True)
        self.names, self.interval = names, interval
        self.start_times = _backends(names)
        self.latest = dict(self.start_times)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.latest |= _backends(self.names)

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        self.latest |= _backends(self.names)
        return sum(t - self.start_times.get(pid, 0.0) for pid, t in self.latest.items())


class DatabaseCpu:
    """CPU seconds spent so far by the server's sessions on the benchmark's databases
    (read from the process table, no query), counting sessions that ended since the
    last reading: for a loop timed on its own, without :class:`Measured`'s sampling
    thread beside it."""

    def __init__(self) -> None:
        self.names = _database_names()
        self.seen: dict[int, float] = {}

    def spent(self) -> float:
        self.seen |= _backends(self.names)
        return sum(self.seen.values())


class Measured:
    """Wall time, this process's CPU time, the database sessions' CPU time and this
    thread's round trips over a ``with`` block."""

    def __enter__(self) -> Measured:
        _install()
        self._sampler = _Sampler(_database_names())
        self._sampler.start()
        _counts.update(on=True, n=0)
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        _counts["on"] = False
        self.round_trips = _counts["n"]
        self.db_cpu = self._sampler.stop()
        self.load = psutil.getloadavg()[0]

    def report(self, report, name: str, items: int, unit: str, *, batches: int = 0) -> None:
        """Per item: this process's CPU and the database's, in ms; round trips in all and
        per batch; the load average (the machine is shared)."""
        report(f"{name}: process CPU per {unit}", 1000 * self.cpu / items, "ms", "")
        report(f"{name}: database CPU per {unit}", 1000 * self.db_cpu / items, "ms", "")
        report(
            f"{name}: wall / (process + db CPU)",
            self.wall / max(self.cpu + self.db_cpu, 1e-9),
            "x",
            "",
        )
        report(f"{name}: round trips", self.round_trips, "", "")
        if batches:
            report(f"{name}: round trips per batch", self.round_trips / batches, "", "")
        report(f"{name}: load average (1 min)", self.load, "", "(shared machine)")
