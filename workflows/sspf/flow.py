"""The SSPF flow (viewflow): who does each step of a case, in order.

The coordinators' queue takes the concern, the consents, the mapping conversation, the
network meeting and the follow-up meetings; while the plan is in force the school and
the leisure centre on the team each report their part of it from their own inbox. The
state machine that says which states are legal is in ``workflows/sspf/models.py``; the
task views are in ``workflows/sspf/views.py``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.status import STATUS

from casework import policy
from casework.models import Organisation
from casework.roles import PERM_COORDINATE
from workflows.common.nodes import (
    CaseFlow,
    CaseStartHandle,
    Step,
    in_state,
    next_if,
    referral_start,
    review_time,
    step,
)
from workflows.sspf import views
from workflows.sspf.models import SspfProcess, Status
from workflows.sspf.selectors import part_owner


def _part_owner(kind):
    return lambda activation: part_owner(activation.process.case, kind)


def _part_needed(kind, node_name):
    """A member of ``kind`` reports (once per period of the plan: not while a report is open)."""

    def needed(activation) -> bool:
        process = activation.process
        node = getattr(SspfFlow, node_name)
        reporting = (
            process.task_set.filter(flow_task=node)
            .exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
            .exists()
        )
        return not reporting and part_owner(process.case, kind) is not None

    return needed


class PartStep(Step):
    """A member's own task: created assigned to them. Handed back, it waits for a member
    of the same kind of organisation on the team (``casework.policy.may_report_plan_part``)
    and for the coordinators, who may reassign it."""

    def __init__(self, view, *, kind: str, **kwargs):
        super().__init__(view, **kwargs)
        self.organisation_kind = kind

    def performer(self, user, task) -> bool:
        return policy.may_report_plan_part(user, task.coerced_process.case, self.organisation_kind)


def part_step(kind: str, title):
    """The task of the team member of ``kind`` (school, leisure) who reports that part of
    the plan: created in their inbox."""
    return step(
        views.PlanPartView.as_view(),
        title,
        this.part_reported,
        assign=_part_owner(kind),
        node=PartStep,
        kind=kind,
    )


class SspfFlow(CaseFlow, flow.Flow):
    """Who does each step of an SSPF case, in order."""

    process_class = SspfProcess
    process_title = _("SSPF case")
    process_description = _("School, social services, police and leisure around one young person.")
    coordinator_permission = PERM_COORDINATE

    # School, social services, police or leisure staff raise a concern.
    start = referral_start(views.ConcernView.as_view(), _("New SSPF concern"), this.assess)
    # A concern registered by a service, not on this start page (from an organisation's own
    # system through the integration API: ``services.register_concern``) starts here.
    start_registered = CaseStartHandle(this.start_case).Next(this.assess)
    # The coordinators' queue: assess the concern with a risk assessment, form the team.
    assess = step(views.AssessmentView.as_view(), _("Assess the concern"), this.after_assessment)
    after_assessment = next_if(in_state(Status.CONSENT_PENDING), this.consent)
    # Every guardian's written consent, and the young person's own from the configured age.
    consent = step(views.ConsentView.as_view(), _("Record consent"), this.after_consent)
    after_consent = next_if(in_state(Status.MAPPING), this.mapping)
    # The mapping conversation with the family.
    mapping = step(views.MappingView.as_view(), _("Mapping conversation"), this.after_mapping)
    after_mapping = next_if(in_state(Status.NETWORK_MEETING), this.network_meeting)
    # The network meeting writes and adopts the commitment plan.
    network_meeting = step(
        views.NetworkMeetingView.as_view(),
        _("Network meeting: the commitment plan"),
        this.after_network_meeting,
    )
    after_network_meeting = next_if(in_state(Status.PLAN_ACTIVE), this.plan_in_force)
    # The plan is in force until the follow-up date. The school and the leisure centre
    # on the team each report their part of it before the follow-up meeting: their
    # actions (who does what, when) and how it is going — a task in the inbox of the
    # member who takes part for that organisation.
    plan_in_force = (
        flow.Split()
        .Next(this.wait_for_review)
        .Next(this.school_part, case=_part_needed(Organisation.Kind.SCHOOL, "school_part"))
        .Next(this.leisure_part, case=_part_needed(Organisation.Kind.LEISURE, "leisure_part"))
    )
    school_part = part_step(Organisation.Kind.SCHOOL, _("The school's part of the commitment plan"))
    leisure_part = part_step(
        Organisation.Kind.LEISURE, _("The leisure centre's part of the commitment plan")
    )
    part_reported = flow.End()
    # On the follow-up date (``manage.py send_reminders`` fires due timers): the
    # follow-up meeting continues with a new date, or closes the case.
    wait_for_review = flow.Timer(review_time).Next(this.follow_up)
    follow_up = step(views.FollowUpView.as_view(), _("Follow-up meeting"), this.after_follow_up)
    after_follow_up = next_if(in_state(Status.PLAN_ACTIVE), this.plan_in_force)
    # The case is closed: a report still open is no longer needed.
    end = flow.TerminateEnd()
