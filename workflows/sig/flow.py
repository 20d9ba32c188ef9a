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
from workflows.common.nodes import CaseFlow, Step, in_state, member_in, review_time
from workflows.sig import views
from workflows.sig.models import SigProcess, Status

# The case's lead social worker (the owner of the lead's tasks), its police contact officer.
lead = member_in(CaseMembership.Role.LEAD)
police_contact = member_in(CaseMembership.Role.POLICE_CONTACT)


class SigFlow(CaseFlow, flow.Flow):
    """Who does each step of a SIG case, in order."""

    process_class = SigProcess
    process_title = _("SIG case")
    process_description = _("Social intervention group: joint support for a young person.")
    # Who releases and reassigns its tasks (``casework.policy.coordinates_flow``).
    coordinator_permission = "casework.coordinate_cases"

    # Anyone in a referring organisation with a case role registers a referral.
    start = (
        flow.Start(views.ReferralView.as_view())
        .Annotation(title=_("New SIG referral"))
        .Permission("casework.use_task_inbox")
        .Next(this.screen)
    )
    # Another programme refers the person (an SSPF escalation, a GVI member who
    # accepted the offer of help): ``refer_linked`` starts here, same queue.
    start_linked = flow.StartHandle(this.start_case).Next(this.screen)
    # The coordinators' queue: screen the referral and form the team.
    screen = (
        Step(views.ScreeningView.as_view())
        .Annotation(title=_("Screen the referral"))
        .Permission("casework.coordinate_cases")
        .Next(this.after_screening)
    )
    after_screening = flow.If(in_state(Status.CONSENT_PENDING)).Then(this.consent).Else(this.end)
    # The lead social worker records the consents.
    consent = (
        Step(views.ConsentView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Record consent"))
        .Assign(lead)
        .Permission("casework.coordinate_cases")
        .Next(this.after_consent)
    )
    after_consent = flow.If(in_state(Status.DECISION_PENDING)).Then(this.decisions).Else(this.end)
    # Social services and police decide, each on their own.
    decisions = flow.Split().Next(this.decide_social).Next(this.decide_police)
    decide_social = (
        Step(views.DecisionView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Social services' decision"))
        .Assign(lead)
        .Permission("casework.coordinate_cases")
        .Next(this.decided)
    )
    decide_police = (
        Step(views.DecisionView.as_view(), team_role=CaseMembership.Role.POLICE_CONTACT)
        .Annotation(title=_("Police decision"))
        .Assign(police_contact)
        .Permission("casework.coordinate_cases")
        .Next(this.decided)
    )
    decided = flow.Join().Next(this.after_decisions)
    after_decisions = flow.If(in_state(Status.PLANNING)).Then(this.draft_plan).Else(this.end)
    # The lead social worker drafts the plan; the coordinator approves it.
    draft_plan = (
        Step(views.PlanView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Draft the plan"))
        .Assign(lead)
        .Permission("casework.coordinate_cases")
        .Next(this.approve)
    )
    approve = (
        Step(views.ApprovePlanView.as_view())
        .Annotation(title=_("Approve the plan"))
        .Permission("casework.coordinate_cases")
        .Next(this.after_approval)
    )
    after_approval = (
        flow.If(in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.draft_plan)
    )
    # On the review date (``manage.py send_reminders`` fires due timers): follow up,
    # then continue with a new review date, or close.
    wait_for_review = flow.Timer(review_time).Next(this.follow_up)
    follow_up = (
        Step(views.FollowUpView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Follow up the case"))
        .Assign(lead)
        .Permission("casework.coordinate_cases")
        .Next(this.after_follow_up)
    )
    after_follow_up = flow.If(in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.end)
    end = flow.End()
