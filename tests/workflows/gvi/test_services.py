"""GVI through the services: every guard of the state machines, the member → SIG link,
the notice of a member under 18, the follow-up deadlines, encryption and the audit."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework.models import Reminder
from casework.selectors.cases import get_case_page
from casework.services.transitions import Denied
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from workflows.defector.models import DefectorCase, DefectorProcess
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi import selectors, services
from workflows.sig.models import SigCase, SigProcess

pytestmark = f.IN_ENGLISH

PURPOSE = f.PURPOSE
# A refusal commits its access-denied event at once, through the audit connection.
with_denials = COMMITTED_DB


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- Groups and sanctions ------------------------------------------------------------------


def test_group_name_and_notes_are_encrypted_under_the_group_key(users):
    group, _ = f.group(users)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, notes, area FROM workflows_group WHERE id = %s", [group.pk])
        name, notes, area = cursor.fetchone()
    assert f.GROUP_NAME.encode() not in bytes(name)
    assert f.GROUP_NOTES.encode() not in bytes(notes)
    assert area == "vivalla_baronbackarna"
    page = selectors.get_group_page(user=users["sara.samordnare"], purpose=PURPOSE, group=group)
    assert page.texts == {"name": f.GROUP_NAME, "notes": f.GROUP_NOTES}


def test_mapping_needs_a_member(users):
    group = f.unnamed_group(users["per.polis"])
    with pytest.raises(ValidationError) as error:
        services.transition(user=users["per.polis"], obj=group, name="map", purpose=PURPOSE)
    assert "at least one member" in _messages(error.value)


def test_group_message_needs_a_member_with_the_message(users):
    group, _ = f.group(users, status=gvi.GroupStatus.MAPPED)
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["sara.samordnare"], obj=group, name="deliver_message", purpose=PURPOSE
        )
    assert "received the message" in _messages(error.value)


def test_sanctions_refused_without_prior_message(users):
    group, _ = f.group(users, status=gvi.GroupStatus.MAPPED)
    f.incident(users["per.polis"], group)
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.MAPPED  # only a monitored group moves
    assert not f.gvi.group_received_message(group)
    assert "sanctions come only after the message" in str(gvi.group_received_message.message)
    with pytest.raises(ValidationError):
        f.decide_sanctions(users, group, ("police_checks", f.police_org(users)))
    assert not gvi.SanctionDecision.objects.exists()


def test_sanctions_refused_without_incident_or_decision(users):
    group, _ = f.group(users, status=gvi.GroupStatus.MONITORED)
    assert not gvi.incident_linked(group)
    assert not gvi.sanction_decision_recorded(group)
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["sara.samordnare"], obj=group, name="decide_sanctions", purpose=PURPOSE
        )
    assert "current state" in _messages(error.value)


@with_denials
def test_sanction_path_recorded_by_the_owning_organisation_only(users):
    sara, per, anna = users["sara.samordnare"], users["per.polis"], users["anna.social"]
    f.name_participant(anna)
    group, _ = f.group(users, status=gvi.GroupStatus.INCIDENT_LINKED)
    assert group.status == gvi.GroupStatus.INCIDENT_LINKED
    with pytest.raises(ValidationError) as error:
        services.transition(user=sara, obj=group, name="decide_sanctions", purpose=PURPOSE)
    assert "Record the sanction decision" in _messages(error.value)
    decision = f.decide_sanctions(
        users, group, ("police_checks", f.police_org(users)), ("housing", f.social_org(users))
    )
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_DECIDED
    assert decision.decided_by == sara
    police_lever = decision.sanctions.get(lever="police_checks")
    housing = decision.sanctions.get(lever="housing")
    with pytest.raises(Denied):
        services.sanction_step(user=anna, purpose=PURPOSE, sanction=police_lever, name="decide")
    with pytest.raises(Denied):
        services.sanction_step(user=sara, purpose=PURPOSE, sanction=police_lever, name="decide")
    with pytest.raises(ValidationError):
        services.transition(user=sara, obj=group, name="activate_sanctions", purpose=PURPOSE)
    services.sanction_step(user=per, purpose=PURPOSE, sanction=police_lever, name="decide")
    services.sanction_step(user=per, purpose=PURPOSE, sanction=police_lever, name="execute")
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_ACTIVE
    services.sanction_step(user=per, purpose=PURPOSE, sanction=police_lever, name="report")
    with pytest.raises(ValidationError) as error:
        services.transition(user=sara, obj=group, name="end_sanctions", purpose=PURPOSE)
    assert "Every sanction lever" in _messages(error.value)
    for step in ("decide", "execute", "report"):
        services.sanction_step(user=anna, purpose=PURPOSE, sanction=housing, name=step)
    services.transition(user=sara, obj=group, name="end_sanctions", purpose=PURPOSE)
    services.transition(user=sara, obj=group, name="monitor", purpose=PURPOSE)
    services.transition(user=sara, obj=group, name="go_dormant", purpose=PURPOSE)
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.DORMANT
    assert group.open_decision() is None


@with_denials
def test_incident_recorded_by_police_only(users):
    group, _ = f.group(users)
    for username in ("sara.samordnare", "anna.social", "lisa.skola"):
        with pytest.raises(Denied):
            f.incident(users[username], group)
    with pytest.raises(ValidationError) as error:
        services.record_incident(
            user=users["per.polis"],
            purpose=PURPOSE,
            date=timezone.localdate() + datetime.timedelta(days=1),
            area="nowhere",
            kind="shooting",
            groups=[],
        )
    assert set(error.value.error_dict) == {"date", "area", "groups"}
    assert not gvi.Incident.objects.exists()


# --- Members ---------------------------------------------------------------------------------


def test_member_under_18_gives_social_services_a_task(users):
    anna = users["anna.social"]
    f.name_participant(anna)
    _, (minor,) = f.group(users, years=16)
    _, (adult,) = f.group(users, years=20)
    assert minor.minor_notice and not adult.minor_notice
    task = Task.objects.get(process__gviminornoticeprocess__member=minor, flow_task_type="HUMAN")
    assert task.owner_permission == "workflows.take_part_in_gvi"
    assert task in Task.objects.queue([gvi_flow.GviMinorNoticeFlow], anna)
    assert task not in Task.objects.queue([gvi_flow.GviMinorNoticeFlow], users["lisa.skola"])
    assert not Task.objects.filter(process__gviminornoticeprocess__member=adult).exists()


def test_member_selection_needs_a_mapped_group(users):
    _, (member,) = f.group(users)
    with pytest.raises(ValidationError) as error:
        services.transition(user=users["per.polis"], obj=member, name="select", purpose=PURPOSE)
    assert "mapped" in _messages(error.value)


def test_message_needs_a_call_in_or_a_notification(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    services.transition(user=users["per.polis"], obj=member, name="select", purpose=PURPOSE)
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["per.polis"], obj=member, name="deliver_message", purpose=PURPOSE
        )
    assert "neither attended" in _messages(error.value)


def test_accepting_help_opens_a_linked_sig_referral(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED, years=17)
    f.delivered_notification(
        users, member, response="accepted", programme="sig", reason="Vill lämna gruppen."
    )
    member.refresh_from_db()
    assert member.status == gvi.MemberStatus.OFFER_ACCEPTED
    case = SigCase.objects.get(pk=member.referral_case_id)
    assert case.person_id == member.person_id
    assert SigProcess.objects.get(case=case).task_set.filter(flow_task_type="HUMAN").exists()

    page = get_case_page(user=users["sara.samordnare"], purpose=PURPOSE, case=case)
    assert page.gvi_members == [str(member.pk)]
    member_page = selectors.get_member_page(
        user=users["sara.samordnare"], purpose=PURPOSE, member=member
    )
    assert member_page.member.referral_case_id == case.pk


def test_accepting_help_outside_the_sig_age_range_writes_nothing(users):
    n, member = f.refused_sig_referral(users)
    n.refresh_from_db()
    member.refresh_from_db()
    assert n.status == gvi.NotificationStatus.SCHEDULED
    assert member.status == gvi.MemberStatus.IDENTIFIED
    assert not SigCase.objects.exists()


def test_accepting_help_to_leave_opens_a_defector_referral_linked_to_the_member(users):
    """No age limit in the defector programme: a 30-year-old member who wants out is
    referred there; the case's flow starts and its page says it came from GVI."""

    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED, years=30)
    f.delivered_notification(users, member)
    member.refresh_from_db()
    case = services.accept_offer(
        user=users["sara.samordnare"],
        purpose=PURPOSE,
        member=member,
        programme="defector",
        reason="Hotad, vill lämna gruppen.",
    )
    member.refresh_from_db()
    assert member.status == gvi.MemberStatus.OFFER_ACCEPTED
    assert member.referral_case_id == case.pk
    defector_case = DefectorCase.objects.get(pk=case.pk)
    assert defector_case.person_id == member.person_id
    assert (
        DefectorProcess.objects.get(case=defector_case)
        .task_set.filter(flow_task_type="HUMAN")
        .exists()
    )
    # The referral put sara on no team (ADR 0012): the defector coordinator screens it.
    page = get_case_page(user=users["alex.avhopp"], purpose=PURPOSE, case=defector_case)
    assert page.gvi_members == [str(member.pk)]


