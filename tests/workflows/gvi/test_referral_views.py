"""The task of an accepted offer of help through the test client: every role on its URLs
(the authorisation matrix), the page (member, group, referral, deadline), taking it up,
a second submit, a referral closed meanwhile, and the task lists naming the referral."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from audit.models import AccessEvent
from casework.models import CaseMembership
from casework.services import cases as case_services
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from tests.workflows.gvi.test_views import ROLES
from tests.workflows.sig.factories import PERSON_NAME
from workflows.gvi import models as gvi
from workflows.sig.models import SigCase

pytestmark = COMMITTED_DB


@pytest.fixture
def member(users):
    f.name_participant(users["anna.social"])
    return f.accepted_member(users)


def _task(member):
    return f.referral_notice_tasks(member).get()


def _urls(task):
    return {
        name: task.flow_task.reverse(name, args=[task.process_id, task.pk])
        for name in ("index", "assign", "execute")
    }


def test_every_role_on_the_task_s_urls(client, users, member):
    """Only a named social-services participant takes the task; once she has, only she
    works on it. Every refusal is a 403 in the access log, and shows no name."""
    task = _task(member)
    urls = _urls(task)
    # A police officer granted the participant's permission by mistake is no participant.
    f.name_participant(users["per.polis"])
    # Everyone else first (the task is still in the queue), then the participant.
    for username in [*(r for r in ROLES if r != "anna.social"), "anna.social"]:
        client.force_login(users[username])
        response = client.post(urls["assign"])
        task.refresh_from_db()
        if username == "anna.social":
            assert response.status_code == 302 and task.owner == users[username], username
            continue
        assert response.status_code == 403, (username, response.status_code)
        assert task.owner is None
        assert PERSON_NAME not in response.content.decode()
        client.logout()
    for username in [*(r for r in ROLES if r != "anna.social"), "anna.social"]:
        client.force_login(users[username])
        response = client.get(urls["execute"])
        expected = 200 if username == "anna.social" else 403
        assert response.status_code == expected, (username, response.status_code)
        if expected == 403:
            assert PERSON_NAME not in response.content.decode()
            assert AccessEvent.objects.filter(
                action="access_denied", user_id=users[username].pk
            ).exists()
        response = client.post(urls["execute"], {"_action": "take_up"})
        if username != "anna.social":
            assert response.status_code == 403, (username, response.status_code)
        client.logout()
    assert CaseMembership.objects.filter(
        case=member.referral_case, user=users["anna.social"], valid_to__isnull=True
    ).exists()


def test_the_page_and_taking_it_up(client, users, member):
    anna = users["anna.social"]
    case = member.referral_case
    task = _task(member)
    urls = _urls(task)
    client.force_login(anna)
    # The queue names the referral and the group (no name: nothing decrypted there).
    queue = client.get(reverse("arenden:queue")).content.decode()
    assert (
        f.task_link(f"/gvi/medlemmar/{member.pk}/", f"{case.reference} · {member.group.reference}")
        in queue
    )
    client.post(urls["assign"])
    with translation.override("sv"):
        page = client.get(urls["execute"]).content.decode()
        assert translation.gettext("Offer of help accepted: take up the referral") in page
        assert translation.gettext("Take up the referral") in page
        assert translation.gettext("Overdue") not in page
    assert PERSON_NAME in page and member.group.reference in page and case.reference in page
    process = gvi.GviReferralNoticeProcess.objects.get(accepted_member=member)
    assert timezone.localtime(process.due).strftime("%Y-%m-%d %H:%M") in page
    # Before she takes it up she may not open the case (not found, as for every case
    # outside one's reach).
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 404

    response = client.post(urls["execute"], {"_action": "take_up"})
    assert response.status_code == 302
    assert response["Location"] == f"/arenden/fall/{case.pk}/"
    task.refresh_from_db()
    assert task.finished is not None
    assert (
        CaseMembership.objects.get(case=case, user=anna, valid_to__isnull=True).role
        == CaseMembership.Role.SOCIAL_WORKER
    )
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 200
    # From the member page too.
    member_page = client.get(f"/gvi/medlemmar/{member.pk}/").content.decode()
    assert f"/arenden/fall/{case.pk}/" in member_page

    # A second submit (another tab, the back button) leads back to the case, once.
    again = client.post(urls["execute"], {"_action": "take_up"})
    assert again.status_code == 302 and again["Location"] == f"/arenden/fall/{case.pk}/"
    assert CaseMembership.objects.filter(case=case, user=anna).count() == 1
    assert client.get(urls["execute"]).status_code == 302
    # Someone outside GVI still gets the 403 on the done task.
    client.force_login(users["lisa.skola"])
    assert client.post(urls["execute"], {"_action": "take_up"}).status_code == 403


def test_an_overdue_task_says_so(client, users, member):
    anna = users["anna.social"]
    gvi.GviReferralNoticeProcess.objects.filter(accepted_member=member).update(
        due=timezone.now() - datetime.timedelta(hours=2)
    )
    urls = _urls(_task(member))
    client.force_login(anna)
    client.post(urls["assign"])
    with translation.override("sv"):
        page = client.get(urls["execute"]).content.decode()
        assert translation.gettext("Overdue") in page
        overview = client.get("/gvi/").content.decode()
        assert translation.gettext("Accepted offers of help not taken up in time:") in overview
    assert member.referral_case.reference in overview


def test_a_referral_closed_meanwhile_finishes_the_task_with_a_message(client, users, member):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    case = SigCase.objects.get(pk=member.referral_case_id)
    case_services.close_case(user=sara, case=case, purpose=f.PURPOSE, reason="not_eligible")
    task = _task(member)
    urls = _urls(task)
    client.force_login(anna)
    client.post(urls["assign"])
    with translation.override("sv"):
        assert translation.gettext("closed") in client.get(urls["execute"]).content.decode()
        response = client.post(urls["execute"], {"_action": "take_up"}, follow=True)
        text = translation.gettext(
            "The referral %(reference)s was closed before it was taken up: "
            "there is no team to join. The task is done."
        ) % {"reference": case.reference}
    assert response.redirect_chain[-1][0] == f"/gvi/medlemmar/{member.pk}/"
    assert text in response.content.decode()
    task.refresh_from_db()
    assert task.finished is not None
    assert not CaseMembership.objects.filter(case=case, user=anna).exists()
