"""The API's authorisation matrix, and the attacks on its front door.

The matrix
----------
Every operation of the OpenAPI document (walked, not listed: a new operation joins by
itself) is called by a client of each organisation kind (social services, police, school,
leisure: the demo organisations) in four ways:

* **own**: acting for the kind's typical person (``TYPICAL``), with every scope: the
  status ``EXPECTED`` names for the operation and kind;
* **other**: acting for a person of another organisation: always 403;
* **no person**: without ``Samverkan-Acting-User``: 403 where the document says the
  operation needs it, else what the row's ``without_person`` names;
* **no scope**: acting for its own person, but the token lacks the scope the document
  names for the operation (``security``): always 403;

and once without a token: always 401. **An operation without a row in ``EXPECTED`` fails
the test** with a message saying where to add it. A row says how to call its operation
(path parameters beyond the known ones in ``PATH_PARAMETERS``, a body) and the status per
organisation kind.

The seed: an active SIG case of a person with a distinctive name (anna.social leads it,
per.polis is its police contact, sara.samordnare coordinates it). A referral in the matrix
refers that same person again, under another name. **No answer** (body or header) to a
caller whom ``casework.policy`` does not give the case holds the person's name,
personnummer, address or phone (computed from the policy, not by hand).

Each call runs in a savepoint that is rolled back: the calls do not change each other's
world (the case's version, an Idempotency-Key).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from casework import personnummer as pnr
from casework import policy
from casework.api.http import etag
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import open_value
from casework.models import Case, Organisation
from casework.services import create_person
from tests.api.conftest import ALL_SCOPES, Api, get_token, make_client
from tests.config.url_matrix_seed import personnummer_forms
from tests.workflows.sig.factories import PURPOSE, fresh_personnummer, sig_case
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

ACTING_HEADER = "Samverkan-Acting-User"
KINDS = (
    Organisation.Kind.SOCIAL_SERVICES,
    Organisation.Kind.POLICE,
    Organisation.Kind.SCHOOL,
    Organisation.Kind.LEISURE,
)
# The typical person of each kind (the client's own organisation), and one of another.
TYPICAL = {
    Organisation.Kind.SOCIAL_SERVICES: "anna.social",
    Organisation.Kind.POLICE: "per.polis",
    Organisation.Kind.SCHOOL: "lisa.skola",
    Organisation.Kind.LEISURE: "fredrik.fritid",
}
STRANGER = {
    Organisation.Kind.SOCIAL_SERVICES: "per.polis",
    Organisation.Kind.POLICE: "anna.social",
    Organisation.Kind.SCHOOL: "fredrik.fritid",
    Organisation.Kind.LEISURE: "lisa.skola",
}
# The seeded person: values no demo or factory person has, so that a substring of an
# answer can only be this person's.
SECRET = {
    "name": "Hemlighild Matrisdotter",
    "address": "Hemliggränd 17",
    "phone": "070-999 17 17",
}
REFERRED_AS = "Annat Namnsson"


@dataclass
class Seed:
    users: dict
    case: Case
    personnummer: str  # the seeded person's, normalised (12 digits)


def _kinds(social: int, police: int, school: int, leisure: int) -> dict[str, int]:
    return dict(zip(KINDS, (social, police, school, leisure), strict=True))


@dataclass(frozen=True)
class Row:
    """An operation's expected statuses (``own``: acting for the kind's typical person with
    every scope; ``without_person``: for an operation the document lets go without one),
    and how to call it: ``path`` (path parameters the known ones do not cover) and
    ``body`` (a JSON body), both from the seed."""

    own: dict[str, int]
    without_person: dict[str, int] | None = None
    path: Callable[[Seed], dict[str, Any]] | None = None
    body: Callable[[Seed], dict[str, Any]] | None = None


# Path parameters by name, from the seed (a row may add its own).
PATH_PARAMETERS: dict[str, Callable[[Seed], Any]] = {"case_id": lambda seed: seed.case.pk}


def _referral(seed: Seed) -> dict[str, Any]:
    """The seeded person referred again, under another name: the answer must tell nothing
    of the register (ADR 0012)."""
    return {
        "personnummer": seed.personnummer,
        "name": REFERRED_AS,
        "area": "other",
        "reason": "Orolig för kriminalitet.",
    }


def _concern(seed: Seed) -> dict[str, Any]:
    referral = _referral(seed)
    return {**{k: referral[k] for k in ("personnummer", "name", "area")}, "concern": "Oro."}


def _defector_referral(seed: Seed) -> dict[str, Any]:
    return {**_referral(seed), "source": "police"}


def _incident(seed: Seed) -> dict[str, Any]:
    return {"date": str(timezone.localdate()), "area": "other", "kind": "other", "groups": []}


def _delivery(seed: Seed) -> dict[str, Any]:
    return {"offer_of_help": "Stöd finns.", "response": "undecided"}


def _decision(seed: Seed) -> dict[str, Any]:
    return {"choice": "approve", "reason": ""}


def _no_notification(seed: Seed) -> dict[str, Any]:
    return {"notification_id": uuid.UUID(int=1)}


def _webhook(seed: Seed) -> dict[str, Any]:
    return {"url": "https://system.example.org/samverkan", "events": ["case.status_changed"]}


def _no_webhook(seed: Seed) -> dict[str, Any]:
    return {"webhook_id": 2_000_000_000}


def _no_task(seed: Seed) -> dict[str, Any]:
    return {"task_id": 2_000_000_000}


def _action(seed: Seed) -> dict[str, Any]:
    return {"kind": "support_talks", "status": "done", "date": str(timezone.localdate())}


# operationId → row. A new operation needs a row here (the test says so when it is missing).
EXPECTED: dict[str, Row] = {
    # The team reads its case; the school and the leisure centre, not on it, get a 404.
    "case_status": Row(own=_kinds(200, 200, 404, 404)),
    # Each team member's organisation records its own action; others do not see the case.
    "case_action_create": Row(own=_kinds(201, 201, 404, 404), body=_action),
    # Anyone may refer (the referrer is not put on the team and learns nothing).
    "sig_referral_create": Row(own=_kinds(201, 201, 201, 201), body=_referral),
    "sspf_concern_create": Row(own=_kinds(201, 201, 201, 201), body=_concern),
    "defector_referral_create": Row(own=_kinds(201, 201, 201, 201), body=_defector_referral),
    # GVI: the police record incidents and deliveries; the others are refused before
    # anything is looked up or validated. The seed has no GVI group, so the police's
    # incident gets as far as the body's check (400: it names no group), and an unknown
    # notification is a 404; tests/api/test_programme_operations.py records real ones.
    "gvi_incident_create": Row(own=_kinds(403, 400, 403, 403), body=_incident),
    "gvi_notification_state": Row(own=_kinds(403, 404, 403, 403), path=_no_notification),
    "gvi_notification_delivery_create": Row(
        own=_kinds(403, 404, 403, 403), path=_no_notification, body=_delivery
    ),
    # The inbox of each typical person (empty or not); another's task is not found.
    "task_list": Row(own=_kinds(200, 200, 200, 200)),
    "task_complete": Row(own=_kinds(404, 404, 404, 404), path=_no_task, body=_decision),
    # A client's own webhooks (no personal data: no person needed). The operator has
    # allowed no host here, so registering is refused (403); an unknown webhook is a 404.
    "webhook_list": Row(own=_kinds(200, 200, 200, 200), without_person=_kinds(200, 200, 200, 200)),
    "webhook_create": Row(
        own=_kinds(403, 403, 403, 403), without_person=_kinds(403, 403, 403, 403), body=_webhook
    ),
    "webhook_delete": Row(
        own=_kinds(404, 404, 404, 404), without_person=_kinds(404, 404, 404, 404), path=_no_webhook
    ),
    # The statistics: only the steering group's role reads them as a person; a client
    # without a person reads them with its scope (counts only, disclosure-controlled).
    "statistics_read": Row(
        own=_kinds(403, 403, 403, 403), without_person=_kinds(200, 200, 200, 200)
    ),
}


# --- The document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    scope: str
    needs_person: bool
    headers: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return f"{self.operation_id} ({self.method.upper()} {self.path})"


def document_operations(http: Client) -> list[Operation]:
    """Every operation of the document, with the scope its ``security`` names and whether
    it requires the acting person's header."""
    document = http.get("/api/v1/schema/?format=json").json()
    operations = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            scopes = [
                scope for need in operation.get("security", []) for scope in need.get("client", [])
            ]
            assert len(scopes) == 1, f"{operation['operationId']}: one scope, not {scopes}"
            headers = {
                parameter["name"]: parameter.get("required", False)
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "header"
            }
            operations.append(
                Operation(
                    operation_id=operation["operationId"],
                    method=method,
                    path=path,
                    scope=scopes[0],
                    needs_person=headers.get(ACTING_HEADER, False),
                    headers=frozenset(headers),
                )
            )
    assert operations, "the document lists no operations"
    return operations


