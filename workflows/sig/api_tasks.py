"""SIG's steps the integration API completes (``POST /api/v1/tasks/{id}/complete/``).

Two are simple decisions: each agency's decision to start the joint work (start, or
not with a motivation: ``views.DecisionView``, whose logic ``services.decide_to_start``
both share), and the coordinator's approval of the plan (approve it, the case becomes
active, or return it to the lead social worker with a comment: ``views.ApprovePlanView``,
whose logic ``services.review_plan`` both share). The API calls the services the step's
page calls and finishes the task as the page does; the core takes and starts the task
under the flow's lock and checks the case's version first (``casework.api.tasks``).
"""

from __future__ import annotations

from casework import programmes
from casework.models import CaseDecision
from workflows.common import forms
from workflows.common.decisions import form_decision
from workflows.sig import services, views
from workflows.sig.flow import SigFlow
from workflows.sig.forms import ApprovalForm


def review_plan(*, user, activation, choice: str, reason: str, expected_version, purpose: str):
    """``views.ApprovePlanView.do_review``: the plan approved or returned
    (``services.review_plan``); then the step is done."""
    services.review_plan(
        user=user,
        case=activation.process.case,
        purpose=purpose,
        approve=choice == ApprovalForm.APPROVE,
        comment=reason,
        expected_version=expected_version,
    )
    activation.execute()


def decisions() -> dict[str, programmes.Decision]:
    """The registry's ``api_decisions`` hook."""
    agency = form_decision(
        forms.DecisionForm,
        complete=services.decide_to_start,
        purpose=views.DecisionView.purpose,
        reason_required=[CaseDecision.Decision.DECLINE],
        field="decision",
    )
    return {
        programmes.decision_key(SigFlow.decide_social): agency,
        programmes.decision_key(SigFlow.decide_police): agency,
        programmes.decision_key(SigFlow.approve): form_decision(
            ApprovalForm,
            complete=review_plan,
            purpose=views.ApprovePlanView.purpose,
            reason_required=[ApprovalForm.RETURN],
        ),
    }
