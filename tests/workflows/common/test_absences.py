"""Absence: a user names a deputy of the same organisation and roles for a period; the
deputy sees and does the absent user's tasks for that period only — before and after it,
nothing — and every reading of the absent user's case data by the deputy is in the access
log with the deputy relation (issue 17; ADR 0026)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from casework.models import Absence
from casework.services import absences
from tests.workflows.conftest import BOTH_DATABASES, colleague
from tests.workflows.sig.factories import FlowDriver

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

URL = "/konto/franvaro/"


def day(offset: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=offset)


@pytest.fixture
def ebba(users):
    return colleague(users, "anna.social", "ebba.social")


@pytest.fixture
def consent(users):
    """A SIG case waiting for consent: anna.social (the lead) holds the consent task."""
    flow_case = FlowDriver(users).build("consent")
    task = flow_case.task("consent")
    assert task.owner == users["anna.social"]
    return flow_case, task


def case_url(case) -> str:
    return reverse("arenden:case", kwargs={"case_id": case.pk})


def task_url(task, name="execute") -> str:
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


def name(client, deputy, first, last):
    return client.post(
        URL,
        {
            "_action": "name",
            "deputy": getattr(deputy, "pk", deputy),
            "starts_on": first.isoformat(),
            "ends_on": last.isoformat(),
        },
    )


def test_the_deputy_sees_and_does_the_absent_users_tasks_during_the_period(
    users, client, consent, ebba
):
    flow_case, task = consent
    case, anna = flow_case.case, users["anna.social"]
    client.force_login(anna)
    assert client.get(URL).status_code == 200
    response = name(client, ebba, day(0), day(7))
    assert response.status_code == 302
    absence = Absence.objects.get(user=anna)
    assert absence.deputy == ebba
    assert AccessEvent.objects.filter(
        user=anna, action=AccessEvent.Action.ACCOUNT_CHANGE, details__absence="name_deputy"
    ).exists()

    client.force_login(ebba)
    inbox = client.get("/arenden/inbox/")
    assert case.reference in inbox.content.decode()
    assert client.get(task_url(task)).status_code == 200
    page = client.get(case_url(case))
    assert page.status_code == 200
    consulted = AccessEvent.objects.filter(
        user=ebba, action=AccessEvent.Action.CONSULT, object_id=str(case.pk)
    ).latest("pk")
    assert consulted.details["via"] == "deputy"
    assert consulted.details["deputy_for"] == anna.pk
    assert "Frånvaro och ersättare" in client.get(URL).content.decode()


@pytest.mark.parametrize("period", [(-10, -1), (1, 5)], ids=["after", "before"])
def test_the_deputy_sees_nothing_outside_the_period(users, client, consent, ebba, period):
    flow_case, task = consent
    case, anna = flow_case.case, users["anna.social"]
    absence = absences.name_deputy(user=anna, deputy=ebba, starts_on=day(0), ends_on=day(5))
    # The passing of time: the period lies in the past (or has not begun).
    Absence.objects.filter(pk=absence.pk).update(starts_on=day(period[0]), ends_on=day(period[1]))
    client.force_login(ebba)
    assert case.reference not in client.get("/arenden/inbox/").content.decode()
    assert client.get(case_url(case)).status_code == 404
    assert client.get(task_url(task)).status_code in (403, 404)
    assert case.reference not in client.get("/arenden/cases/").content.decode()
    task.refresh_from_db()
    assert task.owner == anna


def test_a_cancelled_absence_ends_the_deputys_access_at_once(users, client, consent, ebba):
    flow_case, _task = consent
    anna = users["anna.social"]
    absence = absences.name_deputy(user=anna, deputy=ebba, starts_on=day(0), ends_on=day(5))
    client.force_login(ebba)
    assert client.get(case_url(flow_case.case)).status_code == 200
    client.force_login(anna)
    response = client.post(URL, {"_action": "cancel", "absence": absence.pk})
    assert response.status_code == 302
    client.force_login(ebba)
    assert client.get(case_url(flow_case.case)).status_code == 404


def test_a_deputy_whose_role_ended_sees_nothing(users, client, consent, ebba):
    flow_case, _task = consent
    absences.name_deputy(user=users["anna.social"], deputy=ebba, starts_on=day(0), ends_on=day(5))
    ebba.groups.clear()
    client.force_login(ebba)
    assert client.get(case_url(flow_case.case)).status_code in (403, 404)


def test_bad_input_is_a_swedish_form_error_and_writes_nothing(users, client, ebba):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    absences.name_deputy(user=anna, deputy=ebba, starts_on=day(0), ends_on=day(5))
    client.force_login(anna)
    cases = [
        # Another organisation: not offered.
        (users["per.polis"], day(10), day(12), "Välj ett giltigt alternativ."),
        # Same organisation, other roles.
        (sara, day(10), day(12), "Ersättaren måste arbeta i din organisation och ha samma"),
        (anna, day(10), day(12), "Välj ett giltigt alternativ."),
        (ebba, day(12), day(10), "Sista dagen kan inte vara före första dagen."),
        (ebba, day(-5), day(-1), "Frånvaron har redan tagit slut."),
        (ebba, day(3), day(9), "Du har redan en frånvaro under den perioden."),
        ("", day(10), day(12), "Detta fält måste fyllas i."),
    ]
    for deputy, first, last, message in cases:
        response = name(client, deputy, first, last)
        assert response.status_code == 200, (deputy, message)
        assert message in response.content.decode(), message
    response = client.post(URL, {"_action": "name", "deputy": ebba.pk, "starts_on": "igår"})
    assert response.status_code == 200 and "Ange ett giltigt datum." in response.content.decode()
    assert Absence.objects.count() == 1
    # Cancelling someone else's absence: refused, nothing changed.
    client.force_login(ebba)
    response = client.post(
        URL, {"_action": "cancel", "absence": Absence.objects.get().pk}, follow=True
    )
    assert "Det finns ingen sådan frånvaro att återkalla." in response.content.decode()
    assert Absence.objects.get().cancelled_at is None


def test_the_service_refuses_a_deputy_who_is_oneself(users, ebba):
    with pytest.raises(ValidationError) as raised:
        absences.name_deputy(
            user=users["anna.social"],
            deputy=users["anna.social"],
            starts_on=day(0),
            ends_on=day(1),
        )
    assert "deputy" in raised.value.error_dict


@pytest.mark.parametrize("username", ["stig.styrgrupp", "greta.granskare", "adam.admin"])
def test_only_case_workers_have_the_page(users, client, username):
    client.force_login(users[username])
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"_action": "name"}).status_code == 403


@pytest.mark.parametrize("period", [(0, 5), (-10, -1)], ids=["during", "after"])
def test_the_menus_inbox_count_holds_the_absent_users_tasks_during_the_period(
    users, consent, ebba, period
):
    """The side menu's count (``MenuCounts``, one statement that reads only the tasks its
    counts can take) is the deputy's inbox with the absent user's task during the period,
    and without it after."""
    from casework.menu_counts import MenuCounts
    from casework.views import CaseworkApp
    from config.urls import site

    anna = users["anna.social"]
    flows = next(app for app in site.viewsets if isinstance(app, CaseworkApp)).flow_classes
    own = MenuCounts(flows, ebba).inbox
    absence = absences.name_deputy(user=anna, deputy=ebba, starts_on=day(0), ends_on=day(5))
    Absence.objects.filter(pk=absence.pk).update(starts_on=day(period[0]), ends_on=day(period[1]))
    during = period == (0, 5)
    assert MenuCounts(flows, ebba).inbox == own + (MenuCounts(flows, anna).inbox if during else 0)
    assert MenuCounts(flows, anna).inbox >= 1