# --- Custom notifications -------------------------------------------------------------------


@with_denials
def test_notification_needs_the_legal_assessment_first(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member, until=gvi.NotificationStatus.REQUESTED)
    with pytest.raises(ValidationError):
        services.approve_notification(
            user=users["sara.samordnare"], purpose=PURPOSE, notification=n, message="Sluta"
        )
    with pytest.raises(Denied):
        services.record_legal_assessment(
            user=users["sara.samordnare"],
            purpose=PURPOSE,
            notification=n,
            lawful=True,
            assessment="x",
        )
    services.transition(user=users["per.polis"], obj=n, name="begin_assessment", purpose=PURPOSE)
    with pytest.raises(ValidationError) as error:
        services.approve_notification(
            user=users["sara.samordnare"], purpose=PURPOSE, notification=n, message="Sluta"
        )
    assert "legal assessment" in _messages(error.value)
    # Delivery without an approved assessment is refused by the guard too.
    n.lawful = False
    n.legal_assessed_at = timezone.now()
    assert not gvi.legal_assessment_supports(n)


def test_not_supported_assessment_closes(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member, until=gvi.NotificationStatus.REQUESTED)
    services.record_legal_assessment(
        user=users["per.polis"], purpose=PURPOSE, notification=n, lawful=False, assessment="Nej"
    )
    with pytest.raises(ValidationError):
        services.approve_notification(
            user=users["sara.samordnare"], purpose=PURPOSE, notification=n, message="Sluta"
        )
    services.transition(user=users["per.polis"], obj=n, name="reject", purpose=PURPOSE)
    n.refresh_from_db()
    assert n.status == gvi.NotificationStatus.CLOSED
    assert n.close_reason == "not_lawful"


