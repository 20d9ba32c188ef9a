"""A real OpenID Connect provider for the sign-in tests (ADR 0018).

panva's ``oidc-provider`` (npm, OpenID Certified), pinned by ``package-lock.json``
beside this file and installed by ``make test`` (``npm ci --prefix tests/oidc``),
run with the machine's node on a free port of 127.0.0.1. The fixture waits for its
discovery document and stops it afterwards. Without node or the installed package
the tests skip on a developer machine and fail in CI (``CI`` set).

The relying party is the Django test client (``http://testserver``); the provider
is reached over real HTTP, by the test (the user's browser) and by the code under
test (token, JWKS and userinfo requests).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests

HERE = Path(__file__).resolve().parent
CLIENT_ID = "samverkan"
CLIENT_SECRET = "samverkan-test-secret"
SECRET_ENV = "SAMVERKAN_OIDC_SECRET_TEST"
REDIRECT_URI = "http://testserver/konto/sso/svar/"
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "other-app-test-secret"
OTHER_REDIRECT_URI = "http://other-app.invalid/callback"


@dataclass
class RunningProvider:
    issuer: str
    process: subprocess.Popen
    log: object = None

    def url(self, path: str) -> str:
        return self.issuer + path


def _unavailable(message: str):
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path_factory, name: str) -> RunningProvider:
    node = shutil.which("node")
    if node is None:
        _unavailable("the OpenID Connect tests need node (v20.19 or later)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        _unavailable("oidc-provider is not installed: run `make oidc-provider` (npm ci)")
    port = _free_port()
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI]},
        {
            "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_CLIENT_SECRET,
            "redirect_uris": [OTHER_REDIRECT_URI],
        },
    ]
    log = (tmp_path_factory.mktemp("oidc") / f"{name}.log").open("w")
    process = subprocess.Popen(  # noqa: S603
        [node, str(HERE / "provider.mjs")],
        env={**os.environ, "PORT": str(port), "CLIENTS": json.dumps(clients)},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=HERE,
    )
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            response = requests.get(issuer + "/.well-known/openid-configuration", timeout=1)
            if response.ok and response.json().get("issuer") == issuer:
                return RunningProvider(issuer=issuer, process=process, log=log)
        except requests.RequestException:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    log.close()
    pytest.fail(f"the OpenID Connect provider did not start (see {log.name})")


def _stop(provider: RunningProvider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        provider.process.kill()
        provider.process.wait()
    provider.log.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    provider = _start(tmp_path_factory, "provider")
    yield provider
    _stop(provider)


@pytest.fixture(scope="session")
def other_oidc_provider(tmp_path_factory):
    """A second, independent provider instance: another issuer, another signing key."""
    provider = _start(tmp_path_factory, "other")
    yield provider
    _stop(provider)


@pytest.fixture(autouse=True)
def _client_secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)


@pytest.fixture(autouse=True)
def _fresh_discovery(settings):
    """Each test reads the discovery documents anew (ports differ between runs)."""
    from django.core.cache import cache

    cache.clear()


def authorize(authorization_url: str, *, login: str, acr: str = "loa3", amr: str = "pwd"):
    """Play the user's browser at the provider: follow the redirects, sign in as
    ``login`` and consent; return the redirect back to the relying party (a URL)."""
    browser = requests.Session()
    url = authorization_url
    for _ in range(10):
        if not url.startswith(("http://127.0.0.1", "/")):
            return url
        response = browser.get(url, allow_redirects=False, timeout=10)
        if urlparse(url).path.startswith("/interaction/"):
            assert response.status_code == 200, response.text
            response = browser.post(
                url,
                data={"login": login, "acr": acr, "amr": amr},
                allow_redirects=False,
                timeout=10,
            )
        assert response.status_code in (302, 303), (response.status_code, response.text)
        url = urljoin(url, response.headers["Location"])
    raise AssertionError("too many redirects at the provider")


def callback_parts(url: str) -> tuple[str, dict[str, str]]:
    parsed = urlparse(url)
    assert f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == REDIRECT_URI, url
    return parsed.path, {key: values[0] for key, values in parse_qs(parsed.query).items()}
