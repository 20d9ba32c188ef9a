"""A SIG referral through the API, as ``make bench`` sends it: what it costs in statements
(ADR 0035) and what a retry with the same Idempotency-Key gets back."""

from __future__ import annotations

import uuid

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from casework.models import Case, DataKey, IdempotentRequest
from casework.personnummer import with_check_digit
from workflows.common.api import NewCaseOut
from workflows.sig.models import SigCase

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

REFERRALS = "/api/v1/sig/referrals/"
# A referral's statements, SAVEPOINT and RELEASE left out (the test's own transaction
# turns each atomic block into one; in production there are none, ADR 0035): 20 on the
# main database and the look-up's event on the audit alias (in tests a mirror of the
# main one: its statements are counted there), one on the key store. Session 10: 23 + 1
# and 2.
ALIASES = ("default", "keystore", "audit")
MAIN, KEYSTORE = 21, 1


def _referral(serial: int) -> dict:
    return {
        "personnummer": "20" + with_check_digit(f"0908{15 + serial:02d}098"),
        "name": "Test Testsson",
        "area": "other",
        "reason": "Orolig för kriminalitet.",
    }


def _statements(func) -> dict[str, list[str]]:
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ALIASES}
    for context in contexts.values():
        context.__enter__()
    try:
        func()
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    return {
        alias: [
            query["sql"]
            for query in context.captured_queries
            if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
        ]
        for alias, context in contexts.items()
    }


def test_a_referral_of_a_new_person_keeps_to_its_statements(social_api):
    # The first request fills the process's caches (token, client, acting person).
    assert social_api.post(REFERRALS, _referral(0), acting="anna.social").status_code == 201
    answers = []
    ran = _statements(
        lambda: answers.append(social_api.post(REFERRALS, _referral(1), acting="anna.social"))
    )
    assert answers[0].status_code == 201, answers[0].content
    counts = {alias: len(statements) for alias, statements in ran.items()}
    listed = "\n".join(sql[:100] for statements in ran.values() for sql in statements)
    assert counts["default"] + counts["audit"] <= MAIN, listed
    assert counts["keystore"] <= KEYSTORE, listed
    # One look-up of the access generation by the API's authentication, one for both
    # webhook events of the opening and the flow's start.
    assert sum("casework_accessgeneration" in sql for sql in ran["default"]) <= 2, listed
    case = Case.objects.get(pk=answers[0].json()["id"])
    # The answer is what the schema's serializer gives.
    assert answers[0].json() == NewCaseOut(SigCase.objects.get(pk=case.pk)).data
    # Both new keys, the person's and the case's, are in the key store (one statement).
    owners = set(DataKey.objects.values_list("owner_type", "owner_id"))
    assert {("casework.person", case.person_id), ("casework.case", case.pk)} <= owners


def test_a_retry_gets_the_first_answer_with_its_headers(social_api):
    key = uuid.uuid4().hex
    first = social_api.post(REFERRALS, _referral(2), acting="anna.social", key=key)
    assert first.status_code == 201, first.content
    again = social_api.post(REFERRALS, _referral(2), acting="anna.social", key=key)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (again["Location"], again["ETag"]) == (first["Location"], first["ETag"])
    assert first["Location"] == f"/api/v1/cases/{first.json()['id']}/"
    kept = IdempotentRequest.objects.get(client=social_api.client, key=key)
    assert kept.body == first.json() and kept.status_code == 201
    assert kept.headers == {"Location": first["Location"], "ETag": first["ETag"]}
    person = Case.objects.get(pk=first.json()["id"]).person_id
    assert Case.objects.filter(person_id=person).count() == 1
