"""The audit records around the person register (field encryption by casework)."""

from __future__ import annotations

import datetime as dt

import pytest

from audit import review
from audit.models import AccessEvent, ChangeRecord
from audit.services import Action
from casework import selectors, services
from casework.models import Person

pytestmark = pytest.mark.django_db(databases=["default", "keystore"])

PURPOSE = "Förbereda nätverksmöte"
PERSON = {
    "name": "Zelmira Kvastbinder",
    "personnummer": "19880320-0016",
    "address": "Gravörvägen 17, 702 81 Örebro",
    "phone": "070-174 06 42",
    "note": "Vill bli kontaktad på eftermiddagar",
}


@pytest.fixture
def worker(demo):
    return demo["anna.social"]


@pytest.fixture
def person(worker):
    return services.create_person(user=worker, purpose=PURPOSE, **PERSON)


def _consultations() -> int:
    return AccessEvent.objects.filter(action=Action.CONSULT).count()


@pytest.mark.parametrize(
    "read",
    [
        lambda user, person: selectors.get_person_details(
            user=user, purpose=PURPOSE, person_id=person.pk
        ),
        lambda user, person: selectors.get_person_details(
            user=user, purpose=PURPOSE, person_id=person.pk, fields=["phone"]
        ),
        lambda user, person: selectors.find_person(
            user=user, purpose=PURPOSE, personnummer=PERSON["personnummer"]
        ),
        lambda user, person: selectors.find_person(
            user=user, purpose=PURPOSE, personnummer="19121212-1212"
        ),
    ],
    ids=["all fields", "one field", "find (found)", "find (not found)"],
)
def test_each_decrypting_selector_writes_exactly_one_consultation_per_call(worker, person, read):
    for calls in range(1, 4):
        before = _consultations()
        read(worker, person)
        assert _consultations() == before + 1, f"call {calls}"
    event = AccessEvent.objects.filter(action=Action.CONSULT).latest("id")
    assert event.user_id == worker.pk
    assert event.purpose == PURPOSE
    assert PERSON["name"] not in str(AccessEvent.objects.values_list())
    assert "19880320" not in str(AccessEvent.objects.values_list())


def test_the_person_history_holds_ciphertext_only_and_no_blind_index(worker, person):
    services.update_person(user=worker, purpose=PURPOSE, person_id=person.pk, phone="070-000 00 00")
    history = list(
        ChangeRecord.objects.filter(table_name="casework_person", row_id=str(person.pk)).order_by(
            "id"
        )
    )
    assert [h.operation for h in history[:1]] == ["INSERT"]
    assert any(h.operation == "UPDATE" and "phone" in h.changed_fields for h in history)
    dump = str([h.data for h in history])
    for value in (*PERSON.values(), "070-000 00 00", "198803200016", "8803200016"):
        assert value not in dump
    assert all("personnummer_index" not in h.data for h in history)


def test_log_review_lists_every_access_to_a_protected_identity(worker, person):
    hidden = services.create_person(
        user=worker,
        purpose=PURPOSE,
        name="Skyddad Person",
        personnummer="811228-9841",
        protected_identity=Person.ProtectedIdentity.PROTECTED_REGISTRATION,
    )
    selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=person.pk)
    selectors.get_person_details(user=worker, purpose=PURPOSE, person_id=hidden.pk)
    now = dt.datetime.now(dt.UTC)
    report = review.build_report(
        start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=1), seed=1
    )
    assert report.protected_identity.available
    assert report.protected_identity.total >= 2  # creation and consultation
    assert {e.person_id for e in report.protected_identity.events} == {hidden.pk}
