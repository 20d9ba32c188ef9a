"""Keys per case (docs/adr/0023-keys-per-case.md): every case-owned sealed value is under
the case's own data key, the person's identity under the person's; destroying one case's
key makes that case unreadable (never an error page) while the person's other case reads;
erasing the person destroys every key; ``reseal_case_keys`` moves data sealed under the
person's key before keys per case, resumable and idempotent."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from audit.models import AccessEvent, ChangeRecord
from casework.crypto.envelope import HEADER_LEN, Sealed, open_sealed, seal
from casework.crypto.errors import DecryptionError
from casework.crypto.keystore import CASE, PERSON, forget_data_keys, load_data_key
from casework.crypto.records import open_value
from casework.models import Action, Case, DataKey, Guardian, Person
from casework.selectors.case_keys import case_key
from casework.selectors.cases import get_case_page
from casework.services import cases as case_services
from casework.services.case_keys import destroy_case_key
from casework.services.case_reseal import case_sealed_tables
from tests.workflows.sig.factories import PURPOSE, REASON, make_person, record_statute, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = pytest.mark.django_db(databases=["default", "keystore"])

PLAN = "Mål: skolgång."


@pytest.fixture
def two_cases(demo):
    """Two SIG cases of one person: an active one (plan, actions, decisions, consents,
    a guardian, a legal basis) and a new referral."""
    anna = demo["anna.social"]
    person = make_person(user=anna)
    active = sig_case(demo, Status.ACTIVE, person=person)
    record_statute(demo, active)
    case_services.comment_case(user=anna, case=active, purpose=PURPOSE, text="En kommentar.")
    case_services.add_action(
        user=anna,
        case=active,
        purpose=PURPOSE,
        kind=Action.Kind.OTHER,
        status=Action.Status.PLANNED,
        date=timezone.localdate(),
        organisation=anna.organisation,
        note="Anteckning om insatsen.",
    )
    referred = sig_case(demo, Status.REFERRED, person=person)
    return person, SigCase.objects.get(pk=active.pk), SigCase.objects.get(pk=referred.pk)


def _key_id(owner_type: str, owner_id) -> uuid.UUID | None:
    row = DataKey.objects.filter(owner_type=owner_type, owner_id=owner_id).first()
    return row.id if row else None


def _sealed_of(case_id) -> dict[tuple[str, str, object], bytes]:
    """Every sealed value that belongs to the case: (table, column, row id) -> bytes."""
    found = {}
    with connection.cursor() as cursor:
        for table in case_sealed_tables():
            columns = ", ".join(table.columns)
            cursor.execute(
                f"SELECT {table.pk}, {columns} FROM {table.table} "  # noqa: S608
                f"WHERE {table.case_column} = %s",
                [case_id],
            )
            for row_id, *blobs in cursor.fetchall():
                for column, blob in zip(table.columns, blobs, strict=True):
                    if blob is not None:
                        found[(table.table, column, row_id)] = bytes(blob)
    return found


def _key_ids(sealed: dict) -> set[uuid.UUID]:
    return {uuid.UUID(bytes=blob[1:HEADER_LEN]) for blob in sealed.values()}


def _page(user, case) -> bytes:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get(f"/arenden/fall/{case.pk}/")
    assert response.status_code == 200, response.status_code
    return response.content


def test_a_cases_values_are_sealed_under_its_own_key(two_cases):
    person, active, referred = two_cases
    sealed = _sealed_of(active.pk)
    tables = {table for table, _column, _row in sealed}
    # The case's own texts, its timeline, actions, decisions: not a vacuous check.
    assert {
        "workflows_sigcase",
        "casework_caseevent",
        "casework_caselegalbasis",
        "casework_action",
    } <= tables
    assert _key_ids(sealed) == {_key_id(CASE, active.pk)}
    assert _key_ids(_sealed_of(referred.pk)) == {_key_id(CASE, referred.pk)}
    # The person's identity and their guardian stay under the person's key.
    person_key = _key_id(PERSON, person.pk)
    person.refresh_from_db()
    assert person.name.key_id == person_key
    guardian = Guardian.objects.get(person=person)
    assert guardian.name.key_id == person_key
    assert person_key not in _key_ids(sealed)
    assert active.keyed_at is not None and referred.keyed_at is not None


def test_two_cases_of_one_person_have_different_keys(two_cases):
    person, active, referred = two_cases
    keys = {_key_id(CASE, active.pk), _key_id(CASE, referred.pk), _key_id(PERSON, person.pk)}
    assert None not in keys and len(keys) == 3


def test_aad_binding_holds_under_case_keys(two_cases, demo):
    _person, active, referred = two_cases
    key = case_key(active)
    second = Action.objects.filter(case=active).exclude(kind=Action.Kind.OTHER).first()
    noted = Action.objects.get(case=active, kind=Action.Kind.OTHER)
    assert open_value(noted, "note", key) == "Anteckning om insatsen."
    second.note = noted.note  # copied to another row of the same case
    with pytest.raises(DecryptionError):
        open_value(second, "note", key)
    # A value of one case does not open under the other case's key.
    with pytest.raises(DecryptionError):
        open_value(noted, "note", case_key(referred))


def test_destroying_one_case_key_leaves_the_other_case_readable(two_cases, demo):
    _person, active, referred = two_cases
    anna, sara = demo["anna.social"], demo["sara.samordnare"]
    assert PLAN.encode() in _page(anna, active)

    assert destroy_case_key(active) is True
    assert destroy_case_key(active) is False  # idempotent
    assert _key_id(CASE, active.pk) is None
    forget_data_keys()  # as another process would, after its cache time

    page = get_case_page(user=anna, purpose=PURPOSE, case=SigCase.objects.get(pk=active.pk))
    assert page.texts["plan"] is None and page.texts["referral_reason"] is None
    assert all(action.note is None for action in page.actions)
    assert page.person.name == "Testa Provsson"  # the identity is the person's
    html = _page(anna, active)
    assert PLAN.encode() not in html and REASON.encode() not in html
    assert b"Testa Provsson" in html
    # Nothing new is sealed in it (a form error, not a 500) …
    with pytest.raises(ValidationError) as refused:
        case_services.update_case(
            user=anna, case=SigCase.objects.get(pk=active.pk), purpose=PURPOSE, texts={"plan": "x"}
        )
    assert "culled" in str(refused.value.error_list[0].code)
    # … while the other case reads.
    other = get_case_page(user=sara, purpose=PURPOSE, case=referred)
    assert other.texts["referral_reason"] == REASON


def test_erasing_the_person_destroys_every_case_key(two_cases, demo):
    person, active, referred = two_cases
    call_command("erase_person", str(person.pk), reason="Begäran om radering", stdout=io.StringIO())
    assert _key_id(PERSON, person.pk) is None
    assert _key_id(CASE, active.pk) is None and _key_id(CASE, referred.pk) is None
    event = AccessEvent.objects.get(action="erase", person_id=person.pk)
    assert event.details["case_keys_destroyed"] == 2
    forget_data_keys()
    page = get_case_page(user=demo["anna.social"], purpose=PURPOSE, case=active)
    assert page.texts["plan"] is None


def _back_to_person_key(case: Case) -> None:
    """The state before keys per case: every value of ``case`` re-sealed under its person's
    key, no case key, ``keyed_at`` empty."""
    own = load_data_key(owner_type=CASE, owner_id=case.pk)
    person = load_data_key(owner_type=PERSON, owner_id=case.person_id)
    with connection.cursor() as cursor:
        for (table, column, row_id), blob in _sealed_of(case.pk).items():
            where = {"table": table, "column": column, "row_id": row_id}
            old = seal(person, open_sealed(own, Sealed(blob), **where), **where)
            pk = next(t.pk for t in case_sealed_tables() if t.table == table)
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                [old.blob, row_id],
            )
    DataKey.objects.filter(owner_type=CASE, owner_id=case.pk).delete()
    Case.objects.filter(pk=case.pk).update(keyed_at=None)
    forget_data_keys()


def _reseal(**options) -> str:
    out = io.StringIO()
    call_command("reseal_case_keys", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_reseal_moves_person_key_data_resumably_and_idempotently(two_cases, demo):
    person, active, referred = two_cases
    sara = demo["sara.samordnare"]
    before = {c.pk: _sealed_of(c.pk) for c in (active, referred)}
    for case in (active, referred):
        _back_to_person_key(case)
    person_key = _key_id(PERSON, person.pk)
    assert _key_ids(_sealed_of(active.pk)) == {person_key}
    # Legacy cases read through their person's key meanwhile.
    legacy = SigCase.objects.get(pk=referred.pk)
    assert get_case_page(user=sara, purpose=PURPOSE, case=legacy).texts["referral_reason"] == REASON
    events = AccessEvent.objects.filter(action="key_rotation", object_type=CASE)

    # Interrupted after one batch of one case.
    output = _reseal(batch_size=1, max_batches=1)
    assert "1 ärenden återstår" in output
    moved, waiting = sorted([active.pk, referred.pk])
    assert Case.objects.get(pk=moved).keyed_at is not None
    assert Case.objects.get(pk=waiting).keyed_at is None
    assert _key_ids(_sealed_of(moved)) == {_key_id(CASE, moved)}
    assert _key_ids(_sealed_of(waiting)) == {person_key}
    assert events.count() == 1
    assert events.get().details["cases"] == 1
    # Both read at this moment: one under its own key, one under the person's.
    for case_id in (moved, waiting):
        page = get_case_page(user=sara, purpose=PURPOSE, case=SigCase.objects.get(pk=case_id))
        assert page.texts["referral_reason"] == REASON

    # Run again: completes.
    assert "1 ärenden flyttade" in _reseal(batch_size=1)
    for case in (active, referred):
        sealed = _sealed_of(case.pk)
        assert _key_ids(sealed) == {_key_id(CASE, case.pk)}
        assert set(sealed) == set(before[case.pk])
    assert events.count() == 2
    page = get_case_page(
        user=demo["anna.social"], purpose=PURPOSE, case=SigCase.objects.get(pk=active.pk)
    )
    assert page.texts["plan"] == PLAN
    # The person's key keeps the identity.
    assert Person.objects.get(pk=person.pk).name.key_id == person_key

    # And once more: nothing to do, nothing written.
    changes = ChangeRecord.objects.count()
    assert "0 ärenden flyttade" in _reseal()
    assert ChangeRecord.objects.count() == changes
    assert events.count() == 2


def test_the_reseal_is_in_the_change_history_statement_by_statement(two_cases, demo):
    """Each table's re-sealing is one statement with one change record (ADR 0023, session
    14): every re-sealed row of a tracked table by id, its re-sealed
    columns with the SHA-256 of exactly the ciphertext the row holds now — never the
    ciphertext itself — and the cases' ``keyed_at`` stamp in one record of their own."""
    _person, active, referred = two_cases
    for case in (active, referred):
        _back_to_person_key(case)
    last = ChangeRecord.objects.order_by("-id").values_list("id", flat=True).first()
    _reseal()
    tracked = {
        row[0]
        for row in _raw(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'audit_history'"
        )
    }
    expected = {}
    for case in (active, referred):
        for (table, column, row_id), blob in _sealed_of(case.pk).items():
            if table in tracked:
                digest = "sha256:" + hashlib.sha256(blob).hexdigest()
                expected.setdefault(table, {}).setdefault(str(row_id), {})[column] = digest
    assert len(expected) >= 2  # the SIG cases and the action at least
    records = ChangeRecord.objects.filter(id__gt=last, operation="UPDATE").exclude(
        table_name="casework_case"
    )
    found = {r.table_name: r for r in records}
    assert len(found) == records.count()  # one record per table
    assert set(found) == set(expected)
    for table, rows in expected.items():
        record = found[table]
        assert record.row_id == ""
        entries = {e.pop("id"): e for e in record.data["reseal"]["rows"]}
        assert entries == rows
        assert record.changed_fields == sorted({c for columns in rows.values() for c in columns})
        assert "\\x" not in json.dumps(record.data)  # no ciphertext
    # The cases' keyed_at: one record for the batch, naming both cases and the time.
    (keyed,) = ChangeRecord.objects.filter(id__gt=last, table_name="casework_case")
    assert keyed.changed_fields == ["keyed_at"] and keyed.row_id == ""
    assert sorted(e["id"] for e in keyed.data["reseal"]["rows"]) == sorted(
        str(c.pk) for c in (active, referred)
    )
    active.refresh_from_db()
    # As a time: PostgreSQL's JSON drops a fraction's trailing zeros (.26685, not .266850).
    stamp = datetime.datetime.fromisoformat(keyed.data["reseal"]["stamp"]["keyed_at"])
    assert stamp == active.keyed_at


