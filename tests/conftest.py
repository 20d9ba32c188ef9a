"""Shared fixtures: the demo organisations and one user per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.test.utils import override_settings
from django.urls import get_resolver
from pytest_django.fixtures import _get_databases_for_setup

from tests import database_templates, demo_seed

DEMO_PASSWORD = "samverkan-demo"

# The demo users ``seed_demo`` makes, one a role, in its order (the role matrices' columns;
# its second administrator aside).
DEMO_USERS = (
    "anna.social",
    "per.polis",
    "sara.samordnare",
    "alex.avhopp",
    "maja.avhopp",
    "lisa.skola",
    "fredrik.fritid",
    "stig.styrgrupp",
    "greta.granskare",
    "dina.dataskydd",
    "adam.admin",
)


def demo_users(*, but=()) -> tuple[str, ...]:
    """``DEMO_USERS`` but those named in ``but``, in the same order."""
    return tuple(username for username in DEMO_USERS if username not in but)


# A test whose transactions commit for real (threads with their own connections, a browser,
# a rollback under test), on all three databases. It ends with a flush, which the project's
# ``flush`` override performs on the append-only audit tables of a test database
# (docs/adr/0005-audit-log.md), and then puts back the rows the migrations made (roles,
# legal bases) for the tests after (``_committing_tests_leave_the_migrations_data``;
# ``serialized_rollback`` is Django's name for that promise).
COMMITTED_DB = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "keystore", "audit"]
)


def pytest_configure(config):
    """The committing code seals the chain itself, from the first database set-up on: no
    sealer thread outlives a test's database (``tests/audit/test_sealer.py`` tests it).

    Every test starts on the migrations' data, whatever ran before it on its worker: a
    committing test puts it back at its end (docs/adr/0034-fast-suite.md, session 12).

    Speed only (docs/adr/0034-fast-suite.md): the tests' connections commit without
    waiting for the WAL to reach the disk, a committing test's database is emptied
    with DELETE rather than TRUNCATE, and the xdist workers share the migrating of their
    test databases (``tests/database_templates.py``)."""
    from django.conf import settings

    settings.AUDIT_SEALER = "inline"
    database_templates.configure(config)
    _commit_without_waiting_for_the_disk(settings.DATABASES)
    _flush_test_databases_with_delete()
    _committing_tests_leave_the_migrations_data()


def _commit_without_waiting_for_the_disk(databases) -> None:
    """``synchronous_commit = off`` on every connection the tests open (before any is).

    A commit is as visible to the other connections as before; only its durability
    across a server crash is given up, which a test database does not need. The server's
    fsync stays on. Each alias gets an ``OPTIONS`` of its own (``audit`` copies
    ``default``'s)."""
    for settings_dict in databases.values():
        options = dict(settings_dict.get("OPTIONS") or {})
        if "synchronous_commit" not in options.get("options", ""):
            options["options"] = (options.get("options", "") + " -c synchronous_commit=off").strip()
        settings_dict["OPTIONS"] = options


def _flush_test_databases_with_delete() -> None:
    """``flush`` of a *test* database (after every ``COMMITTED_DB`` test) as DELETEs.

    Django's PostgreSQL ``flush`` is one ``TRUNCATE`` of every table, which gives each of
    the ~90 tables, its indexes and TOAST new files: seconds per flush, although the
    tables hold a few hundred rows. DELETE empties them the same way (sequences are not
    reset by either), under ``session_replication_role = replica`` as the project's
    ``flush`` does for TRUNCATE (audit/management/commands/flush.py): no triggers, so the
    append-only audit tables let it and foreign keys do not order it. Only on a database
    with Django's test prefix; anywhere else (and with ``reset_sequences``) Django's
    TRUNCATE runs unchanged, so ``flush`` of a real database still fails on the log."""
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        name = str(self.connection.settings_dict["NAME"])
        if not tables or reset_sequences or not name.startswith(TEST_DATABASE_PREFIX):
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [
            "SET LOCAL session_replication_role = replica",
            *(f"DELETE FROM {self.quote_name(table)}" for table in tables),  # noqa: S608
        ]

    DatabaseOperations.sql_flush = sql_flush


# What the migrations wrote (roles, legal bases, retention rules …), per database alias:
# table -> (its columns, its rows as COPY text). Taken once a worker's test databases
# are made (``django_db_setup`` below); the rows every test starts from.
_MIGRATIONS_DATA: dict[str, dict[str, tuple[str, bytes]]] = {}


def _flushed_tables(connection) -> list[str]:
    """The tables ``flush`` empties on ``connection`` (Django's ``sql_flush``)."""
    return sorted(
        connection.introspection.django_table_names(only_existing=True, include_views=False)
    )


def snapshot_migrations_data(alias: str) -> None:
    """Remember the rows of ``alias``'s tables as the migrations left them (``COPY … TO``)."""
    connection = connections[alias]
    tables: dict[str, tuple[str, bytes]] = {}
    with connection.cursor() as cursor:
        for table in _flushed_tables(connection):
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                [connection.ops.quote_name(table)],
            )
            columns = ", ".join(connection.ops.quote_name(name) for (name,) in cursor.fetchall())
            with cursor.copy(
                f"COPY (SELECT {columns} FROM {connection.ops.quote_name(table)}) TO STDOUT"  # noqa: S608
            ) as copy:
                rows = b"".join(bytes(chunk) for chunk in copy)
            if rows:
                tables[table] = (columns, rows)
    _MIGRATIONS_DATA[alias] = tables


