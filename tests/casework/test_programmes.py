"""The programme registry (``casework.programmes``): every programme registered, and the
core's loops (reminders, demo data, statistics, the task lists) reach each of them."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import translation
from viewflow.workflow.models import Task

from casework import programmes
from casework.models import Reminder
from tests.casework.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

PROGRAMMES = ["sig", "sspf", "gvi", "defector"]


def test_every_programme_registers_itself_once():
    assert [p.code for p in programmes.registered()] == PROGRAMMES
    assert programmes.get("sspf").police_take_part is not None
    with pytest.raises(ValueError, match="already registered"):
        programmes.register(programmes.Programme(code="sig", label="SIG"))


def test_the_task_inbox_lists_the_flows_of_every_programme():
    from casework.views import CaseworkApp
    from config.urls import site

    (app,) = [viewset for viewset in site.viewsets if isinstance(viewset, CaseworkApp)]
    assert app.flow_classes == programmes.flow_classes()
    modules = {flow_class.__module__ for flow_class in app.flow_classes}
    # Each programme's flows live in its own package's flow module (ADR 0020).
    assert modules == {f"workflows.{code}.flow" for code in PROGRAMMES}
    # The menu's order is unchanged: SIG, the defector programme, SSPF, GVI.
    assert [f.__name__ for f in app.flow_classes][:4] == [
        "SigFlow",
        "DefectorFlow",
        "ThreatReviewFlow",
        "SspfFlow",
    ]


def test_the_statistics_describe_every_programme_in_their_order():
    from casework.statistics.registry import programmes as statistics

    assert list(statistics()) == PROGRAMMES


def test_send_reminders_lists_every_kind_in_order(demo):
    """Every kind but those recorded when something happens (``Reminder.RECORDED_AT_ONCE``)."""
    out = io.StringIO()
    with translation.override("en"):
        call_command("send_reminders", stdout=out)
        # Recorded when something happens (an alert, an account closed), not by the command.
        labels = [
            str(kind.label) for kind in Reminder.Kind if kind not in Reminder.RECORDED_AT_ONCE
        ]
    shown = [line.partition(":")[0] for line in out.getvalue().splitlines()]
    assert [label for label in shown if label in labels] == labels


@pytest.fixture
def extra_programme(monkeypatch):
    """A programme of the test's own, registered for the test only."""
    calls = []
    programme = programmes.Programme(
        code="test",
        label="Test",
        reminders=(
            programmes.ReminderSource(
                Reminder.Kind.TASK_OVERDUE, lambda today: calls.append(("reminders", today)) or []
            ),
        ),
        seed_demo=lambda stdout: calls.append(("seed_demo", None)),
        task_cases=lambda process_ids: calls.append(("task_cases", set(process_ids))) or {},
    )
    monkeypatch.setitem(programmes._registry, "test", programme)
    return calls


def test_the_core_loops_reach_a_programme_it_does_not_know(
    demo, extra_programme, settings, monkeypatch
):
    from tests.workflows.sspf import factories as f

    f.SspfFlowDriver(demo).raise_concern()
    _age_every_open_task()
    call_command("send_reminders", stdout=io.StringIO())
    # The demo data of this programme alone (the others' take long to build).
    monkeypatch.setattr(programmes, "_registry", {"test": programmes.get("test")})
    settings.DEMO_SIG_CASES = True
    call_command("seed_demo", "--persons", "0", stdout=io.StringIO())
    kinds = [kind for kind, _arg in extra_programme]
    assert kinds.count("reminders") == 1 and kinds.count("seed_demo") == 1
    (process_ids,) = [arg for kind, arg in extra_programme if kind == "task_cases"]
    assert process_ids  # the open SSPF task's process


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
    from tests.workflows.sspf import factories as f
    from workflows.sspf.models import SspfProcess

    case = f.SspfFlowDriver(demo).build("assess:new")
    process = SspfProcess.objects.get(case=case)
    (task,) = process.task_set.filter(flow_task_type="HUMAN", status__in=["NEW", "ASSIGNED"])
    _age_every_open_task()
    call_command("send_reminders", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _task_reminders()[task.pk] == case.pk


def test_an_overdue_gvi_referral_task_is_reminded_with_its_referral_case(demo):
    from tests.workflows.gvi import factories as f
    from workflows.gvi import models as gvi

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