def test_the_chain_verifies_after_a_reseal(two_cases, demo):
    """The re-seal's records (the change history's bulk path) are queued once each, sealed
    and verified like every other entry: ``audit verify`` passes."""
    from audit import integrity
    from audit.models import PendingEntry
    from tests.audit.helpers import sealed_entries

    _person, active, referred = two_cases
    for case in (active, referred):
        _back_to_person_key(case)
    integrity.seal()
    last = ChangeRecord.objects.order_by("-id").values_list("id", flat=True).first()
    _reseal()
    written = set(ChangeRecord.objects.filter(id__gt=last).values_list("id", flat=True))
    assert written
    queued = PendingEntry.objects.filter(source="history", entry_id__in=written)
    assert queued.count() == len(written)
    integrity.seal()
    chained = [e for _, source, e in sealed_entries() if source == "history" and e in written]
    assert len(chained) == len(written)
    result = integrity.verify(directory=None)
    assert result.ok, result.finding


def _raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def test_a_write_to_a_legacy_case_gives_it_its_key(two_cases, demo):
    _person, active, _referred = two_cases
    _back_to_person_key(active)
    case = SigCase.objects.get(pk=active.pk)
    case_services.update_case(
        user=demo["anna.social"], case=case, purpose=PURPOSE, texts={"plan": "Ny plan."}
    )
    own = _key_id(CASE, active.pk)
    assert own is not None
    assert SigCase.objects.get(pk=active.pk).plan.key_id == own
    page = get_case_page(
        user=demo["anna.social"], purpose=PURPOSE, case=SigCase.objects.get(pk=active.pk)
    )
    assert page.texts["plan"] == "Ny plan." and page.texts["referral_reason"] == REASON
    _reseal()
    assert _key_ids(_sealed_of(active.pk)) == {own}


