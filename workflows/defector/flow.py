"""The defector programme's flows, top-down: :class:`DefectorFlow` (who does each step of
a case, in order) and :class:`ThreatReviewFlow` (the reassessment on the assessment's
next review date and the approval of a lowering, beside the case's own process).

The nodes run the task views of ``workflows.defector.views``; the FSM guards of
``workflows.defector.models`` decide the states, the flows follow them.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow import this
from viewflow.workflow import flow

from casework import policy, roles
from casework.models import CaseMembership
from casework.services.cases import members
from workflows.common.nodes import (
    CaseFlow,
    CaseStartHandle,
    Step,
    in_state,
    morning_of,
    next_if,
    referral_start,
    review_time,
    step,
)
from workflows.defector import views
from workflows.defector.models import (
    FINAL_STATES,
    HANDED_OVER_STATES,
    DefectorProcess,
    Status,
    current_assessment,
    lowering_approver,
    pending_lowering,
    police_assessor,
    reassessment_falls_due,
)

# The case-team roles whose members do their steps.
LEAD, POLICE_CONTACT = CaseMembership.Role.LEAD, CaseMembership.Role.POLICE_CONTACT


def local_handler(case, user) -> bool:
    """The local programme's steps (initial check, intake): a defector coordinator who may
    open the case (a police coordinator may not before consent covers the police)."""
    return bool(policy.case_access(user, case, any_ground=True))


class CaseStep(Step):
    """A human step that only users for whom ``allowed(case, user)`` holds may take or do,
    on top of viewflow's owner and queue-permission checks (re-asked at every request:
    a police contact officer who left the team cannot do the step any more)."""

    # Released and reassigned only by a coordinator the step admits (a police
    # coordinator): ``casework.policy.may_manage_task``.
    managed_by_performers = True

    def __init__(self, view, *, allowed, **kwargs):
        super().__init__(view, **kwargs)
        self._allowed = allowed

    def _admits(self, user, task) -> bool:
        if user is None or user.is_anonymous:
            return False
        case = getattr(task.coerced_process, "case", None)
        return case is not None and bool(self._allowed(case, user))

    def performer(self, user, task) -> bool:
        """Who takes it from the queue (``casework.policy.may_take_task``): the queue's
        permission and the step's own rule."""
        perm = task.owner_permission
        return bool(perm) and user.has_perm(perm) and self._admits(user, task)

    def can_assign(self, user, task):
        return super().can_assign(user, task) and self._admits(user, task)

    def can_execute(self, user, task):
        return super().can_execute(user, task) and self._admits(user, task)

    def can_unassign(self, user, task):
        """The owner (or a flow manager) releases a task; so may anyone who could take it
        from the queue when its owner may no longer do it (e.g. left the team)."""
        if super().can_unassign(user, task):
            return True
        return (
            task.owner_id is not None
            and not self._admits(task.owner, task)
            and bool(task.owner_permission)
            and user.has_perm(task.owner_permission)
            and self._admits(user, task)
        )


def case_step(view, title, then, *, allowed=local_handler, **options):
    """A :class:`CaseStep` (by default one of the local programme: :func:`local_handler`)."""
    return step(view, title, then, node=CaseStep, allowed=allowed, **options)


class DefectorCaseFlow(CaseFlow):
    """What both flows of a defector case share: the process, who coordinates them."""

    process_class = DefectorProcess
    coordinator_permission = roles.PERM_COORDINATE_DEFECTOR


