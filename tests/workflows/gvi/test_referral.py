"""An accepted GVI offer of help reaches social services: the referral it opens (SIG or the
defector programme) starts a task in the named social-services participants' queue; the
participant who takes it up joins the referral case's team as a social worker (the case
services' team write), audited on both sides; refused to everyone else; a referral closed
meanwhile finishes the task cleanly; an overdue one is reminded of."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework import policy
from casework.models import CaseMembership, Organisation, Reminder, User
from casework.selectors.reminders import reminders_for
from casework.services import cases as case_services
from casework.services.transitions import Denied
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi import selectors, services
from workflows.gvi.demo import run_task
from workflows.sig.models import SigCase

pytestmark = f.IN_ENGLISH

PURPOSE = f.PURPOSE
with_denials = COMMITTED_DB


@pytest.fixture
def anna(users):
    f.name_participant(users["anna.social"])
    return users["anna.social"]


def team(case):
    return list(
        CaseMembership.objects.filter(case=case, valid_to__isnull=True)
        .order_by("valid_from")
        .values_list("user__username", "role")
    )


# --- The task is started, once per accepted offer -------------------------------------------


@pytest.mark.parametrize("programme", ["sig", "defector"])
def test_an_accepted_offer_starts_one_task_in_the_participants_queue(users, anna, programme):
    before = timezone.now()
    member = f.accepted_member(users, programme=programme)
    assert member.status == gvi.MemberStatus.OFFER_ACCEPTED
    (task,) = f.referral_notice_tasks(member)
    assert task.flow_task == gvi_flow.GviReferralNoticeFlow.take_up
    assert task.owner_permission == "workflows.take_part_in_gvi" and task.owner is None
    process = gvi.GviReferralNoticeProcess.objects.get(accepted_member=member)
    hours = datetime.timedelta(hours=48)
    assert before + hours <= process.due <= timezone.now() + hours
    flows = [gvi_flow.GviReferralNoticeFlow]
    assert task in Task.objects.queue(flows, anna)
    for other in ("per.polis", "sara.samordnare", "lisa.skola"):
        assert task not in Task.objects.queue(flows, users[other])
    assert gvi.GviEvent.objects.filter(object_id=member.pk, transition="referral_notice").exists()
    # Accepting again is refused by the member's state: still one task.
    with pytest.raises(ValidationError):
        services.accept_offer(
            user=users["sara.samordnare"],
            purpose=PURPOSE,
            member=member,
            programme=programme,
            reason="Igen.",
        )
    assert f.referral_notice_tasks(member).count() == 1
    assert gvi.GviReferralNoticeProcess.objects.count() == 1


def test_a_refused_referral_starts_no_task(users, anna):
    """Outside SIG's age range the referral is refused: nothing is written, no task."""
    f.refused_sig_referral(users)
    assert not gvi.GviReferralNoticeProcess.objects.exists()


def test_a_declined_offer_starts_no_task(users, anna):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    f.delivered_notification(users, member, response="declined")
    assert not gvi.GviReferralNoticeProcess.objects.exists()


# --- Taking it up ------------------------------------------------------------------------------


@pytest.mark.parametrize("programme", ["sig", "defector"])
def test_taking_it_up_puts_the_participant_on_the_team_audited(users, anna, programme):
    member = f.accepted_member(users, programme=programme)
    case = member.referral_case
    before = set(AccessEvent.objects.values_list("pk", flat=True))
    outcome = services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    assert outcome is services.TakeUp.JOINED
    assert ("anna.social", CaseMembership.Role.SOCIAL_WORKER) in team(case)
    new = AccessEvent.objects.exclude(pk__in=before)
    on_case = new.get(object_id=str(case.pk), action="change")
    assert on_case.person_id == case.person_id and on_case.fields == ["team"]
    assert on_case.details["role"] == "social_worker"
    assert on_case.details["source"] == f"gvi_member:{member.pk}"
    on_member = new.get(object_type="workflows.groupmember", action="change")
    assert on_member.details == {"referral_case": str(case.pk), "take_up": "joined"}
    assert on_member.person_id == member.person_id
    assert gvi.GviEvent.objects.filter(object_id=member.pk, transition="referral_joined").exists()
    # She may now open the case.

    assert policy.case_access(anna, case)


def test_the_coordinator_s_screening_keeps_the_social_worker(users, anna):
    """Screening names the lead: naming her makes her the lead (one membership, not two);
    naming someone else leaves her on the team as a social worker."""
    sara = users["sara.samordnare"]
    member = f.accepted_member(users)
    case = SigCase.objects.get(pk=member.referral_case_id)
    services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    case_services.add_member(
        user=sara, case=case, purpose=PURPOSE, member=anna, role=CaseMembership.Role.LEAD
    )
    assert [m for m in team(case) if m[0] == "anna.social"] == [("anna.social", "lead")]

    other = f.accepted_member(users)
    other_case = SigCase.objects.get(pk=other.referral_case_id)
    services.take_up_referral(user=anna, purpose=PURPOSE, member=other)
    case_services.add_member(
        user=sara, case=other_case, purpose=PURPOSE, member=sara, role=CaseMembership.Role.LEAD
    )
    assert ("anna.social", "social_worker") in team(other_case)
    assert ("sara.samordnare", "lead") in team(other_case)


