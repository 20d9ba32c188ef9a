"""Consent over time (docs/adr/0028-consent-over-time.md): a withdrawn consent renewed, the
purposes a consent covers enforced on pages and API answers, the guardians' consent ending at
18, and the reminders of an expiring consent, an 18th birthday and an age range left.

Time does not move in tests: a withdrawal "ten days ago" and a case "opened over a year
ago" are queryset updates, the one stand-in for the passing of time.
"""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AccessEvent
from casework import policy
from casework.management.commands.send_reminders import due_reminders, record_reminders
from casework.models import Case, CaseEvent, Consent, Reminder
from casework.selectors.persons import person_age
from casework.services import cases as services
from tests.api.conftest import Api, get_token, make_client
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.factories import reach_review_date, record_consent
from tests.workflows.sig.factories import (
    PERSON_NAME,
    PURPOSE,
    make_person,
    orgs,
    record_statute,
    sig_case,
)
from tests.workflows.sspf.factories import sspf_case
from workflows.sig.models import SigCase, Status
from workflows.sig.services import after_consent_withdrawn
from workflows.sspf.models import SspfCase
from workflows.sspf.models import Status as SspfStatus

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def page_url(case) -> str:
    return f"/arenden/fall/{case.pk}/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def own_consent(case) -> Consent:
    return Consent.objects.filter(case=case, giver=Consent.Giver.SELF).latest("given_at")


def renewal(case, users, **overrides) -> dict:
    """The case page's renewal form, filled in for the person's own written consent."""
    return {
        "_action": "renew",
        "version": SigCase.objects.get(pk=case.pk).version,
        "giver": "self",
        "decision": "given",
        "form": "written",
        "organisations": [orgs(users)["social"].pk, orgs(users)["police"].pk],
        "purposes": ["coordination", "hand_over"],
        **overrides,
    }


# --- A withdrawn consent followed by a new one ----------------------------------------------


def test_a_renewal_after_a_withdrawal_continues_the_open_case_and_shows_the_gap(users):
    anna = users["anna.social"]
    case = sig_case(users, Status.ACTIVE, years=19)
    record_statute(users, case)  # a statute keeps the case open through the withdrawal
    client = logged_in(anna)
    assert 'value="renew"' not in client.get(page_url(case)).content.decode()

    withdrawn = own_consent(case)
    response = client.post(page_url(case), {"_action": "withdraw", "consent": str(withdrawn.pk)})
    assert response.status_code == 302
    case = SigCase.objects.get(pk=case.pk)
    assert case.status == Status.ACTIVE  # not closed: the statute applies
    assert not policy.consent_state(case).complete
    # The plan cannot go on without consent: the follow-up's continuation is blocked.
    reach_review_date(case)
    services.transition(user=anna, case=case, name="begin_follow_up", purpose=PURPOSE)
    services.update_case(
        user=anna,
        case=case,
        purpose=PURPOSE,
        review_date=timezone.localdate() + datetime.timedelta(days=30),
    )
    assert services.unmet_conditions(case, "continue_case")
    # The withdrawal was ten days ago.
    ten_days_ago = timezone.now() - datetime.timedelta(days=10)
    Consent.objects.filter(pk=withdrawn.pk).update(withdrawn_at=ten_days_ago)

    page = client.get(page_url(case)).content.decode()
    assert 'value="renew"' in page
    response = client.post(page_url(case), renewal(case, users))
    assert response.status_code == 302, response.content.decode()

    case = SigCase.objects.get(pk=case.pk)
    state = policy.consent_state(case)
    assert state.complete
    assert state.purposes == {"coordination", "hand_over"}
    assert services.unmet_conditions(case, "continue_case") == []
    services.transition(user=anna, case=case, name="continue_case", purpose=PURPOSE)
    assert SigCase.objects.get(pk=case.pk).status == Status.ACTIVE
    # The timeline: the withdrawal, then the renewal naming the withdrawal's date.
    kinds = list(
        CaseEvent.objects.filter(
            case=case,
            kind__in=[CaseEvent.Kind.CONSENT_WITHDRAWN, CaseEvent.Kind.CONSENT_RENEWED],
        ).values_list("kind", flat=True)
    )
    assert kinds == [CaseEvent.Kind.CONSENT_WITHDRAWN, CaseEvent.Kind.CONSENT_RENEWED]
    withdrawn_on = timezone.localdate(ten_days_ago).isoformat()
    today = timezone.localdate().isoformat()
    page = client.get(page_url(case)).content.decode()
    assert "Samtycke förnyat efter återkallelse" in page
    assert f"utan samtycke från {withdrawn_on} till {today} (10 dagar)" in page
    # The renewal is in the access log as a new consent, with what it covers.
    created = AccessEvent.objects.filter(
        action=AccessEvent.Action.CREATE, object_id=str(own_consent(case).pk)
    ).get()
    assert created.details["renews"] == str(withdrawn.pk)
    assert created.details["purposes"] == ["coordination", "hand_over"]