def row_for(operation: Operation) -> Row:
    try:
        return EXPECTED[operation.operation_id]
    except KeyError:
        raise AssertionError(
            f"{operation} has no row in EXPECTED (tests/api/test_authorization.py): add "
            f'"{operation.operation_id}": Row(own=_kinds(social, police, school, leisure), '
            "…) with the status each kind's typical person gets, and how to call it"
        ) from None


# --- Calling ---------------------------------------------------------------------------------


def call(api: Api | None, operation: Operation, seed: Seed, *, acting: str | None, http: Client):
    """One call of ``operation`` (in a savepoint that is rolled back)."""
    row = EXPECTED.get(operation.operation_id)
    parameters = {name: fill(seed) for name, fill in PATH_PARAMETERS.items()}
    if row is not None and row.path is not None:
        parameters.update(row.path(seed))
    try:
        path = operation.path.format(**parameters)
    except KeyError as error:
        raise AssertionError(
            f"{operation}: no value for the path parameter {error}: add it to PATH_PARAMETERS "
            "or to the row's path (tests/api/test_authorization.py)"
        ) from None
    body = row.body(seed) if row is not None and row.body is not None else None
    headers: dict[str, str] = {}
    if "If-Match" in operation.headers:
        seed.case.refresh_from_db(fields=["version"])
        headers["If-Match"] = etag(seed.case.version)
    if "Idempotency-Key" in operation.headers:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    with transaction.atomic():
        if api is None:
            response = http.generic(
                operation.method.upper(),
                path,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
                **{
                    f"HTTP_{name.upper().replace('-', '_')}": value
                    for name, value in headers.items()
                },
            )
        else:
            response = api.http.generic(
                operation.method.upper(),
                path,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
                **api.headers(acting, **headers),
            )
        transaction.set_rollback(True)
    return response


