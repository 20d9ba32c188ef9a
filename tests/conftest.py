"""Shared fixtures: the demo organisations and one user per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connections, router, transaction
from django.test.utils import override_settings
from django.urls import get_resolver

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
# (docs/adr/0005-audit-log.md); ``serialized_rollback`` restores the data the migrations
# made (roles, legal bases) for the tests after.
COMMITTED_DB = pytest.mark.django_db(
    transaction=True, serialized_rollback=True, databases=["default", "keystore", "audit"]
)


def pytest_configure(config):
    """The committing code seals the chain itself, from the first database set-up on: no
    sealer thread outlives a test's database (``tests/audit/test_sealer.py`` tests it).

    Speed only (docs/adr/0034-fast-suite.md): the tests' connections commit without
    waiting for the WAL to reach the disk, and a committing test's database is emptied
    with DELETE rather than TRUNCATE."""
    from django.conf import settings

    settings.AUDIT_SEALER = "inline"
    _commit_without_waiting_for_the_disk(settings.DATABASES)
    _flush_test_databases_with_delete()


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
    """Run ``seed_demo`` and return the users by username."""
    from casework.models import User

    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return {user.username: user for user in User.objects.all()}


@contextmanager
def committed_seed(django_db_blocker, build: Callable[[], object], **overrides) -> Iterator:
    """Run ``build`` (a seed) once, committed, outside any test; yield what it returns; at
    the end empty the databases back to what the migrations made (``empty_committed``).

    For a module's (or a class's) fixture whose tests only read the seed, or change it
    inside their own rolled-back transaction: the seed of every programme's demo cases is
    ~12,000 statements, built once instead of once a test (docs/adr/0034-fast-suite.md).
    The settings are the tests' (``_no_demo_persons``, MD5 hashing, the demo password)
    with ``overrides``."""
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
    with django_db_blocker.unblock(), settings_overrides:
        from casework.models import Person

        assert not Person.objects.exists(), (
            "persons in the test database before a committed seed: the data of an interrupted "
            "run (its keys are of another keyring): run once with --create-db"
        )
        get_resolver().url_patterns  # noqa: B018 (viewflow names its node URLs then)
        # What the migrations made (roles, legal bases …), to restore at the end. Not the
        # access log: it is append-only (a restore would rewrite it) and empty here.
        with override_settings(TEST_NON_SERIALIZED_APPS=["audit"]):
            snapshot = connections["default"].creation.serialize_db_to_string()
        try:
            seeded = build()
        except BaseException:
            empty_committed(snapshot)
            raise
    try:
        yield seeded
    finally:
        with django_db_blocker.unblock():
            empty_committed(snapshot)


def empty_committed(snapshot: str) -> None:
    """Back to the state before a committed seed: the committed rows go, the migrations'
    data (``snapshot``) is back, the access log is empty again."""
    for alias in ("default", "keystore"):
        call_command(
            "flush", database=alias, interactive=False, verbosity=0, inhibit_post_migrate=True
        )
    connection = connections["default"]
    connection.creation.deserialize_db_from_string(snapshot)
    # ``flush`` reset the sequences and the restored rows keep their ids: move each
    # sequence past them, or the next row made gets an id that is taken.
    with connection.cursor() as cursor:
        models = [
            model
            for model in apps.get_models()
            if model._meta.managed and router.allow_migrate_model("default", model)
        ]
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    # The restore itself logs (the roles' permissions): empty the log again, the way the
    # project's ``flush`` does it on a test database (audit/management/commands/flush.py).
    tables = [t for t in connection.introspection.django_table_names() if t.startswith("audit_")]
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables))
    from casework.crypto.keystore import forget_data_keys

    forget_data_keys()


def _seed_demo() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture(scope="module")
def committed_demo_cases(django_db_setup, django_db_blocker):
    """``seed_demo`` with every programme's demo cases, committed once for the module
    (``committed_seed``); its tests are ordinary rolled-back tests on top of it."""
    with committed_seed(django_db_blocker, _seed_demo, DEMO_SIG_CASES=True):
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
