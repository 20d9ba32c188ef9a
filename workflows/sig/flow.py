"""The SIG flow (viewflow): who does each step of a SIG case, in order.

The tasks, their queues and owners; each step's page is a view of ``workflows/sig/views.py``
and every change of the case goes through its services and state machine
(``workflows/sig/models.py``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow

from casework.models import CaseMembership
from workflows.common.nodes import (
    CaseFlow,
    CaseStartHandle,
    in_state,
    next_if,
    referral_start,
    review_time,
    step,
)
from workflows.sig import views
from workflows.sig.models import SigProcess, Status

# The case-team roles whose members do their steps.
LEAD, POLICE_CONTACT = CaseMembership.Role.LEAD, CaseMembership.Role.POLICE_CONTACT


class SigFlow(CaseFlow, flow.Flow):
    """Who does each step of a SIG case, in order."""

    process_class = SigProcess
    process_title = _("SIG case")
    process_description = _("Social intervention group: joint support for a young person.")
    # Who releases and reassigns its tasks (``casework.policy.coordinates_flow``).
    coordinator_permission = "casework.coordinate_cases"

    # Anyone in a referring organisation with a case role registers a referral.
    start = referral_start(views.ReferralView.as_view(), _("New SIG referral"), this.screen)
    # Another programme refers the person (an SSPF escalation, a GVI member who
    # accepted the offer of help): ``refer_linked`` starts here, same queue.
    start_linked = CaseStartHandle(this.start_case).Next(this.screen)
    # The coordinators' queue: screen the referral and form the team.
    screen = step(views.ScreeningView.as_view(), _("Screen the referral"), this.after_screening)
    after_screening = next_if(in_state(Status.CONSENT_PENDING), this.consent)
    # The lead social worker records the consents.
    consent = step(views.ConsentView.as_view(), _("Record consent"), this.after_consent, role=LEAD)
    after_consent = next_if(in_state(Status.DECISION_PENDING), this.decisions)
    # Social services and police decide, each on their own.
    decisions = flow.Split().Next(this.decide_social).Next(this.decide_police)
    decide_social = step(
        views.DecisionView.as_view(), _("Social services' decision"), this.decided, role=LEAD
    )
    decide_police = step(
        views.DecisionView.as_view(), _("Police decision"), this.decided, role=POLICE_CONTACT
    )
    decided = flow.Join().Next(this.after_decisions)
    after_decisions = next_if(in_state(Status.PLANNING), this.draft_plan)
    # The lead social worker drafts the plan; the coordinator approves it.
    draft_plan = step(views.PlanView.as_view(), _("Draft the plan"), this.approve, role=LEAD)
    approve = step(views.ApprovePlanView.as_view(), _("Approve the plan"), this.after_approval)
    after_approval = next_if(in_state(Status.ACTIVE), this.wait_for_review, this.draft_plan)
    # On the review date (``manage.py send_reminders`` fires due timers): follow up,
    # then continue with a new review date, or close.
    wait_for_review = flow.Timer(review_time).Next(this.follow_up)
    follow_up = step(
        views.FollowUpView.as_view(), _("Follow up the case"), this.after_follow_up, role=LEAD
    )
    after_follow_up = next_if(in_state(Status.ACTIVE), this.wait_for_review)
    end = flow.End()
