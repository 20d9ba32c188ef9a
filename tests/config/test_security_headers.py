"""Security headers (issue 16): a Content-Security-Policy without 'unsafe-inline' for
scripts, Referrer-Policy and Permissions-Policy on pages of every kind, and no inline
script or inline event handler in what the pages render (docs/adr/0016).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import viewflow
from django.template.loader import get_template
from django.test import Client

from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import sig_case
from workflows.common.responses import case_url
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=[*BOTH_DATABASES, "audit"])

ROOT = Path(__file__).resolve().parents[2]


def _policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


class _Scripts(HTMLParser):
    """Every <script> and every inline handler attribute of a page."""

    def __init__(self):
        super().__init__()
        self.inline_scripts: list[dict] = []
        self.external_scripts: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.handlers.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            if attributes.get("src"):
                self.external_scripts.append(attributes["src"])
            elif attributes.get("type") not in ("application/json", "application/ld+json"):
                self.inline_scripts.append(attributes)


def assert_safe(response, kind: str) -> None:
    assert response.status_code in (200, 400, 403, 404, 429), (kind, response.status_code)
    policy = _policy(response)
    assert policy, f"{kind}: no Content-Security-Policy"
    script_src = policy.get("script-src", policy.get("default-src"))
    assert "'self'" in script_src
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, kind
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["Referrer-Policy"] == "same-origin"
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions, (kind, permissions)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if "text/html" not in response.headers.get("Content-Type", ""):
        return
    parser = _Scripts()
    parser.feed(response.content.decode())
    nonces = [n[len("'nonce-") : -1] for n in script_src if n.startswith("'nonce-")]
    for attributes in parser.inline_scripts:
        assert attributes.get("nonce") and attributes["nonce"] in nonces, (
            f"{kind}: an inline <script> without the response's nonce: {attributes}"
        )
    assert parser.handlers == [], f"{kind}: inline handlers {parser.handlers}"
    # Scripts from our own origin only (static files, the admin's catalogue).
    assert all(
        src.startswith("/") and not src.startswith("//") for src in parser.external_scripts
    ), (
        kind,
        parser.external_scripts,
    )


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_every_kind_of_page_has_the_headers_and_no_inline_script(demo):
    case = sig_case(demo, Status.SCREENING)
    anna = _client(demo["anna.social"])
    sara = _client(demo["sara.samordnare"])
    admin = _client(demo["adam.admin"])
    auditor = _client(demo["greta.granskare"])
    pages = {
        "login": Client().get("/konto/logga-in/"),
        "inbox": anna.get("/arenden/inbox/"),
        "queue": sara.get("/arenden/queue/"),
        "bulk assign": sara.post("/arenden/queue/assign/", {"select_all": "1"}),
        "case page": sara.get(case_url(case)),
        "start page": anna.get("/", follow=True),
        "admin index": admin.get("/admin/"),
        "admin accounts": admin.get("/admin/casework/user/"),
        "admin account": admin.get(f"/admin/casework/user/{demo['anna.social'].pk}/change/"),
        "admin sign-in locks": admin.get("/admin/axes/accessattempt/"),
        "auditor review": auditor.get(
            "/granskning/loggkontroll/",
            {"date_from": "2026-01-01", "date_to": "2026-01-31", "seed": 1},
        ),
        "refused": auditor.get(case_url(case)),
        "not found": anna.get("/finns-inte/"),
        "keep-alive": anna.post("/konto/session/forlang/"),
    }
    assert pages["case page"].status_code == 200
    assert pages["refused"].status_code == 403
    assert "data-history-back" in pages["bulk assign"].content.decode()
    for kind, response in pages.items():
        assert_safe(response, kind)


def test_the_locked_sign_in_page_has_the_headers_too(demo, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/konto/logga-in/", {"username": "x", "password": "y"})
    assert response.status_code == 429
    assert_safe(response, "locked sign-in")


# viewflow's templates with an inline script or handler, and why each is safe here.
VIEWFLOW_UNUSED = {
    "admin/fsm_transition_form.html": "viewflow.fsm's admin: the project uses django-fsm-2",
    "viewflow/contrib/swagger.html": "no API pages",
    "viewflow/contrib/plotly.html": "no dashboards",
    "viewflow/contrib/import_export/import_action.html": "no import views",
    "viewflow/contrib/import_export/export_action.html": "no export views",
}
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=", re.I)


def test_every_viewflow_template_with_inline_script_is_overridden_or_unused():
    """A viewflow template with an inline script or handler is overridden in templates/
    (the handler moved to a static file) or never rendered by the project."""
    base = Path(viewflow.__file__).parent / "templates"
    offending = sorted(
        str(path.relative_to(base))
        for path in base.rglob("*.html")
        if INLINE.search(path.read_text())
    )
    assert offending, "the scan finds viewflow's known handlers"
    for name in offending:
        if name in VIEWFLOW_UNUSED:
            continue
        origin = Path(get_template(name).origin.name)
        assert origin.is_relative_to(ROOT / "templates"), f"{name} is not overridden"
        assert not INLINE.search(origin.read_text()), f"templates/{name} still has inline script"


def test_our_templates_have_no_inline_script_without_a_nonce():
    for path in (ROOT / "templates").rglob("*.html"):
        for match in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", path.read_text(), re.I):
            assert "csp_nonce" in match[0], f"{path}: {match[0]}"
        assert not re.search(r"\son[a-z]+\s*=", path.read_text(), re.I), path
