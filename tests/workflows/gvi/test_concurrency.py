"""Two agencies' users executing the same sanction lever at once: one wins, the other is
told the record changed; the group's sanctions become active exactly once."""

from __future__ import annotations

import threading

from audit.models import AccessEvent
from casework.services.transitions import Conflict
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from tests.workflows.racing import race
from workflows.gvi import models as gvi
from workflows.gvi import services

pytestmark = COMMITTED_DB


def test_concurrent_execution_of_one_lever(users):
    per = users["per.polis"]
    group, _ = f.group(users, status=gvi.GroupStatus.INCIDENT_LINKED)
    decision = f.decide_sanctions(users, group, ("police_checks", f.police_org(users)))
    lever = decision.sanctions.get()
    services.sanction_step(user=per, purpose=f.PURPOSE, sanction=lever, name="decide")
    lever.refresh_from_db()
    version = lever.version
    barrier = threading.Barrier(2, timeout=30)

    def run():
        mine = gvi.Sanction.objects.get(pk=lever.pk)  # each request its own copy
        barrier.wait()
        services.sanction_step(
            user=per,
            purpose=f.PURPOSE,
            sanction=mine,
            name="execute",
            expected_version=version,
        )
        return "ok"

    results = race(a=run, b=run)
    outcomes = sorted(type(r).__name__ if not isinstance(r, str) else r for r in results.values())
    assert outcomes == [Conflict.__name__, "ok"]
    lever.refresh_from_db()
    group.refresh_from_db()
    assert lever.status == gvi.SanctionStatus.EXECUTED
    assert group.status == gvi.GroupStatus.SANCTION_ACTIVE
    assert (
        AccessEvent.objects.filter(
            action="transition", object_id=str(lever.pk), details__transition="execute"
        ).count()
        == 1
    )
