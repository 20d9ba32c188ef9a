"""The GVI demo data: groups, members, a held call-in, notifications in every state and
a sanction, through the services and the flows; a second run adds nothing."""

from __future__ import annotations

import pytest
from viewflow.workflow.models import Task

from tests.workflows.conftest import BOTH_DATABASES
from workflows.gvi import models as gvi
from workflows.gvi.demo import seed_gvi

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def test_seed_gvi(users):
    assert seed_gvi() == 3
    assert seed_gvi() == 0
    assert gvi.Group.objects.count() == 3
    statuses = set(gvi.CustomNotification.objects.values_list("status", flat=True))
    assert statuses == {
        "requested",
        "legal_assessment",
        "approved",
        "not_reached",
        "delivered",
        "closed",
    }
    assert gvi.CallIn.objects.get().status == gvi.CallInStatus.HELD
    north = gvi.Group.objects.get(reference__endswith="0001")
    assert north.status == gvi.GroupStatus.SANCTION_ACTIVE
    assert gvi.GroupMember.objects.filter(minor_notice=True).exists()
    follow_up = Task.objects.filter(
        flow_task_type="HUMAN",
        finished__isnull=True,
        process__gvinotificationprocess__notification__status="delivered",
    ).get()
    assert follow_up.flow_task.name == "follow_up"