def migrations_rows(table: str, alias: str = "default") -> bytes:
    """The rows the migrations left in ``alias``'s ``table`` (COPY text; ``b""``: none)."""
    _columns, rows = _MIGRATIONS_DATA[alias].get(table, ("", b""))
    return rows


def restore_migrations_data(alias: str) -> None:
    """Put the migrations' rows back into ``alias``'s flushed tables, as they were.

    ``COPY … FROM`` under ``session_replication_role = replica``: no trigger fires, so the
    rows come back as the migrations left them, with their ids, and nothing else is written
    (no change record, no access-generation bump, as after the migrations themselves).
    The sequences are untouched: the DELETE flush (``_flush_test_databases_with_delete``)
    did not reset them, so they are already past the restored ids."""
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for table, (columns, rows) in _MIGRATIONS_DATA[alias].items():
            with cursor.copy(
                f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN"
            ) as copy:
                copy.write(rows)


def _flush_and_restore(alias: str, *, allow_cascade: bool = False) -> None:
    """Empty ``alias``'s tables (the DELETE flush) and put the migrations' rows back."""
    call_command(
        "flush",
        database=alias,
        interactive=False,
        verbosity=0,
        reset_sequences=False,
        allow_cascade=allow_cascade,
        inhibit_post_migrate=True,
    )
    restore_migrations_data(alias)


def _committing_tests_leave_the_migrations_data() -> None:
    """Every test, rolled back or committing, starts on the migrations' data.

    Django's ``TransactionTestCase`` (pytest-django's ``transaction=True``) flushes at its
    end and, with ``serialized_rollback``, restores the migrations' data at the start of
    the *next committing* test only. pytest-django runs the rolled-back tests first, but
    with ``--dist worksteal`` a worker that has run committing tests can take rolled-back
    tests from the other's queue: they found no roles, no legal bases
    (docs/adr/0034-fast-suite.md, session 12). Here a committing test's teardown flushes
    and puts the migrations' rows back at once (``restore_migrations_data``), so the
    database between tests is always as the migrations left it, and its set-up has
    nothing to restore (Django's ORM restore, ~450 saves a test, is not run)."""
    from django.test import TransactionTestCase

    def _fixture_setup(cls):
        for alias in cls._databases_names(include_mirrors=False):
            if cls.reset_sequences:
                cls._reset_sequences(alias)
            if cls.fixtures:
                call_command("loaddata", *cls.fixtures, verbosity=0, database=alias)

    def _fixture_teardown(self):
        for alias in self._databases_names(include_mirrors=False):
            _flush_and_restore(alias, allow_cascade=self.available_apps is not None)

    TransactionTestCase._fixture_setup = classmethod(_fixture_setup)
    TransactionTestCase._fixture_teardown = _fixture_teardown


def pytest_sessionfinish(session):
    """This worker copies no template database any more (``database_templates.finish``)."""
    database_templates.done()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings, request):
    """pytest-django's test database names (one set a worker), and the aliases the
    workers share the migrating of (``tests/database_templates.py``)."""
    made, _serialized = _get_databases_for_setup(request.session.items)
    database_templates.share(made)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, request):
    """pytest-django's test databases, with the migrations' rows remembered
    (``snapshot_migrations_data``) for the committing tests' teardown."""
    from django.conf import settings

    # pytest-django makes test databases only for the aliases the collected tests use (its
    # own helper, of the pytest-django 4 the project installs): another alias still names
    # its real database.
    made, _serialized = _get_databases_for_setup(request.session.items)
    with django_db_blocker.unblock():
        for alias in settings.DATABASES:
            if alias in made and not connections[alias].settings_dict["TEST"].get("MIRROR"):
                snapshot_migrations_data(alias)
    yield
    with django_db_blocker.unblock():
        database_templates.finish()


@pytest.fixture(autouse=True)
def _load_urlconf():
    """Viewflow names its node URLs only once the URLconf is loaded."""
    get_resolver().url_patterns  # noqa: B018


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def test_keyring(tmp_path_factory):
    """A keyring made for this test run (never the developer's own key file)."""
    from django.conf import settings as django_settings

    from casework.crypto import keyring

    path = tmp_path_factory.mktemp("keys") / "keyring.json"
    keyring.generate(path)
    previous = django_settings.KEYRING_FILE
    django_settings.KEYRING_FILE = path
    yield path
    django_settings.KEYRING_FILE = previous


@pytest.fixture(autouse=True)
def _no_remembered_data_keys():
    """Each test starts with an empty data-key cache (keys of rolled-back tests are gone)."""
    from casework.crypto.keystore import forget_data_keys

    forget_data_keys()


