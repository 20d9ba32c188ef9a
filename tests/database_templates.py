"""The xdist workers share the migrating of their test databases.

Every worker needs the same two migrated databases (``default`` and ``keystore``), and
migrating one is ~15 s of Python CPU (Django renders the migration states; the SQL is a
small part). Without sharing, each worker migrates both, one after the other. Here the
aliases are dealt out: worker *i* migrates the aliases *i*, *i + n*, … of the sorted list
into its own test database, copies it into a template database, and every other worker
creates its test database from that template (``CREATE DATABASE … TEMPLATE``) instead of
migrating. With two workers and two aliases, each migrates one, at the same time.

Only under pytest-xdist with two workers or more and without ``--reuse-db``; a worker that
does not see the template ready (its builder failed) migrates the database itself. A
template is named after the run (xdist's ``testrunuid``), so it is never a stale one, and
is dropped once every other worker has made its copy.
"""

from __future__ import annotations

import fcntl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.db import connections
from django.db.backends.postgresql.creation import DatabaseCreation

# How long a worker waits for another's template before it migrates the database itself.
_WAIT_SECONDS = 1800.0


@dataclass
class _Plan:
    worker: int
    workers: int
    run: str
    aliases: list[str] = field(default_factory=list)
    built: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        path = Path(tempfile.gettempdir()) / f"samverkan-test-templates-{self.run}"
        path.mkdir(exist_ok=True)
        return path

    def builder(self, alias: str) -> int:
        return self.aliases.index(alias) % self.workers

    def template(self, alias: str) -> str:
        return f"test_template_{self.run[:16]}_{alias}"[:63]


_PLAN: _Plan | None = None


def configure(config) -> None:
    """Under xdist (``config.workerinput``) with two workers or more, share the migrating."""
    global _PLAN
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or workerinput.get("workercount", 1) < 2:
        return
    _PLAN = _Plan(
        worker=int(workerinput["workerid"].removeprefix("gw")),
        workers=workerinput["workercount"],
        run=workerinput["testrunuid"],
    )
    create_test_db = DatabaseCreation.create_test_db

    def shared_create_test_db(self, verbosity=1, autoclobber=False, serialize=True, keepdb=False):
        plan = _PLAN
        if plan is None or keepdb or serialize or self.connection.alias not in plan.aliases:
            return create_test_db(self, verbosity, autoclobber, serialize, keepdb)
        # This worker's own share first, whichever alias Django asks for first.
        for alias in plan.aliases:
            if plan.builder(alias) == plan.worker and alias not in plan.built:
                plan.built[alias] = _build(plan, alias, create_test_db, verbosity, autoclobber)
        alias = self.connection.alias
        if alias in plan.built:
            return plan.built[alias]
        if _wait_for(plan, alias):
            return _copy(plan, self, verbosity, autoclobber)
        return create_test_db(self, verbosity, autoclobber, serialize, keepdb)

    DatabaseCreation.create_test_db = shared_create_test_db


def share(aliases) -> None:
    """The aliases whose test databases this session makes (mirrors excepted), the same
    list on every worker (they collect the same tests)."""
    if _PLAN is not None:
        _PLAN.aliases = sorted(
            alias for alias in aliases if not connections[alias].settings_dict["TEST"].get("MIRROR")
        )


def _build(plan: _Plan, alias: str, create_test_db, verbosity, autoclobber) -> str:
    """Migrate this worker's test database for ``alias`` and copy it into the template;
    if the copy fails, the other workers migrate theirs themselves."""
    connection = connections[alias]
    name = create_test_db(connection.creation, verbosity, autoclobber, False, False)
    marker = plan.folder / alias
    template = connection.ops.quote_name(plan.template(alias))
    connection.close()
    for attempt in range(3):
        try:
            with connection.creation._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {template}")
                cursor.execute(
                    f"CREATE DATABASE {template} TEMPLATE {connection.ops.quote_name(name)}"
                )
        except Exception as error:  # e.g. another session on the source for a moment
            if attempt == 2:
                marker.with_suffix(".failed").write_text(type(error).__name__)
            time.sleep(1)
        else:
            marker.with_suffix(".ready").touch()
            break
    connection.ensure_connection()
    return name


def finish() -> None:
    """Drop the templates this worker made, if a copy did not drop them already (its
    worker ended early), so none outlives the run."""
    if _PLAN is None:
        return
    for alias in _PLAN.built:
        copies = _PLAN.folder / f"{alias}.copies"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            not copies.exists() or len(copies.read_text().split()) < _PLAN.workers - 1
        ):
            time.sleep(0.5)
        template = connections[alias].ops.quote_name(_PLAN.template(alias))
        try:
            with connections[alias].creation._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {template}")
        except Exception:  # noqa: S110 (a copy still being made: it is the last one's to drop)
            pass


def _wait_for(plan: _Plan, alias: str) -> bool:
    marker = plan.folder / alias
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        if marker.with_suffix(".ready").exists():
            return True
        if marker.with_suffix(".failed").exists():
            return False
        time.sleep(0.2)
    return False


def _copy(plan: _Plan, creation, verbosity, autoclobber) -> str:
    """``create_test_db`` with the template in place of the migrations."""
    connection = creation.connection
    alias = connection.alias
    test_settings = connection.settings_dict["TEST"]
    previous = test_settings.get("TEMPLATE")
    test_settings["TEMPLATE"] = plan.template(alias)
    # One copy at a time: PostgreSQL refuses a template that another session is reading.
    with open(plan.folder / f"{alias}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            name = creation._create_test_db(verbosity, autoclobber, keepdb=False)
        finally:
            test_settings["TEMPLATE"] = previous
        copies = plan.folder / f"{alias}.copies"
        with copies.open("a") as done:
            done.write(f"{plan.worker}\n")
        if len(copies.read_text().split()) >= plan.workers - 1:
            with creation._nodb_cursor() as cursor:
                cursor.execute(
                    f"DROP DATABASE IF EXISTS {connection.ops.quote_name(plan.template(alias))}"
                )
    connection.close()
    connection.settings_dict["NAME"] = name
    from django.conf import settings

    settings.DATABASES[alias]["NAME"] = name
    call_command("createcachetable", database=alias)
    connection.ensure_connection()
    return name