def person_strings(seed: Seed) -> tuple[str, ...]:
    """The seeded person's data as an answer would show it (its guardian's name too)."""
    person = seed.case.person
    key = load_data_key(owner_type=PERSON, owner_id=person.pk)
    guardians = [open_value(guardian, "name", key) for guardian in person.guardians.all()]
    return (*SECRET.values(), *personnummer_forms(seed.personnummer), *guardians)


def leaks(response, strings: tuple[str, ...]) -> list[str]:
    """The strings of ``strings`` in the answer's body (raw and JSON-decoded) or headers."""
    texts = [response.content.decode("utf-8", "replace")]
    with contextlib.suppress(ValueError):
        texts.append(json.dumps(json.loads(response.content), ensure_ascii=False))
    texts += [f"{name}: {value}" for name, value in response.items()]
    return [string for string in strings if any(string in text for text in texts)]


# --- Fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def seed(demo) -> Seed:
    """An active SIG case of a person with distinctive data (anna.social leads it,
    per.polis is its police contact, sara.samordnare coordinates it)."""
    number = pnr.normalise(fresh_personnummer(16))
    person = create_person(
        user=demo["anna.social"],
        purpose=PURPOSE,
        personnummer=number,
        area="vivalla_baronbackarna",
        **SECRET,
    )
    return Seed(users=demo, case=sig_case(demo, Status.ACTIVE, person=person), personnummer=number)


@pytest.fixture
def clients(demo, client):
    """Per kind: a client with every scope, and ``without(scope)``: one lacking ``scope``."""
    made: dict[tuple[str, str], Api] = {}

    def api(kind: str, missing: str = "") -> Api:
        if (kind, missing) not in made:
            organisation = demo[TYPICAL[kind]].organisation
            assert organisation.kind == kind
            scopes = [scope for scope in ALL_SCOPES if scope != missing]
            api_client, client_id, secret = make_client(organisation, scopes)
            response = get_token(client, client_id, secret)
            assert response.status_code == 200, response.content
            made[kind, missing] = Api(client, response.json()["access_token"], api_client)
        return made[kind, missing]

    return api


