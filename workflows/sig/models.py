"""SIG — sociala insatsgrupper: the case's state machine and its flow, top-down.

A young person (default 15-25, ``SAMVERKAN["SIG_AGE_RANGE"]``) at risk of a
criminal lifestyle is referred; the coordinator screens the referral and
forms the team; the lead social worker records the consents (the person's
own, and every guardian's under 18); social services **and** police decide to
start; the lead social worker drafts the plan with each agency's actions and
the coordinator approves it; the case is then ``active`` until its review date,
when a follow-up decides to continue or to close.

* **The state machine** (:class:`SigCase`, django-fsm-2) says which states are
  legal: each transition names who may take it (``permission``) and the guards
  that must hold (``conditions``, each with a message the user sees).
* **The flow** (:class:`SigFlow`, viewflow) says who does what next: the tasks,
  their queues and owners.
* Every transition — from a flow task, the case page, a command or a test —
  goes through ``casework.services.cases.transition`` (permission, guards, row
  lock and version, atomic save, timeline, access-log event).

State diagram::

    referred → screening → consent_pending → consent_refused → closed
                    ↘ closed        ↘ decision_pending → planning → active ⇄ follow_up → closed
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.lock import select_for_update_lock
from viewflow.workflow.models import Process

from casework import policy, programmes
from casework.fields import EncryptedTextField
from casework.models import Action, Case, CaseDecision, CaseMembership, Organisation


class Status(models.TextChoices):
    REFERRED = "referred", _("Referred")
    SCREENING = "screening", _("Screening")
    CONSENT_PENDING = "consent_pending", _("Awaiting consent")
    CONSENT_REFUSED = "consent_refused", _("Consent refused")
    DECISION_PENDING = "decision_pending", _("Awaiting decisions")
    PLANNING = "planning", _("Planning")
    ACTIVE = "active", _("Active")
    FOLLOW_UP = "follow_up", _("Follow-up")
    CLOSED = "closed", _("Closed")


OPEN_STATES = [s for s in Status.values if s != Status.CLOSED]
# Police record their own actions only while the plan is in force.
POLICE_ACTION_STATES = (Status.ACTIVE, Status.FOLLOW_UP)


# --- Who may take a transition (django-fsm ``permission``) ----------------------------------


def _member_roles(case: SigCase, user) -> set[str]:
    membership = policy.team_membership(user, case)
    return {membership.role} if membership else set()


def coordinator(case: SigCase, user) -> bool:
    return policy.coordinates(user, case)


def lead_or_coordinator(case: SigCase, user) -> bool:
    return coordinator(case, user) or CaseMembership.Role.LEAD in _member_roles(case, user)


def social_services_team(case: SigCase, user) -> bool:
    """A social-services member of the team (or the coordinator)."""
    return coordinator(case, user) or (
        bool(_member_roles(case, user))
        and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES
    )


def registers_withdrawal(case: SigCase, user) -> bool:
    """Whoever may register a withdrawal of consent (``withdraw_consent``): the coordinator,
    or anyone of the case's own organisation with access to it.

    The closing that follows is the withdrawal's consequence, not a decision of its own.
    """
    return coordinator(case, user) or (
        user.organisation_id == case.owner_organisation_id and bool(policy.case_access(user, case))
    )


def deciding_agency(case: SigCase, user) -> bool:
    """Social services or police on the team: whoever records the second decision."""
    return bool(_member_roles(case, user)) and user.organisation.kind in (
        Organisation.Kind.SOCIAL_SERVICES,
        Organisation.Kind.POLICE,
    )


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def _guard(message):
    def decorate(func):
        func.message = message
        return func

    return decorate


@_guard(_("The person's age is outside the SIG age range."))
def age_in_range(case: SigCase) -> bool:
    low, high = settings.SAMVERKAN["SIG_AGE_RANGE"]
    from casework.selectors.persons import person_age

    return low <= person_age(case.person, on=timezone.localdate()) <= high


@_guard(_("Appoint a lead social worker to the team first."))
def has_lead(case: SigCase) -> bool:
    return case.memberships.filter(role=CaseMembership.Role.LEAD, valid_to__isnull=True).exists()


@_guard(_("The consents are not complete: the person's own and, under 18, every guardian's."))
def consents_complete(case: SigCase) -> bool:
    return policy.consent_state(case).complete


@_guard(_("No refusal of consent has been recorded."))
def consent_refused_recorded(case: SigCase) -> bool:
    return policy.consent_state(case).refused


@_guard(_("No withdrawal of consent has been recorded."))
def consent_withdrawal_recorded(case: SigCase) -> bool:
    return case.consents.filter(withdrawn_at__isnull=False).exists()


@_guard(_("Both social services and the police must decide to start."))
def both_agencies_start(case: SigCase) -> bool:
    starts = set(
        case.decisions.filter(decision=CaseDecision.Decision.START).values_list("agency", flat=True)
    )
    return starts >= {Organisation.Kind.SOCIAL_SERVICES, Organisation.Kind.POLICE}


@_guard(_("One of the agencies has decided not to start."))
def an_agency_declined(case: SigCase) -> bool:
    return case.decisions.filter(decision=CaseDecision.Decision.DECLINE).exists()


@_guard(_("A police contact officer must be on the team."))
def has_police_contact(case: SigCase) -> bool:
    return case.memberships.filter(
        role=CaseMembership.Role.POLICE_CONTACT, valid_to__isnull=True
    ).exists()


@_guard(_("The plan needs at least one planned action by social services and one by the police."))
def action_per_agency(case: SigCase) -> bool:
    kinds = set(
        case.actions.exclude(status=Action.Status.CANCELLED).values_list(
            "organisation__kind", flat=True
        )
    )
    return kinds >= {Organisation.Kind.SOCIAL_SERVICES, Organisation.Kind.POLICE}


@_guard(_("Write the plan first."))
def plan_written(case: SigCase) -> bool:
    return case.plan is not None


@_guard(_("Set a review date in the future."))
def review_date_ahead(case: SigCase) -> bool:
    return case.review_date is not None and case.review_date > timezone.localdate()


@_guard(_("The review date has not been reached yet."))
def review_date_reached(case: SigCase) -> bool:
    return case.review_date is not None and case.review_date <= timezone.localdate()


# --- The case and its state machine -------------------------------------------------------------


class SigCase(ConcurrentTransitionMixin, Case):
    """A SIG case. Free text is encrypted under the person's data key."""

    Status = Status

    status = FSMField(
        _("status"), default=Status.REFERRED, choices=Status.choices, protected=True, db_index=True
    )
    referral_reason = EncryptedTextField(_("reason for the referral"))
    screening_note = EncryptedTextField(_("screening note"))
    plan = EncryptedTextField(_("plan"))
    plan_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    plan_approved_at = models.DateTimeField(_("plan approved"), null=True, blank=True)
    # When the case passed its stages (plain, for the steering group's statistics;
    # the timeline has the same moments, this keeps them aggregable by index).
    consented_at = models.DateTimeField(_("consents complete"), null=True, blank=True)
    consent_refused_at = models.DateTimeField(_("consent refused"), null=True, blank=True)
    decided_at = models.DateTimeField(_("agencies decided"), null=True, blank=True)
    started_at = models.DateTimeField(_("decided to start"), null=True, blank=True)

    ENCRYPTED_FIELDS = ("close_note", "referral_reason", "screening_note", "plan")
    # The plan is in force on the consents: nothing but a withdrawal may end them here.
    CONSENT_REQUIRED_STATES = (Status.ACTIVE, Status.FOLLOW_UP)

    class Meta:
        verbose_name = _("SIG case")
        verbose_name_plural = _("SIG cases")
        indexes = [
            models.Index(fields=["consented_at"], name="sigcase_consented_idx"),
            models.Index(fields=["consent_refused_at"], name="sigcase_refused_idx"),
            models.Index(fields=["decided_at"], name="sigcase_decided_idx"),
            models.Index(fields=["plan_approved_at"], name="sigcase_plan_approved_idx"),
        ]

    # Screening ---------------------------------------------------------------------------

    @transition(
        status,
        source=Status.REFERRED,
        target=Status.SCREENING,
        permission=coordinator,
        custom={"label": _("Start screening")},
    )
    def begin_screening(self) -> None:
        """The coordinator takes the referral up."""

    @transition(
        status,
        source=Status.SCREENING,
        target=Status.CONSENT_PENDING,
        permission=coordinator,
        conditions=[age_in_range, has_lead],
        custom={"label": _("Accept: ask for consent")},
    )
    def accept(self) -> None:
        """Eligible, team appointed: the lead social worker asks for consent."""

    # Consent -----------------------------------------------------------------------------

    @transition(
        status,
        source=Status.CONSENT_PENDING,
        target=Status.DECISION_PENDING,
        permission=social_services_team,
        conditions=[consents_complete],
        custom={"label": _("Consents complete")},
    )
    def consents_given(self) -> None:
        """Every consent needed is in place: the agencies decide."""
        self.consented_at = timezone.now()

    @transition(
        status,
        source=Status.CONSENT_PENDING,
        target=Status.CONSENT_REFUSED,
        permission=social_services_team,
        conditions=[consent_refused_recorded],
        custom={"label": _("Consent refused")},
    )
    def consent_refused(self) -> None:
        """No coordination without consent."""
        self.consent_refused_at = timezone.now()

    # Decisions ---------------------------------------------------------------------------

    @transition(
        status,
        source=Status.DECISION_PENDING,
        target=Status.PLANNING,
        permission=deciding_agency,
        conditions=[both_agencies_start, consents_complete],
        custom={"label": _("Start planning")},
    )
    def start(self) -> None:
        """Both agencies decided to start."""
        self.decided_at = self.started_at = timezone.now()

    @transition(
        status,
        source=Status.DECISION_PENDING,
        target=Status.CLOSED,
        permission=deciding_agency,
        conditions=[an_agency_declined],
        custom={"label": _("Close: not started")},
    )
    def decline(self) -> None:
        """An agency decided not to start: the case closes."""
        self.close_reason = Case.CloseReason.NOT_STARTED
        self.closed_at = self.decided_at = timezone.now()

    # Plan --------------------------------------------------------------------------------

    @transition(
        status,
        source=Status.PLANNING,
        target=Status.ACTIVE,
        permission=coordinator,
        conditions=[
            has_police_contact,
            action_per_agency,
            plan_written,
            review_date_ahead,
            consents_complete,
        ],
        custom={"label": _("Approve the plan")},
    )
    def approve_plan(self, *, approved_by) -> None:
        self.plan_approved_by = approved_by
        self.plan_approved_at = timezone.now()

    # Follow-up ---------------------------------------------------------------------------

    @transition(
        status,
        source=Status.ACTIVE,
        target=Status.FOLLOW_UP,
        permission=lead_or_coordinator,
        conditions=[review_date_reached],
        custom={"label": _("Start the follow-up")},
    )
    def begin_follow_up(self) -> None:
        """The review date has come."""

    @transition(
        status,
        source=Status.FOLLOW_UP,
        target=Status.ACTIVE,
        permission=lead_or_coordinator,
        conditions=[review_date_ahead, consents_complete],
        custom={"label": _("Continue with a new review date")},
    )
    def continue_case(self) -> None:
        """The follow-up decided to go on until the next review."""

    # Closing -----------------------------------------------------------------------------

    @transition(
        status,
        source=OPEN_STATES,
        target=Status.CLOSED,
        permission=registers_withdrawal,
        conditions=[consent_withdrawal_recorded],
        custom={"label": _("Close: consent withdrawn")},
    )
    def consent_withdrawn(self) -> None:
        """A consent was withdrawn and no other legal basis applies: sharing stops."""
        self.close_reason = Case.CloseReason.CONSENT_WITHDRAWN
        self.closed_at = timezone.now()
        self.review_date = None

    @transition(
        status,
        source=OPEN_STATES,
        target=Status.CLOSED,
        permission=lead_or_coordinator,
        custom={"label": _("Close the case")},
    )
    def close(self, *, close_reason: str) -> None:
        self.close_reason = close_reason
        self.closed_at = timezone.now()
        self.review_date = None