def test_someone_already_on_the_team_keeps_their_role(users, anna):
    sara = users["sara.samordnare"]
    member = f.accepted_member(users)
    case = member.referral_case
    case_services.add_member(
        user=sara, case=case, purpose=PURPOSE, member=anna, role=CaseMembership.Role.LEAD
    )
    outcome = services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    assert outcome is services.TakeUp.ALREADY_ON_TEAM
    assert [m for m in team(case) if m[0] == "anna.social"] == [("anna.social", "lead")]


def test_a_referral_closed_before_it_is_taken_up(users, anna):
    sara = users["sara.samordnare"]
    member = f.accepted_member(users)
    case = SigCase.objects.get(pk=member.referral_case_id)
    case_services.close_case(user=sara, case=case, purpose=PURPOSE, reason="not_eligible")
    outcome = services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    assert outcome is services.TakeUp.CLOSED
    assert "anna.social" not in [username for username, _role in team(case)]
    assert gvi.GviEvent.objects.filter(object_id=member.pk, transition="referral_closed").exists()


def test_a_participant_of_another_office_cannot_take_it_up(users, anna):
    """The case is led by one social-services office; a participant of another would be on
    a team whose case they may not see: refused with a message, nothing written."""
    member = f.accepted_member(users)
    office = Organisation.objects.create(
        name="Socialtjänsten Annanstans", kind=Organisation.Kind.SOCIAL_SERVICES
    )
    anna.organisation = office
    anna.save(update_fields=["organisation"])
    with pytest.raises(ValidationError) as error:
        services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    assert "taken up by a social worker of that office" in " ".join(error.value.messages)
    assert "anna.social" not in [username for username, _role in team(member.referral_case)]


@with_denials
def test_everyone_but_a_named_participant_is_refused(users, anna):
    member = f.accepted_member(users)
    police_with_the_permission = users["per.polis"]
    f.name_participant(police_with_the_permission)
    refused = [
        police_with_the_permission,
        users["sara.samordnare"],
        users["alex.avhopp"],
        users["lisa.skola"],
        users["stig.styrgrupp"],
        users["adam.admin"],
    ]
    for user in refused:
        with pytest.raises(Denied):
            services.take_up_referral(user=user, purpose=PURPOSE, member=member)
        assert AccessEvent.objects.filter(
            action="access_denied", user_id=user.pk, details__operation="gvi:referral:take_up"
        ).exists()
    # A social worker who is not named a participant.
    anna.user_permissions.clear()
    anna = User.objects.get(pk=anna.pk)
    with pytest.raises(Denied):
        services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
    # Nobody joined (the referrer is not put on the team either: ADR 0012).
    assert CaseMembership.objects.filter(case=member.referral_case).count() == 0


# --- Deadlines -----------------------------------------------------------------------------------


def test_an_overdue_referral_is_reminded_of_and_on_the_overview(users, anna):
    member = f.accepted_member(users)
    process = gvi.GviReferralNoticeProcess.objects.get(accepted_member=member)
    (task,) = f.referral_notice_tasks(member)
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Reminder.objects.filter(kind=Reminder.Kind.GVI_REFERRAL_OVERDUE).exists()
    assert selectors.get_overview(user=anna, purpose=PURPOSE).overdue_referrals == []

    gvi.GviReferralNoticeProcess.objects.filter(pk=process.pk).update(
        due=timezone.now() - datetime.timedelta(hours=1)
    )
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reminders = Reminder.objects.filter(kind=Reminder.Kind.GVI_REFERRAL_OVERDUE)
    # Still in the queue: no one in particular; the participants and the coordinator see it.
    assert [(r.object_id, r.recipient_id, r.case_id) for r in reminders] == [
        (str(task.pk), None, member.referral_case_id)
    ]
    reminder = reminders.get()
    assert reminder in reminders_for(anna)
    assert reminder in reminders_for(users["sara.samordnare"])
    assert reminder not in reminders_for(users["per.polis"])
    assert reminder not in reminders_for(users["lisa.skola"])
    overview = selectors.get_overview(user=anna, purpose=PURPOSE)
    assert [p.pk for p in overview.overdue_referrals] == [process.pk]

    # Taken and done: no longer overdue.

    with run_task(
        gvi_flow.GviReferralNoticeFlow, process, gvi_flow.GviReferralNoticeFlow.take_up, anna
    ) as a:
        services.take_up_referral(user=anna, purpose=PURPOSE, member=member)
        a.execute()
    assert selectors.get_overview(user=anna, purpose=PURPOSE).overdue_referrals == []


def test_an_overdue_task_taken_reminds_its_owner(users, anna):
    member = f.accepted_member(users)
    process = gvi.GviReferralNoticeProcess.objects.get(accepted_member=member)
    (task,) = f.referral_notice_tasks(member)
    with task.activation() as activation:
        activation.assign(anna)
    gvi.GviReferralNoticeProcess.objects.filter(pk=process.pk).update(
        due=timezone.now() - datetime.timedelta(minutes=5)
    )
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reminder = Reminder.objects.get(kind=Reminder.Kind.GVI_REFERRAL_OVERDUE)
    assert reminder.recipient_id == anna.pk