def test_culling_a_legacy_case_moves_it_first(two_cases, demo):
    person, active, referred = two_cases
    _back_to_person_key(active)
    assert destroy_case_key(Case.objects.get(pk=active.pk)) is True
    # Nothing of it stays under the person's key, which the other case's person keeps.
    assert _key_id(PERSON, person.pk) not in _key_ids(_sealed_of(active.pk))
    forget_data_keys()
    page = get_case_page(
        user=demo["anna.social"], purpose=PURPOSE, case=SigCase.objects.get(pk=active.pk)
    )
    assert page.texts["plan"] is None
    assert (
        get_case_page(user=demo["sara.samordnare"], purpose=PURPOSE, case=referred).texts[
            "referral_reason"
        ]
        == REASON
    )


def test_orphan_case_keys_are_swept(two_cases):
    """A case key left by an opening that rolled back (a hand-over's support case) opens
    nothing and goes with ``keys sweep``; the keys of existing cases stay."""
    from datetime import timedelta

    from casework.crypto.keystore import create_data_key
    from casework.services import sweep_orphan_data_keys

    _person, active, referred = two_cases
    orphan = uuid.uuid4()
    create_data_key(owner_type=CASE, owner_id=orphan)
    DataKey.objects.update(created_at=timezone.now() - timedelta(days=1))
    assert sweep_orphan_data_keys(purpose="Städning", grace=timedelta(hours=1)) == 1
    assert _key_id(CASE, orphan) is None
    assert _key_id(CASE, active.pk) and _key_id(CASE, referred.pk)