def test_delivery_team_needs_a_non_police_messenger(users):
    per = users["per.polis"]
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member, until=gvi.NotificationStatus.APPROVED)
    services.add_messenger(
        user=per, purpose=PURPOSE, notification=n, kind="police", description="Kommunpolis"
    )
    with pytest.raises(ValidationError) as error:
        services.schedule_notification(
            user=per,
            purpose=PURPOSE,
            notification=n,
            scheduled_for=timezone.now() + datetime.timedelta(days=1),
        )
    assert "not police" in _messages(error.value)
    n.refresh_from_db()
    assert n.status == gvi.NotificationStatus.APPROVED and n.scheduled_for is None


def test_delivery_needs_the_offer_and_response(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member)
    with pytest.raises(ValidationError) as error:
        f.deliver(users, n, offer_of_help="", response="maybe")
    assert error.value.error_dict.keys() == {"offer_of_help"}
    n.refresh_from_db()
    assert n.status == gvi.NotificationStatus.SCHEDULED
    assert not gvi.offer_recorded(n)


def test_retry_limit(users, settings):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "GVI_NOTIFICATION_MAX_ATTEMPTS": 2}
    per = users["per.polis"]
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member)
    later = timezone.now() + datetime.timedelta(days=2)
    services.transition(user=per, obj=n, name="not_reached", purpose=PURPOSE)
    services.schedule_notification(user=per, purpose=PURPOSE, notification=n, scheduled_for=later)
    services.transition(user=per, obj=n, name="not_reached", purpose=PURPOSE)
    assert n.attempts == 2
    with pytest.raises(ValidationError) as error:
        services.schedule_notification(
            user=per, purpose=PURPOSE, notification=n, scheduled_for=later
        )
    assert "limit of delivery attempts" in _messages(error.value)
    services.transition(user=per, obj=n, name="give_up", purpose=PURPOSE)
    n.refresh_from_db()
    assert (n.status, n.close_reason) == (gvi.NotificationStatus.CLOSED, "not_reached")