def police_may_add_actions(case: SigCase) -> bool:
    return case.status in POLICE_ACTION_STATES


def next_review_date(*, today: datetime.date | None = None) -> datetime.date:
    today = today or timezone.localdate()
    return today + datetime.timedelta(days=settings.SAMVERKAN["SIG_REVIEW_INTERVAL_DAYS"])


# --- The flow --------------------------------------------------------------------------------


class SigProcess(Process):
    """The viewflow process of one SIG case."""

    case = models.OneToOneField(
        SigCase, on_delete=models.PROTECT, null=True, blank=True, related_name="process"
    )

    class Meta:
        verbose_name = _("SIG process")
        verbose_name_plural = _("SIG processes")
        ordering = ["-created"]


def _lead(activation):
    from workflows.common.nodes import team_member

    return team_member(activation.process.case, CaseMembership.Role.LEAD)


def _police_contact(activation):
    from workflows.common.nodes import team_member

    return team_member(activation.process.case, CaseMembership.Role.POLICE_CONTACT)


def _in_state(*states):
    return lambda activation: activation.process.case.status in states


def _review_time(activation) -> datetime.datetime:
    """The follow-up task appears on the morning of the case's review date."""
    review = activation.process.case.review_date or timezone.localdate()
    hour = settings.SAMVERKAN["REVIEW_TASK_HOUR"]
    return timezone.make_aware(datetime.datetime.combine(review, datetime.time(hour)))


