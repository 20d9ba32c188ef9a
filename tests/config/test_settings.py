"""Production settings refuse unsafe configuration and pass ``check --deploy``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_ENV"}
    }
    env.update(env_overrides)
    return subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DJANGO_ENV": "production",
    "DATABASE_URL": "postgres://samverkan@db.example.invalid:5432/samverkan",
    "ALLOWED_HOSTS": "samverkan.example.invalid",
}


@pytest.mark.parametrize("secret_key", [None, "", "short", "django-insecure-" + "x" * 60, "a" * 64])
def test_production_refuses_to_start_without_a_real_secret_key(secret_key):
    env = dict(PRODUCTION)
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "real SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    env = dict(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(64))
    del env["ALLOWED_HOSTS"]
    result = _run(["manage.py", "check"], **env)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


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
