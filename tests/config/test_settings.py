"""Production settings refuse unsafe configuration and pass ``check --deploy``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from casework.crypto import keyring

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "SECRET_KEY",
            "DEBUG",
            "ALLOWED_HOSTS",
            "DJANGO_ENV",
            "KEYSTORE_DATABASE_URL",
            "SAMVERKAN_KEYRING_FILE",
        }
    }
    env.update(env_overrides)
    return subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DJANGO_ENV": "production",
    "DATABASE_URL": "postgres://samverkan@db.example.invalid:5432/samverkan",
    "KEYSTORE_DATABASE_URL": "postgres://samverkan_keys@keys.example.invalid:5432/samverkan_keys",
    "ALLOWED_HOSTS": "samverkan.example.invalid",
}


@pytest.fixture(scope="module", autouse=True)
def _production_keyring(tmp_path_factory):
    """Production settings need a keyring file: a generated one for these tests."""
    path = tmp_path_factory.mktemp("production-keys") / "keyring.json"
    keyring.generate(path)
    PRODUCTION["SAMVERKAN_KEYRING_FILE"] = str(path)
    yield path
    del PRODUCTION["SAMVERKAN_KEYRING_FILE"]


@pytest.mark.parametrize("secret_key", [None, "", "short", "django-insecure-" + "x" * 60, "a" * 64])
def test_production_refuses_to_start_without_a_real_secret_key(secret_key):
    env = dict(PRODUCTION)
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "real SECRET_KEY" in result.stderr


def _refused_without(setting: str) -> dict:
    """Production settings without ``setting``: ``manage.py check`` refuses to start,
    naming it. Returns that environment."""
    env = dict(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64))
    del env[setting]
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert setting in result.stderr
    return env


def test_production_refuses_to_start_without_allowed_hosts():
    _refused_without("ALLOWED_HOSTS")


def test_production_refuses_the_embedded_database():
    env = dict(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), DATABASE_URL="")
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_passes_check_deploy_without_warnings():
    env = dict(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64))
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_database_url_must_be_postgresql():
    result = _run(["manage.py", "check"], DATABASE_URL="sqlite:////tmp/x.db")
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_production_refuses_to_start_without_a_keyring_file(tmp_path):
    env = _refused_without("SAMVERKAN_KEYRING_FILE")
    missing = tmp_path / "missing.json"
    result = _run(["manage.py", "check"], **dict(env, SAMVERKAN_KEYRING_FILE=str(missing)))
    assert result.returncode != 0
    assert f"{missing} does not exist" in result.stderr


@pytest.mark.parametrize(
    ("content", "mode", "error"),
    [
        (b"{}", 0o600, "casework.E001"),
        (None, 0o644, "casework.E002"),
    ],
)
def test_production_checks_the_keyring_file(tmp_path, _production_keyring, content, mode, error):
    path = tmp_path / "keyring.json"
    path.write_bytes(content if content is not None else _production_keyring.read_bytes())
    path.chmod(mode)
    env = dict(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64), SAMVERKAN_KEYRING_FILE=str(path))
    result = _run(["manage.py", "check", "--deploy"], **env)
    assert result.returncode != 0
    assert error in result.stderr
    for key in json.loads(_production_keyring.read_text())["keks"].values():
        assert key not in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_separate_key_store():
    env = _refused_without("KEYSTORE_DATABASE_URL")
    env["KEYSTORE_DATABASE_URL"] = env["DATABASE_URL"]
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "other than DATABASE_URL" in result.stderr


# --- Issue 16: sign-in locks, session rules, security headers (docs/adr/0016) ------------

_PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'limit': s.AXES_FAILURE_LIMIT, 'address': s.LOGIN_ADDRESS_FAILURE_LIMIT, "
    "'lock': s.AXES_COOLOFF_TIME.total_seconds(), 'idle': s.SESSION_COOKIE_AGE, "
    "'max': s.SESSION_MAX_AGE, 'every': s.SESSION_SAVE_EVERY_REQUEST, "
    "'middleware': s.MIDDLEWARE, 'backends': s.AUTHENTICATION_BACKENDS}))"
)


def _settings(**env) -> dict:
    result = _run(["-c", _PRINT_SETTINGS], DJANGO_SETTINGS_MODULE="config.settings", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_has_the_lock_the_session_rules_and_the_headers():
    values = _settings(**PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64))
    assert (values["limit"], values["address"], values["lock"]) == (5, 20, 15 * 60)
    assert (values["idle"], values["max"], values["every"]) == (30 * 60, 8 * 3600, True)
    middleware = values["middleware"]
    assert middleware.index("csp.middleware.CSPMiddleware") < middleware.index(
        "django.contrib.sessions.middleware.SessionMiddleware"
    )
    assert "django_permissions_policy.PermissionsPolicyMiddleware" in middleware
    assert middleware.index("casework.sessions.SessionRulesMiddleware") > middleware.index(
        "casework.auth.AuthenticationMiddleware"
    )
    assert middleware[-1] == "axes.middleware.AxesMiddleware"
    assert values["backends"][0] == "casework.signin.SignInLockBackend"


def test_the_lock_and_the_session_rules_come_from_the_environment():
    values = _settings(
        SAMVERKAN_LOGIN_FAILURE_LIMIT="3",
        SAMVERKAN_LOGIN_ADDRESS_FAILURE_LIMIT="50",
        SAMVERKAN_LOGIN_LOCK_MINUTES="60",
        SAMVERKAN_SESSION_IDLE_MINUTES="10",
        SAMVERKAN_SESSION_MAX_HOURS="4",
    )
    assert (values["limit"], values["address"], values["lock"]) == (3, 50, 3600)
    assert (values["idle"], values["max"]) == (600, 4 * 3600)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAMVERKAN_LOGIN_FAILURE_LIMIT", "0"),
        ("SAMVERKAN_LOGIN_LOCK_MINUTES", "0"),
        ("SAMVERKAN_SESSION_IDLE_MINUTES", "0"),
        ("SAMVERKAN_SESSION_IDLE_MINUTES", "600"),  # longer than the absolute lifetime
    ],
)
def test_nonsense_lock_and_session_settings_are_refused(name, value):
    result = _run(["manage.py", "check"], **{name: value})
    assert result.returncode != 0
    assert name in result.stderr
