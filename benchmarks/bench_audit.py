"""Access log: append throughput, verification speed, cost of logging a consultation.

* 8 writer *processes* (as gunicorn workers are), each appending consultation
  events, one transaction per event, each sealed into the hash chain after its
  commit — the slowest, most realistic path. The chain is verified afterwards.
* ``integrity.verify`` over a log of 1 000 000 entries (recompute every entry
  hash and every link), in one process and in parallel ranges.
* ``casework.selectors.get_person_details`` (decrypt one field + its access-log
  event + sealing) against the very same call with the event switched off.

Each figure is the median of several runs.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
import uuid

from django.core.management import call_command
from django.db import connection, connections

from benchmarks.__main__ import median_of
from benchmarks.measure import DatabaseCpu, Measured

WRITERS = 8
EVENTS_PER_WRITER = 400
APPEND_RUNS = 3
VERIFY_ENTRIES = 1_000_000
VERIFY_RUNS = 3
CONSULTATIONS = 200
CONSULT_RUNS = 5


def run(report) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    _append(report)
    _verify(report)
    _consultation(report)


# --- Append -------------------------------------------------------------------------------


def _writer(barrier, number: int, user_id: int) -> None:
    from audit.services import Action, record_event
    from casework.models import User

    connections.close_all()  # never share the parent's sockets
    try:
        user = User.objects.get(pk=user_id)
        barrier.wait()
        for index in range(EVENTS_PER_WRITER):
            record_event(
                action=Action.CONSULT,
                user=user,
                object_type="casework.person",
                person_id=uuid.uuid4(),
                fields=["name", "phone"],
                purpose="Förbereda nätverksmöte",
                legal_basis="samtycke",
                details={"writer": number, "index": index},
            )
    finally:
        connections.close_all()


def _append(report) -> None:
    from audit import integrity
    from audit.models import AccessEvent
    from casework.models import User

    user_id = User.objects.get(username="anna.social").pk
    # A reused log (``--reuse``) holds an earlier run's writers' events: count the new ones.
    before = AccessEvent.objects.filter(details__has_key="writer").count()
    context = multiprocessing.get_context("fork")
    rates = []
    for _ in range(APPEND_RUNS):
        connections.close_all()
        barrier = context.Barrier(WRITERS + 1)
        workers = [
            context.Process(target=_writer, args=(barrier, n, user_id)) for n in range(WRITERS)
        ]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        assert all(worker.exitcode == 0 for worker in workers)
        rates.append(WRITERS * EVENTS_PER_WRITER / elapsed)
    result = integrity.verify(directory=None)
    assert result.ok, result.finding
    assert AccessEvent.objects.filter(details__has_key="writer").count() - before == (
        APPEND_RUNS * WRITERS * EVENTS_PER_WRITER
    )
    report(
        "audit: append, 8 writer processes (commit each)",
        statistics.median(rates),
        "events/s",
        ">= 2000 events/s",
    )


# --- Verify -------------------------------------------------------------------------------


def _fill(entries: int) -> None:
    """Bulk-insert consultation events (the queue trigger fires per row), then seal them."""
    from audit import integrity
    from audit.integrity import blocks

    with connection.cursor() as cursor:
        missing = entries - blocks.last_position(cursor)
    if missing <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_accessevent (occurred_at, user_id, username, organisation_name, "
            "roles, action, object_type, object_id, person_id, fields, purpose, legal_basis, "
            "outcome, request_id, client_address, details) "
            "SELECT now() - (n || ' seconds')::interval, NULL, 'anna.social', "
            "'Socialförvaltningen, Örebro kommun', 'socialsekreterare', 'consult', "
            "'casework.person', md5(n::text), gen_random_uuid(), '[\"name\", \"phone\"]', "
            "'Förbereda nätverksmöte', 'samtycke', 'allowed', md5(n::text), '10.0.0.1', "
            "jsonb_build_object('case', n, 'candidates', 1) FROM generate_series(1, %s) AS n",
            [missing],
        )
    start = time.perf_counter()
    sealed = integrity.seal()
    elapsed = time.perf_counter() - start
    return sealed / elapsed


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the verifier's worker processes)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _verify(report) -> None:
    from audit import integrity
    from audit.management.commands.audit import DEFAULT_VERIFY_WORKERS

    seal_rate = _fill(VERIFY_ENTRIES)
    if seal_rate:
        report("audit: seal a backlog into the chain", seal_rate, "events/s", "")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_accessevent")
        cursor.execute("ANALYZE audit_chainlink")
        cursor.execute("ANALYZE audit_chainblock")
    # The machine is shared: besides wall time, the verifier's own CPU per event and the
    # database sessions' (both share the cores: together they bound the rate).
    for label, processes in (
        ("1 process", 1),
        (f"default settings ({DEFAULT_VERIFY_WORKERS} processes)", DEFAULT_VERIFY_WORKERS),
    ):
        results, cpu, db_cpu, load = [], [], [], []

        def verify(processes=processes, results=results, cpu=cpu, db_cpu=db_cpu, load=load):
            before = _cpu_seconds()
            with Measured() as measured:
                results.append(
                    integrity.verify(directory=None, seal_first=False, workers=processes)
                )
            cpu.append(_cpu_seconds() - before)
            db_cpu.append(measured.db_cpu)
            load.append(measured.load)

        seconds = median_of(verify, runs=VERIFY_RUNS)
        assert all(result.ok for result in results)
        entries = results[-1].entries
        report(
            f"audit: verify {entries} entries, {label}",
            entries / seconds,
            "events/s",
            ">= 250000 events/s (default settings, 2 cores)",
        )
        report(
            f"audit: verify, {label}, verifier CPU per event",
            statistics.median(cpu) / entries * 1e6,
            "us",
            "(client side only)",
        )
        report(
            f"audit: verify, {label}, database CPU per event",
            statistics.median(db_cpu) / entries * 1e6,
            "us",
            "(the database sessions)",
        )
        report(f"audit: verify, {label}, load average (1 min)", max(load), "", "(shared machine)")


# --- Consultation -------------------------------------------------------------------------


def _consultation(report) -> None:
    from casework import selectors, services
    from casework.models import User

    user = User.objects.get(username="anna.social")
    purpose = "Förbereda nätverksmöte"
    # Found again in a reused database (``--reuse``), registered in a new one.
    person = services.find_or_create_person(
        user=user,
        purpose=purpose,
        name="Zelmira Kvastbinder",
        personnummer="19880320-0016",
        phone="070-174 06 42",
    )
    # Switch the event off where the selector looks it up (its own module).
    module = sys.modules[selectors.get_person_details.__module__]
    real_record_event = module.record_event

    def consult() -> None:
        for _ in range(CONSULTATIONS):
            selectors.get_person_details(
                user=user, purpose=purpose, person_id=person.pk, fields=["name"]
            )

    def without_event() -> None:
        module.record_event = lambda **kwargs: None
        try:
            consult()
        finally:
            module.record_event = real_record_event

    # The fill's seal emptied a queue of a million rows. Autovacuum (which a deployment
    # runs: README) would clear them at once; left, they made every seal below scan their
    # 50 MB (30 ms a seal, whatever the chain format), on the cores the consultations use.
    # This machine's server runs without autovacuum, so the bench does its work here.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM audit_pendingentry")
    # Besides wall time, the CPU of this process (the sealer's thread included) and of the
    # database sessions (the sealer's included): the wall time of an event is mostly its
    # commit's wait for the disk, which follows the machine, not the code (ADR 0031).
    database = DatabaseCpu()

    def timed(func) -> tuple[float, float, float]:
        served, started = database.spent(), time.process_time()
        wall = median_of(func, runs=1)
        return wall, time.process_time() - started, database.spent() - served

    logged, bare = [], []
    for _ in range(CONSULT_RUNS):  # alternate, so both see the same machine state
        logged.append(timed(consult))
        bare.append(timed(without_event))
    logged_ms, cpu_ms, db_ms = (
        statistics.median(column) / CONSULTATIONS * 1000 for column in zip(*logged, strict=True)
    )
    bare_ms, bare_cpu_ms, bare_db_ms = (
        statistics.median(column) / CONSULTATIONS * 1000 for column in zip(*bare, strict=True)
    )
    report("audit: consultation, decrypt + event + seal", logged_ms, "ms", "")
    report("audit: consultation, decrypt alone", bare_ms, "ms", "(baseline)")
    report("audit: cost of the event per consultation", logged_ms - bare_ms, "ms", "")
    report("audit: consultation with event vs without", logged_ms / bare_ms, "x", "")
    report("audit: cost of the event, process CPU", cpu_ms - bare_cpu_ms, "ms", "(with the seal)")
    report("audit: cost of the event, database CPU", db_ms - bare_db_ms, "ms", "(with the seal)")