def test_an_sspf_case_goes_on_when_the_guardian_consents_again(users):
    """The same renewal on another programme's page: the guardian's consent, withdrawn
    while a statute kept the case open, is given again; the police, who take part in an
    SSPF case on consent only, see it again."""
    sara, per = users["sara.samordnare"], users["per.polis"]
    case = sspf_case(users, SspfStatus.PLAN_ACTIVE, police=True)
    record_statute(users, case, by="sara.samordnare")
    client = logged_in(sara)
    guardian_consent = Consent.objects.get(case=case, giver=Consent.Giver.GUARDIAN)
    response = client.post(
        page_url(case), {"_action": "withdraw", "consent": str(guardian_consent.pk)}
    )
    assert response.status_code == 302
    assert logged_in(per).get(page_url(case)).status_code == 404
    response = client.post(
        page_url(case),
        {
            "_action": "renew",
            "version": SspfCase.objects.get(pk=case.pk).version,
            "giver": "guardian",
            "guardian": str(guardian_consent.guardian_id),
            "decision": "given",
            "form": "written",
            "organisations": [orgs(users)[name].pk for name in orgs(users)],
            "purposes": ["coordination"],
        },
    )
    assert response.status_code == 302, response.content.decode()
    case = SspfCase.objects.get(pk=case.pk)
    assert case.status == SspfStatus.PLAN_ACTIVE and case.closed_at is None
    assert logged_in(per).get(page_url(case)).status_code == 200
    assert CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.CONSENT_RENEWED).exists()


def test_an_older_consent_does_not_come_back_but_a_newer_one_does(users):
    anna = users["anna.social"]
    case = sig_case(users, Status.ACTIVE, years=19)
    record_statute(users, case)
    services.withdraw_consent(user=anna, case=case, purpose=PURPOSE, consent=own_consent(case))
    assert not after_consent_withdrawn(user=anna, case=case, purpose=PURPOSE)
    assert not policy.consent_state(case).complete
    assert policy.withdrawn_givers(case.consents.all())
    assert services.unmet_conditions(case, "consent_withdrawn") == []
    record_consent(anna, case, PURPOSE, [orgs(users)["social"]])
    assert policy.consent_state(case).complete
    assert not policy.withdrawn_givers(case.consents.all())
    # The renewal ended the withdrawal: the case cannot be closed as "consent withdrawn".
    assert services.unmet_conditions(case, "consent_withdrawn")


