"""Referrals reveal nothing (issue 14, finding 1).

A social worker registers a referral with the personnummer of a person who is already
registered and whom she may not see — in the demo, a defector whose case was handed over
to the police region because of a threat. The page she lands on must show only what she
typed and the case number, never the stored person; she gets no access to the case until
screening puts her on the team; the team's memberships end when a case closes; and the
log review counts nothing of this among her own cases.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from audit import review
from casework import policy, roles
from casework.models import CaseMembership, User
from casework.services import cases as case_services
from casework.services import create_person
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import PURPOSE, fresh_personnummer, sig_case
from workflows.defector.demo import Builder
from workflows.defector.flow import DefectorFlow
from workflows.defector.models import DefectorCase, Level
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfCase

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

# What the register holds about the person (must never reach the referrer).
STORED = {"name": "Hemlig Hotadsson", "address": "Skyddsvägen 7", "phone": "073-999 12 34"}
# What the referrer types.
TYPED = {
    "name": "Vem Somhelst",
    "area": "other",
    "phone": "08-111 22 33",
    "address": "Påhittad gata 9",
    "reason": "Vill kontrollera vem detta är.",
}


@pytest.fixture
def registered(users):
    """A person registered by the police, whose defector case was handed over to the police
    region (threat level HIGH): nobody in social services may see them."""
    pnr = fresh_personnummer(16)
    person = create_person(
        user=users["per.polis"],
        purpose=PURPOSE,
        personnummer=pnr,
        area="brickebacken",
        **STORED,
    )
    # Another social worker leads it (and then the support case): Anna never took part.
    bo = User.objects.create(username="bo.social", organisation=users["anna.social"].organisation)
    bo.groups.add(Group.objects.get(name=roles.SOCIAL_WORKER))
    builder = Builder({**users, "anna.social": bo}, person, level=Level.HIGH)
    builder.referrer = "per.polis"
    case = builder.run("assess")
    assert case.handed_over_at is not None
    return person, pnr, case


def _assert_nothing_stored(response, pnr: str) -> None:
    html = response.content.decode()
    for value in STORED.values():
        assert value not in html, value
    born = datetime.date(int(pnr[:4]), int(pnr[4:6]), int(pnr[6:8]))
    assert born.isoformat() not in html


def _no_access(client, user, case) -> None:
    assert not policy.case_access(user, case)
    assert not CaseMembership.objects.filter(case=case, user=user).exists()
    client.force_login(user)
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 404


def _refer(client, user, url, data):
    client.force_login(user)
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response


def test_sig_referral_of_a_registered_person_shows_only_what_was_typed(client, users, registered):
    person, pnr, _defector = registered
    anna = users["anna.social"]
    response = _refer(
        client, anna, SigFlow.start.reverse("execute"), {"personnummer": pnr, **TYPED}
    )
    case = SigCase.objects.get(person=person)
    html = response.content.decode()
    _assert_nothing_stored(response, pnr)
    # The receipt: the case number and what she typed.
    assert case.reference in html
    assert TYPED["name"] in html and TYPED["reason"] in html
    _no_access(client, anna, case)


def test_sspf_concern_about_a_registered_person_shows_only_what_was_typed(
    client, users, registered
):
    person, pnr, _defector = registered
    anna = users["anna.social"]
    data = {"personnummer": pnr, "name": TYPED["name"], "area": "other", "reason": "Oro."}
    response = _refer(client, anna, SspfFlow.start.reverse("execute"), data)
    case = SspfCase.objects.get(person=person)
    _assert_nothing_stored(response, pnr)
    assert case.reference in response.content.decode()
    _no_access(client, anna, case)


def test_defector_referral_of_a_registered_person_shows_only_what_was_typed(
    client, users, registered
):
    person, pnr, defector_case = registered
    anna = users["anna.social"]
    data = {"personnummer": pnr, **TYPED, "source": "social_services", "protected_identity": 0}
    response = _refer(client, anna, DefectorFlow.start.reverse("execute"), data)
    case = DefectorCase.objects.filter(person=person).exclude(pk=defector_case.pk).get()
    _assert_nothing_stored(response, pnr)
    assert case.reference in response.content.decode()
    _no_access(client, anna, case)


def test_a_referral_of_a_new_person_gets_the_same_receipt(client, users):
    """Registered or not, the referrer sees the same kind of page: no oracle, no access."""
    anna = users["anna.social"]
    pnr = fresh_personnummer(16)
    response = _refer(
        client, anna, SigFlow.start.reverse("execute"), {"personnummer": pnr, **TYPED}
    )
    case = SigCase.objects.get()
    assert response.templates[0].name == "workflows/referral_receipt.html"
    assert case.reference in response.content.decode()
    _no_access(client, anna, case)


def test_closing_the_referral_leaves_the_referrer_nothing_and_the_log_review_sees_it(
    client, users, registered
):
    person, pnr, _defector = registered
    anna, sara = users["anna.social"], users["sara.samordnare"]
    start = timezone.now()
    _refer(client, anna, SigFlow.start.reverse("execute"), {"personnummer": pnr, **TYPED})
    case = SigCase.objects.get(person=person)
    # The coordinator screens the referral and rejects it: the case closes.
    process = SigProcess.objects.get(case=case)
    task = process.task_set.get(flow_task=SigFlow.screen)
    client.force_login(sara)
    assert client.post(SigFlow.screen.reverse("assign", args=[process.pk, task.pk])).status_code
    url = SigFlow.screen.reverse("execute", args=[process.pk, task.pk])
    client.post(url, {"_action": "begin", "version": case.version})
    case.refresh_from_db()
    client.post(
        url,
        {
            "_action": "screen",
            "version": case.version,
            "outcome": "reject",
            "close_reason": "not_eligible",
            "note": "Inte aktuell.",
        },
    )
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    # Nobody keeps an open membership of a closed case.
    assert not CaseMembership.objects.filter(case=case, valid_to__isnull=True).exists()
    later = timezone.now() + datetime.timedelta(seconds=1)
    own = policy.case_team_person_ids(
        user_id=anna.pk, start=later, end=later + datetime.timedelta(hours=1)
    )
    assert person.pk not in own
    # The review of the period: her look-up and the referral are access outside her own cases.
    end = timezone.now() + datetime.timedelta(minutes=1)
    flagged = review.outside_own_cases(start, end).events
    assert any(e.user_id == anna.pk and e.person_id == person.pk for e in flagged)


def test_memberships_end_when_a_case_closes(users):
    case = sig_case(users, Status.CLOSED)
    assert case.closed_at is not None
    assert CaseMembership.objects.filter(case=case).exists()
    assert not CaseMembership.objects.filter(case=case, valid_to__isnull=True).exists()
    assert set(CaseMembership.objects.filter(case=case).values_list("valid_to", flat=True)) == {
        case.closed_at
    }
    # The police contact officer sees nothing of it any more.
    assert not policy.case_access(users["per.polis"], case)


def test_the_lead_keeps_reading_for_the_documentation_window_only(users, settings):
    case = sig_case(users, Status.CLOSED)
    anna = users["anna.social"]
    access = policy.case_access(anna, case)
    assert access and access.via == "closed_lead"
    # Reading only: no change to a closed case through the window.
    with pytest.raises(case_services.CaseDenied):
        case_services.update_case(user=anna, case=case, purpose=PURPOSE, texts={"plan": "Efteråt."})
    days = settings.SAMVERKAN["CLOSED_CASE_LEAD_READ_DAYS"]
    after = case.closed_at + datetime.timedelta(days=days, seconds=1)
    assert not policy.case_access(anna, case, now=after)
    settings.SAMVERKAN = {**settings.SAMVERKAN, "CLOSED_CASE_LEAD_READ_DAYS": 0}
    assert not policy.case_access(anna, case)


def test_the_lead_reading_a_closed_case_is_logged_with_its_ground(client, users):
    from audit.models import AccessEvent

    case = sig_case(users, Status.CLOSED)
    client.force_login(users["anna.social"])
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 200
    event = AccessEvent.objects.filter(
        user=users["anna.social"], action=AccessEvent.Action.CONSULT, person_id=case.person_id
    ).latest("id")
    assert event.details.get("via") == "closed_lead"


def test_screening_shows_that_the_person_is_registered_within_the_coordinators_rights(
    client, users, registered
):
    person, pnr, defector_case = registered
    anna, sara = users["anna.social"], users["sara.samordnare"]
    # The person also has a SIG case the coordinator may see.
    earlier = sig_case(users, Status.CONSENT_PENDING, person=person)
    _refer(client, anna, SigFlow.start.reverse("execute"), {"personnummer": pnr, **TYPED})
    case = SigCase.objects.filter(person=person).exclude(pk=earlier.pk).get()
    process = SigProcess.objects.get(case=case)
    task = process.task_set.get(flow_task=SigFlow.screen)
    client.force_login(sara)
    client.post(SigFlow.screen.reverse("assign", args=[process.pk, task.pk]))
    response = client.get(SigFlow.screen.reverse("execute", args=[process.pk, task.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["registration"].registered
    assert "already registered" in html or "redan registrerad" in html
    assert earlier.reference in html
    # The defector case is outside a SIG coordinator's rights: not named, not counted.
    assert defector_case.reference not in html
    assert [c.pk for c in response.context["registration"].cases] == [earlier.pk]


def test_screening_of_a_new_person_says_nothing_of_a_registration(client, users):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    _refer(
        client,
        anna,
        SigFlow.start.reverse("execute"),
        {"personnummer": fresh_personnummer(16), **TYPED},
    )
    case = SigCase.objects.get()
    process = SigProcess.objects.get(case=case)
    task = process.task_set.get(flow_task=SigFlow.screen)
    client.force_login(sara)
    client.post(SigFlow.screen.reverse("assign", args=[process.pk, task.pk]))
    response = client.get(SigFlow.screen.reverse("execute", args=[process.pk, task.pk]))
    assert not response.context["registration"].registered


def test_a_defector_case_handed_over_to_the_national_programme_leaves_local_own_cases(users):
    """The log review's own cases follow the hand-over cut: social services' former team
    members no longer count the person as theirs (the police handlers do)."""
    from tests.workflows.defector.factories import defector_case

    case = defector_case(users, "assess", level="evidence")
    assert case.handed_over_at is not None and case.handed_over_to == "national"
    later = timezone.now() + datetime.timedelta(seconds=1)
    window = {"start": later, "end": later + datetime.timedelta(hours=1)}
    anna, per = users["anna.social"], users["per.polis"]
    assert CaseMembership.objects.filter(case=case, user=anna, valid_to__isnull=True).exists()
    assert case.person_id not in policy.case_team_person_ids(user_id=anna.pk, **window)
    assert case.person_id in policy.case_team_person_ids(user_id=per.pk, **window)
