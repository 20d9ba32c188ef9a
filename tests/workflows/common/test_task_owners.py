"""Every task has an owner or a queue it belongs to (finding 6 of issue 14).

A step whose named assignee is missing (no police contact at screening, a police
contact or lead who left) used to land, unowned and without a queue permission, in
every case worker's queue: school staff could take it, could not do it, and nobody
could hand it back. Now such a task waits for the programme's coordinators, who
release and reassign tasks of their programme; the take-queue of a user holds only
tasks that user may do; screening refuses a team without a police contact.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework import roles
from casework.models import CaseMembership, User
from casework.services import cases as services
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import PURPOSE, FlowDriver, record_full_consent
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _assign_url(task):
    return task.flow_task.reverse("assign", args=[task.process_id, task.pk])


def _manage_url(task):
    return reverse("arenden:task_manage", args=[task.pk])


@pytest.fixture
def unowned_police_step(users):
    """A SIG case whose police contact left the team before the decisions: the police
    decision task is created without an owner."""
    driver = FlowDriver(users)
    flow_case = driver.build("consent")
    membership = CaseMembership.objects.get(
        case=flow_case.case, user=users["per.polis"], valid_to__isnull=True
    )
    flow_case.refresh()
    services.end_membership(
        user=users["sara.samordnare"],
        case=flow_case.case,
        purpose=PURPOSE,
        membership=membership,
        expected_version=flow_case.case.version,
    )
    record_full_consent(users, flow_case.refresh().case)
    driver._run(flow_case, "consent", "anna.social", {"_action": "complete"})
    task = flow_case.task("decide_police")
    assert task.owner_id is None and task.status == STATUS.NEW
    return flow_case, task


@pytest.mark.parametrize("username", ["lisa.skola", "fredrik.fritid", "anna.social", "per.polis"])
def test_unowned_step_is_in_no_case_workers_queue(users, client, unowned_police_step, username):
    """Finding 6: not listed in the queue, and it cannot be taken."""
    flow_case, task = unowned_police_step
    client.force_login(users[username])
    queue = client.get("/arenden/queue/")
    assert queue.status_code == 200
    assert flow_case.case.reference not in queue.content.decode()
    assert client.post(_assign_url(task)).status_code == 403
    task.refresh_from_db()
    assert task.owner_id is None


def test_unowned_step_waits_for_the_coordinators(users, client, unowned_police_step):
    flow_case, _task = unowned_police_step
    client.force_login(users["sara.samordnare"])
    page = client.get(reverse("arenden:tasks_to_manage"))
    assert page.status_code == 200
    assert flow_case.case.reference in page.content.decode()
    assert "Utan ägare" in page.content.decode()


def test_coordinator_reassigns_an_unowned_step(users, client, unowned_police_step):
    flow_case, task = unowned_police_step
    per, sara = users["per.polis"], users["sara.samordnare"]
    client.force_login(sara)
    page = client.get(_manage_url(task))
    assert page.status_code == 200
    assert "Polis" in page.content.decode()  # per.polis is offered
    response = client.post(_manage_url(task), {"_action": "reassign", "owner": per.pk})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.owner == per and task.status == STATUS.ASSIGNED
    # The police contact is on the team again, so the step can be done.
    assert CaseMembership.objects.filter(
        case=flow_case.case,
        user=per,
        role=CaseMembership.Role.POLICE_CONTACT,
        valid_to__isnull=True,
    ).exists()
    assert AccessEvent.objects.filter(
        user=sara, object_id=str(task.pk), details__task_action="reassign"
    ).exists()
    client.force_login(per)
    inbox = client.get("/arenden/inbox/")
    assert flow_case.case.reference in inbox.content.decode()


def test_reassign_to_someone_who_may_not_do_the_step_is_refused(users, client, unowned_police_step):
    """Bad input: a Swedish form error, nothing changed."""
    _flow_case, task = unowned_police_step
    client.force_login(users["sara.samordnare"])
    for owner in (users["lisa.skola"].pk, "x", "", 10**12):
        response = client.post(_manage_url(task), {"_action": "reassign", "owner": owner})
        assert response.status_code == 200, owner
        assert "Välj" in response.content.decode() or "giltigt" in response.content.decode()
    task.refresh_from_db()
    assert task.owner_id is None


@pytest.mark.parametrize(
    "username", ["lisa.skola", "anna.social", "per.polis", "alex.avhopp", "stig.styrgrupp"]
)
def test_only_the_programmes_coordinators_manage_tasks(
    users, client, unowned_police_step, username
):
    _flow_case, task = unowned_police_step
    client.force_login(users[username])
    assert client.get(_manage_url(task)).status_code == 403
    response = client.post(_manage_url(task), {"_action": "reassign", "owner": users[username].pk})
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.owner_id is None


@pytest.fixture
def second_social_worker(users):
    user = User.objects.create_user(
        username="britt.social",
        password="x-samverkan-test",
        first_name="Britt",
        last_name="Social",
        organisation=users["anna.social"].organisation,
    )
    user.groups.set([Group.objects.get(name=roles.SOCIAL_WORKER)])
    return user


def test_coordinator_releases_and_reassigns_the_task_of_a_lead_who_left(
    users, client, second_social_worker
):
    flow_case = FlowDriver(users).build("consent")
    task = flow_case.task("consent")
    anna = users["anna.social"]
    assert task.owner == anna
    User.objects.filter(pk=anna.pk).update(is_active=False)
    client.force_login(users["sara.samordnare"])
    released = client.post(_manage_url(task), {"_action": "release"})
    assert released.status_code == 302
    task.refresh_from_db()
    assert task.owner_id is None and task.status == STATUS.NEW
    response = client.post(
        _manage_url(task), {"_action": "reassign", "owner": second_social_worker.pk}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.owner == second_social_worker
    assert CaseMembership.objects.filter(
        case=flow_case.case,
        user=second_social_worker,
        role=CaseMembership.Role.LEAD,
        valid_to__isnull=True,
    ).exists()
    assert AccessEvent.objects.filter(
        object_id=str(task.pk), details__task_action="release"
    ).exists()


def test_a_lead_who_left_gets_no_new_tasks(users, second_social_worker):
    """A lead's step goes to the newest active lead, never to an account that was closed
    (the old assignee took the first lead found, active or not)."""
    from workflows.common.nodes import team_member

    flow_case = FlowDriver(users).build("consent")
    case = flow_case.refresh().case
    services.add_member(
        user=users["sara.samordnare"],
        case=case,
        purpose=PURPOSE,
        member=second_social_worker,
        role=CaseMembership.Role.LEAD,
    )
    anna = users["anna.social"]
    User.objects.filter(pk=anna.pk).update(is_active=False)
    assert team_member(case, CaseMembership.Role.LEAD) == second_social_worker
    User.objects.filter(pk=second_social_worker.pk).update(is_active=False)
    assert team_member(case, CaseMembership.Role.LEAD) is None


def test_screening_without_a_police_contact_is_refused(users, client):
    """The police decision needs a police contact: screening without one is a form error."""
    driver = FlowDriver(users)
    flow_case = driver.build("screen")
    task = flow_case.task("screen")
    client.force_login(users["sara.samordnare"])
    response = client.post(
        task.flow_task.reverse("execute", args=[task.process_id, task.pk]),
        {
            "_action": "screen",
            "version": flow_case.case.version,
            "outcome": "accept",
            "lead": users["anna.social"].pk,
        },
    )
    assert response.status_code == 200
    assert "Välj kontaktpolis" in response.content.decode()
    flow_case.refresh()
    assert flow_case.case.status == Status.SCREENING
    assert not CaseMembership.objects.filter(
        case=flow_case.case, role=CaseMembership.Role.LEAD
    ).exists()


def test_every_human_step_has_a_queue():
    """No step of any flow is open to everyone: each one names who may take it."""
    from casework.programmes import flow_viewsets

    for viewset in flow_viewsets():
        flow_class = viewset._flow_class
        for node in flow_class.instance.nodes():
            if getattr(node, "task_type", "") == "HUMAN" and hasattr(node, "_owner_permission"):
                assert node._owner_permission, (flow_class.__name__, node.name)
