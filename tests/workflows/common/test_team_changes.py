"""Changing a case's team while it runs (issue 17, "Teams and tasks"; ADR 0026): the
coordinator — and the lead for a seat of their own organisation — replaces the lead social
worker or the police contact, adds a member and ends a membership, with a reason; the open
tasks follow; the timeline and the access log show it; a member who left gets 404 on the
next request; bad input is a Swedish form error and changes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework.crypto.records import open_value
from casework.models import CaseEvent, CaseMembership
from casework.selectors.case_keys import case_key
from casework.services import team_changes
from casework.services.cases import CaseConflict, CaseDenied
from tests.workflows.conftest import BOTH_DATABASES, colleague
from tests.workflows.sig.factories import PURPOSE, FlowDriver

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

REASON = "Anna går över till en annan enhet."


def team_url(case) -> str:
    return reverse("arenden:case_team", args=[case.pk])


def case_url(case) -> str:
    return reverse("arenden:case", kwargs={"case_id": case.pk})


@pytest.fixture
def follow_up(users):
    """An active SIG case at its review date: the follow-up task is open, anna.social's
    (the lead's)."""
    flow_case = FlowDriver(users).build("follow_up")
    task = flow_case.task("follow_up")
    assert task.owner == users["anna.social"] and task.status == STATUS.ASSIGNED
    return flow_case, task


@pytest.fixture
def ebba(users):
    """A second social worker of anna.social's office."""
    return colleague(users, "anna.social", "ebba.social")


def end_membership(users, flow_case, reason: str, **member) -> None:
    """The coordinator ends the open membership of ``member`` (``user=`` or ``role=``)."""
    case = flow_case.case
    membership = CaseMembership.objects.get(case=case, valid_to__isnull=True, **member)
    team_changes.end_team_membership(
        user=users["sara.samordnare"],
        case=case,
        purpose=PURPOSE,
        membership_id=membership.pk,
        reason=reason,
        expected_version=flow_case.refresh().case.version,
    )


def lead_of(case):
    return CaseMembership.objects.get(
        case=case, role=CaseMembership.Role.LEAD, valid_to__isnull=True
    ).user


def test_coordinator_replaces_the_lead_and_the_task_follows(users, client, follow_up, ebba):
    flow_case, task = follow_up
    case, anna, sara = flow_case.case, users["anna.social"], users["sara.samordnare"]
    client.force_login(anna)
    assert client.get(case_url(case)).status_code == 200
    version = flow_case.refresh().case.version

    sara_client = type(client)()
    sara_client.force_login(sara)
    page = sara_client.get(team_url(case))
    assert page.status_code == 200 and "Byt ansvarig socialsekreterare" in page.content.decode()
    response = sara_client.post(
        team_url(case),
        {
            "_action": "replace",
            "version": version,
            "role": "lead",
            "member": ebba.pk,
            "reason": REASON,
        },
    )
    assert response.status_code == 302

    assert lead_of(case) == ebba
    assert not CaseMembership.objects.filter(case=case, user=anna, valid_to__isnull=True).exists()
    task.refresh_from_db()
    assert task.owner == ebba and task.status == STATUS.ASSIGNED
    # The timeline: a team entry whose reason is sealed under the case's own key.
    event = CaseEvent.objects.get(case=case, kind=CaseEvent.Kind.TEAM, transition="replace:lead")
    assert event.actor == sara
    assert open_value(event, "reason", case_key(case)) == REASON
    # The access log: the change of the team, and the task's new owner.
    change = AccessEvent.objects.get(
        user=sara,
        action=AccessEvent.Action.CHANGE,
        object_id=str(case.pk),
        details__ended=[anna.pk],
    )
    assert change.details["member"] == ebba.pk and change.details["role"] == "lead"
    assert change.fields == ["team"]
    moved = AccessEvent.objects.get(object_id=str(task.pk), details__task_action="reassign")
    assert moved.details["owner"] == ebba.pk and moved.details["previous_owner"] == anna.pk

    # The old lead's next request for the case: 404 (same session).
    assert client.get(case_url(case)).status_code == 404
    assert client.get(
        task.flow_task.reverse("index", args=[task.process_id, task.pk])
    ).status_code in (403, 404)
    # The new lead finds the task in her inbox and can open it.
    client.force_login(ebba)
    inbox = client.get("/arenden/inbox/")
    assert case.reference in inbox.content.decode()
    execute = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    assert client.get(execute).status_code == 200


def test_ended_membership_gives_404_on_the_next_request(users, client, follow_up):
    flow_case, _task = follow_up
    case, per = flow_case.case, users["per.polis"]
    client.force_login(per)
    assert client.get(case_url(case)).status_code == 200
    end_membership(users, flow_case, "Per har bytt tjänst.", user=per)
    assert client.get(case_url(case)).status_code == 404
    denied = AccessEvent.objects.filter(
        user=per, action=AccessEvent.Action.ACCESS_DENIED, object_id=str(case.pk)
    )
    assert denied.exists()


def test_ending_the_leads_membership_returns_her_task_to_the_queue(users, follow_up):
    flow_case, task = follow_up
    end_membership(users, flow_case, "Anna är föräldraledig.", role="lead")
    task.refresh_from_db()
    assert task.owner_id is None and task.status == STATUS.NEW
    assert AccessEvent.objects.filter(
        object_id=str(task.pk), details__task_action="release", details__cause="remove"
    ).exists()


def test_a_new_lead_in_a_vacant_seat_gets_its_waiting_task(users, follow_up, ebba):
    flow_case, task = follow_up
    case, sara = flow_case.case, users["sara.samordnare"]
    end_membership(users, flow_case, "Anna slutar.", role="lead")
    team_changes.add_team_member(
        user=sara,
        case=case,
        purpose=PURPOSE,
        member=ebba,
        role="lead",
        reason="Ebba tar över.",
        expected_version=flow_case.refresh().case.version,
    )
    task.refresh_from_db()
    assert task.owner == ebba and task.status == STATUS.ASSIGNED


def test_the_police_contact_is_replaced_by_another_officer(users, follow_up):
    flow_case, _task = follow_up
    case = flow_case.case
    olle = colleague(users, "per.polis", "olle.polis")
    team_changes.replace_member(
        user=users["sara.samordnare"],
        case=case,
        purpose=PURPOSE,
        role="police_contact",
        member=olle,
        reason="Per har gått i pension.",
        expected_version=flow_case.refresh().case.version,
    )
    holders = CaseMembership.objects.filter(case=case, role="police_contact", valid_to__isnull=True)
    assert [m.user for m in holders] == [olle]


def test_the_lead_changes_her_own_organisations_seats_only(users, client, follow_up, ebba):
    flow_case, _task = follow_up
    case, anna = flow_case.case, users["anna.social"]
    client.force_login(anna)
    version = flow_case.refresh().case.version
    # A colleague of her own office: allowed.
    response = client.post(
        team_url(case),
        {
            "_action": "add",
            "version": version,
            "member": ebba.pk,
            "role": "social_worker",
            "reason": "Ebba stöttar i familjearbetet.",
        },
    )
    assert response.status_code == 302
    assert CaseMembership.objects.filter(case=case, user=ebba, valid_to__isnull=True).exists()
    # The police contact's seat: a Swedish form error, nothing changed.
    olle = colleague(users, "per.polis", "olle.polis")
    version = flow_case.refresh().case.version
    response = client.post(
        team_url(case),
        {
            "_action": "replace",
            "version": version,
            "role": "police_contact",
            "member": olle.pk,
            "reason": "Byte.",
        },
    )
    assert response.status_code == 200
    assert "Du kan bara ändra medlemmar i din egen organisation." in response.content.decode()
    per_membership = CaseMembership.objects.get(
        case=case, user=users["per.polis"], valid_to__isnull=True
    )
    response = client.post(
        team_url(case),
        {
            "_action": "end",
            "version": version,
            "membership_id": per_membership.pk,
            "reason": "Byte.",
        },
    )
    assert "Du kan bara ändra medlemmar i din egen organisation." in response.content.decode()
    assert flow_case.refresh().case.version == version
    per_membership.refresh_from_db()
    assert per_membership.valid_to is None


@pytest.mark.parametrize(
    "username", ["per.polis", "lisa.skola", "greta.granskare", "stig.styrgrupp"]
)
def test_who_may_not_change_the_team_gets_404_or_403(users, client, follow_up, username):
    flow_case, _task = follow_up
    client.force_login(users[username])
    version = flow_case.case.version
    assert client.get(team_url(flow_case.case)).status_code in (403, 404)
    response = client.post(
        team_url(flow_case.case),
        {"_action": "end", "version": version, "membership_id": 1, "reason": "x"},
    )
    assert response.status_code in (403, 404)
    assert flow_case.refresh().case.version == version


def _post_replace(client, case, **data):
    return client.post(team_url(case), {"_action": "replace", "role": "lead", **data})


def test_bad_input_is_a_swedish_form_error_and_changes_nothing(users, client, follow_up, ebba):
    flow_case, task = follow_up
    case, sara = flow_case.case, users["sara.samordnare"]
    client.force_login(sara)
    version = flow_case.refresh().case.version
    before = list(CaseMembership.objects.filter(case=case).values_list("pk", "valid_to"))
    events = CaseEvent.objects.filter(case=case).count()
    cases = [
        ({"member": ebba.pk, "reason": ""}, "Detta fält måste fyllas i."),
        ({"member": ebba.pk, "reason": "   "}, "Detta fält måste fyllas i."),
        (
            {"member": users["per.polis"].pk, "reason": "Byte."},
            "Användaren har inte den roll som platsen kräver.",
        ),
        (
            {"member": users["lisa.skola"].pk, "reason": "Byte."},
            "Användaren har inte den roll som platsen kräver.",
        ),
        ({"member": "x", "reason": "Byte."}, "Välj ett giltigt alternativ."),
        (
            {"member": users["anna.social"].pk, "reason": "Byte."},
            "Användaren har redan den rollen i teamet.",
        ),
    ]
    for data, message in cases:
        response = _post_replace(client, case, version=version, **data)
        assert response.status_code == 200, data
        assert message in response.content.decode(), (data, message)
    # A social worker of another office cannot lead the case.
    other_office = colleague(
        users, "anna.social", "eva.social", organisation=users["lisa.skola"].organisation
    )
    response = _post_replace(client, case, version=version, member=other_office.pk, reason="Byte.")
    assert (
        "Ansvarig socialsekreterare måste arbeta i den organisation som leder ärendet."
        in response.content.decode()
    )
    # Unknown action, police contact for a social worker, a membership that is not on the team.
    response = client.post(
        team_url(case),
        {
            "_action": "replace",
            "version": version,
            "role": "police_contact",
            "member": ebba.pk,
            "reason": "Byte.",
        },
    )
    assert "Användaren har inte den roll som platsen kräver." in response.content.decode()
    response = client.post(
        team_url(case),
        {"_action": "end", "version": version, "membership_id": 10**9, "reason": "x"},
    )
    assert (
        response.status_code == 200 and "Välj ett giltigt alternativ." in response.content.decode()
    )
    assert list(CaseMembership.objects.filter(case=case).values_list("pk", "valid_to")) == before
    assert CaseEvent.objects.filter(case=case).count() == events
    task.refresh_from_db()
    assert task.owner == users["anna.social"]
    assert flow_case.refresh().case.version == version


def test_a_stale_form_is_refused_and_changes_nothing(users, client, follow_up, ebba):
    """Concurrent edits: two coordinators post against the same version; the second is told
    the case changed and nothing of it is written."""
    flow_case, task = follow_up
    case = flow_case.case
    version = flow_case.refresh().case.version
    client.force_login(users["sara.samordnare"])
    first = _post_replace(client, case, version=version, member=ebba.pk, reason="Första.")
    assert first.status_code == 302
    olga = colleague(users, "anna.social", "olga.social")
    second = _post_replace(client, case, version=version, member=olga.pk, reason="Andra.")
    assert second.status_code == 200
    assert "Ärendet har ändrats av någon annan" in second.content.decode()
    assert lead_of(case) == ebba
    assert not CaseMembership.objects.filter(case=case, user=olga).exists()
    task.refresh_from_db()
    assert task.owner == ebba


@pytest.mark.parametrize(
    ("username", "role", "version", "error"),
    [
        ("lisa.skola", "social_worker", None, CaseDenied),
        ("sara.samordnare", "social_worker", 1, CaseConflict),
        ("sara.samordnare", "coordinator", None, ValidationError),
    ],
    ids=["stranger", "stale", "no-such-role"],
)
def test_the_service_refuses(users, follow_up, ebba, username, role, version, error):
    flow_case, _task = follow_up
    with pytest.raises(error):
        team_changes.add_team_member(
            user=users[username],
            case=flow_case.case,
            purpose=PURPOSE,
            member=ebba,
            role=role,
            reason="x",
            expected_version=version,
        )
    assert not CaseMembership.objects.filter(user=ebba).exists()