def test_a_closed_case_stays_closed(users):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    case = sig_case(users, Status.ACTIVE, years=19)
    services.withdraw_consent(user=anna, case=case, purpose=PURPOSE, consent=own_consent(case))
    assert after_consent_withdrawn(user=anna, case=case, purpose=PURPOSE)
    case = SigCase.objects.get(pk=case.pk)
    assert case.status == Status.CLOSED
    consents = Consent.objects.filter(case=case).count()
    with pytest.raises(ValidationError) as refused:
        record_consent(sara, case, PURPOSE, [orgs(users)["social"]])
    assert refused.value.code == "case_closed"
    # The same through the page: the coordinator's crafted post is refused in Swedish.
    client = logged_in(sara)
    assert 'value="renew"' not in client.get(page_url(case)).content.decode()
    response = client.post(page_url(case), renewal(case, users))
    assert response.status_code == 200
    assert "Ärendet är avslutat: ett nytt samtycke öppnar det inte" in response.content.decode()
    case = SigCase.objects.get(pk=case.pk)
    assert case.status == Status.CLOSED and case.closed_at is not None
    assert Consent.objects.filter(case=case).count() == consents


def test_bad_renewals_give_swedish_errors_and_write_nothing(users):
    anna = users["anna.social"]
    case = sig_case(users, Status.ACTIVE, years=19)
    record_statute(users, case)
    services.withdraw_consent(user=anna, case=case, purpose=PURPOSE, consent=own_consent(case))
    after_consent_withdrawn(user=anna, case=case, purpose=PURPOSE)
    client = logged_in(anna)
    consents, events = Consent.objects.count(), CaseEvent.objects.filter(case=case).count()
    for data, message in [
        ({"purposes": []}, "Välj vilka ändamål samtycket gäller."),
        ({"purposes": ["spionage"]}, "Välj ett giltigt alternativ."),
        ({"organisations": []}, "Välj de organisationer som samtycket omfattar."),
        ({"giver": "guardian"}, "Välj den vårdnadshavare som lämnade samtycket."),
    ]:
        response = client.post(page_url(case), renewal(case, users, **data))
        assert response.status_code == 200, data
        assert message in response.content.decode(), data
    assert Consent.objects.count() == consents
    assert CaseEvent.objects.filter(case=case).count() == events
    with pytest.raises(ValidationError) as refused:
        record_consent(
            anna, case, PURPOSE, [orgs(users)["social"]], purposes=["coordination", "reklam"]
        )
    assert "purposes" in refused.value.message_dict
    assert Consent.objects.count() == consents


def test_the_police_record_no_renewal(users):
    anna, per = users["anna.social"], users["per.polis"]
    case = sig_case(users, Status.ACTIVE, years=19)
    record_statute(users, case)
    services.withdraw_consent(user=anna, case=case, purpose=PURPOSE, consent=own_consent(case))
    after_consent_withdrawn(user=anna, case=case, purpose=PURPOSE)
    client = logged_in(per)
    assert 'value="renew"' not in client.get(page_url(case)).content.decode()
    response = client.post(page_url(case), renewal(case, users))
    assert response.status_code == 403
    assert not policy.consent_state(case).complete


# --- Purposes ---------------------------------------------------------------------------------


def narrow_consent(users, case, purposes) -> Consent:
    """A newer own consent (social services and police) for ``purposes`` only."""
    covered = [orgs(users)["social"], orgs(users)["police"]]
    return record_consent(users["anna.social"], case, PURPOSE, covered, purposes=purposes)


def police_api(users) -> Api:
    client, client_id, secret = make_client(users["per.polis"].organisation)
    http = Client()
    token = get_token(http, client_id, secret).json()["access_token"]
    return Api(http, token, client)


