"""What the benchmarks against a live server share: gunicorn on 127.0.0.1, concurrent
HTTP clients, percentiles and the CPU the server's processes used.

Not a benchmark module itself (``__main__.MODULES`` does not list it): ``bench_web``
(the task inbox and the case list), ``bench_sig`` (the case page) and ``bench_api`` (the
integration API) use it.

The server runs ``gunicorn config.wsgi`` as README's deployment section does, with
gunicorn's default *sync* workers (one request at a time each, no keep-alive), as many as
gunicorn recommends (:func:`default_workers`: 2 x cores + 1, 5 on 2 cores; README's
example names 4), ``DEBUG`` off (the cached template loader, as in production) and
persistent database connections (``CONN_MAX_AGE``), as a deployment runs them.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent

# One request of a load: method, path, headers, body.
Request = tuple[str, str, dict[str, str], bytes | None]


def database_url(alias: str) -> str:
    """A URL for the test database of ``alias`` (a socket directory for the embedded server)."""
    config = connections[alias].settings_dict
    host = config["HOST"] or ""
    socket_dir = host.startswith("/")
    password = quote(config.get("PASSWORD") or "", safe="")
    user = quote(config["USER"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return (
        f"postgres://{credentials}{'' if socket_dir else host}:{config['PORT'] or 5432}/"
        f"{config['NAME']}" + (f"?host={quote(host)}" if socket_dir else "")
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def default_workers() -> int:
    """gunicorn's recommendation: two workers a core, and one."""
    return 2 * (os.cpu_count() or 1) + 1


class Server:
    """gunicorn serving the benchmark databases on 127.0.0.1; stopped with SIGTERM."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", prefix="samverkan-bench-gunicorn-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url("default"),
            "KEYSTORE_DATABASE_URL": database_url("keystore"),
            "SAMVERKAN_KEYRING_FILE": str(settings.KEYRING_FILE),
            "DEBUG": "false",
            # Persistent connections, as a production deployment runs (or a pooler).
            "CONN_MAX_AGE": "600",
        }
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--access-logfile",
                "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log.name}")
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not answer in 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their request
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def request(port: int, method: str, path: str, *, headers=None, body=None):
    """One request on a connection of its own: (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        return send(connection, (method, path, headers or {}, body))
    finally:
        connection.close()


def cookies(headers) -> dict[str, str]:
    """The cookies a response's ``Set-Cookie`` headers set: {name: value}."""
    jar = SimpleCookie()
    for name, value in headers:
        if name.lower() == "set-cookie":
            jar.load(value)
    return {key: morsel.value for key, morsel in jar.items()}


def login(port: int, username: str, password: str) -> str:
    """Log in through the login form; return the session cookie's value."""
    status, headers, body = request(port, "GET", "/konto/logga-in/")
    assert status == 200, status
    csrf_cookie = cookies(headers)[settings.CSRF_COOKIE_NAME]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    status, headers, _body = request(
        port,
        "POST",
        "/konto/logga-in/",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf_cookie}",
        },
        body=urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}),
    )
    assert status == 302, f"login of {username} answered {status}"
    return cookies(headers)[settings.SESSION_COOKIE_NAME]


def page_views(sessions: list[str], path: str) -> list[Callable[[], Request]]:
    """For each session cookie: a callable making the request of ``path`` in that session."""

    def view(session: str):
        call = ("GET", path, {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}, None)
        return lambda: call

    return [view(session) for session in sessions]


def send(connection: http.client.HTTPConnection, call: Request):
    """One request on ``connection`` (kept alive while the server keeps it; http.client
    opens it again when the server closed it): (status, headers, body)."""
    method, path, headers, body = call
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheaders(), response.read()


def hammer(
    port: int,
    clients: list[Callable[[], Request]],
    seconds: float,
    *,
    think: tuple[float, float] | None = None,
    expect: Iterable[int] = (200,),
):
    """Each client thread sends the requests its callable makes, one after the other on
    a connection of its own, until the deadline; return the latencies of the answers with
    an ``expect``-ed status, the number of other answers, and the elapsed seconds.

    ``think``: (low, high) seconds each client waits, uniformly at random, after each
    request (``None``: no pause, saturation).
    """
    expected = frozenset(expect)
    latencies: list[list[float]] = [[] for _ in clients]
    failures = [0] * len(clients)
    barrier = threading.Barrier(len(clients) + 1)
    deadline = [0.0]

    def client(number: int, make: Callable[[], Request]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        pause = random.Random(number)  # think time, not a secret
        barrier.wait()
        if think:  # users do not arrive in lockstep
            time.sleep(pause.uniform(0, think[1]))
        try:
            while time.perf_counter() < deadline[0]:
                call = make()
                start = time.perf_counter()
                status, _headers, _body = send(connection, call)
                elapsed = time.perf_counter() - start
                if status in expected:
                    latencies[number].append(elapsed)
                else:
                    failures[number] += 1
                if think:
                    time.sleep(pause.uniform(*think))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, args=(n, make), daemon=True)
        for n, make in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return [x for per_client in latencies for x in per_client], sum(failures), elapsed


def server_processes(master: int) -> dict[str, list[int]]:
    """The gunicorn workers and the PostgreSQL backends serving them (Linux, local server)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return {"app": [], "database": []}
    names = [connections[alias].settings_dict["NAME"] for alias in ("default", "keystore")]
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
            [names],
        )
        backends = [row[0] for row in cursor.fetchall()]
    own = set()
    for alias in ("keystore",):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own.add(cursor.fetchone()[0])
    return {
        "app": [int(pid) for pid in children],
        "database": [b for b in backends if b not in own],
    }


def cpu_seconds(processes: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds of each side's processes so far (0 for one that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {}
    for side, pids in processes.items():
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        totals[side] = total / tick
    return totals


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Load:
    """What a load measured: the latencies of the expected answers, the other answers,
    the elapsed seconds and the CPU seconds each side of the server used (``app``: the
    gunicorn workers, ``database``: their PostgreSQL backends; empty when unknown)."""

    latencies: list[float]
    failures: int
    elapsed: float
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def ms(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000

    def cpu_ms(self, side: str) -> float:
        """CPU milliseconds of ``side`` per answered request, whatever else the machine
        runs: 2 cores serve at most 2000 / (app + database ms) requests a second."""
        return self.cpu[side] / len(self.latencies) * 1000


def measure(server: Server, clients: list[Callable[[], Request]], seconds: float, **options):
    """:func:`hammer` against ``server``, with the CPU its processes used meanwhile."""
    processes = server_processes(server.process.pid)
    before = cpu_seconds(processes)
    latencies, failures, elapsed = hammer(server.port, clients, seconds, **options)
    after = cpu_seconds(processes)
    known = processes["app"] and processes["database"]
    cpu = {side: after[side] - before[side] for side in before} if known else {}
    return Load(latencies, failures, elapsed, cpu)
