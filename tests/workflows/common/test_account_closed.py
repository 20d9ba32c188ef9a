"""An account that is closed (deactivated, or its last case role ended) leaves every case
team it was on: its memberships end, its open tasks go back to their queues, and the
coordinators of each case are reminded — in the app, and by an e-mail without case data
where e-mail is set up (issue 17; ADR 0026)."""

from __future__ import annotations

import pytest
from django.core import mail
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework.models import CaseEvent, CaseMembership, Reminder
from tests.casework.test_four_eyes import account_form
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.fixture
def decide(users):
    """A SIG case awaiting both decisions: per.polis holds the police decision task."""
    flow_case = FlowDriver(users).build("decide")
    task = flow_case.task("decide_police")
    assert task.owner == users["per.polis"]
    return flow_case, task


def test_deactivating_an_account_ends_its_memberships_and_returns_its_tasks(
    users, client, settings, decide, django_capture_on_commit_callbacks
):
    flow_case, task = decide
    case, per, sara = flow_case.case, users["per.polis"], users["sara.samordnare"]
    settings.EMAIL_ENABLED = True
    sara.email = "sara@example.invalid"
    sara.save(update_fields=["email"])
    client.force_login(users["adam.admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/casework/user/{per.pk}/change/", account_form(per, is_active="")
        )
    assert response.status_code == 302

    assert not CaseMembership.objects.filter(case=case, user=per, valid_to__isnull=True).exists()
    task.refresh_from_db()
    assert task.owner_id is None and task.status == STATUS.NEW
    # The timeline and the access log show it (no reason: the administrator reads nothing).
    assert CaseEvent.objects.filter(
        case=case, kind=CaseEvent.Kind.TEAM, transition="account_closed"
    ).exists()
    event = AccessEvent.objects.get(
        action=AccessEvent.Action.CHANGE, object_id=str(case.pk), details__cause="deactivated"
    )
    assert event.details["ended"] == [per.pk]
    assert AccessEvent.objects.filter(
        object_id=str(task.pk), details__task_action="release", details__cause="deactivated"
    ).exists()
    # The coordinator is reminded, and e-mailed without case data.
    reminder = Reminder.objects.get(kind=Reminder.Kind.TEAM_MEMBER_LEFT, recipient=sara)
    assert reminder.case_id == case.pk and reminder.delivered_at is not None
    (message,) = [m for m in mail.outbox if m.to == [sara.email]]
    assert case.reference not in message.body and case.reference not in message.subject
    assert "Meddelandet innehåller inga ärendeuppgifter." in message.body
    client.force_login(sara)
    reminders = client.get("/arenden/paminnelser/")
    assert case.reference in reminders.content.decode()


def test_ending_the_last_case_role_does_the_same(users, client, decide):
    _flow_case, task = decide
    per = users["per.polis"]
    client.force_login(users["adam.admin"])
    response = client.post(f"/admin/casework/user/{per.pk}/change/", account_form(per, groups=[]))
    assert response.status_code == 302
    assert not CaseMembership.objects.filter(user=per, valid_to__isnull=True).exists()
    task.refresh_from_db()
    assert task.owner_id is None
    assert AccessEvent.objects.filter(details__cause="no_case_role").exists()


def test_an_ordinary_account_change_leaves_the_teams_alone(users, client, decide):
    _flow_case, task = decide
    per = users["per.polis"]
    client.force_login(users["adam.admin"])
    response = client.post(
        f"/admin/casework/user/{per.pk}/change/", account_form(per, first_name="Per-Erik")
    )
    assert response.status_code == 302
    assert CaseMembership.objects.filter(user=per, valid_to__isnull=True).exists()
    task.refresh_from_db()
    assert task.owner == per
    assert not Reminder.objects.filter(kind=Reminder.Kind.TEAM_MEMBER_LEFT).exists()