def test_notification_texts_are_encrypted_and_the_assessment_hidden_from_social(users):
    anna = users["anna.social"]
    f.name_participant(anna)
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.notification(users, member)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT legal_assessment, message FROM workflows_customnotification WHERE id = %s",
            [n.pk],
        )
        assessment, message = cursor.fetchone()
    assert b"Synt. bed" not in bytes(assessment) and b"Sluta." not in bytes(message)
    police_page = selectors.get_notification_page(
        user=users["per.polis"], purpose=PURPOSE, notification=n
    )
    assert police_page.texts["legal_assessment"] == "Synt. bedömning"
    social_page = selectors.get_notification_page(user=anna, purpose=PURPOSE, notification=n)
    assert "legal_assessment" not in social_page.texts
    assert social_page.texts["message"] == "Sluta."


def test_follow_up_deadline_and_overdue_reminder(users, settings):
    anna = users["anna.social"]
    f.name_participant(anna)
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    n = f.delivered_notification(users, member)
    assert n.follow_up_due - n.delivered_at == datetime.timedelta(hours=48)
    gvi.CustomNotification.objects.filter(pk=n.pk).update(
        follow_up_due=timezone.now() - datetime.timedelta(hours=1)
    )
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reminders = Reminder.objects.filter(kind=Reminder.Kind.GVI_FOLLOW_UP_OVERDUE)
    assert [(r.object_id, r.recipient_id) for r in reminders] == [(str(n.pk), n.police_officer_id)]
    overview = selectors.get_overview(user=anna, purpose=PURPOSE)
    assert n in overview.overdue
    services.record_notification_follow_up(user=anna, purpose=PURPOSE, notification=n, note="Ok")
    n.refresh_from_db()
    assert n.status == gvi.NotificationStatus.CLOSED


# --- Call-ins ----------------------------------------------------------------------------------


def _call_in(users, members):
    sara = users["sara.samordnare"]
    call_in = services.create_call_in(user=sara, purpose=PURPOSE, date=timezone.localdate())
    for m in members:
        services.add_attendee(user=sara, purpose=PURPOSE, call_in=call_in, member=m)
    return call_in


def _invited_call_in(users, members):
    """A call-in with ``members`` as its attendees, selected and invited."""
    sara = users["sara.samordnare"]
    call_in = _call_in(users, members)
    services.transition(user=sara, obj=call_in, name="select_attendees", purpose=PURPOSE)
    services.transition(user=sara, obj=call_in, name="invite", purpose=PURPOSE)
    return call_in


