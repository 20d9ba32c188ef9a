"""The programme registry (``casework.programmes``): every programme registered, and the
core's loops (reminders, demo data, statistics, the task lists) reach each of them."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from viewflow.workflow.models import Task

from casework.models import Reminder
from tests.casework.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _age_every_open_task(days: int = 30) -> None:
    Task.objects.filter(status__in=["NEW", "ASSIGNED"]).update(
        created=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    )


def _task_reminders() -> dict[int, object]:
    return {
        int(r.object_id): r.case_id
        for r in Reminder.objects.filter(kind=Reminder.Kind.TASK_OVERDUE)
    }


def test_an_overdue_sspf_task_is_reminded_with_its_case(demo):
    from tests.workflows import sspf_factories as f
    from workflows.sspf import SspfProcess

    case = f.SspfFlowDriver(demo).build("assess:new")
    process = SspfProcess.objects.get(case=case)
    (task,) = process.task_set.filter(flow_task_type="HUMAN", status__in=["NEW", "ASSIGNED"])
    _age_every_open_task()
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _task_reminders()[task.pk] == case.pk


def test_an_overdue_gvi_referral_task_is_reminded_with_its_referral_case(demo):
    from tests.workflows import gvi_factories as f
    from workflows import gvi

    _, (member,) = f.group(demo, status=gvi.GroupStatus.MAPPED, years=19)
    f.delivered_notification(
        demo, member, response="accepted", programme="sig", reason="Vill lämna gruppen."
    )
    member.refresh_from_db()
    process = gvi.GviReferralNoticeProcess.objects.get(accepted_member=member)
    (task,) = process.task_set.filter(flow_task_type="HUMAN", status__in=["NEW", "ASSIGNED"])
    _age_every_open_task()
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert member.referral_case_id is not None
    assert _task_reminders()[task.pk] == member.referral_case_id
