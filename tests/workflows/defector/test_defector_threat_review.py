"""The threat review: the reassessment is a task on its date, a lowering an approval task.

Time does not move in tests: "the review date has come" is an assessment whose next
review date (and the review timer's due moment) is set back with a queryset update,
then ``send_reminders`` fires the due timer (as cron does).
"""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework.models import CaseMembership
from casework.services import cases as case_services
from tests.conftest import demo_users
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import PURPOSE, assessment, defector_case, reassess_data
from workflows.defector import models as defector
from workflows.defector import services
from workflows.defector.flow import DefectorFlow, ThreatReviewFlow, reassessment_time
from workflows.defector.models import DefectorProcess, Level, Status, ThreatAssessment

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

# Everyone with a role on cases (not the steering group, the auditor, data protection or the
# administrator).
CASE_ROLES = demo_users(but={"stig.styrgrupp", "greta.granskare", "dina.dataskydd", "adam.admin"})
REVIEW = ThreatReviewFlow


def _tasks(case, node):
    processes = DefectorProcess.objects.filter(case=case, flow_class=node.flow_class)
    return Task.objects.filter(process_id__in=processes.values("pk"), flow_task=node)


def _open(case, node):
    return _tasks(case, node).exclude(status__in=[STATUS.DONE, STATUS.CANCELED])


def _url(task, name):
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


def _review_date_came(case, *, days_ago: int = 1) -> None:
    """Time travel: the next review date of the assessment in force, and the review
    timer's due moment, ``days_ago`` back; then cron runs ``send_reminders``."""
    ThreatAssessment.objects.filter(case=case, state=ThreatAssessment.State.IN_FORCE).update(
        next_review=timezone.localdate() - datetime.timedelta(days=days_ago)
    )
    timer = _open(case, REVIEW.wait_for_reassessment).get()
    with timer.activation() as activation:
        scheduled = reassessment_time(activation)
    Task.objects.filter(pk=timer.pk).update(scheduled=scheduled)
    call_command("send_reminders", stdout=io.StringIO())
    case.refresh_from_db()


def _post_task(client, user, task, data):
    client.force_login(user)
    return client.post(_url(task, "execute"), data)


def test_the_first_assessment_starts_a_timer_on_its_next_review_date(users):
    case = defector_case(users, "activate")
    current = defector.current_assessment(case)
    timer = _open(case, REVIEW.wait_for_reassessment).get()
    assert timer.status == STATUS.SCHEDULED
    assert timezone.localtime(timer.scheduled).date() == current.next_review
    call_command("send_reminders", stdout=io.StringIO())
    assert not _open(case, REVIEW.reassess).exists()
    # Due from the review date itself; overdue (the list, the reminder) from the day after.
    type(current).objects.filter(pk=current.pk).update(next_review=timezone.localdate())
    assert defector.reassessment_falls_due(case)
    assert not defector.reassessment_due(case)