# --- The matrix --------------------------------------------------------------------------------


def test_every_operation_has_a_row(client):
    """A row per operation of the document (the message says how to add one), and none
    for an operation it no longer has."""
    operations = document_operations(client)
    missing = []
    for operation in operations:
        try:
            row_for(operation)
        except AssertionError as error:
            missing.append(str(error))
    assert not missing, "\n".join(missing)
    stale = set(EXPECTED) - {operation.operation_id for operation in operations}
    assert not stale, f"rows in EXPECTED for operations the document no longer has: {stale}"


def test_the_matrix(client, clients, seed):
    strings = person_strings(seed)
    problems, table = [], []
    for operation in document_operations(client):
        try:
            row = row_for(operation)
        except AssertionError as error:
            problems.append(str(error))
            continue
        cells = [(None, None, None, 401)]  # no token at all
        for kind in KINDS:
            typical, stranger = TYPICAL[kind], STRANGER[kind]
            without_person = (
                403
                if operation.needs_person
                else (row.without_person or {}).get(kind, row.own[kind])
            )
            cells += [
                (clients(kind), typical, "own", row.own[kind]),
                (clients(kind), stranger, "other", 403),
                (clients(kind), None, "no person", without_person),
                (clients(kind, missing=operation.scope), typical, "no scope", 403),
            ]
        for api, acting, how, expected in cells:
            response = call(api, operation, seed, acting=acting, http=client)
            who = f"{api.client.organisation.kind} client" if api else "no token"
            label = f"{operation} as {who}, acting {acting or '-'} ({how or 'anonymous'})"
            table.append(f"{label}: {response.status_code}")
            if response.status_code != expected:
                problems.append(f"{label}: {response.status_code}, expected {expected}")
            if (
                response.status_code >= 400
                and response["Content-Type"] != "application/problem+json"
            ):
                problems.append(f"{label}: an error that is not a problem document")
            person = seed.users[acting] if acting else None
            if person is None or not policy.case_access(person, seed.case):
                found = leaks(response, strings)
                if found:
                    problems.append(f"{label}: the answer shows {found}")
    print("\n".join(table))
    assert not problems, "\n".join(problems)


def test_the_leak_search_finds_the_person():
    """The control: the search finds the seeded strings in a body and in a header."""
    strings = ("Hemlighild Matrisdotter", "20100719-1008")
    body = HttpResponse(json.dumps({"name": "Hemlighild Matrisdotter"}, ensure_ascii=True))
    assert leaks(body, strings) == ["Hemlighild Matrisdotter"]
    header = HttpResponse("{}", headers={"Location": "/x/20100719-1008/"})
    assert leaks(header, strings) == ["20100719-1008"]


# --- The front door ----------------------------------------------------------------------------


def _is_problem(response, status: int) -> bool:
    return (
        response.status_code == status
        and response["Content-Type"] == "application/problem+json"
        and response.json()["status"] == status
        and bool(response.json()["detail"] and response.json()["detail_en"])
    )


def case_path(seed: Seed) -> str:
    return f"/api/v1/cases/{seed.case.pk}/"


def test_rate_limit_per_client(api_for, seed):
    limited = api_for(seed.users["anna.social"].organisation.name, rate_limit="3/min")
    other = api_for(seed.users["anna.social"].organisation.name)
    for _ in range(3):
        assert limited.get(case_path(seed), acting="anna.social").status_code == 200
    refused = limited.get(case_path(seed), acting="anna.social")
    assert _is_problem(refused, 429)
    assert 0 < int(refused["Retry-After"]) <= 60
    # Another client of the same organisation is not affected.
    assert other.get(case_path(seed), acting="anna.social").status_code == 200


