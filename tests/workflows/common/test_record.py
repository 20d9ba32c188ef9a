"""The person's record from a case (ADR 0027): corrections of name, address, phone and
guardians, protected identity set and lifted in every programme and masked everywhere,
and the case worker's search of their own cases."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AccessEvent, ChangeRecord
from casework import policy
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import open_value
from casework.fields import Sealed
from casework.models import CaseEvent, Guardian, Person
from casework.selectors import get_person_details
from casework.services import person_corrections as corrections
from casework.services.case_changes import CaseDenied
from tests.conftest import DEMO_USERS
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import defector_case
from tests.workflows.sig.factories import PERSON_NAME, PURPOSE, sig_case
from tests.workflows.sspf.factories import sspf_case
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

NEW = {"name": "Testa Rättadsson", "address": "Nygatan 7", "phone": "070-999 11 22"}
REASON = "Enligt folkbokföringen."
GUARDIAN_NAME = "Vera Provsson"


def record_url(case) -> str:
    return reverse("arenden:record", args=[case.pk])


def _post(client, user, case, data):
    client.force_login(user)
    case.refresh_from_db()
    return client.post(record_url(case), {"version": case.version, **data})


def _person(users, case):
    return get_person_details(user=users["anna.social"], purpose=PURPOSE, person_id=case.person_id)


def _history(table: str, row_id) -> list[ChangeRecord]:
    return list(ChangeRecord.objects.filter(table_name=table, row_id=str(row_id)).order_by("id"))


def _sealed(value) -> Sealed:
    """A bytea column as the change history's JSON holds it (``\\x…``)."""
    return Sealed(bytes.fromhex(value[2:]))


# --- Correcting the person ------------------------------------------------------------------


