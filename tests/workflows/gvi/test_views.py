"""GVI pages and tasks through the test client: the authorisation matrix (every GVI URL by
every role), bad input, the flows driven through their task views, and the SIG link seen
from both sides."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from viewflow.workflow.models import Task

from tests.conftest import COMMITTED_DB, demo_users
from tests.workflows.gvi import factories as f
from tests.workflows.sig.factories import fresh_personnummer
from workflows.gvi import models as gvi

pytestmark = COMMITTED_DB

ROLES = demo_users(but={"maja.avhopp"})
# Who may open each kind of page (anna.social is named a participant in the fixture).
READERS = {"anna.social", "per.polis", "sara.samordnare"}
COORDINATOR = {"sara.samordnare"}
POLICE = {"per.polis"}
REGISTRARS = {"per.polis", "sara.samordnare"}


@pytest.fixture
def world(users):
    f.name_participant(users["anna.social"])
    group, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    notification = f.notification(users, member, until=gvi.NotificationStatus.REQUESTED)
    call_in = gvi.CallIn.objects.create(
        reference="GVI-C-TEST-0001", date=timezone.localdate(), created_by=users["sara.samordnare"]
    )
    return {"group": group, "member": member, "notification": notification, "call_in": call_in}


def _pages(world):
    return {
        "/gvi/": READERS,
        "/gvi/grupper/ny/": REGISTRARS,
        "/gvi/incidenter/ny/": POLICE,
        "/gvi/call-in/ny/": COORDINATOR,
        f"/gvi/grupper/{world['group'].pk}/": READERS,
        f"/gvi/medlemmar/{world['member'].pk}/": READERS,
        f"/gvi/call-in/{world['call_in'].pk}/": READERS,
        f"/gvi/underrattelser/{world['notification'].pk}/": READERS,
    }


def test_every_gvi_page_by_every_role(client, users, world):
    pages = _pages(world)
    for username in ROLES:
        client.force_login(users[username])
        for url, allowed in pages.items():
            response = client.get(url)
            expected = 200 if username in allowed else 403
            assert response.status_code == expected, (username, url, response.status_code)
            if expected == 403:
                assert f.GROUP_NAME not in response.content.decode()
        client.logout()
    client.force_login(users["sara.samordnare"])
    assert f.GROUP_NAME in client.get(f"/gvi/grupper/{world['group'].pk}/").content.decode()


def test_anonymous_is_sent_to_login(client, world):
    response = client.get("/gvi/")
    assert response.status_code == 302 and "logga-in" in response["Location"]


def test_a_social_worker_not_named_sees_nothing(client, users, world):
    other = users["anna.social"]
    other.user_permissions.clear()
    client.force_login(other)
    assert client.get("/gvi/").status_code == 403
    assert client.get(f"/gvi/medlemmar/{world['member'].pk}/").status_code == 403


def test_unknown_object_is_404(client, users, world):
    client.force_login(users["sara.samordnare"])
    assert client.get("/gvi/grupper/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_bad_input_is_a_form_error(client, users, world):
    client.force_login(users["per.polis"])
    response = client.post("/gvi/grupper/ny/", {"_action": "create", "name": "", "area": "x"})
    assert response.status_code == 400
    assert gvi.Group.objects.count() == 1
    response = client.post(
        "/gvi/incidenter/ny/",
        {"_action": "create", "date": "2999-01-01", "area": "other", "kind": "bomb"},
    )
    assert response.status_code == 400 and not gvi.Incident.objects.exists()
    group_url = f"/gvi/grupper/{world['group'].pk}/"
    response = client.post(group_url, {"_action": "member", "personnummer": "123", "version": 1})
    assert response.status_code == 400
    response = client.post(group_url, {"_action": "nonsense"})
    assert response.status_code == 400
    response = client.post(
        group_url, {"_action": "transition", "transition": "go_dormant", "version": "x"}
    )
    assert response.status_code == 400
    # A stale version: nothing saved, 409.
    response = client.post(group_url, {"_action": "notes", "notes": "Ny", "version": 999})
    assert response.status_code == 409


def test_registering_a_group_and_a_minor_member_through_the_pages(client, users, world):
    client.force_login(users["per.polis"])
    response = client.post(
        "/gvi/grupper/ny/",
        {"_action": "create", "name": "Syntetgänget", "area": "brickebacken", "size_band": "1-5"},
    )
    assert response.status_code == 302
    group = gvi.Group.objects.get(reference__endswith="0002")
    response = client.post(
        f"/gvi/grupper/{group.pk}/",
        {
            "_action": "member",
            "personnummer": fresh_personnummer(15),
            "name": "Prov Provsson",
            "area": "brickebacken",
            "version": group.version,
        },
    )
    assert response.status_code == 302
    member = group.members.get()
    assert member.minor_notice
    client.force_login(users["anna.social"])
    task = Task.objects.get(process__gviminornoticeprocess__member=member, flow_task_type="HUMAN")
    index = task.flow_task.reverse("index", args=[task.process_id, task.pk])
    assert client.get("/arenden/queue/").status_code == 200
    client.post(task.flow_task.reverse("assign", args=[task.process_id, task.pk]))
    task.refresh_from_db()
    execute = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    response = client.post(
        execute, {"_action": "acknowledge", "transition": "acknowledge", "version": member.version}
    )
    assert response.status_code == 302, index
    task.refresh_from_db()
    assert task.finished is not None


def _take(client, task):
    client.post(task.flow_task.reverse("assign", args=[task.process_id, task.pk]))
    return task.flow_task.reverse("execute", args=[task.process_id, task.pk])


def _open_task(notification):
    return Task.objects.get(
        process__gvinotificationprocess__notification=notification,
        flow_task_type="HUMAN",
        finished__isnull=True,
    )


def test_custom_notification_flow_and_sig_link_on_both_pages(client, users, world):
    per, sara, anna = users["per.polis"], users["sara.samordnare"], users["anna.social"]
    n = world["notification"]
    client.force_login(per)
    task = _open_task(n)
    assert task.owner == per
    url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    assert (
        client.post(
            url, {"_action": "assess", "lawful": "yes", "assessment": "", "version": n.version}
        ).status_code
        == 400
    )
    response = client.post(
        url, {"_action": "assess", "lawful": "yes", "assessment": "Synt.", "version": n.version}
    )
    assert response.status_code == 302
    n.refresh_from_db()
    client.force_login(sara)
    task = _open_task(n)
    assert task.flow_task.name == "approve"
    url = _take(client, task)
    response = client.post(
        url, {"_action": "approve", "message": "Sluta skjut.", "version": n.version}
    )
    assert response.status_code == 302
    n.refresh_from_db()
    client.force_login(per)
    task = _open_task(n)
    assert task.flow_task.name == "deliver" and task.owner == per
    url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    when = (timezone.localtime() + datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    response = client.post(
        url, {"_action": "schedule", "scheduled_for": when, "version": n.version}
    )
    assert response.status_code == 400  # no non-police messenger yet
    assert "inte är polis" in response.content.decode() or "not police" in response.content.decode()
    client.post(
        url,
        {"_action": "messenger", "kind": "community", "description": "Imam", "version": n.version},
    )
    n.refresh_from_db()
    assert (
        client.post(
            url, {"_action": "schedule", "scheduled_for": when, "version": n.version}
        ).status_code
        == 302
    )
    n.refresh_from_db()
    response = client.post(
        url,
        {
            "_action": "deliver",
            "offer_of_help": "Stöd",
            "response": "accepted",
            "programme": "sig",
            "reason": "Vill ut.",
            "version": n.version,
        },
    )
    assert response.status_code == 302
    n.refresh_from_db()
    member = n.member
    member.refresh_from_db()
    assert n.status == gvi.NotificationStatus.DELIVERED
    assert member.status == gvi.MemberStatus.OFFER_ACCEPTED
    case = member.referral_case
    # The SIG referral waits in the coordinators' screening queue.
    screening = Task.objects.get(process__sigprocess__case=case, flow_task_type="HUMAN")
    assert screening.flow_task.name == "screen"
    client.force_login(sara)
    assert case.reference in client.get(f"/gvi/medlemmar/{member.pk}/").content.decode()
    page = client.get(f"/arenden/fall/{case.pk}/").content.decode()
    assert f"/gvi/medlemmar/{member.pk}/" in page
    # The follow-up goes to the named social-services participants.
    client.force_login(anna)
    task = _open_task(n)
    assert task.flow_task.name == "follow_up"
    url = _take(client, task)
    response = client.post(url, {"_action": "follow_up", "note": "Träffat.", "version": n.version})
    assert response.status_code == 302
    n.refresh_from_db()
    assert n.status == gvi.NotificationStatus.CLOSED


def _call_in_with_its_attendee(client, users, world):
    """sara.samordnare plans a call-in in its task: the member selected, invited and there.
    Returns the call-in, its task page and ``post(data)`` to that page at its version."""
    client.force_login(users["sara.samordnare"])
    response = client.post(
        "/gvi/call-in/ny/", {"_action": "create", "date": timezone.localdate().isoformat()}
    )
    assert response.status_code == 302
    call_in = gvi.CallIn.objects.exclude(pk=world["call_in"].pk).get()
    task = Task.objects.get(process__gvicallinprocess__call_in=call_in, flow_task_type="HUMAN")
    url = _take(client, task)

    def post(data):
        call_in.refresh_from_db()
        return client.post(url, {**data, "version": call_in.version})

    assert post({"_action": "attendee", "member": world["member"].pk}).status_code == 302
    for name in ("select_attendees", "invite"):
        assert post({"_action": "transition", "transition": name}).status_code == 302
    attendee = call_in.attendees.get()
    assert post({"_action": "attendance", f"attended_{attendee.pk}": "yes"}).status_code == 302
    return call_in, url, post


def test_call_in_planned_and_held_through_the_task(client, users, world):
    call_in, _, post = _call_in_with_its_attendee(client, users, world)
    response = post({"_action": "hold", "transition": "hold"})
    assert response.status_code == 400  # speakers missing
    for role in gvi.SpeakerRole.values:
        assert post({"_action": "speaker", "role": role, "speaker": "X"}).status_code == 302
    assert post({"_action": "hold", "transition": "hold"}).status_code == 302
    call_in.refresh_from_db()
    assert call_in.status == gvi.CallInStatus.HELD
    task = Task.objects.get(
        process__gvicallinprocess__call_in=call_in, flow_task_type="HUMAN", finished__isnull=True
    )
    assert task.flow_task.name == "follow_up"
    page = client.get(f"/gvi/call-in/{call_in.pk}/")
    assert page.status_code == 200 and "X" in page.content.decode()


def test_task_lists_name_each_gvi_task_s_notification_or_member(client, users, world):
    """The inbox and the queue show what a GVI task is about — the notification's number or
    the member's group, with its state, linked to its page — as they show a case's number.
    (They showed "—": two notification tasks could not be told apart.)"""

    notification, member, group = world["notification"], world["member"], world["group"]
    client.force_login(users["per.polis"])
    inbox = client.get(reverse("arenden:inbox")).content.decode()
    assert (
        f.task_link(
            f"/gvi/underrattelser/{notification.pk}/",
            f"{notification.reference} · {notification.get_status_display()}",
        )
        in inbox
    )

    # The notice of a member under 18, in the named social-services participants' queue:
    # the group's number and the member's state; never the member's name.
    client.force_login(users["anna.social"])
    queue = client.get(reverse("arenden:queue")).content.decode()
    assert (
        f.task_link(
            f"/gvi/medlemmar/{member.pk}/", f"{group.reference} · {member.get_status_display()}"
        )
        in queue
    )


def test_the_call_in_is_held_by_posting_the_hold_form_as_the_page_renders_it(client, users, world):
    """The task page's hold form carries everything its view needs: posting its own fields
    holds the call-in. (It was a transition form whose hidden ``transition`` field the page
    left empty: pressing the button gave a 400 and no message, and the call-in could not be
    held in the browser.) Its button says what it does."""

    call_in, url, post = _call_in_with_its_attendee(client, users, world)
    for role in gvi.SpeakerRole.values:
        assert post({"_action": "speaker", "role": role, "speaker": "X"}).status_code == 302

    page = client.get(url).content.decode()
    hold = re.search(r'<form[^>]*>(?:(?!</form>).)*value="hold".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', hold))
    assert set(fields) == {"csrfmiddlewaretoken", "_action", "version"}
    with translation.override("sv"):
        assert translation.gettext("The call-in is held") in hold
    assert client.post(url, fields).status_code == 302
    call_in.refresh_from_db()
    assert call_in.status == gvi.CallInStatus.HELD