def test_a_token_in_the_query_string_or_the_body_is_not_accepted(social_api, seed, client):
    response = client.get(
        case_path(seed),
        {"access_token": social_api.token},
        HTTP_SAMVERKAN_ACTING_USER="anna.social",
    )
    assert _is_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    response = client.post(
        "/api/v1/sig/referrals/",
        {"access_token": social_api.token},
        HTTP_SAMVERKAN_ACTING_USER="anna.social",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert _is_problem(response, 401)


def test_an_expired_token_is_refused(social_api, seed):
    assert social_api.get(case_path(seed), acting="anna.social").status_code == 200
    AccessToken.objects.filter(application=social_api.client.application).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    assert _is_problem(social_api.get(case_path(seed), acting="anna.social"), 401)


@pytest.mark.parametrize("change", ["deactivated", "organisation inactive", "scopes unapproved"])
def test_a_token_of_an_unusable_client_is_refused(social_api, seed, change):
    assert social_api.get(case_path(seed), acting="anna.social").status_code == 200
    api_client = social_api.client
    if change == "deactivated":
        api_client.is_active = False
        api_client.save(update_fields=["is_active"])
    elif change == "organisation inactive":
        Organisation.objects.filter(pk=api_client.organisation_id).update(is_active=False)
    else:
        # A change no second administrator approved: the approved digest no longer matches.
        api_client.scopes = "cases:read"
        api_client.save(update_fields=["scopes"])
    assert _is_problem(social_api.get(case_path(seed), acting="anna.social"), 401)


def test_a_token_of_a_never_approved_client_is_refused(demo, seed, client):
    api_client, _client_id, _secret = make_client(demo["anna.social"].organisation, approved=False)
    token = AccessToken.objects.create(
        application=api_client.application,
        token=uuid.uuid4().hex,
        scope=" ".join(ALL_SCOPES),
        expires=timezone.now() + timedelta(minutes=5),
    )
    api = Api(client, token.token, api_client)
    assert _is_problem(api.get(case_path(seed), acting="anna.social"), 401)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer \xff\xfe",
        "Bearer \x00",
        "Bearer " + "x" * 10_000,
        "Bearer unknown-token",
        "Basic Zm9vOmJhcg==",
        "Token abc",
        "Bearer" + "\t" * 3,
        "\u00e5\u00e4\u00f6",
    ],
    ids=lambda value: repr(value[:20]),
)
def test_a_malformed_authorization_header_is_a_401_problem(seed, client, authorization):
    response = client.get(
        case_path(seed),
        HTTP_AUTHORIZATION=authorization,
        HTTP_SAMVERKAN_ACTING_USER="anna.social",
    )
    assert _is_problem(response, 401)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_json_is_a_415_problem(social_api, seed, content_type):
    response = social_api.http.post(
        "/api/v1/sig/referrals/",
        json.dumps(_referral(seed)),
        content_type=content_type,
        **social_api.headers("anna.social", **{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert _is_problem(response, 415)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("[" * 100_000 + "]" * 100_000, 400),  # deeper than Python's decoder goes
        ('{"name": "' + "x" * 3_000_000 + '"}', 413),  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        ('{"reason": NaN}', 400),
        ("1" * 5_000, 400),  # more digits than Python converts
        ("\ufeff{}", 400),
        ('{"name": "\\ud800"}', 400),
        ("", 400),
    ],
    ids=["deep", "huge", "nan", "long number", "bom", "lone surrogate", "empty"],
)
def test_an_odd_json_body_is_a_problem_not_a_500(social_api, seed, body, status):
    response = social_api.http.post(
        "/api/v1/sig/referrals/",
        body,
        content_type="application/json",
        **social_api.headers("anna.social", **{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert _is_problem(response, status)


@pytest.mark.parametrize(
    "acting", ["per.polis", "no.such.user", "inactive.social", " anna.social\x00"]
)
def test_an_acting_person_not_active_in_the_clients_organisation_is_refused(
    social_api, seed, acting
):
    from casework.models import User

    User.objects.create(
        username="inactive.social",
        organisation=seed.users["anna.social"].organisation,
        is_active=False,
    )
    response = social_api.get(case_path(seed), acting=acting)
    assert _is_problem(response, 403)
    assert SECRET["name"] not in response.content.decode()


def test_an_idempotency_key_reused_with_another_body_is_a_422(social_api, seed):
    key = uuid.uuid4().hex
    first = social_api.post(
        "/api/v1/sig/referrals/", _referral(seed), acting="anna.social", key=key
    )
    assert first.status_code == 201, first.content
    again = social_api.post(
        "/api/v1/sig/referrals/", _referral(seed), acting="anna.social", key=key
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = social_api.post(
        "/api/v1/sig/referrals/",
        {**_referral(seed), "reason": "Ett annat skäl."},
        acting="anna.social",
        key=key,
    )
    assert _is_problem(other, 422)
    assert Case.objects.filter(person=seed.case.person).count() == 2  # the seed's and one
