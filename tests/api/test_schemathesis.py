"""Schemathesis against the live API: every operation of the OpenAPI document, fuzzed.

pytest-django's ``live_server`` (a real threaded HTTP server on 127.0.0.1) serves the app,
and the document is loaded from its own ``/api/v1/schema/``: an operation a programme adds
joins the run with no edit here. Each operation is called with a valid token of a
social-services client holding every scope, acting for the coordinator sara.samordnare;
Schemathesis draws the rest (path, body, Idempotency-Key, If-Match), in its positive and
negative modes; then with the acting person drawn too; and with the seeded case's id and
``If-Match: *`` so that the operations succeed too, not only refuse. The checks: no 5xx,
and every answer as the document describes it (status code, content type, headers, body);
bad input refused. The statuses each variant got are printed (``-s``).

Why one test, not ``@schema.parametrize()``: the live server needs committed data (a
transactional test: the demo seed and the flush, ~3 s each time), and
``schemathesis.pytest.from_fixture`` (the lazy loader a live server needs) fails under
pytest 9.2 (it renames the node through ``Node._nodeid``, which pytest 9.2 no longer has).
So one test seeds once, loads the document from the live server and runs each operation's
Hypothesis test (``APIOperation.as_strategy``, ``Case.call`` and ``validate_response``)
in turn, reporting every failing operation at the end (~8 s an operation on 2 cores).

The stateful part follows the document's links: a referral's 201 links to ``case_status``
with ``$response.body#/id`` (Schemathesis's state machine, and an explicit walk of the
links that asserts the new case is read).
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zlib
from collections import Counter

import pytest
import requests
import schemathesis
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from casework.personnummer import with_check_digit
from tests.api.conftest import make_client
from tests.conftest import COMMITTED_DB
from tests.workflows.sig.factories import sig_case
from workflows.sig.models import Status

pytestmark = COMMITTED_DB

ACTING = "sara.samordnare"
ACTING_HEADER = "Samverkan-Acting-User"
# Examples per operation and variant: enough to reach odd input, few enough for the whole
# file to run in about a minute on 2 cores.
EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def live_token(base_url: str, organisation) -> str:
    """A token of a new client of ``organisation`` with every scope, from the live server."""
    _client, client_id, secret = make_client(organisation)
    response = requests.post(
        f"{base_url}/api/v1/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def live_schema(base_url: str, token: str):
    """The live server's own document, calling the live server with ``token``."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/schema/")
    schema.config.update(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    # A stale If-Match is refused before the body is read (RFC 9110 13.2.1): bad input
    # with a stale ETag gets 412, a refusal too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "412"]
    return schema


def known_ids(case) -> dict[str, str]:
    """Path parameters by name → an id of the seed the acting person may use (the drawn ids
    are almost never real ones). An operation with a new kind of id may add it here."""
    return {"case_id": str(case.pk)}


def variants(operation, known: dict[str, str]) -> dict[str, tuple[object, int]]:
    """The Hypothesis strategies an operation is fuzzed with, by name, with the number of
    examples of each."""
    fixed = {ACTING_HEADER: ACTING}
    strategies = {
        "positive": (operation.as_strategy(GenerationMode.POSITIVE, headers=fixed), EXAMPLES),
        "negative": (operation.as_strategy(GenerationMode.NEGATIVE, headers=fixed), EXAMPLES),
        # The acting person drawn too (any text a header carries): refused as documented.
        "drawn person": (operation.as_strategy(GenerationMode.POSITIVE), EXAMPLES // 2),
    }
    names = {parameter.name for parameter in operation.iter_parameters()}
    path = {name: value for name, value in known.items() if name in names}
    if path or "If-Match" in names:
        headers = {**fixed, "If-Match": "*"} if "If-Match" in names else fixed
        strategy = operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters=path or None, headers=headers
        )
        strategies["seeded"] = (strategy, EXAMPLES)
    return strategies


def fuzz(strategy, examples: int, statuses: Counter, *, negative: bool = False) -> str | None:
    """Run an operation's Hypothesis test; the failure report, if any."""

    @settings(HYPOTHESIS, max_examples=examples)
    @given(case=strategy)
    def run(case):
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # Nothing to draw: an operation without parameters or body has no negative case.
        if negative:
            return None
        raise
    except (Exception, BaseExceptionGroup) as error:
        return f"{type(error).__name__}: {error}"
    return None


@pytest.fixture
def seeded_case(demo):
    """An active SIG case the coordinator coordinates (some drawn requests name it)."""
    return sig_case(demo, Status.ACTIVE)


def test_every_operation_of_the_document(live_server, demo, seeded_case):
    """No 5xx, and every answer as documented, for every operation of the live document."""
    schema = live_schema(live_server.url, live_token(live_server.url, demo[ACTING].organisation))
    failures, ran = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        for name, (strategy, examples) in variants(operation, known_ids(seeded_case)).items():
            started, statuses = time.monotonic(), Counter()
            report = fuzz(strategy, examples, statuses, negative=name == "negative")
            ran.append(
                f"{operation.label} {name}: {time.monotonic() - started:.1f} s, "
                f"{dict(sorted(statuses.items()))}"
            )
            if report:
                failures.append(f"--- {operation.label} ({name})\n{report}")
    print("\n".join(ran))
    assert ran, "the document has no operations"
    assert not failures, "\n\n".join(failures)


# --- Stateful: the document's links -------------------------------------------------------------


def _personnummer(seed: str) -> str:
    """A valid synthetic personnummer of a 16-year-old, the same for the same ``seed``."""
    serial = zlib.crc32(seed.encode()) % 900 + 100
    born = timezone.localdate().year - 16
    return str(born)[:2] + with_check_digit(f"{born % 100:02d}0101{serial:03d}")


# Who coordinates a programme's cases, where not the acting coordinator (same organisation).
COORDINATORS = {"defector": "alex.avhopp"}

# A valid value for each field a case-creating operation may require.
SAMPLE_FIELDS = {
    "name": "Länk Testsson",
    "area": "other",
    "reason": "Orolig för kriminalitet.",
    "concern": "Oro för skolfrånvaro.",
    "source": "police",
}


def _referral(operation: dict, document: dict) -> dict:
    """A valid body for a case-creating ``operation``: its schema's required fields, of a
    synthetic 16-year-old (most likely a new one each time)."""
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    body = {"personnummer": _personnummer(uuid.uuid4().hex)}
    for name in schema.get("required", []):
        if name not in body:
            assert name in SAMPLE_FIELDS, f"add a sample value for {name!r} to SAMPLE_FIELDS"
            body[name] = SAMPLE_FIELDS[name]
    return body


def _links_from_referrals(document: dict):
    """(path, method, operation, link) of every link of a new case's 201 answer."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for link in operation["responses"].get("201", {}).get("links", {}).values():
                if link["operationId"] == "case_status":
                    yield path, method, operation, link


def test_each_referrals_link_reads_the_new_case(live_server, demo):
    """Follow the document's links from every referral operation: POST a referral, resolve
    the link's parameters (``$response.body#/…``) and call the linked operation: 200, the
    new case."""
    base_url = live_server.url
    auth = {"Authorization": f"Bearer {live_token(base_url, demo[ACTING].organisation)}"}
    document = requests.get(f"{base_url}/api/v1/schema/?format=json", timeout=10).json()
    by_id = {
        operation["operationId"]: (path, method)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    followed = []
    for path, method, operation, link in _links_from_referrals(document):
        created = requests.request(
            method,
            f"{base_url}{path}",
            json=_referral(operation, document),
            headers={**auth, ACTING_HEADER: ACTING, "Idempotency-Key": uuid.uuid4().hex},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        target, target_method = by_id[link["operationId"]]
        for name, expression in link["parameters"].items():
            assert expression.startswith("$response.body#/"), expression
            value = created.json()[expression.removeprefix("$response.body#/")]
            target = target.replace(f"{{{name}}}", str(value))
        # The new case's programme's coordinator reads it (the referrer is not on its team).
        reader = COORDINATORS.get(created.json()["programme"], ACTING)
        read = requests.request(
            target_method,
            f"{base_url}{target}",
            headers={**auth, ACTING_HEADER: reader},
            timeout=10,
        )
        assert read.status_code == 200, read.text
        assert read.json()["id"] == created.json()["id"]
        followed.append(path)
    assert followed, "no referral operation links to the reading of its new case"


def test_stateful_links(live_server, demo):
    """Schemathesis's state machine over the document's links (referral → case status):
    every step answers as documented, and a new case the link names can be read."""
    base_url = live_server.url
    schema = live_schema(base_url, live_token(base_url, demo[ACTING].organisation))
    schema.config.update(headers={ACTING_HEADER: ACTING})
    # Text never holds NUL (PostgreSQL cannot store it; the API refuses it with a 400, which
    # the acceptance of schema-valid bodies would count against it).
    schema.config.generation.update(allow_x00=False)

    @schema.hook
    def map_body(context, body):
        # A personnummer's check digit is beyond the document: a valid one, so that
        # referrals are registered and their links followed. The same for the same body
        # (Hypothesis replays a case and expects the same answer).
        if isinstance(body, dict) and "personnummer" in body:
            body["personnummer"] = _personnummer(json.dumps(body, sort_keys=True, default=str))
        return body

    read = []

    class Machine(schema.as_state_machine()):
        def after_call(self, response, case):
            super().after_call(response, case)
            if case.operation.definition.raw.get("operationId") == "case_status":
                read.append(response.status_code)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # The checks of every step, and that a linked resource exists; not that every
            # schema-valid body is accepted (a personnummer's check digit, a text of
            # blanks or a date far away are refused with a 400 the document lists).
            case.validate_response(
                response,
                checks=[*CHECKS, ensure_resource_availability, use_after_free],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Machine.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=4,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert 200 in read, f"the link to case_status never read a new case: {read}"


# --- The document itself -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_document_validates_as_openapi_3_1():
    """``manage.py spectacular --validate --fail-on-warn`` passes; the document is 3.1."""
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert json.loads(out.getvalue())["openapi"] == "3.1.0"
