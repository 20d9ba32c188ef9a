"""A national-size data set: 1,000,000 persons, 300,000 cases, 50,000,000 access-log events.

``make bench-national`` (``python -m benchmarks bench_national [--scale S]``; S = 1 is
the national size, ``--scale 0.01`` a hundredth of it for development).

The same operations are measured twice in one run, side by side: first on the small
data set (the demo data plus a thousandth of the national volumes: 1,000 persons, 300
cases, 50,000 events), then after the rest of the national data set has been loaded
into the same database; each figure is reported for both with the ratio (target: within
2x). The operations: the case page and the task inbox (a social worker), a personnummer
lookup (``selectors.find_person``, with its access-log event), the auditor's search by
person and by user over a month, the log review of a month, and the statistics
dashboard (its first render after the timer's summary refresh, and a render after it).
Every figure is the median of several runs: wall time, CPU time of this process
(``time.process_time``) and database round trips (statements sent, all aliases).

Loading (set-based):

* persons: ``COPY`` (psycopg ``cursor.copy``) of rows with real ciphertext, envelope
  encryption as the app does it: a data key of each person wrapped under the keyring's
  KEK into the key store (``COPY`` too), name, personnummer and date of birth sealed
  under it (AES-256-GCM, associated data = table | column | row id), and the blind
  index of the personnummer under the keyring's index key, so that the lookup finds
  them; valid synthetic personnummer (born 1930-2019) that belong to no one;
* cases: ``INSERT … SELECT generate_series`` across the four programmes (SIG 70 %,
  SSPF 18 %, the defector programme 12 %, and GVI groups, one per 100 cases), with the
  stage moments the statistics read, spread over ten years; opened before keys per case
  (``keyed_at`` empty: no sealed value of their own); each open SIG case has a viewflow
  process with an assigned task in one of the bench users' inboxes;
* access-log events: ``COPY`` into ``AccessEvent._meta.db_table`` with an explicit
  column list (so a partitioned table takes them as a plain one), spread evenly over the
  last 24 months, by 5,000 bench users about the loaded persons. They are loaded as
  history from before the chain: the enqueue trigger is off for the load
  (``session_replication_role = replica``), so they are neither queued for sealing nor
  verified (verifying 50 M rows is not part of this bench; ``bench_audit`` measures it).
  Their ids follow their moments (as appends' do), so the two loads interleave in time.

After each load, before measuring, what the timers and the sealer do after an import: the
statistics summary is refreshed (rebuilt after the national load), the queued change
history of the loaded persons is sealed (the sealer thread would otherwise seal it in this
process while the first operations are measured: 100,000 change records at SCALE=0.1,
which made every figure after the load cost several times the CPU, the personnummer
lookup 2 → 14 ms), and the log review's volume summary is counted (``manage.py audit
summarise``, ``--rebuild`` after the national load). The seal and the summaries are
reported as setup.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import connections

from benchmarks.national_data import PERSON_ID, DataSet

SMALL = 0.001
RUNS = 7
STATE = "national.json"  # in the --keep directory: the data set's state, the small figures


def run(report, scale: float = 1.0, kept: Path | None = None, reuse: bool = False) -> None:
    """``kept`` (``--keep``): save the data set's state and the small data set's figures
    there (``national.json``), for a later ``reuse`` (``--reuse``) that measures the
    national data set again against the kept databases, without loading anything."""
    if scale <= 0:
        raise ValueError("--scale must be positive")
    if reuse:
        state = json.loads((kept / STATE).read_text())
        data = DataSet.restore(state["data"])
        before = {name: Figure(**figure) for name, figure in state["small"].items()}
        report("national: data set (kept)", data.scale, "x", data.describe())
    else:
        data, before = _load(report, scale, kept)
    after = Measurements(data).all()
    _report(report, before, after)
    report("national: database size", data.database_bytes() / 2**30, "GiB", "")


def _load(report, scale: float, kept: Path | None) -> tuple[DataSet, dict[str, Figure]]:
    """The small data set, measured; then the national one loaded and settled."""
    from django.core.management import call_command

    small = min(SMALL, scale / 10)
    call_command("seed_demo", persons=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    data = DataSet(scale)
    report("national: data set", scale, "x", data.describe())
    timings = data.load_to(small)
    _refresh_statistics()
    _settle()
    before = Measurements(data).all()
    started = time.perf_counter()
    timings = data.load_to(scale)
    for what, seconds in timings.items():
        report(f"national: load {what}", seconds, "s", "(setup)")
    report("national: load, total", time.perf_counter() - started, "s", "(setup)")
    # The load wrote history into months the summary had already counted: as after any
    # import of history, the summary is rebuilt (refresh_statistics --rebuild).
    seconds = _refresh_statistics(rebuild=True)
    report("national: summary rebuild (timer), whole history", seconds, "s", "")
    sealed, volumes = _settle(rebuild=True)
    report("national: seal of the load's change history", sealed, "s", "(setup)")
    report("national: review's volume summary rebuild (timer), whole history", volumes, "s", "")
    if kept is not None:
        state = {"data": data.state(), "small": {k: asdict(v) for k, v in before.items()}}
        (kept / STATE).write_text(json.dumps(state, indent=1))
    return data, before


def _report(report, before: dict[str, Figure], after: dict[str, Figure]) -> None:
    for name, small_figure in before.items():
        large = after[name]
        report(f"national: {name}, small data set", small_figure.wall_ms, "ms", "")
        report(f"national: {name}, national", large.wall_ms, "ms", "")
        report(f"national: {name}, ratio", large.wall_ms / small_figure.wall_ms, "x", "<= 2x")
        # CPU time of this process: what a loaded machine distorts least.
        report(f"national: {name}, CPU, small data set", small_figure.cpu_ms, "ms", "")
        report(f"national: {name}, CPU, national", large.cpu_ms, "ms", "")
        report(
            f"national: {name}, CPU ratio", large.cpu_ms / max(small_figure.cpu_ms, 0.001), "x", ""
        )
        report(f"national: {name}, round trips, small data set", small_figure.round_trips, "", "")
        report(f"national: {name}, round trips, national", large.round_trips, "", "")


def _refresh_statistics(*, rebuild: bool = False) -> float:
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("refresh_statistics", *(["--rebuild"] if rebuild else []), stdout=io.StringIO())
    return time.perf_counter() - start


def _settle(*, rebuild: bool = False) -> tuple[float, float]:
    """After a load, what the timers and the sealer do with an import before the next day's
    work: seal the queued change history of the loaded persons (a seal of 100,000s of
    entries, which the sealer thread would otherwise run while the operations are
    measured, in this process), then count the log review's volume summary (``manage.py
    audit summarise``; ``--rebuild`` after an import of past events). The seconds of each."""
    from django.core.management import call_command

    from audit.services import seal_now

    start = time.perf_counter()
    seal_now()
    sealed = time.perf_counter() - start
    start = time.perf_counter()
    call_command("audit", "summarise", *(["--rebuild"] if rebuild else []), stdout=io.StringIO())
    return sealed, time.perf_counter() - start


# --- Measuring --------------------------------------------------------------------------------


@dataclass
class Figure:
    wall_ms: float
    cpu_ms: float
    round_trips: float


class _RoundTrips:
    """Counts the statements sent on every database alias."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _figure(func: Callable[[], object], runs: int = RUNS, *, warm: bool = True) -> Figure:
    walls, cpus, trips = [], [], []
    if warm:
        func()  # warm: connections, caches of compiled templates
    for _ in range(runs):
        counter = _RoundTrips()
        wrappers = [c.execute_wrapper(counter) for c in connections.all()]
        for wrapper in wrappers:
            wrapper.__enter__()
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            func()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
        trips.append(counter.count)
    return Figure(
        statistics.median(walls) * 1000, statistics.median(cpus) * 1000, statistics.median(trips)
    )


