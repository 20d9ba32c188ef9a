"""The xdist workers share the migrating of their test databases.

Every worker needs the same migrated databases (``default`` and ``keystore``), and
migrating one is ~15 s of Python CPU (Django renders the migration states; the SQL is a
small part). Without sharing, each worker migrates both, one after the other. Here a
worker, at its first test database, claims its share of the aliases (a file lock an
alias, starting at its own place in the sorted list, so two workers claim two different
aliases), migrates those into its own test databases and copies each into a template
database. For any other alias it takes the lock when the claimant lets it go and creates
its test database from that template (``CREATE DATABASE … TEMPLATE``), or migrates it
itself if no worker had claimed it (or the template could not be made). With two workers
and two aliases, each migrates one, at the same time.

Only under pytest-xdist with two workers or more and without ``--reuse-db``. A template is
named after the run (xdist's ``testrunuid``), so it is never a stale one, and is dropped
once every other worker has copied it or ended.
"""

from __future__ import annotations

import fcntl
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.db import connections
from django.db.backends.postgresql.creation import DatabaseCreation


@dataclass
class _Plan:
    worker: int
    workers: int
    run: str
    aliases: list[str] = field(default_factory=list)
    made: dict[str, str] = field(default_factory=dict)  # alias -> this worker's test database
    templates: list[str] = field(default_factory=list)  # the aliases it made the template of
    claimed: bool = False

    @property
    def folder(self) -> Path:
        path = Path(tempfile.gettempdir()) / f"samverkan-test-templates-{self.run}"
        path.mkdir(exist_ok=True)
        return path

    def template(self, alias: str) -> str:
        return f"test_template_{self.run[:16]}_{alias}"[:63]

    @contextmanager
    def lock(self, alias: str, *, wait: bool) -> Iterator[bool]:
        """The right to make ``alias``'s template (held while it is made); ``False`` if
        another worker holds it and ``wait`` is not asked."""
        with open(self.folder / f"{alias}.lock", "w") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True


# How long a worker waits at its end for the others to copy its templates.
_WAIT_SECONDS = 600.0

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
        alias = self.connection.alias
        if plan is None or keepdb or serialize or alias not in plan.aliases:
            return create_test_db(self, verbosity, autoclobber, serialize, keepdb)

        def make(alias: str) -> None:
            plan.made[alias] = _make(plan, alias, create_test_db, verbosity, autoclobber)

        if not plan.claimed:
            # This worker's share first (whichever alias Django asks for first), starting
            # at its own place in the list: each worker migrates a different alias at once.
            plan.claimed = True
            first = plan.worker % len(plan.aliases)
            share = -(-len(plan.aliases) // plan.workers)
            for other in plan.aliases[first:] + plan.aliases[:first]:
                if len(plan.made) < share:
                    with plan.lock(other, wait=False) as mine:
                        if mine:
                            make(other)
        if alias not in plan.made:
            with plan.lock(alias, wait=True):
                make(alias)
        return plan.made[alias]

    DatabaseCreation.create_test_db = shared_create_test_db


def _make(plan: _Plan, alias: str, create_test_db, verbosity, autoclobber) -> str:
    """This worker's test database for ``alias`` (under ``alias``'s lock): a copy of the
    template if another worker made it, else migrated here and made the template."""
    marker = plan.folder / alias
    creation = connections[alias].creation
    if marker.with_suffix(".ready").exists():
        return _copy(plan, creation, verbosity, autoclobber)
    if marker.with_suffix(".failed").exists():
        return create_test_db(creation, verbosity, autoclobber, False, False)
    return _build(plan, alias, create_test_db, verbosity, autoclobber)


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
            plan.templates.append(alias)
            break
    connection.ensure_connection()
    return name


def finish() -> None:
    """Drop the templates this worker made, if the last copy did not drop them already,
    once every other worker has copied them or ended without (no test of its used the
    database), so none outlives the run (``done``)."""
    if _PLAN is None:
        return
    others = {str(worker) for worker in range(_PLAN.workers)} - {str(_PLAN.worker)}
    for alias in _PLAN.templates:
        deadline = time.monotonic() + _WAIT_SECONDS
        while time.monotonic() < deadline and not others <= _finished(alias):
            time.sleep(0.5)
        template = connections[alias].ops.quote_name(_PLAN.template(alias))
        try:
            with connections[alias].creation._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {template}")
        except Exception:  # noqa: S110 (a copy still being made: it is the last one's to drop)
            pass


def done() -> None:
    """This worker's session has ended: it copies no template any more."""
    if _PLAN is not None:
        with (_PLAN.folder / "done").open("a") as file:
            file.write(f"{_PLAN.worker}\n")


def _finished(alias: str) -> set[str]:
    """The workers that have copied ``alias``'s template or ended."""
    assert _PLAN is not None
    paths = (_PLAN.folder / f"{alias}.copies", _PLAN.folder / "done")
    return {worker for path in paths if path.exists() for worker in path.read_text().split()}


def _copy(plan: _Plan, creation, verbosity, autoclobber) -> str:
    """``create_test_db`` with the template in place of the migrations."""
    connection = creation.connection
    alias = connection.alias
    test_settings = connection.settings_dict["TEST"]
    previous = test_settings.get("TEMPLATE")
    test_settings["TEMPLATE"] = plan.template(alias)
    # Under the alias's lock (``_Plan.lock``): one copy at a time, as PostgreSQL refuses a
    # template that another session is reading.
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
