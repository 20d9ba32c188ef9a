"""The defector programme's steps the integration API completes
(``POST /api/v1/tasks/{id}/complete/``).

A police coordinator's approval of a lowered threat level is a simple decision:
approve it (the case is routed by it at once) or reject it with a reason (the earlier
assessment stays in force). The API calls the service the step's page
(``views.LoweringTaskView``) calls and finishes the task as the page does; the core
takes and starts the task under the flow's lock and checks the case's version first
(``casework.api.tasks``).
"""

from __future__ import annotations

from casework import programmes
from workflows.common.decisions import form_decision
from workflows.defector import services, views
from workflows.defector.flow import ThreatReviewFlow
from workflows.defector.forms import LoweringDecisionForm


def decide_lowering(
    *, user, activation, choice: str, reason: str, expected_version, purpose: str
) -> None:
    """``views.LoweringTaskView.do_lowering``: the decision on the lowering; then the step
    is done (the review flow goes on by itself)."""
    services.record_lowering_decision(
        user=user,
        case=activation.process.case,
        purpose=purpose,
        approve=choice == LoweringDecisionForm.APPROVE,
        note=reason or None,
    )
    activation.execute()


def decisions() -> dict[str, programmes.Decision]:
    """The registry's ``api_decisions`` hook."""
    return {
        programmes.decision_key(ThreatReviewFlow.approve_lowering): form_decision(
            LoweringDecisionForm,
            complete=decide_lowering,
            purpose=views.LoweringTaskView.purpose,
            reason_required=[LoweringDecisionForm.REJECT],
        )
    }
