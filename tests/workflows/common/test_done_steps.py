"""A step posted again once it is done leads back to the case (not a bare 403)."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AccessEvent
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver, record_full_consent

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _done_consent_task(users):
    flow_case = FlowDriver(users).build("consent")
    record_full_consent(users, flow_case.case)
    flow_case.refresh()
    task = flow_case.task("consent")
    url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
    client = Client()
    client.force_login(users["anna.social"])
    response = client.post(url, {"_action": "complete", "version": flow_case.case.version})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == "DONE"
    return flow_case, url


def test_a_done_step_posted_again_takes_its_user_to_the_case_with_a_message(users):
    flow_case, url = _done_consent_task(users)
    version = flow_case.refresh().case.version
    client = Client()
    client.force_login(users["anna.social"])
    response = client.post(url, {"_action": "complete", "version": version}, follow=True)
    assert response.redirect_chain[-1][0] == f"/arenden/fall/{flow_case.case.pk}/"
    assert "Steget är redan gjort." in response.content.decode()
    assert flow_case.refresh().case.version == version  # nothing done twice


@pytest.mark.parametrize("username", ["lisa.skola", "stig.styrgrupp", "greta.granskare"])
def test_a_done_step_of_a_case_the_user_may_not_see_is_still_403(users, username):
    _flow_case, url = _done_consent_task(users)
    client = Client()
    client.force_login(users[username])
    denied_before = AccessEvent.objects.filter(action="access_denied").count()
    response = client.post(url, {"_action": "complete"})
    assert response.status_code == 403
    assert AccessEvent.objects.filter(action="access_denied").count() > denied_before