def test_call_in_guards_and_follow_up(users, settings):
    sara = users["sara.samordnare"]
    group, members = f.group(users, status=gvi.GroupStatus.MAPPED, members=2)
    empty = services.create_call_in(user=sara, purpose=PURPOSE, date=timezone.localdate())
    with pytest.raises(ValidationError):
        services.transition(user=sara, obj=empty, name="select_attendees", purpose=PURPOSE)
    with pytest.raises(ValidationError):
        services.add_attendee(user=sara, purpose=PURPOSE, call_in=empty, member=group)
    call_in = _invited_call_in(users, members)
    attendees = list(call_in.attendees.all())
    services.record_attendance(
        user=sara,
        purpose=PURPOSE,
        call_in=call_in,
        attendance={attendees[0].pk: True, attendees[1].pk: False},
    )
    services.set_speaker(user=sara, purpose=PURPOSE, call_in=call_in, role="moral", speaker="Imam")
    with pytest.raises(ValidationError) as error:
        services.hold_call_in(user=sara, purpose=PURPOSE, call_in=call_in)
    assert "speaker role" in _messages(error.value)
    services.set_speaker(
        user=sara, purpose=PURPOSE, call_in=call_in, role="law_enforcement", speaker="Åklagare"
    )
    services.set_speaker(
        user=sara, purpose=PURPOSE, call_in=call_in, role="offer_of_help", speaker="Socialtjänsten"
    )
    services.hold_call_in(user=sara, purpose=PURPOSE, call_in=call_in)
    came = call_in.attendees.get(pk=attendees[0].pk)
    assert came.follow_up_due == timezone.localdate() + datetime.timedelta(days=14)
    assert call_in.attendees.get(pk=attendees[1].pk).follow_up_due is None
    came.member.refresh_from_db()
    assert came.member.status == gvi.MemberStatus.MESSAGE_DELIVERED
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.MESSAGE_DELIVERED
    with pytest.raises(ValidationError):
        services.transition(user=sara, obj=call_in, name="complete_follow_up", purpose=PURPOSE)
    services.record_call_in_follow_up(user=sara, purpose=PURPOSE, attendee=came)
    services.transition(user=sara, obj=call_in, name="complete_follow_up", purpose=PURPOSE)
    call_in.refresh_from_db()
    assert call_in.status == gvi.CallInStatus.FOLLOWED_UP


def test_call_in_held_without_attendance_refused_and_cancel(users):
    sara = users["sara.samordnare"]
    _, members = f.group(users, status=gvi.GroupStatus.MAPPED)
    call_in = _invited_call_in(users, members)
    for role in gvi.SpeakerRole.values:
        services.set_speaker(user=sara, purpose=PURPOSE, call_in=call_in, role=role, speaker="X")
    with pytest.raises(ValidationError) as error:
        services.hold_call_in(user=sara, purpose=PURPOSE, call_in=call_in)
    assert "attendance" in _messages(error.value)
    services.transition(
        user=sara, obj=call_in, name="cancel", purpose=PURPOSE, cancel_reason="safety"
    )
    call_in.refresh_from_db()
    assert (call_in.status, call_in.cancel_reason) == ("cancelled", "safety")


def test_call_in_follow_up_overdue_reminder(users):
    sara = users["sara.samordnare"]
    _, members = f.group(users, status=gvi.GroupStatus.MAPPED)
    call_in = _invited_call_in(users, members)
    (attendee,) = call_in.attendees.all()
    services.record_attendance(
        user=sara, purpose=PURPOSE, call_in=call_in, attendance={attendee.pk: True}
    )
    for role in gvi.SpeakerRole.values:
        services.set_speaker(user=sara, purpose=PURPOSE, call_in=call_in, role=role, speaker="X")
    services.hold_call_in(user=sara, purpose=PURPOSE, call_in=call_in)
    gvi.CallInAttendee.objects.filter(pk=attendee.pk).update(
        follow_up_due=timezone.localdate() - datetime.timedelta(days=1)
    )
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Reminder.objects.filter(
        kind=Reminder.Kind.GVI_FOLLOW_UP_OVERDUE, object_id=str(attendee.pk)
    ).exists()


# --- Audit ---------------------------------------------------------------------------------


def test_every_transition_is_audited_and_on_the_timeline(users):
    group, (member,) = f.group(users, status=gvi.GroupStatus.MONITORED)
    transitions = AccessEvent.objects.filter(action="transition")
    assert transitions.filter(object_type="workflows.group", object_id=str(group.pk)).count() == 3
    member_events = transitions.filter(object_type="workflows.groupmember")
    assert member_events.count() == 2
    assert all(e.person_id == member.person_id for e in member_events)
    assert gvi.GviEvent.objects.filter(group=group, transition="monitor").exists()


@with_denials
def test_refusal_is_an_access_denied_event(users):
    with pytest.raises(Denied):
        f.unnamed_group(users["lisa.skola"])
    assert AccessEvent.objects.filter(action="access_denied", user=users["lisa.skola"]).exists()
