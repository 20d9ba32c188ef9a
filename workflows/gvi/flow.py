"""GVI's flows (viewflow): who does each step of a custom notification, a call-in, the
notice of a member under 18 and an accepted offer of help; their task views are
``workflows.gvi.task_views``."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.lock import select_for_update_lock
from viewflow.workflow.models import Process

from casework import policy
from workflows.common.nodes import Step, next_if, step
from workflows.gvi import task_views
from workflows.gvi.models import (
    CallInStatus,
    GroupMember,
    GviCallInProcess,
    GviMinorNoticeProcess,
    GviNotificationProcess,
    GviReferralNoticeProcess,
    NotificationStatus,
)

PERM_GVI_PARTICIPANT = "workflows.take_part_in_gvi"


def _police_officer(activation):
    return activation.process.notification.police_officer


def _notification_in(*states):
    return lambda activation: activation.process.notification.status in states


def _call_in_in(*states):
    return lambda activation: activation.process.call_in.status in states


def _police_performer(user, task) -> bool:
    """The notification's police steps: a police officer in GVI."""
    return policy.gvi_police(user)


def police_step(name: str, title, then):
    """A police step of a notification (``NotificationStepView``'s step ``name``): the
    notification's police officer does it, a GVI police officer may take it."""
    return step(
        task_views.NotificationStepView.as_view(step=name),
        title,
        then,
        assign=_police_officer,
        performer=_police_performer,
    )


def participant_step(view, title, node=Step):
    """A last step in the named social-services participants' queue."""
    return step(view, title, this.end, permission=PERM_GVI_PARTICIPANT, node=node)


class _GviFlow(flow.Flow):
    lock_impl = select_for_update_lock
    coordinator_permission = "casework.coordinate_cases"

    def has_view_permission(self, user, obj=None):
        """GVI participants see the flows (their inbox); no one else."""
        return bool(policy.gvi_access(user))

    def has_manage_permission(self, user, obj=None):
        return False

    def start_process(self, activation, **subject) -> Process:
        """Link the new process to the object it runs for (``start.run(call_in=…)``)."""
        for field, obj in subject.items():
            setattr(activation.process, field, obj)
        return activation.process


class GviNotificationFlow(_GviFlow):
    """Who does each step of a custom notification, in order."""

    process_class = GviNotificationProcess
    process_title = _("Custom notification")
    process_description = _("GVI: a one-to-one message with an offer of help.")
    process_summary_template = (
        "{{ process.notification.reference }} · {{ process.notification.get_status_display }}"
    )

    # Requested from a member's page (``workflows.gvi.services.request_notification``).
    start = flow.StartHandle(this.start_process).Next(this.assess)
    # The responsible police officer records the legal assessment first.
    assess = police_step("assess", _("Legal assessment"), this.after_assessment)
    after_assessment = next_if(_notification_in(NotificationStatus.LEGAL_ASSESSMENT), this.approve)
    # The coordinator approves the message.
    approve = step(
        task_views.NotificationStepView.as_view(step="approve"),
        _("Approve the message"),
        this.after_approval,
    )
    after_approval = next_if(_notification_in(NotificationStatus.APPROVED), this.deliver)
    # The police officer schedules the visit with the delivery team and delivers it;
    # not reached: a new visit, within the limit of attempts.
    deliver = police_step("deliver", _("Schedule and deliver"), this.after_delivery)
    after_delivery = next_if(
        _notification_in(NotificationStatus.DELIVERED, NotificationStatus.FOLLOW_UP), this.follow_up
    )
    # A named social-services participant (or the coordinator) follows up within the deadline.
    follow_up = participant_step(
        task_views.NotificationStepView.as_view(step="follow_up"), _("Follow up the notification")
    )
    end = flow.End()


class GviCallInFlow(_GviFlow):
    """Planning, holding and following up a call-in."""

    process_class = GviCallInProcess
    process_title = _("Call-in")
    process_description = _("GVI: a call-in meeting with the group members who matter.")
    process_summary_template = (
        "{{ process.call_in.reference }} · {{ process.call_in.get_status_display }}"
    )

    start = flow.StartHandle(this.start_process).Next(this.plan)
    # The coordinator selects attendees and speakers, invites, records attendance and holds it.
    plan = step(
        task_views.CallInStepView.as_view(step="plan"),
        _("Plan and hold the call-in"),
        this.after_meeting,
    )
    after_meeting = next_if(_call_in_in(CallInStatus.HELD), this.follow_up)
    # Follow-up contact with each attendee within the deadline.
    follow_up = step(
        task_views.CallInStepView.as_view(step="follow_up"), _("Follow up the attendees"), this.end
    )
    end = flow.End()


class GviMinorNoticeFlow(_GviFlow):
    """A member under 18: the named social-services participants get a task."""

    process_class = GviMinorNoticeProcess
    process_title = _("Group member under 18")
    process_description = _("GVI: social services are told of a member under 18.")
    process_summary_template = "{{ process.member.group.reference }}"

    start = flow.StartHandle(this.start_process).Next(this.acknowledge)
    acknowledge = participant_step(
        task_views.MinorNoticeView.as_view(), _("A member under 18 is registered")
    )
    end = flow.End()


def referral_take_up_due(start: datetime.datetime) -> datetime.datetime:
    """The promise of help is kept quickly: social services take the referral up within
    the notification follow-up time (``GVI_NOTIFICATION_FOLLOWUP_HOURS``, 48 h)."""
    return start + datetime.timedelta(hours=settings.SAMVERKAN["GVI_NOTIFICATION_FOLLOWUP_HOURS"])


class ParticipantStep(Step):
    """A step in the named social-services participants' queue. The permission alone does
    not make a participant (granted by mistake to a police officer it would): taking the
    task needs :func:`casework.policy.gvi_participant` too."""

    def performer(self, user, task) -> bool:
        perm = task.owner_permission
        return bool(perm) and user.has_perm(perm) and policy.gvi_participant(user)


class GviReferralNoticeFlow(_GviFlow):
    """An accepted offer of help: the referral it opened waits in the named social-services
    participants' queue; the one who takes it up joins the referral case's team."""

    process_class = GviReferralNoticeProcess
    process_title = _("Accepted offer of help")
    process_description = _(
        "GVI: social services take up the referral of a member who accepted the offer of help."
    )
    process_summary_template = (
        "{{ process.accepted_member.referral_case.reference }} · "
        "{{ process.accepted_member.group.reference }}"
    )

    start = flow.StartHandle(this.start_process).Next(this.take_up)
    take_up = participant_step(
        task_views.ReferralNoticeView.as_view(),
        _("Offer of help accepted: take up the referral"),
        node=ParticipantStep,
    )
    end = flow.End()

    def start_process(self, activation, member: GroupMember) -> Process:
        activation.process.accepted_member = member
        activation.process.due = referral_take_up_due(timezone.now())
        return activation.process

    def done_step_url(self, process, user) -> str | None:
        """Where a taken-up task leads back to: the referral case for its team, else the
        member's page for anyone in GVI."""
        member = process.accepted_member
        if member is None:
            return None
        case = member.referral_case
        if case is not None and policy.case_access(user, case):
            return reverse("arenden:case", kwargs={"case_id": case.pk})
        if policy.gvi_access(user):
            return reverse("gvi:member", args=[member.pk])
        return None
