"""Replacing a minor's guardian in a case under way on consent (ADR 0028, "A new guardian"):
the custody change is recorded, the case then waits for the new guardian's consent (nothing
shared with other organisations on consent, the refusal logged, the page says what is
missing), and the new guardian's consent makes it complete again. An ended guardian's
consent no longer counts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AccessEvent, ChangeRecord
from casework import policy
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import open_value
from casework.fields import Sealed
from casework.models import CaseEvent, Consent, Guardian
from casework.services import person_corrections as corrections
from tests.api.conftest import Api, get_token, make_client
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.factories import record_consent
from tests.workflows.sig.factories import PERSON_NAME, PURPOSE, orgs, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

REASON = "Vårdnaden flyttad enligt tingsrättens dom."
NEW_NAME = "Ture Provsson"
OLD_NAME = "Vera Provsson"  # the factory's guardian


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def case_url(case) -> str:
    return reverse("arenden:case", args=[case.pk])


def record_url(case) -> str:
    return reverse("arenden:record", args=[case.pk])


def version(case) -> int:
    return SigCase.objects.get(pk=case.pk).version


def police_api(users) -> Api:
    client, client_id, secret = make_client(users["per.polis"].organisation)
    http = Client()
    token = get_token(http, client_id, secret).json()["access_token"]
    return Api(http, token, client)


def denials(user, case):
    return AccessEvent.objects.filter(
        user=user, action=AccessEvent.Action.ACCESS_DENIED, object_id=str(case.pk)
    )


def replace(users, case, **overrides) -> Guardian:
    old = case.person.guardians.current().get()
    return corrections.add_guardian(
        **{
            "user": users["anna.social"],
            "case": case,
            "purpose": PURPOSE,
            "reason": REASON,
            "name": NEW_NAME,
            "phone": "070-555 00 02",
            "replaces": old.pk,
            **overrides,
        }
    )


def consent_of(users, case, guardian) -> Consent:
    return record_consent(
        users["anna.social"],
        case,
        PURPOSE,
        [orgs(users)["social"], orgs(users)["police"]],
        giver=Consent.Giver.GUARDIAN,
        guardian=guardian,
    )


# --- The service ----------------------------------------------------------------------------


def test_replacing_the_only_guardian_waits_for_the_new_consent_then_shares_again(users):
    anna, per = users["anna.social"], users["per.polis"]
    case = sig_case(users, Status.ACTIVE)
    old = case.person.guardians.current().get()
    assert policy.consent_state(case).complete
    assert policy.case_access(per, case).legal_basis == "consent"

    new = replace(users, case)

    old.refresh_from_db()
    assert old.ended_at is not None
    assert list(case.person.guardians.current()) == [new]
    state = policy.consent_state(case)
    assert not state.complete and state.missing == (f"guardian:{new.pk}",)
    # The timeline and the access log: the replacement, and that consent is now needed.
    entry = CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.RECORD).latest("at")
    assert entry.transition == "guardian_replaced:consent_needed"
    created = AccessEvent.objects.get(action=AccessEvent.Action.CREATE, object_id=str(new.pk))
    assert created.fields == ["name", "phone"]
    ended = AccessEvent.objects.filter(
        action=AccessEvent.Action.CHANGE, object_id=str(old.pk)
    ).latest("id")
    assert ended.fields == ["ended_at"] and ended.details["replaced_by"] == str(new.pk)
    on_case = AccessEvent.objects.filter(
        action=AccessEvent.Action.CHANGE, object_id=str(case.pk)
    ).latest("id")
    assert on_case.details["consent_needed"] is True
    assert on_case.details["replaces"] == str(old.pk)
    assert set(on_case.fields) == {"guardian.name", "guardian.phone", "guardian.ended_at"}
    for event in (created, ended, on_case):
        assert NEW_NAME not in str(event.details) and OLD_NAME not in str(event.details)
    # The old guardian's row stays, sealed, in the change history; the new one's too.
    history = list(
        ChangeRecord.objects.filter(table_name="casework_guardian", row_id=str(old.pk)).order_by(
            "id"
        )
    )
    assert history[-1].changed_fields == ["ended_at"]
    dek = load_data_key(owner_type=PERSON, owner_id=case.person_id)
    before = Guardian(id=old.pk, name=Sealed(bytes.fromhex(history[-2].data["name"][2:])))
    assert open_value(before, "name", dek) == OLD_NAME
    for record in ChangeRecord.objects.filter(table_name="casework_guardian"):
        assert OLD_NAME not in str(record.data) and NEW_NAME not in str(record.data)

    # The police (another organisation) see nothing on consent now; the refusal is logged
    # with what is missing. The case's own organisation goes on.
    refused = policy.case_access(per, case)
    assert not refused and refused.consent_missing == (f"guardian:{new.pk}",)
    assert policy.disclosure_basis(case, per.organisation) == ""
    assert policy.case_access(anna, case)

    consent = consent_of(users, case, new)
    assert policy.consent_state(case).complete
    assert policy.case_access(per, case).legal_basis == "consent"
    entry = CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.CONSENT).latest("at")
    assert entry.transition == "guardian:given:complete"
    event = AccessEvent.objects.get(action=AccessEvent.Action.CREATE, object_id=str(consent.pk))
    assert event.details["consents_complete"] is True


def test_an_ended_guardians_consent_no_longer_counts(users):
    case = sig_case(users, Status.ACTIVE)
    old = case.person.guardians.current().get()
    old_consent = Consent.objects.get(case=case, guardian=old)
    new = replace(users, case)
    # Still given and not withdrawn, but of a custody that has ended: it covers nothing.
    old_consent.refresh_from_db()
    assert old_consent.withdrawn_at is None
    assert not policy.consent_state(case).complete
    # Nor can a new one be recorded for the ended guardian (a Swedish form error).
    with pytest.raises(ValidationError) as error:
        consent_of(users, case, old)
    assert "guardian" in error.value.message_dict
    assert Consent.objects.filter(case=case, guardian=old).count() == 1
    consent_of(users, case, new)
    assert policy.consent_state(case).complete

    # Two guardians: the one whose custody ends narrowed the scope; once ended, it no
    # longer does.
    second = corrections.add_guardian(
        user=users["anna.social"], case=case, purpose=PURPOSE, reason=REASON, name=OLD_NAME
    )
    record_consent(
        users["anna.social"],
        case,
        PURPOSE,
        [orgs(users)["social"]],
        giver=Consent.Giver.GUARDIAN,
        guardian=second,
    )
    per = users["per.polis"]
    assert policy.consent_state(case).complete and not policy.case_access(per, case)
    corrections.end_guardian(
        user=users["anna.social"],
        case=case,
        purpose=PURPOSE,
        reason=REASON,
        guardian_id=second.pk,
    )
    assert policy.case_access(per, case).legal_basis == "consent"


def test_the_only_guardian_is_not_ended_alone_and_nothing_is_written(users):
    case = sig_case(users, Status.ACTIVE)
    old = case.person.guardians.current().get()
    last_event = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    rows = ChangeRecord.objects.count()
    with pytest.raises(ValidationError) as error:
        corrections.end_guardian(
            user=users["anna.social"], case=case, purpose=PURPOSE, reason=REASON, guardian_id=old.pk
        )
    assert error.value.code == "guardian_required"
    old.refresh_from_db()
    assert old.ended_at is None
    assert ChangeRecord.objects.count() == rows
    assert not AccessEvent.objects.filter(
        pk__gt=last_event, action=AccessEvent.Action.CHANGE
    ).exists()


def test_a_bad_replaced_guardian_writes_nothing(users):
    case = sig_case(users, Status.ACTIVE)
    other = sig_case(users, Status.ACTIVE).person.guardians.get()
    before = Guardian.objects.count()
    for bad in (other.pk, "not-an-id"):
        with pytest.raises(ValidationError) as error:
            replace(users, case, replaces=bad)
        assert "replaces" in error.value.message_dict
    assert Guardian.objects.count() == before
    assert policy.consent_state(case).complete


# --- Through the pages ------------------------------------------------------------------------


def test_the_lead_replaces_the_guardian_on_the_page_and_the_consent_restores_sharing(users):
    anna, per = users["anna.social"], users["per.polis"]
    case = sig_case(users, Status.ACTIVE)
    old = case.person.guardians.current().get()
    lead = logged_in(anna)
    page = lead.get(record_url(case)).content.decode()
    assert "Ersätter (vårdnaden upphör)" in page and OLD_NAME in page

    # Bad input: Swedish errors, nothing written.
    rows = Guardian.objects.count()
    bad = lead.post(
        record_url(case),
        {
            "_action": "guardian_add",
            "version": version(case),
            "guardian_name": NEW_NAME,
            "replaces": "00000000-0000-0000-0000-000000000000",
            "reason": REASON,
        },
    )
    assert bad.status_code == 400
    assert "Välj ett giltigt alternativ" in bad.content.decode()
    bad = lead.post(
        record_url(case),
        {"_action": "guardian_add", "version": version(case), "replaces": str(old.pk)},
    )
    assert bad.status_code == 400 and "Detta fält måste fyllas i." in bad.content.decode()
    assert Guardian.objects.count() == rows
    alone = lead.post(
        record_url(case),
        {
            "_action": "guardian_end",
            "version": version(case),
            "guardian": str(old.pk),
            "reason": REASON,
        },
    )
    assert alone.status_code == 400
    assert "registrera den nya vårdnadshavaren först" in alone.content.decode()

    response = lead.post(
        record_url(case),
        {
            "_action": "guardian_add",
            "version": version(case),
            "guardian_name": NEW_NAME,
            "guardian_phone": "070-555 00 02",
            "replaces": str(old.pk),
            "reason": REASON,
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Hens samtycke saknas" in response.content.decode()
    new = case.person.guardians.current().get()
    assert new.pk != old.pk

    # The case page says consent is needed, names whose, and offers the form.
    page = lead.get(case_url(case)).content.decode()
    assert 'id="consent-needed"' in page
    assert "Samtycke behövs" in page and NEW_NAME in page
    assert "Registrera det saknade samtycket" in page
    assert "samtycke saknas från den nya vårdnadshavaren" in page  # the timeline

    # The police contact on the team: 404 on the page and in the API, each refusal logged
    # naming the missing consent; nothing read.
    police = logged_in(per)
    response = police.get(case_url(case))
    assert response.status_code == 404 and PERSON_NAME not in response.content.decode()
    api = police_api(users)
    assert api.get(f"/api/v1/cases/{case.pk}/", acting="per.polis").status_code == 404
    refused = {event.details["operation"]: event.details for event in denials(per, case)}
    for operation in ("case:read", "case:status"):
        assert refused[operation]["consent_missing"] == [f"guardian:{new.pk}"]
        assert refused[operation]["reason"] == "consent incomplete: missing"
    read_before = AccessEvent.objects.filter(
        user=per, action=AccessEvent.Action.CONSULT, object_id=str(case.pk)
    ).count()

    # The ended guardian cannot be named for a consent (the form refuses it in Swedish).
    renew = {
        "_action": "renew",
        "version": version(case),
        "giver": "guardian",
        "decision": "given",
        "form": "written",
        "organisations": [orgs(users)["social"].pk, orgs(users)["police"].pk],
        "purposes": ["coordination", "threat_assessment", "hand_over"],
    }
    ended = lead.post(case_url(case), {**renew, "guardian": str(old.pk)})
    assert ended.status_code == 200  # the page again, with the form's errors
    assert "vårdnad har upphört" in ended.content.decode()
    assert not policy.consent_state(case).complete

    done = lead.post(case_url(case), {**renew, "guardian": str(new.pk)})
    assert done.status_code == 302
    assert policy.consent_state(case).complete
    page = lead.get(case_url(case)).content.decode()
    assert 'id="consent-needed"' not in page
    assert "samtyckena som behövs är kompletta igen" in page  # the timeline

    # Everything is back for the police, on the page and in the API.
    assert police.get(case_url(case)).status_code == 200
    assert api.get(f"/api/v1/cases/{case.pk}/", acting="per.polis").status_code == 200
    assert (
        AccessEvent.objects.filter(
            user=per, action=AccessEvent.Action.CONSULT, object_id=str(case.pk)
        ).count()
        > read_before
    )