def test_a_case_key_widened_with_a_rekeyed_persons_key_opens_the_previous_key():
    """A case not moved yet whose person already has a new key (another case of theirs
    moved first): its reading key is the case's, widened with the person's — which is
    itself widened with their previous key. Every value opens, whichever of the three
    keys it is under."""
    from casework.crypto.envelope import DataKeyMaterial, new_data_key

    case, new, previous = (DataKeyMaterial(*new_data_key()) for _ in range(3))
    reading = case.or_else(new.or_else(previous))
    where = {"table": "workflows_sigcase", "column": "plan", "row_id": uuid.uuid4()}
    for key in (case, new, previous):
        sealed = seal(key, b"Plan", **where)
        assert open_sealed(reading, sealed, **where) == b"Plan"
    assert seal(reading, b"x", **where).blob[:HEADER_LEN] == case.header
    assert case.or_else(None) is case


def test_culling_moves_the_identity_off_the_previous_key_and_destroys_it(two_cases, demo):
    """After the re-sealing the person has a new key and their old one as the previous
    key; destroying a case's key (the cull) first re-seals the identity and the guardian
    under the new key, then destroys the previous key; the identity and the other case
    read; a second time changes nothing."""
    from casework.crypto.keystore import PERSON_PREVIOUS

    person, active, referred = two_cases
    for case in (active, referred):
        _back_to_person_key(case)
    old = _key_id(PERSON, person.pk)
    _reseal()
    new = _key_id(PERSON, person.pk)
    assert new != old and _key_id(PERSON_PREVIOUS, person.pk) == old
    assert Guardian.objects.get(person=person).name.key_id == old  # not moved yet

    assert destroy_case_key(Case.objects.get(pk=active.pk)) is True
    assert _key_id(PERSON_PREVIOUS, person.pk) is None
    forget_data_keys()
    person_key = load_data_key(owner_type=PERSON, owner_id=person.pk)
    guardian = Guardian.objects.get(person=person)
    fresh = Person.objects.get(pk=person.pk)
    assert guardian.name.key_id == new and fresh.name.key_id == new
    assert open_value(fresh, "name", person_key) == "Testa Provsson"
    assert open_value(guardian, "name", person_key)
    events = AccessEvent.objects.filter(
        action="key_rotation", details__operation="destroy_previous_person_keys"
    )
    assert events.count() == 1 and events.get().details["values_resealed"] >= 2
    other = SigCase.objects.get(pk=referred.pk)
    page = get_case_page(user=demo["sara.samordnare"], purpose=PURPOSE, case=other)
    assert page.texts["referral_reason"] == REASON
    assert destroy_case_key(Case.objects.get(pk=active.pk)) is False
    assert events.count() == 1
