"""SIG — sociala insatsgrupper: the case's state machine and its flow, top-down.

A young person (default 15-25, ``SAMVERKAN["SIG_AGE_RANGE"]``) at risk of a
criminal lifestyle is referred; the coordinator screens the referral and
forms the team; the lead social worker records the consents (the person's
own, and every guardian's under 18); social services **and** police decide to
start; the lead social worker drafts the plan with each agency's actions and
the coordinator approves it; the case is then ``active`` until its review date,
when a follow-up decides to continue or to close.

* **The state machine** (:class:`SigCase`, django-fsm-2, here) says which states are
  legal: each transition names who may take it (``permission``) and the guards
  that must hold (``conditions``, each with a message the user sees).
* **The flow** (``SigFlow`` in ``workflows/sig/flow.py``, viewflow, on :class:`SigProcess`)
  says who does what next: the tasks, their queues and owners.
* **The services** (``workflows/sig/services.py``) open, refer and close cases.
* Every transition — from a flow task, the case page, a command or a test —
  goes through ``casework.services.cases.transition`` (permission, guards, row
  lock and version, atomic save, timeline, access-log event).

State diagram::

    referred → screening → consent_pending → consent_refused → closed
                    ↘ closed        ↘ decision_pending → planning → active ⇄ follow_up → closed
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework import policy
from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import Action, Case, CaseDecision, Organisation
from workflows.common.closing import (
    close_case,
    closing_transition,
    consent_withdrawn_transition,
)
from workflows.common.guards import (
    age_within,
    consents_complete,
    coordinator,
    guard,
    has_lead,
    has_police_contact,
    lead_or_coordinator,
    member_role,
    review_date_ahead,
    review_date_reached,
    social_services_team,
)
from workflows.common.processes import ObjectProcess, process_of


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
# The two agencies that both decide to start and each have an action in the plan.
BOTH_AGENCIES = frozenset({Organisation.Kind.SOCIAL_SERVICES, Organisation.Kind.POLICE})


# --- Who may take a transition (django-fsm ``permission``) ------------------------------------


def deciding_agency(case: SigCase, user) -> bool:
    """Social services or police on the team: whoever records the second decision."""
    return member_role(case, user) is not None and user.organisation.kind in BOTH_AGENCIES


# --- Guards (django-fsm ``conditions``); each carries the message the user sees ---------------


def within_age_range(person) -> bool:
    """The person's age today is within the SIG age range."""
    return age_within(person, settings.SAMVERKAN["SIG_AGE_RANGE"])


@guard(_("The person's age is outside the SIG age range."))
def age_in_range(case: SigCase) -> bool:
    return within_age_range(case.person)


@guard(_("No refusal of consent has been recorded."))
def consent_refused_recorded(case: SigCase) -> bool:
    return policy.consent_state(case).refused


@guard(_("Both social services and the police must decide to start."))
def both_agencies_start(case: SigCase) -> bool:
    starts = set(
        case.decisions.filter(decision=CaseDecision.Decision.START).values_list("agency", flat=True)
    )
    return starts >= BOTH_AGENCIES


@guard(_("One of the agencies has decided not to start."))
def an_agency_declined(case: SigCase) -> bool:
    return case.decisions.filter(decision=CaseDecision.Decision.DECLINE).exists()


@guard(_("The plan needs at least one planned action by social services and one by the police."))
def action_per_agency(case: SigCase) -> bool:
    kinds = set(
        case.actions.exclude(status=Action.Status.CANCELLED).values_list(
            "organisation__kind", flat=True
        )
    )
    return kinds >= BOTH_AGENCIES


@guard(_("Write the plan first."))
def plan_written(case: SigCase) -> bool:
    return case.plan is not None


# --- The case and its state machine -----------------------------------------------------------


class SigCase(ConcurrentTransitionMixin, Case):
    """A SIG case. Free text is encrypted under the case's own data key (ADR 0023)."""

    Status = Status

    status = status_field(Status, default=Status.REFERRED)
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

    ENCRYPTED_FIELDS = (*Case.ENCRYPTED_FIELDS, "referral_reason", "screening_note", "plan")
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
            # Every stage moment the statistics count has an index: the running month is
            # counted live by each moment's range (ADR 0037, session 18).
            models.Index(fields=["started_at"], name="sigcase_started_idx"),
        ]

    # Screening ---------------------------------------------------------------------------

    @step(Status.REFERRED, Status.SCREENING, _("Start screening"), by=coordinator)
    def begin_screening(self) -> None:
        """The coordinator takes the referral up."""

    @step(Status.SCREENING, Status.CONSENT_PENDING, _("Accept: ask for consent"), by=coordinator)
    @when(age_in_range, has_lead)
    def accept(self) -> None:
        """Eligible, team appointed: the lead social worker asks for consent."""

    # Consent -----------------------------------------------------------------------------

    @step(
        Status.CONSENT_PENDING,
        Status.DECISION_PENDING,
        _("Consents complete"),
        by=social_services_team,
    )
    @when(consents_complete)
    def consents_given(self) -> None:
        """Every consent needed is in place: the agencies decide."""
        self.consented_at = timezone.now()

    @step(
        Status.CONSENT_PENDING,
        Status.CONSENT_REFUSED,
        _("Consent refused"),
        by=social_services_team,
    )
    @when(consent_refused_recorded)
    def consent_refused(self) -> None:
        """No coordination without consent."""
        self.consent_refused_at = timezone.now()

    # Decisions ---------------------------------------------------------------------------

    @step(Status.DECISION_PENDING, Status.PLANNING, _("Start planning"), by=deciding_agency)
    @when(both_agencies_start, consents_complete)
    def start(self) -> None:
        """Both agencies decided to start."""
        self.decided_at = self.started_at = timezone.now()

    @step(Status.DECISION_PENDING, Status.CLOSED, _("Close: not started"), by=deciding_agency)
    @when(an_agency_declined)
    def decline(self) -> None:
        """An agency decided not to start: the case closes."""
        close_case(self, Case.CloseReason.NOT_STARTED)
        self.decided_at = self.closed_at

    # Plan --------------------------------------------------------------------------------

    @step(Status.PLANNING, Status.ACTIVE, _("Approve the plan"), by=coordinator)
    @when(has_police_contact, action_per_agency, plan_written, review_date_ahead, consents_complete)
    def approve_plan(self, *, approved_by) -> None:
        self.plan_approved_by = approved_by
        self.plan_approved_at = timezone.now()

    # Follow-up ---------------------------------------------------------------------------

    @step(Status.ACTIVE, Status.FOLLOW_UP, _("Start the follow-up"), by=lead_or_coordinator)
    @when(review_date_reached)
    def begin_follow_up(self) -> None:
        """The review date has come."""

    @step(
        Status.FOLLOW_UP,
        Status.ACTIVE,
        _("Continue with a new review date"),
        by=lead_or_coordinator,
    )
    @when(review_date_ahead, consents_complete)
    def continue_case(self) -> None:
        """The follow-up decided to go on until the next review."""

    # Closing -----------------------------------------------------------------------------

    consent_withdrawn = consent_withdrawn_transition(OPEN_STATES, Status.CLOSED)
    close = closing_transition(OPEN_STATES, Status.CLOSED, by=lead_or_coordinator)


# --- The flow's process -----------------------------------------------------------------------


class SigProcess(ObjectProcess):
    """The viewflow process of one SIG case."""

    case = process_of(SigCase)

    class Meta(ObjectProcess.Meta):
        verbose_name = _("SIG process")
        verbose_name_plural = _("SIG processes")
