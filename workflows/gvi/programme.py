"""GVI in the programme registry (``casework.programmes``).

GVI's processes work on a notification, a call-in or a group member, not on a
case: the task lists show those (``task_subjects``); only an accepted offer of
help has a case, the referral it opened.
"""

from __future__ import annotations

import datetime

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework import programmes
from casework.models import Reminder
from workflows.common.viewsets import ProgrammeFlowViewset
from workflows.gvi import api as gvi_api
from workflows.gvi import demo as gvi_demo
from workflows.gvi import statistics as gvi_statistics
from workflows.gvi.flow import (
    PERM_GVI_PARTICIPANT,
    GviCallInFlow,
    GviMinorNoticeFlow,
    GviNotificationFlow,
    GviReferralNoticeFlow,
)
from workflows.gvi.models import (
    CALL_IN_HELD_STATES,
    FOLLOW_UP_PENDING_STATES,
    CallInAttendee,
    CustomNotification,
    GroupMember,
    GviReferralNoticeProcess,
)

# The register extract (docs/adr/0025-register-extract.md): a member's rows.
EXTRACT_MODELS = (GroupMember, CustomNotification, CallInAttendee)


def extract_rows(*, person, organisation, cases) -> list:
    """The person's GVI rows that ``organisation`` recorded: group memberships its users
    added, custom notifications its users asked for or delivered, and the call-ins of
    those memberships (GVI has no case: the rows are the person's, not a case's)."""
    members = list(GroupMember.objects.filter(person=person, added_by__organisation=organisation))
    notifications = CustomNotification.objects.filter(member__person=person).filter(
        Q(requested_by__organisation=organisation) | Q(police_officer__organisation=organisation)
    )
    attendances = CallInAttendee.objects.filter(member__in=members).order_by("call_in__pk")
    return [*members, *notifications, *attendances]


def follow_ups_overdue(today: datetime.date) -> list[Reminder]:
    """GVI follow-ups past their deadline: a delivered custom notification not followed
    up within ``GVI_NOTIFICATION_FOLLOWUP_HOURS`` (the responsible police officer), and a
    call-in attendee not contacted within ``GVI_CALLIN_FOLLOWUP_DAYS`` (the coordinator
    who planned the call-in)."""
    notifications = CustomNotification.objects.filter(
        status__in=FOLLOW_UP_PENDING_STATES, follow_up_due__lt=timezone.now()
    ).values_list("pk", "police_officer_id")
    attendees = CallInAttendee.objects.filter(
        call_in__status__in=CALL_IN_HELD_STATES,
        attended=True,
        followed_up_at__isnull=True,
        follow_up_due__lt=today,
    ).values_list("pk", "call_in__created_by_id")
    return programmes.make_reminders(
        Reminder.Kind.GVI_FOLLOW_UP_OVERDUE,
        today,
        ((pk, None, recipient) for pk, recipient in [*notifications, *attendees]),
    )


def referrals_overdue(today: datetime.date) -> list[Reminder]:
    """Accepted GVI offers of help whose referral social services have not taken up by the
    deadline (``GVI_NOTIFICATION_FOLLOWUP_HOURS`` after the offer was accepted): the
    participant who took the task, or — still in the queue — the named participants and
    the coordinator (no recipient in particular). The reminder names the referral case."""
    overdue = (
        GviReferralNoticeProcess.objects.filter(due__lt=timezone.now(), finished__isnull=True)
        .exclude(status=STATUS.CANCELED)
        .values_list("pk", "accepted_member__referral_case_id")
    )
    cases = dict(overdue)
    tasks = Task.objects.filter(
        process_id__in=list(cases),
        flow_task=GviReferralNoticeFlow.take_up,
        status__in=[STATUS.NEW, STATUS.ASSIGNED],
    ).values_list("pk", "process_id", "owner_id")
    return programmes.make_reminders(
        Reminder.Kind.GVI_REFERRAL_OVERDUE,
        today,
        ((pk, cases.get(process), owner) for pk, process, owner in tasks),
    )


def task_cases(process_ids) -> dict:
    """An accepted offer's task works on the referral case it opened."""
    return {
        process: case
        for process, case in GviReferralNoticeProcess.objects.filter(
            pk__in=process_ids, accepted_member__referral_case__isnull=False
        ).values_list("pk", "accepted_member__referral_case_id")
    }


def _own_page(url_name: str):
    """A notification or call-in: its number and state, linked to its page."""
    return lambda subject: (
        reverse(url_name, args=[subject.pk]),
        subject.reference,
        subject.get_status_display(),
    )


def _member(subject):
    """A member: their group's number and their state (no name: nothing is decrypted)."""
    return (
        reverse("gvi:member", args=[subject.pk]),
        subject.group.reference,
        subject.get_status_display(),
    )


def _accepted_member(subject):
    """An accepted offer of help: the referral's number and the group's."""
    case = subject.referral_case
    return (
        reverse("gvi:member", args=[subject.pk]),
        case.reference if case else "—",
        subject.group.reference,
    )


TASK_SUBJECTS = (
    programmes.TaskSubject("notification", ("notification",), _own_page("gvi:notification")),
    programmes.TaskSubject("call_in", ("call_in",), _own_page("gvi:call_in")),
    programmes.TaskSubject("member", ("member__group",), _member),
    programmes.TaskSubject(
        "accepted_member",
        ("accepted_member__group", "accepted_member__referral_case"),
        _accepted_member,
    ),
)


def register() -> None:
    programmes.register(
        programmes.Programme(
            code="gvi",
            label=_("GVI"),
            menu_position=40,
            flow_viewsets=lambda: [
                ProgrammeFlowViewset(flow_class, icon="campaign")
                for flow_class in (
                    GviNotificationFlow,
                    GviCallInFlow,
                    GviMinorNoticeFlow,
                    GviReferralNoticeFlow,
                )
            ],
            api_urls=gvi_api.urls,
            task_subjects=TASK_SUBJECTS,
            task_cases=task_cases,
            reminders=(
                programmes.ReminderSource(Reminder.Kind.GVI_FOLLOW_UP_OVERDUE, follow_ups_overdue),
                programmes.ReminderSource(Reminder.Kind.GVI_REFERRAL_OVERDUE, referrals_overdue),
            ),
            seed_demo=lambda stdout: gvi_demo.seed_gvi(),
            statistics=lambda: gvi_statistics.STATISTICS,
            participant_permission=PERM_GVI_PARTICIPANT,
            extract_rows=extract_rows,
            extract_models=EXTRACT_MODELS,
        )
    )
