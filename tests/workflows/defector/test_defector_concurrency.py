"""Two police officers reassess the same defector case at once, on PostgreSQL.

Real threads with their own connections commit for real; a barrier in front of
the first lock (the case's processes, then its row) makes the race certain.
Exactly one reassessment lands (and routes the case); the other gets
``CaseConflict`` and writes nothing.
"""

from __future__ import annotations

from casework.services.cases import CaseConflict
from tests.conftest import COMMITTED_DB
from tests.workflows.defector.factories import PURPOSE, assessment, defector_case
from tests.workflows.racing import lock_meeting, race
from workflows.defector import models as defector
from workflows.defector import services
from workflows.defector.flow import ThreatReviewFlow
from workflows.defector.models import (
    DefectorCase,
    DefectorProcess,
    Level,
    Status,
    ThreatAssessment,
)

pytestmark = COMMITTED_DB


def test_two_reassessments_race(users, monkeypatch):
    case = defector_case(users, "activate")
    version = case.version
    # The first lock a reassessment takes: the case's open processes (then the case row).
    lock_meeting(monkeypatch, services, "_lock_processes")(2)

    def reassess(username, level):
        def run():
            mine = DefectorCase.objects.get(pk=case.pk)
            return services.reassess_threat(
                user=users[username],
                case=mine,
                purpose=PURPOSE,
                expected_version=version,
                **assessment(level),
            )

        return run

    results = race(
        per=reassess("per.polis", Level.HIGH), maja=reassess("maja.avhopp", Level.ELEVATED)
    )
    conflicts = [r for r in results.values() if isinstance(r, CaseConflict)]
    landed = [r for r in results.values() if isinstance(r, ThreatAssessment)]
    assert len(conflicts) == 1 and len(landed) == 1, results
    case = DefectorCase.objects.get(pk=case.pk)
    # The winner's assessment is in force and routed the case; nothing of the loser's.
    assert case.assessments.count() == 2
    assert defector.current_assessment(case).pk == landed[0].pk
    assert case.status == Status.HANDED_OVER_REGIONAL
    # One threat review waits for the winner's next review date.
    review = DefectorProcess.objects.filter(
        case=case, flow_class=ThreatReviewFlow, finished__isnull=True
    )
    assert review.count() == 1
