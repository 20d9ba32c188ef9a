"""Persons: encrypted fields through services and selectors, the blind index, the access log."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.exceptions import FieldError, PermissionDenied, ValidationError
from django.db import connection

from audit.models import AccessEvent
from casework import selectors, services
from casework.crypto import envelope, keyring
from casework.crypto.blind_index import personnummer_index
from casework.crypto.errors import DataKeyUnwrapError, DecryptionError, KeyringError
from casework.crypto.keystore import PERSON, current_keyring, load_data_key
from casework.models import Person
from tests.casework.conftest import ANNA, BERTIL, PURPOSE, persons_db

pytestmark = persons_db


def _events(action=None):
    """The events about persons (the audit app also logs account changes, logins …)."""
    events = AccessEvent.objects.filter(object_type="casework.person").order_by("id")
    return list(events.filter(action=action) if action else events)


def _details(user, person, **kwargs):
    return selectors.get_person_details(user=user, purpose=PURPOSE, person_id=person.pk, **kwargs)


# --- Round trip --------------------------------------------------------------------


def test_every_field_type_round_trips(worker, make_person):
    person = make_person()
    details = _details(worker, person)
    assert details.name == ANNA["name"]
    assert details.personnummer == "198803200016"
    assert details.personnummer_display == "19880320-0016"
    assert details.birth_date == datetime.date(1988, 3, 20)  # the date field type
    assert details.address == ANNA["address"]
    assert details.phone == ANNA["phone"]
    assert details.note == ANNA["note"]  # non-ASCII text
    assert (details.birth_year, details.gender) == (1988, "male")


def test_empty_optional_fields_stay_empty(worker, make_person):
    person = make_person(BERTIL)
    assert person.phone is None and person.note is None
    details = _details(worker, person)
    assert details.phone is None and details.note is None


def test_a_samordningsnummer_gives_the_real_birth_date(worker, make_person):
    person = make_person(BERTIL, personnummer="900161-1236")
    details = _details(worker, person)
    assert details.birth_date == datetime.date(1990, 1, 1)
    assert details.personnummer == "199001611236"
    assert person.birth_year == 1990


def test_only_the_requested_fields_are_decrypted(worker, make_person):
    person = make_person()
    details = _details(worker, person, fields=["name"])
    assert details.name == ANNA["name"] and details.address is None
    assert _events("consult")[-1].fields == ["name"]
    with pytest.raises(ValueError, match="not encrypted fields"):
        _details(worker, person, fields=["birth_year"])


# --- No plaintext on the instance ----------------------------------------------------


def test_the_model_instance_holds_only_sealed_values(worker, make_person):
    person = Person.objects.get(pk=make_person().pk)
    for name in Person.ENCRYPTED_FIELDS:
        assert isinstance(getattr(person, name), envelope.Sealed)
    text = f"{person} {person!r} {person.name} {vars(person)}"
    # Whole values only: short digit runs ("0016", "070") turn up by chance in a
    # UUID, a blind index or a timestamp.
    for value in (
        "Zelmira",
        "Kvastbinder",
        "880320-0016",
        "8803200016",
        "Gravör",
        "070-174",
        "174 06 42",
    ):
        assert value not in text
    assert str(person) == f"Person {person.pk}"
    assert isinstance(Person.objects.values_list("name", flat=True).get(), envelope.Sealed)


def test_assigning_plaintext_is_refused_without_echoing_it(make_person):
    person = make_person()
    person.name = "Kalle Hemlig"
    with pytest.raises(TypeError, match="encrypted and takes a sealed value") as info:
        person.save()
    assert "Kalle" not in str(info.value)
    with pytest.raises(TypeError):
        Person.objects.filter(pk=person.pk).update(address="Hemliga gatan 1")


def test_an_unchanged_value_is_not_re_encrypted(worker, make_person):
    person = make_person()
    stored = {n: getattr(person, n) for n in Person.ENCRYPTED_FIELDS}
    reloaded = Person.objects.get(pk=person.pk)
    reloaded.area = Person.Area.BRICKEBACKEN
    reloaded.save()
    reloaded.refresh_from_db()
    assert {n: getattr(reloaded, n) for n in Person.ENCRYPTED_FIELDS} == stored

    changed = services.update_person(
        user=worker, purpose=PURPOSE, person_id=person.pk, name=ANNA["name"], phone="070-174 06 99"
    )
    assert changed == ["phone"]
    reloaded.refresh_from_db()
    assert reloaded.name == stored["name"]  # same bytes: not re-encrypted
    assert reloaded.phone != stored["phone"]
    event = _events("change")[-1]
    assert event.fields == ["phone"]
    assert event.details == {"submitted": ["name", "phone"]}
    assert _details(worker, person).phone == "070-174 06 99"


def test_changing_the_personnummer_moves_the_blind_index(worker, make_person):
    person = make_person()
    changed = services.update_person(
        user=worker, purpose=PURPOSE, person_id=person.pk, personnummer="890102-3286"
    )
    assert changed == ["personnummer", "birth_date"]
    assert _events("change")[-1].fields == ["birth_date", "birth_year", "personnummer"]
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8901023286") == person
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016") is None
    assert Person.objects.get(pk=person.pk).birth_year == 1989


# --- No filtering or ordering on ciphertext -------------------------------------------


@pytest.mark.parametrize(
    "lookup",
    [
        {"name": "Zelmira Kvastbinder"},
        {"name__exact": "x"},
        {"name__iexact": "x"},
        {"name__icontains": "Zel"},
        {"personnummer__in": ["198803200016"]},
        {"address__startswith": "G"},
        {"note__gt": "a"},
        {"phone__regex": "070"},
        {"name__lower": "x"},
        {"birth_date__year": 1988},
    ],
)
def test_filtering_on_an_encrypted_column_is_a_clear_error(make_person, lookup):
    with pytest.raises(FieldError, match="is encrypted and cannot be filtered") as info:
        list(Person.objects.filter(**lookup))
    assert "find_person" in str(info.value)
    assert "personnummer_index" in str(info.value)


@pytest.mark.parametrize("ordering", ["name", "-address", "birth_date"])
def test_ordering_on_an_encrypted_column_is_a_clear_error(make_person, ordering):
    make_person()
    with pytest.raises(FieldError, match="is encrypted and cannot be ordered on"):
        list(Person.objects.order_by(ordering))


def test_isnull_and_plain_columns_still_work(make_person):
    person = make_person(BERTIL)
    assert list(Person.objects.filter(phone__isnull=True)) == [person]
    assert list(Person.objects.filter(birth_year=1981).order_by("area", "-created_at")) == [person]


# --- Associated data and tampering ---------------------------------------------------


def _raw_update(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(worker, make_person):
    anna, bertil = make_person(), make_person(BERTIL)
    _raw_update(
        "UPDATE casework_person SET name = (SELECT name FROM casework_person WHERE id = %s) "
        "WHERE id = %s",
        [anna.pk, bertil.pk],
    )
    with pytest.raises(DecryptionError, match="another data key") as info:
        _details(worker, bertil, fields=["name"])
    assert "Zelmira" not in str(info.value)
    assert not _events("consult")  # nothing was shown, nothing logged as consulted


def test_a_ciphertext_copied_to_another_column_does_not_decrypt(worker, make_person):
    anna = make_person()
    _raw_update("UPDATE casework_person SET note = name WHERE id = %s", [anna.pk])
    with pytest.raises(DecryptionError, match=r"casework_person\.note .*does not authenticate"):
        _details(worker, anna, fields=["note"])
    assert _details(worker, anna, fields=["name"]).name == ANNA["name"]


def test_a_ciphertext_moved_to_another_table_does_not_decrypt(make_person):
    anna = Person.objects.get(pk=make_person().pk)
    dek = load_data_key(owner_type=PERSON, owner_id=anna.pk)
    where = {"column": "name", "row_id": anna.pk}
    assert envelope.open_sealed(dek, anna.name, table="casework_person", **where)
    for table in ("casework_guardian", "audit_accessevent"):
        with pytest.raises(DecryptionError):
            envelope.open_sealed(dek, anna.name, table=table, **where)


def test_a_tampered_ciphertext_in_the_database_is_detected(worker, make_person):
    anna = make_person()
    _raw_update(
        "UPDATE casework_person SET address = set_byte(address, 40, get_byte(address, 40) # 1) "
        "WHERE id = %s",
        [anna.pk],
    )
    with pytest.raises(DecryptionError, match="does not authenticate") as info:
        _details(worker, anna)
    assert "Gravör" not in str(info.value)


def test_a_wrong_keyring_is_a_clear_error(worker, make_person, settings, tmp_path):
    anna = make_person()
    settings.KEYRING_FILE = tmp_path / "other.json"
    keyring.generate(settings.KEYRING_FILE)
    with pytest.raises(DataKeyUnwrapError, match="does not unwrap") as info:
        _details(worker, anna)
    message = str(info.value)
    data = json.loads(settings.KEYRING_FILE.read_text())
    assert data["keks"]["1"] not in message and "Zelmira" not in message


def test_a_missing_keyring_is_a_clear_error(worker, make_person, settings, tmp_path):
    anna = make_person()
    settings.KEYRING_FILE = tmp_path / "gone.json"
    with pytest.raises(KeyringError, match=r"gone\.json does not exist"):
        _details(worker, anna)
    with pytest.raises(KeyringError, match="keys generate"):
        services.create_person(user=worker, purpose=PURPOSE, **BERTIL)


# --- Blind index ----------------------------------------------------------------------


def test_find_person_by_any_form_of_the_number(worker, make_person):
    anna, bertil = make_person(), make_person(BERTIL)
    for form in ("880320-0016", "198803200016", " 19880320 0016"):
        assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer=form) == anna
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="811228-9841") == bertil
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="890102-3286") is None


def test_find_person_confirms_candidates_by_decrypting(worker, make_person):
    anna, bertil = make_person(), make_person(BERTIL)
    # Force a blind-index collision: Bertil now shares Anna's index value.
    Person.objects.filter(pk=bertil.pk).update(personnummer_index=anna.personnummer_index)
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016") == anna
    assert _events("consult")[-1].details["candidates"] == 2
    # A candidate that is only a collision is not a match.
    Person.objects.filter(pk=anna.pk).update(personnummer_index=None)
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016") is None
    assert _events("consult")[-1].details == {
        "lookup": "personnummer",
        "candidates": 1,
        "found": False,
    }


def test_an_invalid_number_is_a_validation_error_before_any_lookup(worker):
    with pytest.raises(ValidationError):
        selectors.find_person(user=worker, purpose=PURPOSE, personnummer="880320-0018")
    assert not _events()


def test_the_lookup_uses_the_index(worker, make_person):
    make_person()
    # Enough rows that PostgreSQL prefers the index on its own (no enable_seqscan tricks).
    filler = envelope.Sealed(b"\x01" + bytes(60))
    Person.objects.bulk_create(
        [
            Person(
                name=filler,
                personnummer=filler,
                personnummer_index=n * 397 % 2**22,
                birth_year=2000,
            )
            for n in range(5000)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE casework_person")
    index = personnummer_index(current_keyring(), "198803200016")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + selectors.persons._CANDIDATES, [index])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "person_pnr_blind_idx" in plan
    assert "Index" in plan and "Seq Scan" not in plan


def test_registering_the_same_number_twice_is_refused(worker, make_person):
    anna = make_person()
    with pytest.raises(ValidationError) as info:
        make_person(BERTIL, personnummer="8803200016")
    assert info.value.error_dict["personnummer"][0].code == "duplicate"
    assert Person.objects.count() == 1
    # The user learned that the number is registered: that is logged.
    event = _events("consult")[-1]
    assert event.person_id == anna.pk and event.fields == ["personnummer"]
    from casework.models import DataKey

    assert DataKey.objects.count() == 1  # the unused data key was discarded


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"personnummer": "880320-0018"}, "personnummer"),
        ({"personnummer": "1" * 1000}, "personnummer"),
        ({"area": "stockholm"}, "area"),
        ({"gender": "x"}, "gender"),
        ({"protected_identity": 9}, "protected_identity"),
        ({"note": "x" * 10_001}, "note"),
    ],
)
def test_invalid_input_is_a_field_error(worker, change, field):
    with pytest.raises(ValidationError) as info:
        services.create_person(user=worker, purpose=PURPOSE, **{**ANNA, **change})
    assert field in info.value.error_dict
    assert not Person.objects.exists()


# --- Access control and the access log ------------------------------------------------


def test_each_read_writes_exactly_one_consultation_event(worker, make_person):
    anna = make_person()
    assert [e.action for e in _events()] == ["create"]
    create = _events("create")[0]
    assert create.person_id == anna.pk and create.user == worker
    assert "name" in create.fields and "personnummer" in create.fields
    before = len(_events())
    for call in range(1, 4):
        _details(worker, anna, fields=["name", "phone"])
        assert len(_events()) == before + call
    event = _events()[-1]
    assert (event.action, event.person_id, event.fields) == ("consult", anna.pk, ["name", "phone"])
    assert (event.purpose, event.object_type, event.object_id) == (
        PURPOSE,
        "casework.person",
        str(anna.pk),
    )
    before = len(_events())
    selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016")
    selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8112289841")
    assert len(_events()) == before + 2
    found, missed = _events()[-2:]
    assert (found.person_id, found.fields, found.details["found"]) == (
        anna.pk,
        ["personnummer"],
        True,
    )
    assert (missed.person_id, missed.details["found"]) == (None, False)


def test_the_access_log_holds_field_names_never_values(worker, make_person):
    anna = make_person()
    _details(worker, anna)
    services.update_person(user=worker, purpose=PURPOSE, person_id=anna.pk, note="Ny anteckning")
    selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016")
    dumped = json.dumps(list(AccessEvent.objects.values()), default=str, ensure_ascii=False)
    for value in (*ANNA.values(), "198803200016", "Ny anteckning", "1988-03-20"):
        assert value not in dumped


def test_a_role_without_case_access_is_denied_and_logged(demo, make_person):
    anna = make_person()
    for username in ("stig.styrgrupp", "greta.granskare", "adam.admin"):
        user = demo[username]
        with pytest.raises(PermissionDenied):
            _details(user, anna)
        with pytest.raises(PermissionDenied):
            selectors.find_person(user=user, purpose=PURPOSE, personnummer="8803200016")
        with pytest.raises(PermissionDenied):
            services.create_person(user=user, purpose=PURPOSE, **BERTIL)
        with pytest.raises(PermissionDenied):
            services.erase_person(user=user, purpose=PURPOSE, person_id=anna.pk)
    denied = _events("access_denied")
    assert len(denied) == 12
    assert {e.outcome for e in denied} == {"denied"}
    assert not _events("consult")


def test_a_purpose_is_required(worker, make_person):
    anna = make_person()
    for purpose in ("", "   "):
        with pytest.raises(ValidationError):
            selectors.get_person_details(user=worker, purpose=purpose, person_id=anna.pk)
        with pytest.raises(ValidationError):
            selectors.find_person(user=worker, purpose=purpose, personnummer="8803200016")
    assert not _events("consult")


def test_a_failed_decryption_leaves_no_consultation(worker, make_person):
    anna = make_person()
    _raw_update("UPDATE casework_person SET phone = note WHERE id = %s", [anna.pk])
    with pytest.raises(DecryptionError):
        _details(worker, anna)
    assert not _events("consult")


def test_an_erased_person_cannot_be_read(worker, make_person):
    anna = make_person()
    services.erase_person(user=None, purpose="Begäran om radering", person_id=anna.pk)
    with pytest.raises(selectors.PersonErased):
        _details(worker, anna)
    with pytest.raises(selectors.PersonErased):
        services.update_person(user=worker, purpose=PURPOSE, person_id=anna.pk, name="Ny")
    assert selectors.find_person(user=worker, purpose=PURPOSE, personnummer="8803200016") is None


def test_an_encrypted_field_cannot_be_indexed():
    from casework.fields import EncryptedTextField

    for option in ("db_index", "unique"):
        with pytest.raises(TypeError, match="blind index"):
            EncryptedTextField(**{option: True})