# The task views of this flow (they import the models above).
from workflows.common.nodes import Step  # noqa: E402
from workflows.sig import views  # noqa: E402


class SigFlow(flow.Flow):
    """Who does each step of a SIG case, in order."""

    process_class = SigProcess
    process_title = _("SIG case")
    process_description = _("Social intervention group: joint support for a young person.")
    process_summary_template = (
        "{{ process.case.reference }} · {{ process.case.get_status_display }}"
    )
    lock_impl = select_for_update_lock
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
    after_screening = flow.If(_in_state(Status.CONSENT_PENDING)).Then(this.consent).Else(this.end)
    # The lead social worker records the consents.
    consent = (
        Step(views.ConsentView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Record consent"))
        .Assign(_lead)
        .Permission("casework.coordinate_cases")
        .Next(this.after_consent)
    )
    after_consent = flow.If(_in_state(Status.DECISION_PENDING)).Then(this.decisions).Else(this.end)
    # Social services and police decide, each on their own.
    decisions = flow.Split().Next(this.decide_social).Next(this.decide_police)
    decide_social = (
        Step(views.DecisionView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Social services' decision"))
        .Assign(_lead)
        .Permission("casework.coordinate_cases")
        .Next(this.decided)
    )
    decide_police = (
        Step(views.DecisionView.as_view(), team_role=CaseMembership.Role.POLICE_CONTACT)
        .Annotation(title=_("Police decision"))
        .Assign(_police_contact)
        .Permission("casework.coordinate_cases")
        .Next(this.decided)
    )
    decided = flow.Join().Next(this.after_decisions)
    after_decisions = flow.If(_in_state(Status.PLANNING)).Then(this.draft_plan).Else(this.end)
    # The lead social worker drafts the plan; the coordinator approves it.
    draft_plan = (
        Step(views.PlanView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Draft the plan"))
        .Assign(_lead)
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
        flow.If(_in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.draft_plan)
    )
    # On the review date (``manage.py send_reminders`` fires due timers): follow up,
    # then continue with a new review date, or close.
    wait_for_review = flow.Timer(_review_time).Next(this.follow_up)
    follow_up = (
        Step(views.FollowUpView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Follow up the case"))
        .Assign(_lead)
        .Permission("casework.coordinate_cases")
        .Next(this.after_follow_up)
    )
    after_follow_up = flow.If(_in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.end)
    end = flow.End()

    def start_case(self, activation, case: SigCase) -> Process:
        activation.process.case = case
        return activation.process

    def has_view_permission(self, user, obj=None):
        """Case workers see the flow (their inbox); a process only with access to its case."""
        if obj is not None:
            case = getattr(obj, "case", None)
            return case is not None and bool(policy.case_access(user, case))
        return policy.can_use_task_inbox(user)

    def has_manage_permission(self, user, obj=None):
        return False


# --- Services of this programme (the shared machinery does the writing) ----------------------


def _owner_organisation(user) -> Organisation:
    """Social services lead SIG: the referrer's own office, or the municipality's one."""
    if user.organisation and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES:
        return user.organisation
    offices = list(
        Organisation.objects.filter(kind=Organisation.Kind.SOCIAL_SERVICES, is_active=True)[:2]
    )
    if len(offices) != 1:
        from django.core.exceptions import ValidationError

        raise ValidationError(
            _("No single social services organisation is registered to lead the case.")
        )
    return offices[0]


def refer(*, user, person, reason: str, purpose: str) -> SigCase:
    """Open a SIG case for ``person`` from a referral (the flow's start step calls this)."""
    from casework.services.cases import open_case

    case = SigCase(
        programme=Case.Programme.SIG,
        person=person,
        owner_organisation=_owner_organisation(user),
        referred_by=user,
        referring_organisation=user.organisation,
    )
    return open_case(
        user=user, purpose=purpose, case=case, reason_field="referral_reason", reason=reason
    )


def within_age_range(person) -> bool:
    """The person's age today is within the SIG age range (for referrals from other programmes)."""
    low, high = settings.SAMVERKAN["SIG_AGE_RANGE"]
    from casework.selectors.persons import person_age

    return low <= person_age(person, on=timezone.localdate()) <= high


def refer_linked(*, user, from_case: Case, kind: str, reason: str, purpose: str) -> SigCase:
    """Refer the person of another programme's case to SIG, linked to that case.

    Opens the SIG case, starts its flow (the coordinators' screening queue) and
    records the link, shown on both cases — all or nothing. A person outside the
    SIG age range is refused with a ``ValidationError``.
    """
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from casework.services.cases import link_cases

    if not within_age_range(from_case.person):
        low, high = settings.SAMVERKAN["SIG_AGE_RANGE"]
        raise ValidationError(
            _(
                "SIG takes young people aged %(low)s to %(high)s; "
                "this person is outside that range."
            ),
            params={"low": low, "high": high},
        )
    with transaction.atomic():
        case = refer(user=user, person=from_case.person, reason=reason, purpose=purpose)
        SigFlow.start_linked.run(case=case)
        link_cases(
            user=user, from_case=from_case, to_case=case, kind=kind, reason=reason, purpose=purpose
        )
        case.refresh_from_db(fields=["version"])
    return case


def after_consent_withdrawn(*, user, case: SigCase, purpose: str) -> bool:
    """Stop the process and close the case unless another legal basis applies.

    Returns whether the case was closed. Runs inside the withdrawal's transaction.
    """
    from casework.services.cases import has_other_legal_basis
    from casework.services.cases import transition as run_transition

    # The withdrawal holds the case's row lock (``withdraw_consent`` took it in this
    # transaction): take the case as it is now, so that a step someone committed
    # since the page was loaded cannot make the withdrawal fail. A withdrawal
    # always wins.
    current = SigCase.objects.select_related("person").get(pk=case.pk)
    if current.status == Status.CLOSED or has_other_legal_basis(current):
        return False
    process = SigProcess.objects.filter(case=current).first()
    if process is not None and process.finished is None:
        SigFlow.instance.cancel(process)
    run_transition(user=user, case=current, name="consent_withdrawn", purpose=purpose)
    return True


def refer_from(*, user, person, reason: str, purpose: str, source: str = "") -> SigCase:
    """Refer ``person`` to SIG from another programme's object that is not a case (a GVI
    group member who accepted the offer of help).

    Opens the SIG case and starts its flow (the coordinators' screening queue), all or
    nothing; ``source`` (e.g. ``gvi_member:<id>``) is written on the new case's timeline
    so the case page shows where it came from. A person outside the SIG age range is
    refused with a ``ValidationError``.
    """
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from casework.services.cases import record_source

    if not within_age_range(person):
        low, high = settings.SAMVERKAN["SIG_AGE_RANGE"]
        raise ValidationError(
            _(
                "SIG takes young people aged %(low)s to %(high)s; "
                "this person is outside that range."
            ),
            params={"low": low, "high": high},
        )
    with transaction.atomic():
        case = refer(user=user, person=person, reason=reason, purpose=purpose)
        SigFlow.start_linked.run(case=case)
        if source:
            record_source(user=user, case=case, source=source, purpose=purpose)
        case.refresh_from_db(fields=["version"])
    return case


def close(
    *,
    user,
    case: SigCase,
    purpose: str,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> Case | None:
    """Close a SIG case (the case page, the follow-up step).

    Closed as "handed to the defector programme", the same transaction opens the
    person's defector referral, linked to this case (``CaseLink.Kind.HANDED_OVER``,
    shown on both cases; the note is the referral's reason): if the referral cannot
    be opened, the case is not closed either. Returns the defector case, if any.
    """
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from casework.models import CaseLink
    from casework.services.cases import close_case, lock_case

    to_defector = reason == Case.CloseReason.DEFECTOR_PROGRAMME
    if to_defector and not (note or "").strip():
        raise ValidationError(
            {
                "close_note": ValidationError(
                    _("Describe why the person is referred to the defector programme."),
                    "required",
                )
            }
        )
    try:
        with transaction.atomic():
            referral = None
            if to_defector:
                # The referral and its link first, while the team still has the case (a
                # close ends every membership: ADR 0012); the close then takes the version
                # the link left.
                lock_case(case=case, expected_version=expected_version)
                referral = programmes.refer_linked(
                    Case.Programme.DEFECTOR,
                    user=user,
                    from_case=case,
                    kind=CaseLink.Kind.HANDED_OVER,
                    reason=note,
                    purpose=purpose,
                )
                expected_version = case.version
            close_case(
                user=user,
                case=case,
                purpose=purpose,
                reason=reason,
                note=note,
                expected_version=expected_version,
            )
            return referral
    except Exception:
        # Nothing was closed: the caller shows the case as it still is.
        case.refresh_from_db()
        raise
