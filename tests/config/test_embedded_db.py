"""The embedded PostgreSQL used when no DATABASE_URL is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.embedded_db import EmbeddedDatabaseError, start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pgdata(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedded") / "pgdata"
    yield folder


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
