"""Shared fixtures: the demo organisations and one user per role."""

from __future__ import annotations

import pytest
from django.core.management import call_command
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
    sealer thread outlives a test's database (``tests/audit/test_sealer.py`` tests it)."""
    from django.conf import settings

    settings.AUDIT_SEALER = "inline"


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