def test_a_purpose_not_covered_hides_the_case_on_the_page_and_in_the_api(users):
    per = users["per.polis"]
    case = sig_case(users, Status.ACTIVE, years=19)
    narrow_consent(users, case, [Consent.Purpose.HAND_OVER])
    assert policy.disclosure_basis(case, per.organisation, purpose="hand_over") == "consent"
    assert policy.disclosure_basis(case, per.organisation) == ""

    response = logged_in(per).get(page_url(case))
    assert response.status_code == 404
    assert PERSON_NAME not in response.content.decode()
    api = police_api(users)
    answer = api.get(f"/api/v1/cases/{case.pk}/", acting="per.polis")
    assert answer.status_code == 404
    assert answer.json()["status"] == 404
    denied = AccessEvent.objects.filter(
        user=per, action=AccessEvent.Action.ACCESS_DENIED, object_id=str(case.pk)
    )
    operations = {event.details["operation"]: event.details for event in denied}
    for operation in ("case:read", "case:status"):
        assert operations[operation]["consent_purpose"] == "coordination"
        assert "purpose coordination" in operations[operation]["reason"]
    assert not AccessEvent.objects.filter(
        user=per, action=AccessEvent.Action.CONSULT, object_id=str(case.pk)
    ).exists()
    # The case's own organisation reads it as before.
    assert logged_in(users["anna.social"]).get(page_url(case)).status_code == 200

    # A consent covering the coordination opens it to the police again.
    narrow_consent(users, case, [Consent.Purpose.COORDINATION])
    assert logged_in(per).get(page_url(case)).status_code == 200
    assert api.get(f"/api/v1/cases/{case.pk}/", acting="per.polis").status_code == 200
    assert AccessEvent.objects.filter(
        user=per, action=AccessEvent.Action.DISCLOSE, object_id=str(case.pk), legal_basis="consent"
    ).exists()


def test_purposes_are_the_intersection_of_the_required_consents(users):
    case = sig_case(users, Status.ACTIVE, years=16)  # own and a guardian's consent
    guardian = case.person.guardians.get()
    covered = [orgs(users)["social"], orgs(users)["police"]]
    only = [Consent.Purpose.COORDINATION]
    record_consent(
        users["anna.social"],
        case,
        PURPOSE,
        covered,
        giver="guardian",
        guardian=guardian,
        purposes=only,
    )
    state = policy.consent_state(case)
    assert state.complete and state.purposes == {"coordination"}
    assert not state.covers(users["per.polis"].organisation_id, "hand_over")


# --- 18 ---------------------------------------------------------------------------------------


def eighteenth_birthday(person) -> datetime.date:
    day = timezone.localdate()
    while person_age(person, on=day) < 18:
        day += datetime.timedelta(days=1)
    return day


def test_a_guardians_consent_stops_carrying_at_18(users, settings):
    """Even where the local rule asks the young person's own consent only later (here: 19),
    a guardian's consent covers nothing from the 18th birthday on."""
    settings.SAMVERKAN = {**settings.SAMVERKAN, "SSPF_OWN_CONSENT_AGE": 19}
    sara, lisa = users["sara.samordnare"], users["lisa.skola"]
    case = sspf_case(users, SspfStatus.CONSENT_PENDING, years=17)
    guardian = services.add_guardian(
        user=sara, case=case, purpose=PURPOSE, name="Vera Provsson", phone=None
    )
    record_consent(
        sara,
        case,
        PURPOSE,
        [orgs(users)["social"], orgs(users)["school"]],
        giver=Consent.Giver.GUARDIAN,
        guardian=guardian,
    )
    birthday = eighteenth_birthday(case.person)
    the_day_before = birthday - datetime.timedelta(days=1)
    before = policy.consent_state(case, today=the_day_before)
    assert before.complete and lisa.organisation_id in before.organisations
    after = policy.consent_state(case, today=birthday)
    assert not after.complete and "self" in after.missing
    assert after.organisations == frozenset()
    noon = datetime.time(12, tzinfo=timezone.get_current_timezone())
    assert policy.case_access(lisa, case, now=datetime.datetime.combine(the_day_before, noon))
    refused = policy.case_access(lisa, case, now=datetime.datetime.combine(birthday, noon))
    assert not refused and refused.denial == "consent incomplete: missing"
    assert refused.consent_missing == ("self",)
    # Their own consent carries on.
    record_consent(sara, case, PURPOSE, [orgs(users)["social"], orgs(users)["school"]])
    assert policy.consent_state(case, today=birthday).complete


# --- Reminders --------------------------------------------------------------------------------