class DefectorFlow(DefectorCaseFlow, flow.Flow):
    """Who does each step of a defector case, in order."""

    process_title = _("Defector case")
    process_description = _("Defector programme: support and protection for leaving crime.")

    # A referral from anyone with a case role (police, social services, school …).
    start = referral_start(views.ReferralView.as_view(), _("New defector referral"), this.check)
    # Another programme refers the person (a GVI member who accepted the offer of help,
    # a SIG case handed to the defector programme): ``refer_linked`` starts here; so does
    # a referral from an organisation's own system (the API: ``receive_referral``).
    start_linked = CaseStartHandle(this.start_case).Next(this.check)
    # A case back in the local programme after an approved lowering.
    start_local = CaseStartHandle(this.start_case).Next(this.intake)
    # The defector coordinators' queue: the initial check and the team.
    check = case_step(
        views.InitialCheckView.as_view(), _("Initial check of the referral"), this.after_check
    )
    after_check = next_if(in_state(Status.CONSENT_PENDING), this.consent)
    # The lead social worker records the written consent covering every agency.
    consent = step(
        views.ConsentView.as_view(), _("Record written consent"), this.after_consent, role=LEAD
    )
    after_consent = next_if(in_state(Status.JOINT_ASSESSMENT), this.assess_threat)
    # The police contact officer: the police check (after consent), then the threat level.
    assess_threat = step(
        views.AssessmentView.as_view(),
        _("Police check and threat assessment"),
        this.route,
        role=POLICE_CONTACT,
    )
    # Routing by the assessment (the FSM's guards decided the state; the flow follows it).
    route = (
        flow.Switch()
        .Case(this.intake, in_state(Status.LOCAL_INTAKE))
        .Case(this.handed_over, in_state(*HANDED_OVER_STATES))
        .Default(this.end)
    )
    # The local programme: support decision, conditions, agreement, start.
    intake = case_step(
        views.IntakeView.as_view(), _("Local intake and agreement"), this.after_intake
    )
    after_intake = next_if(in_state(Status.ACTIVE), this.wait_for_review)
    wait_for_review = flow.Timer(review_time).Next(this.review)
    review = step(
        views.ReviewView.as_view(), _("Review the defector case"), this.after_review, role=LEAD
    )
    after_review = next_if(in_state(Status.ACTIVE), this.wait_for_review)
    handed_over = flow.End()
    end = flow.End()


# --- The threat review: reassessment on its date, approval of a lowering ------------------------


def _police_reassessor(activation):
    """The team's police contact officer (in the kontaktpolis group) gets the reassessment;
    without one it waits in the defector coordinators' queue, where only a police
    coordinator can take it (``CaseStep``)."""
    case = activation.process.case
    for user in members(case, CaseMembership.Role.POLICE_CONTACT):
        if police_assessor(case, user):
            return user
    return None


def reassessment_time(activation) -> datetime.datetime:
    """The morning of the next review date of the assessment in force."""
    assessment = current_assessment(activation.process.case)
    return morning_of(assessment.next_review if assessment else timezone.localdate())


def _lowering_awaits(activation) -> bool:
    case = activation.process.case
    return case.status not in FINAL_STATES and pending_lowering(case) is not None


def _assessment_kept(activation) -> bool:
    case = activation.process.case
    return case.status not in FINAL_STATES and current_assessment(case) is not None


def _falls_due(activation) -> bool:
    return reassessment_falls_due(activation.process.case)


class ThreatReviewFlow(DefectorCaseFlow, flow.Flow):
    """The review cycle of a case's threat assessment, beside the case's own process (it
    runs whether the case is local or handed over, until it is closed).

    On the morning of the next review date of the assessment in force
    (``manage.py send_reminders`` fires due timers) the police reassess: the team's
    police contact officer, or a police defector coordinator from the queue. A
    reassessment goes through ``workflows.defector.services.assess_threat``: a raise
    re-routes at once, a lowering waits for the approval step of a police
    coordinator other than its assessor. Every assessment recorded outside this
    flow (the first one, one from the case page) starts the cycle anew
    (``workflows.defector.services``): the open step disappears and the timer
    follows the new date. Closing the case cancels the cycle.
    """

    process_title = _("Threat review")
    process_description = _("Defector programme: reassessing the threat and approving a lowering.")

    start = CaseStartHandle(this.start_case).Next(this.next_step)
    next_step = (
        flow.Switch()
        .Case(this.approve_lowering, _lowering_awaits)
        .Case(this.wait_for_reassessment, _assessment_kept)
        .Default(this.end)
    )
    wait_for_reassessment = flow.Timer(reassessment_time).Next(this.falls_due)
    falls_due = next_if(_falls_due, this.reassess, this.next_step)
    reassess = case_step(
        views.ReassessTaskView.as_view(),
        _("Reassess the threat"),
        this.next_step,
        allowed=police_assessor,
        assign=_police_reassessor,
    )
    approve_lowering = case_step(
        views.LoweringTaskView.as_view(),
        _("Approve or reject the lowered threat level"),
        this.next_step,
        allowed=lowering_approver,
    )
    end = flow.End()
