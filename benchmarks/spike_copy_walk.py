"""Spike (issue 20, session 19): CPU per event of a bare COPY-stream walk against `audit verify`.

Run: DATABASE_URL=… python manage.py shell -c "import benchmarks.spike_copy_walk as s; s.main()"
"""

from __future__ import annotations

import hashlib
import resource
import select
import statistics
import time

import psycopg
from django.db import connection
from psycopg import pq

from benchmarks.measure import Measured

CHUNK = 5000
ENTRY_PREFIX = b"samverkan-audit-entry-v2\naccess\n"
CHAIN_TAG = b"samverkan-audit-chain-v2\n"

TS_TOCHAR = "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"

ENTRY_COLUMNS_RAW = (
    "id, occurred_at, username, organisation_name, roles, action, object_type, object_id, "
    "person_id, fields, purpose, legal_basis, outcome, request_id, host(client_address), "
    "details, user_id"
)
ENTRY_COLUMNS_TOCHAR = ENTRY_COLUMNS_RAW.replace("occurred_at", TS_TOCHAR.format(c="occurred_at"))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def copy_lines(pgconn, sql: bytes):
    """Each line of ``COPY … TO STDOUT`` (bytes) from libpq, waiting on the socket (GIL released)."""
    pgconn.send_query(sql)
    result = pgconn.get_result()
    if result.status != pq.ExecStatus.COPY_OUT:
        raise RuntimeError(result.get_error_message())
    get, consume, fileno = pgconn.get_copy_data, pgconn.consume_input, pgconn.socket
    while True:
        size, line = get(1)
        if size > 0:
            yield line.tobytes()
        elif size == 0:
            select.select([fileno], [], [])
            consume()
        else:
            break
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise RuntimeError(result.get_error_message())


def bare_walk(dsn: str, *, tochar: bool) -> int:
    sha256 = hashlib.sha256
    columns = ENTRY_COLUMNS_TOCHAR if tochar else ENTRY_COLUMNS_RAW
    sealed = TS_TOCHAR.format(c="sealed_at") if tochar else "sealed_at"
    links_sql = (
        f"COPY (SELECT position, source, entry_id, {sealed}, entry_hash, chain_hash "
        "FROM audit_chainlink WHERE position BETWEEN {a} AND {b} ORDER BY position) TO STDOUT"
    )
    entries_sql = (
        f"COPY (SELECT {columns} FROM audit_accessevent WHERE id BETWEEN {{a}} AND {{b}}) TO STDOUT"
    )
    count = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'")
        cur.execute("SELECT max(position) FROM audit_chainlink")
        last = cur.fetchone()[0]
        previous = b"\0" * 32
        start = 1
        while start <= last:
            end = min(last, start + CHUNK - 1)
            links = list(copy_lines(conn.pgconn, links_sql.format(a=start, b=end).encode()))
            first_id = int(bytes(links[0]).split(b"\t", 3)[2])
            last_id = int(bytes(links[-1]).split(b"\t", 3)[2])
            digests = {}
            sql = entries_sql.format(a=min(first_id, last_id), b=max(first_id, last_id)).encode()
            for line in copy_lines(conn.pgconn, sql):
                digests[line[: line.index(b"\t")]] = sha256(ENTRY_PREFIX + line).digest()
            for line in links:
                head = line[:-130]
                entry_digest = digests[head.split(b"\t", 3)[2]]
                ok = entry_digest.hex().encode() == line[-130:-66]
                previous = sha256(CHAIN_TAG + previous + head + entry_digest).digest()
                count += 1 + 0 * ok
            start = end + 1
    return count


def _measure(label, func, runs=3):
    cpus, dbs, walls, n = [], [], [], 0
    for _ in range(runs):
        before = _cpu()
        with Measured() as m:
            n = func()
        cpus.append(_cpu() - before)
        dbs.append(m.db_cpu)
        walls.append(m.wall)
    cpu, db, wall = statistics.median(cpus), statistics.median(dbs), statistics.median(walls)
    print(
        f"{label}: {n} events, wall {wall:.2f}s ({n / wall:,.0f}/s), client {cpu / n * 1e6:.2f} µs, "
        f"db {db / n * 1e6:.2f} µs, total {(cpu + db) / n * 1e6:.2f} µs/event "
        f"[client {', '.join(f'{c / n * 1e6:.2f}' for c in cpus)}; db {', '.join(f'{d / n * 1e6:.2f}' for d in dbs)}]"
    )


def main(rounds: int = 2, only_bare: bool = False) -> None:
    from audit import integrity

    dsn = connection.settings_dict
    conninfo = f"host={dsn['HOST']} port={dsn['PORT']} dbname={dsn['NAME']} user={dsn['USER']}"

    def verify(workers):
        def run():
            result = integrity.verify(directory=None, seal_first=False, workers=workers)
            assert result.ok, result.finding
            return result.entries

        return run

    for _ in range(rounds):
        if not only_bare:
            _measure("verify, 1 process", verify(1))
        _measure("bare COPY walk, raw timestamps", lambda: bare_walk(conninfo, tochar=False))
        _measure("bare COPY walk, to_char timestamps", lambda: bare_walk(conninfo, tochar=True))
        if only_bare:
            continue
        _measure("verify, 2 processes", verify(2))
    print("load", __import__("os").getloadavg())
    time.sleep(0)