@pytest.fixture(autouse=True)
def _no_kept_access():
    """Each test starts with empty access caches: a rolled-back test's access generation
    comes again in the next test, with other rows under it."""
    from casework import access_cache

    access_cache.clear_all()
    yield


@pytest.fixture(autouse=True)
def _no_demo_persons(settings):
    """``seed_demo`` registers no persons and no SIG cases unless a test asks for them
    (they need the key store), and no demo API clients (their change requests)."""
    settings.DEMO_PERSONS = 0
    settings.DEMO_SIG_CASES = False
    settings.DEMO_API_CLIENTS = False


@pytest.fixture
def demo(db, settings):
    """Run ``seed_demo`` and return the users by username.

    In a rolled-back test its rows are those of the worker's first ``seed_demo``, copied
    in (``tests/demo_seed.py``): the same rows a ``seed_demo`` of the test would write."""
    from casework.models import User

    settings.DEMO_PASSWORD = DEMO_PASSWORD
    demo_seed.seed(seed_demo, migrations_rows=migrations_rows)
    return {user.username: user for user in User.objects.all()}


@contextmanager
def committed_seed(
    django_db_blocker, build: Callable[[], object], *, copy_as: str | None = None, **overrides
) -> Iterator:
    """Run ``build`` (a seed) once, committed, outside any test; yield what it returns; at
    the end empty the databases back to what the migrations made (``empty_committed``).

    For a module's (or a class's) fixture whose tests only read the seed, or change it
    inside their own rolled-back transaction: the seed of every programme's demo cases is
    ~12,000 statements, built once instead of once a test (docs/adr/0034-fast-suite.md).
    The settings are the tests' (``_no_demo_persons``, MD5 hashing, the demo password)
    with ``overrides``.

    With ``copy_as`` (a name for the seed ``build`` makes; ``build`` returns nothing) the
    worker's first such seed is copied out and every later one under the same name and
    settings is that copy put back, committed (``demo_seed.committed``;
    ``tests/config/test_committed_copy.py``)."""
    settings_overrides = override_settings(
        **{
            "DEMO_PERSONS": 0,
            "DEMO_SIG_CASES": False,
            "DEMO_API_CLIENTS": False,
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
            **overrides,
        }
    )
    # No ``demo`` copies its rows in while this seed is committed (``tests/demo_seed.py``).
    demo_seed.committed_seeds += 1
    try:
        with django_db_blocker.unblock(), settings_overrides:
            from casework.models import Person

            assert not Person.objects.exists(), (
                "persons in the test database before a committed seed: the data of an "
                "interrupted run (its keys are of another keyring): run once with --create-db"
            )
            get_resolver().url_patterns  # noqa: B018 (viewflow names its node URLs then)
            try:
                if copy_as is None:
                    seeded = build()
                else:
                    seeded = demo_seed.committed(
                        copy_as,
                        build,
                        aliases=("default", "keystore"),
                        migrations_rows=migrations_rows,
                    )
            except BaseException:
                empty_committed()
                raise
        try:
            yield seeded
        finally:
            with django_db_blocker.unblock():
                empty_committed()
    finally:
        demo_seed.committed_seeds -= 1


def empty_committed() -> None:
    """Back to the state before a committed seed: the committed rows go (the access log's
    too), the migrations' rows are back (``restore_migrations_data``), as after a
    committing test; the data-key cache forgets the seed's keys."""
    for alias in ("default", "keystore"):
        _flush_and_restore(alias)
    from casework.crypto.keystore import forget_data_keys

    forget_data_keys()


def seed_demo() -> None:
    """``manage.py seed_demo`` under the current settings, its output dropped."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


# The name of ``committed_demo_cases``' seed, for its copy (``committed_seed``'s ``copy_as``).
DEMO_CASES = "seed_demo with every programme's cases"


@pytest.fixture(scope="module")
def committed_demo_cases(django_db_setup, django_db_blocker):
    """``seed_demo`` with every programme's demo cases, committed once for the module
    (``committed_seed``); its tests are ordinary rolled-back tests on top of it. After a
    worker's first, the seed is that one's rows put back (``copy_as``)."""
    with committed_seed(django_db_blocker, seed_demo, copy_as=DEMO_CASES, DEMO_SIG_CASES=True):
        yield


@pytest.fixture
def demo_cases(committed_demo_cases, settings):
    """The module's committed demo (``committed_demo_cases``), with the settings that made
    it (a ``seed_demo`` in the test seeds the same); the users by username, read afresh."""
    from casework.models import User

    settings.DEMO_SIG_CASES = True
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    return {user.username: user for user in User.objects.all()}


@pytest.fixture
def adam(demo):
    """The first demo administrator."""
    return demo["adam.admin"]


@pytest.fixture
def berit(demo):
    """The second demo administrator: the four eyes of adam.admin's requests."""
    return demo["berit.admin"]


@pytest.fixture
def login(client):
    """Log ``username`` in through the real login form; return the final response."""

    def _login(username: str, password: str = DEMO_PASSWORD, **extra):
        return client.post(
            "/konto/logga-in/", {"username": username, "password": password}, follow=True, **extra
        )

    return _login
