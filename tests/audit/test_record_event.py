from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from audit.models import AccessEvent
from audit.services import Action, record_event, sanitize_text


def test_record_event_snapshots_the_actor(demo):
    user = demo["per.polis"]
    person_id = uuid.uuid4()
    event = record_event(
        action=Action.CONSULT,
        user=user,
        object_type="casework.person",
        object_id=str(person_id),
        person_id=person_id,
        fields=["phone", "name", "name"],
        purpose="Förbereda samtal",
        legal_basis="samtycke",
    )
    event.refresh_from_db()
    assert event.username == "per.polis"
    assert event.organisation_name == "Lokalpolisområde Örebro"
    assert event.roles == "kontaktpolis"
    assert event.fields == ["name", "phone"]
    assert event.outcome == "allowed"
    assert event.person_id == person_id


def test_record_event_rejects_unknown_actions(db):
    with pytest.raises(ValueError, match="unknown audit action"):
        record_event(action="peek")
    assert not AccessEvent.objects.exists()


def test_a_rolled_back_change_leaves_no_event(demo):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(action=Action.CHANGE, user=demo["anna.social"], object_type="x")
        raise RuntimeError("the change fails")
    assert not AccessEvent.objects.filter(action=Action.CHANGE).exists()


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("ok\n2026-01-01 login admin", "ok\\n2026-01-01 login admin"),
        ("a\r\nb\tc\x1b[31m", "a\\r\\nb\\tc\\x1b[31m"),
        ("rad\u2028två", "rad\\u2028två"),
        ("vanlig text åäö", "vanlig text åäö"),
    ],
)
def test_free_text_is_stored_inertly(raw, stored):
    assert sanitize_text(raw) == stored


def test_requests_get_an_id(demo, client):
    client.force_login(demo["anna.social"])
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32
    response = client.get("/healthz", headers={"X-Request-ID": "proxy-abc-12345"})
    assert response["X-Request-ID"] == "proxy-abc-12345"
    response = client.get("/healthz", headers={"X-Request-ID": "bad\nid"})
    assert response["X-Request-ID"] != "bad\nid"
