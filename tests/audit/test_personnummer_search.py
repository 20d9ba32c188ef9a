"""The auditor searches the access log by personnummer through the blind index."""

from __future__ import annotations

import pytest

from audit.models import AccessEvent
from casework import services
from tests.casework.conftest import ANNA, PURPOSE

pytestmark = pytest.mark.django_db(databases=["default", "keystore"])


@pytest.fixture
def person(demo):
    return services.create_person(user=demo["anna.social"], purpose=PURPOSE, **ANNA)


def test_auditor_finds_the_events_of_a_person_by_personnummer(demo, client, person):
    greta = demo["greta.granskare"]
    client.force_login(greta)
    before = AccessEvent.objects.filter(user=greta, action="consult").count()
    response = client.get("/granskning/", {"person": ANNA["personnummer"]})
    assert response.status_code == 200
    consults = AccessEvent.objects.filter(user=greta, action="consult")
    assert consults.count() == before + 1
    event = consults.latest("id")
    assert event.person_id == person.pk
    assert event.fields == ["personnummer"]
    assert ANNA["personnummer"] not in str(event.details) + event.purpose
    # The registration event of the person is among the results.
    assert str(person.pk) in response.content.decode()


def test_an_invalid_personnummer_is_a_form_error(demo, client):
    client.force_login(demo["greta.granskare"])
    response = client.get("/granskning/", {"person": "19880320-0017"})
    assert response.status_code == 400
    assert b"errorlist" in response.content


def test_only_auditors_may_look_up(demo, person):
    from django.core.exceptions import PermissionDenied

    from casework.selectors.persons import person_ids_for_audit

    with pytest.raises(PermissionDenied):
        person_ids_for_audit(ANNA["personnummer"], user=demo["anna.social"])
    assert person_ids_for_audit(ANNA["personnummer"], user=demo["greta.granskare"]) == [person.pk]
