"""Lookups and denials leave a trace even when the request that made them rolls back;
creations and changes vanish with theirs (docs/adr/0015-lookups-leave-a-trace.md).

These tests commit for real (``transaction=True``): the lookup's event is written on the
second connection ``audit`` while the request's transaction is still open, and the chain
over all of it must verify.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.models import AccessEvent
from audit.services import Action, Outcome, record_event
from casework import selectors, services
from casework.models import Person
from tests.conftest import COMMITTED_DB

from .helpers import assert_one_verified_chain

pytestmark = COMMITTED_DB

ROOT = Path(__file__).resolve().parents[2]
PURPOSE = "Förbereda nätverksmöte"
NAME = "Zelmira Kvastbinder"
NUMBER = "19880320-0016"
OTHER_NUMBER = "811228-9841"


class RequestFails(Exception):
    """What the rest of a request raises after its lookup (a stale form, a bad field)."""


@pytest.fixture
def worker(demo):
    return demo["anna.social"]


@pytest.fixture
def person(worker):
    return services.create_person(user=worker, purpose=PURPOSE, name=NAME, personnummer=NUMBER)


def _lookups(**details):
    events = AccessEvent.objects.filter(action=Action.CONSULT, object_type="casework.person")
    return events.filter(**{f"details__{key}": value for key, value in details.items()})


@pytest.mark.parametrize("registered", [True, False])
def test_a_lookup_by_personnummer_survives_the_rollback(worker, person, registered):
    number = NUMBER if registered else OTHER_NUMBER
    with pytest.raises(RequestFails), transaction.atomic():
        found = selectors.find_person(user=worker, purpose=PURPOSE, personnummer=number)
        assert (found is not None) == registered
        raise RequestFails
    (event,) = _lookups(lookup="personnummer")
    assert event.details["found"] is registered
    assert event.person_id == (person.pk if registered else None)
    assert event.user_id == worker.pk and event.purpose == PURPOSE
    assert_one_verified_chain()


def test_a_duplicate_check_survives_the_rollback(worker, person):
    """Registering a number that is registered tells the user so: that is a lookup too."""
    with pytest.raises(ValidationError), transaction.atomic():
        services.create_person(user=worker, purpose=PURPOSE, name="Annan", personnummer=NUMBER)
    (event,) = _lookups(lookup="duplicate check")
    assert event.person_id == person.pk
    other = services.create_person(
        user=worker, purpose=PURPOSE, name="Annan", personnummer=OTHER_NUMBER
    )
    with pytest.raises(ValidationError), transaction.atomic():
        services.update_person(
            user=worker, purpose=PURPOSE, person_id=other.pk, personnummer=NUMBER
        )
    assert _lookups(lookup="duplicate check").count() == 2
    assert_one_verified_chain()


def test_the_auditors_lookup_survives_the_rollback(demo, person):
    auditor = demo["greta.granskare"]
    with pytest.raises(RequestFails), transaction.atomic():
        assert selectors.persons.person_ids_for_audit(NUMBER, user=auditor) == [person.pk]
        raise RequestFails
    (event,) = _lookups(lookup="audit")
    assert event.user_id == auditor.pk and event.person_id == person.pk
    assert_one_verified_chain()


def test_a_denied_lookup_survives_the_rollback(demo, person):
    outsider = demo["stig.styrgrupp"]  # the steering group: statistics only
    with pytest.raises(PermissionDenied), transaction.atomic():
        selectors.find_person(user=outsider, purpose=PURPOSE, personnummer=NUMBER)
    (event,) = AccessEvent.objects.filter(action=Action.ACCESS_DENIED, user=outsider)
    assert event.outcome == Outcome.DENIED and event.details["operation"] == "find"
    assert_one_verified_chain()


def test_a_denial_is_kept_even_when_its_writer_forgets_to_say_so():
    """``record_event`` writes every denied outcome on its own: no caller can lose one."""
    with pytest.raises(RequestFails), transaction.atomic():
        record_event(action=Action.ACCESS_DENIED, outcome=Outcome.DENIED, details={"x": 1})
        raise RequestFails
    assert AccessEvent.objects.filter(action=Action.ACCESS_DENIED, details__x=1).exists()
    with pytest.raises(ValueError):
        from audit.services import record_events

        record_events({"action": Action.ACCESS_DENIED, "outcome": Outcome.DENIED})
    assert_one_verified_chain()


def test_a_refusal_is_a_denied_access_event_kept_through_a_rollback(worker):
    """``record_refusal``: the ``ACCESS_DENIED`` action and the denied outcome, whatever the
    request's transaction does after it."""
    from audit.services import record_refusal

    with pytest.raises(RequestFails), transaction.atomic():
        record_refusal(user=worker, purpose=PURPOSE, details={"operation": "probe"})
        raise RequestFails
    event = AccessEvent.objects.get(details__operation="probe")
    assert (event.action, event.outcome, event.user_id) == (
        Action.ACCESS_DENIED,
        Outcome.DENIED,
        worker.pk,
    )
    assert_one_verified_chain()


def test_a_registration_that_rolls_back_leaves_no_creation_event(worker):
    """The other half of the rule: a creation vanishes with its rolled-back change, while
    the lookup it made stays."""
    with pytest.raises(RequestFails), transaction.atomic():
        assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer=NUMBER) is None
        services.create_person(user=worker, purpose=PURPOSE, name=NAME, personnummer=NUMBER)
        raise RequestFails
    assert not Person.objects.exists()
    assert not AccessEvent.objects.filter(action=Action.CREATE).exists()
    assert _lookups(lookup="personnummer", found=False).count() == 1
    assert_one_verified_chain()


# --- The rule, over the code ---------------------------------------------------------------


def _record_event_calls():
    for package in ("audit", "casework", "workflows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "record_event":
                    yield path.relative_to(ROOT), node


def _keyword(call: ast.Call, name: str) -> str:
    for keyword in call.keywords:
        if keyword.arg == name:
            return ast.unparse(keyword.value)
    return ""


def test_every_lookup_and_denial_in_the_code_is_written_on_its_own():
    """A new lookup (a ``details`` with ``"lookup"``) or denial written in the caller's
    transaction fails here."""
    wrong = []
    for path, call in _record_event_calls():
        action, outcome = _keyword(call, "action"), _keyword(call, "outcome")
        lookup = "'lookup'" in _keyword(call, "details")
        denial = action.endswith(("ACCESS_DENIED", "LOGIN_FAILED")) or outcome.endswith("DENIED")
        if (lookup or denial) and _keyword(call, "independent") != "True":
            wrong.append(f"{path}:{call.lineno}")
    assert wrong == []