@dataclass
class Operation:
    """One measured operation: ``func`` run ``runs`` times (after one unmeasured run when
    ``warm``)."""

    func: Callable[[], object]
    runs: int = RUNS
    warm: bool = True


class Measurements:
    def __init__(self, data: DataSet) -> None:
        self.data = data

    def all(self) -> dict[str, Figure]:
        return {
            name: _figure(operation.func, operation.runs, warm=operation.warm)
            for name, operation in self.operations().items()
        }

    def operations(self) -> dict[str, Operation]:
        """The operations in the order they are measured (``all``; ``benchmarks.explain_national``
        runs them once each to show their statements' plans)."""
        from django.core.cache import cache
        from django.test import Client

        from casework import selectors
        from casework.models import User

        social = User.objects.get(username="anna.social")
        auditor = User.objects.get(username="greta.granskare")
        steering = User.objects.get(username="stig.styrgrupp")
        case_id = _a_case_of(social)
        operations = {}

        client = Client()
        client.force_login(social)
        operations["case page"] = Operation(lambda: _ok(client.get(f"/arenden/fall/{case_id}/")))
        operations["task inbox"] = Operation(lambda: _ok(client.get("/arenden/inbox/")))

        rng = random.Random(20)
        loaded = self.data.loaded["persons"]
        present = [self.data.numbers[rng.randrange(loaded)] for _ in range(RUNS + 1)]
        wanted = iter(present * 2)

        def lookup():
            number = next(wanted)
            found = selectors.find_person(
                user=social, purpose="benchmark", personnummer=f"{number[2:8]}-{number[8:]}"
            )
            assert found is not None

        operations["personnummer lookup"] = Operation(lookup)

        audit = Client()
        audit.force_login(auditor)
        month_end = self.data.now.date().replace(day=1)
        month_start = (month_end - datetime.timedelta(days=1)).replace(day=1)
        period = {"date_from": month_start.isoformat(), "date_to": month_end.isoformat()}
        person = PERSON_ID.format(rng.randrange(loaded))
        username = self.data.users[rng.randrange(len(self.data.users))][1]
        operations["auditor search by person, a month"] = Operation(
            lambda: _ok(audit.get("/granskning/", {**period, "person": person}))
        )
        operations["auditor search by user, a month"] = Operation(
            lambda: _ok(audit.get("/granskning/", {**period, "username": username}))
        )
        # The first review of the month (cold: the month's pages not yet read since the
        # load), then the median of three after it, as the other operations.
        review = lambda: _ok(audit.get("/granskning/loggkontroll/", period))  # noqa: E731
        operations["log review, a month, first run"] = Operation(review, runs=1, warm=False)
        operations["log review, a month"] = Operation(review, runs=3, warm=False)

        dashboard = Client()
        dashboard.force_login(steering)
        year = {"period": str(self.data.now.year)}

        def first_render():
            cache.clear()
            _ok(dashboard.get("/statistik/", year))

        operations["statistics, first render"] = Operation(first_render, runs=3)
        operations["statistics dashboard"] = Operation(
            lambda: _ok(dashboard.get("/statistik/", year))
        )
        return operations


def _a_case_of(user) -> str:
    """An open demo SIG case on ``user``'s team (the page a social worker opens)."""
    from casework.models import Case

    case = (
        Case.objects.filter(memberships__user=user, programme="sig", closed_at__isnull=True)
        .order_by("opened_at")
        .first()
    )
    assert case is not None, "seed_demo made no SIG case for the social worker"
    return str(case.pk)


def _ok(response) -> None:
    assert response.status_code == 200, (response.status_code, response.get("Location"))