def opened_days_ago(case, days: int) -> None:
    Case.objects.filter(pk=case.pk).update(opened_at=timezone.now() - datetime.timedelta(days=days))


def send_reminders() -> None:
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_reminders_of_consent_over_time_once_per_event(users):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    today = timezone.localdate()
    # A consent ending in 20 days (and one in 40: not yet).
    expiring_case = sig_case(users, Status.ACTIVE, years=19)
    expiring = record_consent(
        anna,
        expiring_case,
        PURPOSE,
        [orgs(users)["social"], orgs(users)["police"]],
        valid_until=today + datetime.timedelta(days=20),
    )
    later_case = sig_case(users, Status.ACTIVE, years=19)
    record_consent(
        anna,
        later_case,
        PURPOSE,
        [orgs(users)["social"]],
        valid_until=today + datetime.timedelta(days=40),
    )
    # A person who was 17 when the case opened over a year ago and is 18 now.
    came_of_age = sig_case(users, Status.ACTIVE, years=18)
    opened_days_ago(came_of_age, 400)
    # A person who was 25 (the top of SIG's range) then and is 26 now; no lead yet.
    too_old = sig_case(users, Status.REFERRED, person=make_person(user=anna, years=26))
    opened_days_ago(too_old, 400)
    # Neither: 18 already when the case opened; 16 now.
    adult_from_start = sig_case(users, Status.ACTIVE, years=19)
    young = sig_case(users, Status.ACTIVE, years=16)

    send_reminders()
    send_reminders()

    def reminded(kind):
        return list(Reminder.objects.filter(kind=kind).values_list("object_id", "recipient_id"))

    assert reminded(Reminder.Kind.CONSENT_EXPIRING) == [(str(expiring.pk), anna.pk)]
    assert reminded(Reminder.Kind.TURNED_18) == [(f"{came_of_age.pk}:18", anna.pk)]
    assert reminded(Reminder.Kind.AGE_RANGE_LEFT) == [(f"{too_old.pk}:age", None)]
    quiet = {str(c.pk) for c in (later_case, adult_from_start, young)}
    assert (
        not Reminder.objects.filter(case_id__in=quiet)
        .exclude(kind=Reminder.Kind.TASK_OVERDUE)
        .exists()
    )
    # The next day's run reminds of none of them again.
    for kind, candidates in due_reminders(today + datetime.timedelta(days=1), 5):
        if kind in Reminder.ONCE_PER_EVENT:
            assert record_reminders(candidates) == 0
    assert Reminder.objects.filter(kind__in=Reminder.ONCE_PER_EVENT).count() == 3
    # The lead sees hers; the coordinators' list has the case without a lead.
    page = logged_in(anna).get("/arenden/paminnelser/").content.decode()
    assert "Samtycket upphör snart att gälla" in page
    assert "Myndig (eget samtycke behövs)" in page
    coordinator_page = logged_in(sara).get("/arenden/paminnelser/").content.decode()
    assert "Personen har lämnat programmets åldersintervall" in coordinator_page
    assert too_old.reference in coordinator_page


def test_a_closed_case_and_a_replaced_consent_are_not_reminded(users):
    anna = users["anna.social"]
    today = timezone.localdate()
    case = sig_case(users, Status.ACTIVE, years=19)
    replaced = record_consent(
        anna, case, PURPOSE, [orgs(users)["social"]], valid_until=today + datetime.timedelta(10)
    )
    record_consent(anna, case, PURPOSE, [orgs(users)["social"]])  # newer, no end date
    closed = sig_case(users, "closed", years=19)
    record = Consent.objects.filter(case=closed).first()
    Consent.objects.filter(pk=record.pk).update(valid_until=today + datetime.timedelta(5))
    send_reminders()
    assert not Reminder.objects.filter(
        kind=Reminder.Kind.CONSENT_EXPIRING, object_id__in=[str(replaced.pk), str(record.pk)]
    ).exists()
