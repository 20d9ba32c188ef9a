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

_counts: dict[int, int] = {}
_patched = False


def _install() -> None:
    """Count, per thread, every call that goes to the server and waits for its answer."""
    global _patched
    if _patched:
        return
    _patched = True

    def counted(method):
        def wrapper(self, *args, **kwargs):
            ident = threading.get_ident()
            if ident in _counts:
                _counts[ident] += 1
            return method(self, *args, **kwargs)

        return wrapper

    psycopg.Cursor.execute = counted(psycopg.Cursor.execute)
    psycopg.Cursor.executemany = counted(psycopg.Cursor.executemany)
    psycopg.Cursor.copy = counted(psycopg.Cursor.copy)
    psycopg.Connection.commit = counted(psycopg.Connection.commit)
    psycopg.Connection.rollback = counted(psycopg.Connection.rollback)


def _backends() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL session on the benchmark's databases."""
    from django.db import connections

    names = {c.settings_dict["NAME"] for c in connections.all()}
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", [sorted(names)])
        pids = [row[0] for row in cursor.fetchall()]
    spent = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        spent[pid] = times.user + times.system
    return spent


class Measured:
    """Wall time, this process's CPU time, the database sessions' CPU time and this
    thread's round trips over a ``with`` block."""

    def __enter__(self) -> Measured:
        _install()
        self._backends = _backends()
        self._ident = threading.get_ident()
        _counts[self._ident] = 0
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.round_trips = _counts.pop(self._ident, 0)
        after = _backends()
        self.db_cpu = sum(t - self._backends.get(pid, 0.0) for pid, t in after.items())
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