def test_the_lead_corrects_the_person_and_the_old_values_stay_sealed_in_the_history(users, client):
    case = sig_case(users, Status.ACTIVE)
    before = len(_history("casework_person", case.person_id))
    response = _post(
        client, users["anna.social"], case, {"_action": "person", **NEW, "reason": REASON}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    details = _person(users, case)
    assert (details.name, details.address, details.phone) == tuple(NEW.values())

    history = _history("casework_person", case.person_id)
    assert len(history) == before + 1
    correction = history[-1]
    assert correction.operation == ChangeRecord.Operation.UPDATE
    assert set(correction.changed_fields) >= {"name", "address", "phone"}
    assert correction.context and correction.context.get("user_id") == users["anna.social"].pk
    # The row before the correction, in the history: ciphertext that opens, under the
    # person's key, to the old values - and nothing in it is plaintext.
    old = history[-2].data
    dek = load_data_key(owner_type=PERSON, owner_id=case.person_id)
    as_before = Person(
        id=case.person_id, name=_sealed(old["name"]), address=_sealed(old["address"])
    )
    assert open_value(as_before, "name", dek) == PERSON_NAME
    assert open_value(as_before, "address", dek) == "Provgatan 1"
    for record in history:
        text = str(record.data)
        for value in (PERSON_NAME, "Provgatan 1", *NEW.values()):
            assert value not in text

    # Every correction is in the access log (fields, never values) and the timeline.
    person_event = AccessEvent.objects.filter(
        action=AccessEvent.Action.CHANGE, object_id=str(case.person_id)
    ).latest("id")
    assert set(person_event.fields) == {"name", "address", "phone"}
    case_event = AccessEvent.objects.filter(
        action=AccessEvent.Action.CHANGE, object_id=str(case.pk)
    ).latest("id")
    assert set(case_event.fields) == {"person.name", "person.address", "person.phone"}
    assert case_event.details["correction"] is True
    for value in NEW.values():
        assert value not in str(person_event.details) + str(case_event.details)
    assert CaseEvent.objects.filter(
        case=case, kind=CaseEvent.Kind.RECORD, transition="person_corrected"
    ).exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "reason": REASON}, "name", "Detta fält måste fyllas i."),
        ({"name": "X" * 201, "reason": REASON}, "name", "som mest 200 tecken"),
        ({"name": "Ny Person", "reason": ""}, "reason", "Detta fält måste fyllas i."),
        (
            {
                "name": PERSON_NAME,
                "address": "Provgatan 1",
                "phone": "070-174 06 11",
                "reason": REASON,
            },
            None,
            "Inget ändrades",
        ),
    ],
)
def test_bad_input_gives_swedish_errors_and_changes_nothing(users, client, data, field, message):
    case = sig_case(users, Status.ACTIVE)
    version = case.version
    rows = ChangeRecord.objects.count()
    events = CaseEvent.objects.filter(case=case).count()
    response = _post(client, users["anna.social"], case, {"_action": "person", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    case.refresh_from_db()
    assert case.version == version
    assert _person(users, case).name == PERSON_NAME
    assert CaseEvent.objects.filter(case=case).count() == events
    assert ChangeRecord.objects.count() == rows


def test_a_stale_form_saves_nothing(users, client):
    case = sig_case(users, Status.ACTIVE)
    client.force_login(users["anna.social"])
    response = client.post(
        record_url(case),
        {"_action": "person", **NEW, "reason": REASON, "version": case.version - 1},
    )
    assert response.status_code == 400
    assert "ändrats av någon annan" in response.content.decode()
    assert _person(users, case).name == PERSON_NAME


# Who may correct the record of an active SIG case: its lead and the programme's coordinator.
CORRECTORS = {"anna.social", "sara.samordnare"}


@pytest.mark.parametrize("username", DEMO_USERS)
def test_who_may_correct(users, client, username):
    case = sig_case(users, Status.ACTIVE)
    response = _post(client, users[username], case, {"_action": "person", **NEW, "reason": REASON})
    if username in CORRECTORS:
        assert response.status_code == 302
        assert _person(users, case).name == NEW["name"]
    else:
        assert response.status_code in (403, 404), username
        assert _person(users, case).name == PERSON_NAME
        assert AccessEvent.objects.filter(
            user_id=users[username].pk, action=AccessEvent.Action.ACCESS_DENIED
        ).exists()
        # The page is theirs only to set the protected identity (a named handler), and
        # tells the others nothing of the person.
        page = client.get(record_url(case))
        if username == "per.polis":
            assert page.status_code == 200
            assert 'value="person"' not in page.content.decode()
        else:
            assert page.status_code in (403, 404)
            assert PERSON_NAME not in page.content.decode()


def test_the_police_contact_on_the_team_cannot_correct_through_the_service(users):
    case = sig_case(users, Status.ACTIVE)
    with pytest.raises(CaseDenied):
        corrections.correct_person(
            user=users["per.polis"], case=case, purpose=PURPOSE, reason=REASON, name="X Y"
        )


def test_a_closed_case_is_not_corrected(users, client):
    case = sig_case(users, Status.CLOSED)
    response = _post(
        client, users["sara.samordnare"], case, {"_action": "person", **NEW, "reason": REASON}
    )
    assert response.status_code == 404


# --- Guardians ----------------------------------------------------------------------------------


def test_guardians_are_added_corrected_and_ended(users, client):
    case = sig_case(users, Status.DECISION_PENDING)
    anna = users["anna.social"]
    guardian = case.person.guardians.get()
    response = _post(
        client,
        anna,
        case,
        {
            "_action": "guardian",
            "guardian": guardian.pk,
            "guardian_name": GUARDIAN_NAME,
            "guardian_phone": "070-555 00 01",
            "reason": REASON,
        },
    )
    assert response.status_code == 302
    history = _history("casework_guardian", guardian.pk)
    assert history[-1].changed_fields == ["phone"]
    assert "070-555 00 01" not in str(history[-1].data)
    event = AccessEvent.objects.filter(object_id=str(guardian.pk)).latest("id")
    assert (event.action, event.fields) == (AccessEvent.Action.CHANGE, ["phone"])

    response = _post(
        client,
        anna,
        case,
        {"_action": "guardian_add", "guardian_name": "Ture Provsson", "reason": REASON},
    )
    assert response.status_code == 302
    assert case.person.guardians.current().count() == 2
    # A new guardian's consent is missing now.
    assert not policy.consent_state(case).complete

    response = _post(
        client, anna, case, {"_action": "guardian_end", "guardian": guardian.pk, "reason": REASON}
    )
    assert response.status_code == 302
    guardian.refresh_from_db()
    assert guardian.ended_at is not None
    assert Guardian.objects.filter(pk=guardian.pk).exists()  # kept, with its history
    page = client.get(reverse("arenden:case", args=[case.pk])).content.decode()
    assert "Ture Provsson" in page and GUARDIAN_NAME not in page
    # An ended guardian cannot be corrected or ended again.
    response = _post(
        client, anna, case, {"_action": "guardian_end", "guardian": guardian.pk, "reason": REASON}
    )
    assert response.status_code == 400
    assert "Det finns ingen sådan vårdnadshavare" in response.content.decode()


def test_the_only_guardian_of_a_minor_in_an_active_case_is_not_ended(users, client):
    case = sig_case(users, Status.ACTIVE)
    guardian = case.person.guardians.get()
    response = _post(
        client,
        users["anna.social"],
        case,
        {"_action": "guardian_end", "guardian": guardian.pk, "reason": REASON},
    )
    assert response.status_code == 400
    guardian.refresh_from_db()
    assert guardian.ended_at is None


# --- Protected identity ---------------------------------------------------------------------


def _protect(users, case, level=Person.ProtectedIdentity.PROTECTED_REGISTRATION, **kwargs):
    corrections.set_protected_identity(
        user=users["sara.samordnare"] if case.programme != "defector" else users["anna.social"],
        case=case,
        purpose=PURPOSE,
        level=level,
        **kwargs,
    )
    case.person.refresh_from_db()


@pytest.mark.parametrize("programme", ["sig", "sspf", "defector"])
def test_protected_identity_is_set_and_lifted_in_every_programme(users, client, programme):
    case = {
        "sig": lambda: sig_case(users, Status.ACTIVE),
        "sspf": lambda: sspf_case(users, "mapping"),
        "defector": lambda: defector_case(users, "activate"),
    }[programme]()
    setter = users["anna.social"] if programme != "sspf" else users["sara.samordnare"]
    response = _post(client, setter, case, {"_action": "protected_identity", "level": "2"})
    assert response.status_code == 302, response.content.decode()[:3000]
    case.person.refresh_from_db()
    assert case.person.protected_identity == 2
    response = _post(
        client, setter, case, {"_action": "protected_identity", "level": "0", "reason": REASON}
    )
    assert response.status_code == 302
    case.person.refresh_from_db()
    assert case.person.protected_identity == 0
    events = list(
        AccessEvent.objects.filter(
            object_id=str(case.pk), details__protected_identity__isnull=False
        ).order_by("id")
    )
    assert [(e.details["protected_identity"], e.details["lifted"]) for e in events] == [
        (2, False),
        (0, True),
    ]
    bad = _post(client, setter, case, {"_action": "protected_identity", "level": "9"})
    assert bad.status_code == 400
    assert "Välj ett giltigt alternativ" in bad.content.decode()


def test_a_team_member_who_is_not_a_named_handler_cannot_set_it(users):
    case = sspf_case(users, "mapping")
    with pytest.raises(CaseDenied):
        corrections.set_protected_identity(
            user=users["lisa.skola"], case=case, purpose=PURPOSE, level=1
        )
    case.person.refresh_from_db()
    assert case.person.protected_identity == 0