def test_the_reassessment_task_appears_on_the_review_date_for_the_police_contact(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    assert task.status == STATUS.ASSIGNED
    assert task.owner == users["per.polis"]
    client.force_login(users["per.polis"])
    inbox = client.get("/arenden/inbox/").content.decode()
    assert _url(task, "index") in inbox
    assert case.reference in inbox
    page = client.get(f"/arenden/fall/{case.pk}/").content.decode()
    assert _url(task, "index") in page
    # Nobody else has it in their inbox.
    client.force_login(users["maja.avhopp"])
    assert _url(task, "index") not in client.get("/arenden/inbox/").content.decode()


def test_only_the_police_contact_officer_does_the_assigned_reassessment(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    for username in CASE_ROLES:
        client.force_login(users[username])
        status = client.get(_url(task, "execute")).status_code
        assert (status == 200) == (username == "per.polis"), (username, status)


def _police_contact_leaves_the_team(users, case) -> None:
    """alex.avhopp ends the police contact's membership of ``case``."""
    case_services.end_membership(
        user=users["alex.avhopp"],
        case=case,
        purpose=PURPOSE,
        membership=case.memberships.get(role=CaseMembership.Role.POLICE_CONTACT),
        expected_version=None,
    )


def test_without_a_police_contact_only_a_police_coordinator_takes_it_from_the_queue(users, client):
    case = defector_case(users, "activate")
    _police_contact_leaves_the_team(users, case)
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    assert task.owner_id is None and task.status == STATUS.NEW
    for username in CASE_ROLES:
        client.force_login(users[username])
        response = client.post(_url(task, "assign"))
        task.refresh_from_db()
        taken = task.owner_id == users[username].pk
        assert taken == (username == "maja.avhopp"), (username, response.status_code)
        if taken:
            Task.objects.filter(pk=task.pk).update(owner=None, status=STATUS.NEW)
            task.refresh_from_db()
    # The police coordinator takes it and records the reassessment.
    client.force_login(users["maja.avhopp"])
    client.post(_url(task, "assign"))
    response = _post_task(client, users["maja.avhopp"], task, reassess_data(case, Level.LOW))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == STATUS.DONE


def test_completing_the_task_records_the_assessment_and_waits_for_the_next_date(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    before = defector.current_assessment(case)
    task = _open(case, REVIEW.reassess).get()
    next_review = timezone.localdate() + datetime.timedelta(days=45)
    data = reassess_data(case, Level.LOW, next_review=next_review)
    response = _post_task(client, users["per.polis"], task, data)
    assert response.status_code == 302
    assert response.url == f"/arenden/fall/{case.pk}/"
    task.refresh_from_db()
    assert task.status == STATUS.DONE
    current = defector.current_assessment(case)
    assert current.pk != before.pk and current.next_review == next_review
    assert current.assessed_by == users["per.polis"]
    case.refresh_from_db()
    assert case.status == Status.ACTIVE
    # The cycle goes on: a new timer on the new date, no open reassessment.
    timer = _open(case, REVIEW.wait_for_reassessment).get()
    assert timezone.localtime(timer.scheduled).date() == next_review
    assert not _open(case, REVIEW.reassess).exists()
    # Posting the done step again leads back to the case.
    response = _post_task(client, users["per.polis"], task, data)
    assert response.status_code == 302
    assert response.url == f"/arenden/fall/{case.pk}/"
    assert defector.current_assessment(case).pk == current.pk


def test_bad_input_on_the_reassessment_task_writes_nothing(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    data = reassess_data(case, "extreme")
    response = _post_task(client, users["per.polis"], task, data)
    assert response.status_code == 200
    assert "level" in response.context["forms"]["reassess"].errors
    assert case.assessments.count() == 1
    task.refresh_from_db()
    assert task.status == STATUS.ASSIGNED


def _police_contact_reassesses_on_the_task(users, client, case, level) -> None:
    """The review date comes; per.polis posts ``level`` in the reassessment task."""
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    response = _post_task(client, users["per.polis"], task, reassess_data(case, level))
    assert response.status_code == 302
    case.refresh_from_db()


def test_a_raise_on_the_task_hands_over_and_the_cycle_goes_on_with_the_police(users, client):
    case = defector_case(users, "activate")
    _police_contact_reassesses_on_the_task(users, client, case, Level.HIGH)
    assert case.status == Status.HANDED_OVER_REGIONAL
    # The local process stopped; the threat review waits for the new date.
    assert not DefectorProcess.objects.filter(
        case=case, flow_class=DefectorFlow, finished__isnull=True
    ).exists()
    assert _open(case, REVIEW.wait_for_reassessment).exists()


def test_a_lowering_on_the_task_needs_a_police_coordinators_approval_task(users, client):
    case = defector_case(users, "assess", level=Level.ELEVATED)
    assert case.status == Status.HANDED_OVER_REGIONAL
    _police_contact_reassesses_on_the_task(users, client, case, Level.LOW)
    assert case.status == Status.HANDED_OVER_REGIONAL
    assert defector.pending_lowering(case).level == Level.LOW
    approval = _open(case, REVIEW.approve_lowering).get()
    assert approval.owner_id is None
    # Only a police defector coordinator who did not assess it may take it.
    for username in CASE_ROLES:
        client.force_login(users[username])
        client.post(_url(approval, "assign"))
        approval.refresh_from_db()
        taken = approval.owner_id == users[username].pk
        assert taken == (username == "maja.avhopp"), username

    def decide(outcome):
        data = {"_action": "lowering", "outcome": outcome, "version": case.version}
        return _post_task(client, users["maja.avhopp"], approval, data)

    # A rejection needs its reason (a form error, nothing written).
    assert decide("reject").status_code == 200
    assert defector.pending_lowering(case) is not None
    assert decide("approve").status_code == 302
    case.refresh_from_db()
    assert case.status == Status.LOCAL_INTAKE
    assert defector.current_assessment(case).level == Level.LOW
    approval.refresh_from_db()
    assert approval.status == STATUS.DONE
    # Back in the local programme: a new local intake; the review waits for the new date.
    assert _open(case, DefectorFlow.intake).exists()
    assert _open(case, REVIEW.wait_for_reassessment).exists()


def test_the_assessor_of_a_lowering_cannot_take_its_approval(users, client):
    case = defector_case(users, "assess", level=Level.HIGH)
    maja = users["maja.avhopp"]
    services.reassess_threat(user=maja, case=case, purpose=PURPOSE, **assessment(Level.LOW))
    approval = _open(case, REVIEW.approve_lowering).get()
    client.force_login(maja)
    client.post(_url(approval, "assign"))
    approval.refresh_from_db()
    assert approval.owner_id is None


def test_the_open_task_disappears_when_the_case_is_handed_over(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    # A raise from the case page (a new threat does not wait for the task) hands over.
    client.force_login(users["maja.avhopp"])
    response = client.post(f"/arenden/fall/{case.pk}/", reassess_data(case, Level.HIGH))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.HANDED_OVER_REGIONAL
    task.refresh_from_db()
    assert task.status == STATUS.CANCELED
    assert not _open(case, REVIEW.reassess).exists()
    timer = _open(case, REVIEW.wait_for_reassessment).get()
    assert timezone.localtime(timer.scheduled).date() == (
        defector.current_assessment(case).next_review
    )
    # The police contact officer who had the task is sent back to the case.
    response = _post_task(client, users["per.polis"], task, reassess_data(case, Level.HIGH))
    assert response.status_code == 302
    assert response.url == f"/arenden/fall/{case.pk}/"
    assert case.assessments.count() == 2


def test_the_open_task_disappears_when_the_case_is_closed(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    client.force_login(users["alex.avhopp"])
    response = client.post(
        f"/arenden/fall/{case.pk}/",
        {"_action": "close", "close_reason": "moved", "version": case.version},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == STATUS.CANCELED
    assert not DefectorProcess.objects.filter(case=case, finished__isnull=True).exists()
    # Nothing fires for a closed case.
    call_command("send_reminders", stdout=io.StringIO())
    assert not _open(case, REVIEW.reassess).exists()


def test_closing_at_the_review_step_ends_the_threat_review(users, client):
    case = defector_case(users, "begin_review")
    assert _open(case, REVIEW.wait_for_reassessment).exists()
    task = _open(case, DefectorFlow.review).get()
    data = {
        "_action": "review",
        "outcome": "close",
        "close_reason": "completed",
        "version": case.version,
    }
    response = _post_task(client, users["anna.social"], task, data)
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    assert not _open(case, REVIEW.wait_for_reassessment).exists()


def test_a_case_page_reassessment_moves_the_timer_to_the_new_date(users, client):
    case = defector_case(users, "activate")
    sooner = timezone.localdate() + datetime.timedelta(days=5)
    client.force_login(users["per.polis"])
    response = client.post(
        f"/arenden/fall/{case.pk}/", reassess_data(case, Level.LOW, next_review=sooner)
    )
    assert response.status_code == 302
    timers = _open(case, REVIEW.wait_for_reassessment)
    assert timers.count() == 1
    assert timezone.localtime(timers.get().scheduled).date() == sooner


def test_a_police_coordinator_releases_a_task_whose_owner_left_the_team(users, client):
    case = defector_case(users, "activate")
    _review_date_came(case)
    task = _open(case, REVIEW.reassess).get()
    assert task.owner == users["per.polis"]
    _police_contact_leaves_the_team(users, case)
    client.force_login(users["per.polis"])
    assert client.get(_url(task, "execute")).status_code in (403, 404)
    # A social-services coordinator may not release it; a police coordinator may.
    for username, released in (("alex.avhopp", False), ("maja.avhopp", True)):
        client.force_login(users[username])
        client.post(_url(task, "unassign"))
        task.refresh_from_db()
        assert (task.owner_id is None) == released, username
    client.post(_url(task, "assign"))
    task.refresh_from_db()
    assert task.owner == users["maja.avhopp"]
