"""Defector programme (avhopparverksamhet): the case's state machine, the threat
assessment and routing by threat level, top-down.

The coordinator's initial check forms the team; the person's **written** consent must
cover every agency involved; then the police check and the threat assessment, which
routes the case: LOW → the local programme, ELEVATED / HIGH → the police region (social
services keep a :class:`DefectorSupportCase`), an evidence person or a national case →
the national programme. A raise re-routes at once; a lowering waits for a police
coordinator's approval. The flows are in ``workflows.defector.flow``, the writes in
``workflows.defector.services`` and ``workflows.defector.intake``.

State diagram::

    referred → initial_check → consent_pending → joint_assessment → threat_assessed
                    ↘ not_eligible     ↘ not_eligible                    │
        threat_assessed ─ LOW ──────→ local_intake → agreement_signed → active ⇄ review → closed
                        ─ ELEVATED/HIGH → handed_over_regional ─┐   (raise: from any local state)
                        ─ evidence person / national → handed_over_national
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework import policy, roles
from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import Case, CaseDecision, CaseMembership, Consent, Organisation
from workflows.common.closing import close_case, closing_transition
from workflows.common.guards import consents_complete as common_consents_complete
from workflows.common.guards import (
    coordinator,
    guard,
    has_lead,
    has_police_contact,
    lead_or_coordinator,
    member_role,
    review_date_ahead,
    review_date_reached,
    social_services_team,
    with_message,
)
from workflows.common.processes import ObjectProcess


class Status(models.TextChoices):
    REFERRED = "referred", _("Referred")
    INITIAL_CHECK = "initial_check", _("Initial check")
    CONSENT_PENDING = "consent_pending", _("Awaiting consent")
    JOINT_ASSESSMENT = "joint_assessment", _("Joint assessment")
    THREAT_ASSESSED = "threat_assessed", _("Threat assessed")
    LOCAL_INTAKE = "local_intake", _("Local intake")
    HANDED_OVER_REGIONAL = "handed_over_regional", _("Handed over: police region")
    HANDED_OVER_NATIONAL = "handed_over_national", _("Handed over: national programme")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")
    AGREEMENT_SIGNED = "agreement_signed", _("Agreement signed")
    ACTIVE = "active", _("Active")
    REVIEW = "review", _("Review")
    CLOSED = "closed", _("Closed")


# The local programme: the states a case above LOW must never be in.
LOCAL_STATES = (Status.LOCAL_INTAKE, Status.AGREEMENT_SIGNED, Status.ACTIVE, Status.REVIEW)
HANDED_OVER_STATES = (Status.HANDED_OVER_REGIONAL, Status.HANDED_OVER_NATIONAL)
FINAL_STATES = (Status.CLOSED, Status.NOT_ELIGIBLE)
OPEN_STATES = [s for s in Status.values if s not in FINAL_STATES]
# Where a (re)assessment may be recorded: from the joint assessment on, while open.
ASSESSABLE_STATES = (
    Status.JOINT_ASSESSMENT,
    Status.THREAT_ASSESSED,
    *LOCAL_STATES,
    *HANDED_OVER_STATES,
)
# Where the police check (a search of police systems) may be recorded.
POLICE_CHECK_STATES = ASSESSABLE_STATES

# The programme's close reasons (a subset of Case.CloseReason, checked by the close service).
CLOSE_REASONS = (
    Case.CloseReason.NOT_ELIGIBLE,
    Case.CloseReason.COMPLETED,
    Case.CloseReason.RELAPSE,
    Case.CloseReason.LEFT_VOLUNTARILY,
    Case.CloseReason.MOVED,
    Case.CloseReason.HANDED_OVER,
)


class ReferralSource(models.TextChoices):
    POLICE = "police", _("Police")
    PROBATION = "probation", _("Probation service")
    SOCIAL_SERVICES = "social_services", _("Social services")
    SCHOOL = "school", _("School")
    NGO = "ngo", _("Non-governmental organisation")
    SELF = "self", _("The person")


# --- Routing: what an assessment means ---------------------------------------------------------


class Route(models.TextChoices):
    LOCAL = "local", _("Local programme")
    REGIONAL = "regional", _("Police region (defector coordinator, personal security)")
    NATIONAL = "national", _("National programme")


ROUTE_RANK = {Route.LOCAL: 0, Route.REGIONAL: 1, Route.NATIONAL: 2}


class Level(models.TextChoices):
    LOW = "low", _("Low")
    ELEVATED = "elevated", _("Elevated")
    HIGH = "high", _("High")


LEVEL_RANK = {Level.LOW: 0, Level.ELEVATED: 1, Level.HIGH: 2}


class FirstRouting(models.TextChoices):
    """Where the case went first (the statistics' routing table)."""

    LOCAL = "local", _("Local intake")
    REGIONAL = "regional", _("Handed over: police region")
    NATIONAL = "national", _("Handed over: national programme")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")


def route_of(assessment: ThreatAssessment | None) -> str:
    """Where an assessment sends the case ('' without one)."""
    if assessment is None:
        return ""
    if assessment.evidence_person or assessment.national_programme:
        return Route.NATIONAL
    return Route.LOCAL if assessment.level == Level.LOW else Route.REGIONAL


def severity(assessment: ThreatAssessment) -> tuple[int, int]:
    return ROUTE_RANK[route_of(assessment)], LEVEL_RANK[assessment.level]


def lowers(new: ThreatAssessment, current: ThreatAssessment | None) -> bool:
    """Whether ``new`` is a lowering of ``current`` (which then needs a police approval)."""
    return current is not None and severity(new) < severity(current)


def current_assessment(case) -> ThreatAssessment | None:
    """The assessment in force (the last approved one)."""
    return case.assessments.filter(state=ThreatAssessment.State.IN_FORCE).first()


def pending_lowering(case) -> ThreatAssessment | None:
    return case.assessments.filter(state=ThreatAssessment.State.PENDING).first()


def _next_review_reached(case, today: datetime.date | None, *, passed: bool) -> bool:
    today = today or timezone.localdate()
    assessment = current_assessment(case)
    if case.status in FINAL_STATES or assessment is None:
        return False
    return assessment.next_review < today if passed else assessment.next_review <= today


def reassessment_due(case, *, today: datetime.date | None = None) -> bool:
    """The assessment in force has passed its next review date (an open case)."""
    return _next_review_reached(case, today, passed=True)


def reassessment_falls_due(case, *, today: datetime.date | None = None) -> bool:
    """The assessment in force has reached its next review date (an open case): the
    reassessment task is due from that morning (``reassessment_due`` is past it)."""
    return _next_review_reached(case, today, passed=False)


# --- Who may take a transition (django-fsm ``permission``) ----------------------------------


def police_assessor(case, user) -> bool:
    """Police assess the threat: the team's police contact officer (kontaktpolis), or a
    defector coordinator (avhopparsamordnare) who works for the police."""
    if not policy.is_police(user):
        return False
    return coordinator(case, user) or (
        member_role(case, user) == CaseMembership.Role.POLICE_CONTACT
        and user.groups.filter(name=roles.POLICE_CONTACT).exists()
    )


def police_coordinator(case, user) -> bool:
    """A defector coordinator of the police: approves a lowered threat level."""
    return policy.is_police(user) and coordinator(case, user)


def lowering_approver(case, user) -> bool:
    """A police defector coordinator who is not the assessor of the pending lowering."""
    pending = pending_lowering(case)
    return (
        pending is not None and pending.assessed_by_id != user.pk and police_coordinator(case, user)
    )


def router(case, user) -> bool:
    """Routing follows an assessment: the police assessor or a coordinator runs it."""
    return coordinator(case, user) or police_assessor(case, user)


def handler(case, user) -> bool:
    """Closing: the coordinator or the lead locally; the police handlers once handed over."""
    if case.status in HANDED_OVER_STATES:
        return police_assessor(case, user)
    return lead_or_coordinator(case, user)


def adds_actions(case, user) -> bool:
    """Support actions: on a case in the local programme or handed over; on an open
    support case, anyone on it but the police."""
    if isinstance(case, DefectorSupportCase):
        return case.status == SupportStatus.OPEN and not policy.is_police(user)
    return case.status in (*LOCAL_STATES, *HANDED_OVER_STATES)


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def involved_organisations(case) -> set[int]:
    """Every agency involved: the case's owner and the organisation of each team member."""
    team = case.memberships.filter(valid_to__isnull=True).values_list(
        "user__organisation_id", flat=True
    )
    return {case.owner_organisation_id, *(org for org in team if org is not None)}


def _written_consents_cover_all(case) -> bool:
    state = policy.consent_state(case)
    if not state.complete or not involved_organisations(case) <= state.organisations:
        return False
    live = case.consents.filter(withdrawn_at__isnull=True, decision=Consent.Decision.GIVEN)
    return not live.exclude(form=Consent.Form.WRITTEN).exists()


@guard(
    _(
        "The person's written consent (and, under 18, every guardian's) must cover every "
        "agency involved."
    )
)
def written_consent_all_agencies(case) -> bool:
    return _written_consents_cover_all(case)


@guard(_("No partial or refused consent is recorded."))
def consent_partial(case) -> bool:
    """A consent is recorded but does not cover every agency in writing, or was refused."""
    if not case.consents.exists():
        return False
    return not _written_consents_cover_all(case)


@guard(_("The police check of police systems has not been recorded."))
def police_check_recorded(case) -> bool:
    return case.police_checked_at is not None


@guard(_("No threat assessment is in force."))
def assessment_in_force(case) -> bool:
    return current_assessment(case) is not None


def _route_guard(route: str, message):
    @guard(message)
    def routed(case) -> bool:
        return route_of(current_assessment(case)) == route

    routed.__name__ = f"routed_{route}"
    return routed


routed_local = _route_guard(
    Route.LOCAL,
    _("Only a LOW threat level (not an evidence person, not national) is for the local programme."),
)
routed_regional = _route_guard(
    Route.REGIONAL, _("Only an ELEVATED or HIGH threat level is handed over to the police region.")
)
routed_national = _route_guard(
    Route.NATIONAL,
    _("Only an evidence person or a national-programme case is handed over nationally."),
)


@guard(_("The person's accepted conditions (no crime, drug-free, drug tests) are not recorded."))
def conditions_accepted(case) -> bool:
    return case.conditions_accepted_at is not None


@guard(_("Social services have not decided on support."))
def support_decided(case) -> bool:
    return case.decisions.filter(
        agency=Organisation.Kind.SOCIAL_SERVICES, decision=CaseDecision.Decision.START
    ).exists()


consents_complete = with_message(common_consents_complete, _("The consents are not complete."))


# --- The case and its state machine -------------------------------------------------------------


class DefectorCase(ConcurrentTransitionMixin, Case):
    """A defector case. Free text is encrypted under the case's own data key (ADR 0023)."""

    Status = Status

    status = status_field(Status, default=Status.REFERRED)
    referral_source = models.CharField(
        _("referred by"), max_length=20, choices=ReferralSource.choices
    )
    referral_reason = EncryptedTextField(_("reason for the referral"))
    check_note = EncryptedTextField(_("initial check"))
    police_checked_at = models.DateTimeField(_("police check recorded"), null=True, blank=True)
    police_checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    police_check_note = EncryptedTextField(_("police check"))
    conditions_accepted_at = models.DateTimeField(_("conditions accepted"), null=True, blank=True)
    # Set when the case leaves the local programme: from then on the policy closes it
    # to every local (non-police) user except for the fact of the hand-over.
    handed_over_at = models.DateTimeField(_("handed over"), null=True, blank=True)
    handed_over_to = models.CharField(
        _("handed over to"), max_length=10, choices=Route.choices, blank=True
    )
    # When the case passed its stages (plain, for the steering group's statistics; the
    # timeline has the same moments, these keep them aggregable by index).
    consented_at = models.DateTimeField(_("consent complete"), null=True, blank=True)
    consent_refused_at = models.DateTimeField(_("consent insufficient"), null=True, blank=True)
    assessed_at = models.DateTimeField(_("threat first assessed"), null=True, blank=True)
    assessed_level = models.CharField(
        _("first threat level"), max_length=10, choices=Level.choices, blank=True
    )
    routed_at = models.DateTimeField(_("first routed"), null=True, blank=True)
    routed_to = models.CharField(
        _("first routing"), max_length=20, choices=FirstRouting.choices, blank=True
    )
    started_at = models.DateTimeField(_("local programme started"), null=True, blank=True)

    ENCRYPTED_FIELDS = (
        *Case.ENCRYPTED_FIELDS,
        "referral_reason",
        "check_note",
        "police_check_note",
    )

    class Meta:
        verbose_name = _("defector case")
        verbose_name_plural = _("defector cases")
        indexes = [
            models.Index(fields=["consented_at"], name="defectorcase_consented_idx"),
            models.Index(fields=["routed_at"], name="defectorcase_routed_idx"),
            # Every stage moment the statistics count has an index: the running month is
            # counted live by each moment's range (ADR 0037, session 18).
            models.Index(fields=["consent_refused_at"], name="defectorcase_refused_idx"),
            models.Index(fields=["assessed_at"], name="defectorcase_assessed_idx"),
            models.Index(fields=["started_at"], name="defectorcase_started_idx"),
        ]

    def _routed(self, route: str) -> None:
        """The first routing of the case (a re-routing later leaves it as it was)."""
        if self.routed_at is None:
            self.routed_at = timezone.now()
            self.routed_to = route

    def _close_not_eligible(self) -> None:
        """Not for the programme: the case closes (its first routing, too)."""
        close_case(self, Case.CloseReason.NOT_ELIGIBLE)
        self._routed(FirstRouting.NOT_ELIGIBLE)

    def _hand_over(self, route: str) -> None:
        """The case goes to the police region or the national programme (``route``): the
        police handle it from now on, and the local review date no longer applies."""
        self.handed_over_at = self.handed_over_at or timezone.now()
        self.handed_over_to = route
        self.review_date = None
        self._routed(FirstRouting(route))

    # Initial check -----------------------------------------------------------------------

    @step(Status.REFERRED, Status.INITIAL_CHECK, _("Start the initial check"), by=coordinator)
    def begin_check(self) -> None:
        """The defector coordinator takes the referral up."""

    @step(
        Status.INITIAL_CHECK, Status.CONSENT_PENDING, _("Accept: ask for consent"), by=coordinator
    )
    @when(has_lead, has_police_contact)
    def accept(self) -> None:
        """Motivated, a threat exists: the team asks for written consent."""

    @step(Status.INITIAL_CHECK, Status.NOT_ELIGIBLE, _("Not eligible"), by=coordinator)
    def reject(self) -> None:
        self._close_not_eligible()

    # Consent -----------------------------------------------------------------------------

    @step(
        Status.CONSENT_PENDING,
        Status.JOINT_ASSESSMENT,
        _("Consent complete: joint assessment"),
        by=social_services_team,
    )
    @when(written_consent_all_agencies)
    def consents_given(self) -> None:
        """Written consent covers every agency: police may now search their systems."""
        self.consented_at = timezone.now()

    @step(
        Status.CONSENT_PENDING,
        Status.NOT_ELIGIBLE,
        _("Not eligible: partial or refused consent"),
        by=social_services_team,
    )
    @when(consent_partial)
    def consent_insufficient(self) -> None:
        """Leaving an agency out of the consent rules the method out."""
        self._close_not_eligible()
        self.consent_refused_at = self.closed_at

    # Threat assessment and routing --------------------------------------------------------

    @step(Status.JOINT_ASSESSMENT, Status.THREAT_ASSESSED, _("Threat assessed"), by=police_assessor)
    @when(police_check_recorded, assessment_in_force)
    def assess(self) -> None:
        """The police recorded the check and the threat assessment."""
        if self.assessed_at is None:
            self.assessed_at = timezone.now()
            self.assessed_level = current_assessment(self).level

    @step(
        [Status.THREAT_ASSESSED, *HANDED_OVER_STATES],
        Status.LOCAL_INTAKE,
        _("Route to the local programme"),
        by=router,
    )
    @when(routed_local)
    def route_local(self) -> None:
        """LOW threat: the local defector coordinator with social services."""
        self.handed_over_at = None
        self.handed_over_to = ""
        self._routed(FirstRouting.LOCAL)

    @step(
        [Status.THREAT_ASSESSED, *LOCAL_STATES, Status.HANDED_OVER_NATIONAL],
        Status.HANDED_OVER_REGIONAL,
        _("Hand over to the police region"),
        by=router,
    )
    @when(routed_regional)
    def hand_over_regional(self) -> None:
        self._hand_over(Route.REGIONAL)

    @step(
        [Status.THREAT_ASSESSED, *LOCAL_STATES, Status.HANDED_OVER_REGIONAL],
        Status.HANDED_OVER_NATIONAL,
        _("Hand over to the national programme"),
        by=router,
    )
    @when(routed_national)
    def hand_over_national(self) -> None:
        self._hand_over(Route.NATIONAL)

    # The local programme -------------------------------------------------------------------

    @step(Status.LOCAL_INTAKE, Status.AGREEMENT_SIGNED, _("Agreement signed"), by=coordinator)
    @when(routed_local, conditions_accepted, support_decided, consents_complete)
    def sign_agreement(self) -> None:
        """Conditions accepted (no crime, drug-free, drug tests) and support decided."""

    @step(Status.AGREEMENT_SIGNED, Status.ACTIVE, _("Start the programme"), by=coordinator)
    @when(routed_local, review_date_ahead)
    def activate(self) -> None:
        """The support plan is under way until the review date."""
        self.started_at = self.started_at or timezone.now()

    @step(Status.ACTIVE, Status.REVIEW, _("Start the review"), by=lead_or_coordinator)
    @when(review_date_reached)
    def begin_review(self) -> None:
        """The review date has come."""

    @step(
        Status.REVIEW, Status.ACTIVE, _("Continue with a new review date"), by=lead_or_coordinator
    )
    @when(routed_local, review_date_ahead, consents_complete)
    def continue_case(self) -> None:
        """The review decided to go on."""

    # Closing -------------------------------------------------------------------------------

    close = closing_transition(OPEN_STATES, Status.CLOSED, by=handler)


class ThreatAssessment(models.Model):
    """A police threat assessment of a defector case: level, basis, validity, next review.

    One is in force at a time. A new assessment that does not lower the level
    replaces it at once; a lowering waits (``pending``) until a police defector
    coordinator other than the assessor approves it.
    """

    Level = Level

    class State(models.TextChoices):
        IN_FORCE = "in_force", _("In force")
        PENDING = "pending", _("Lowering awaiting approval")
        SUPERSEDED = "superseded", _("Superseded")
        REJECTED = "rejected", _("Lowering rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(DefectorCase, on_delete=models.CASCADE, related_name="assessments")
    level = models.CharField(_("threat level"), max_length=10, choices=Level.choices)
    evidence_person = models.BooleanField(_("evidence person (bevisperson)"), default=False)
    national_programme = models.BooleanField(_("national programme case"), default=False)
    basis = EncryptedTextField(_("basis of the assessment"))
    valid_until = models.DateField(_("valid until"))
    next_review = models.DateField(_("next reassessment"))
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assessed_at = models.DateTimeField(_("assessed"), default=timezone.now, editable=False)
    state = models.CharField(_("state"), max_length=10, choices=State.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("approved or rejected"), null=True, blank=True)

    ENCRYPTED_FIELDS = ("basis",)

    class Meta:
        verbose_name = _("threat assessment")
        verbose_name_plural = _("threat assessments")
        ordering = ["-assessed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(state="in_force"),
                name="threatassessment_one_in_force",
            ),
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(state="pending"),
                name="threatassessment_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"ThreatAssessment {self.pk}"


class SupportStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class DefectorSupportCase(ConcurrentTransitionMixin, Case):
    """Social services' support case for a defector whose case went to the police region.

    Owned by social services, with the social-services members of the handed-over
    case on its team; it holds the support actions (housing, work, treatment,
    debt …) and a link to the handed-over case, never its threat data.
    """

    status = status_field(SupportStatus, default=SupportStatus.OPEN)

    class Meta:
        verbose_name = _("defector support case")
        verbose_name_plural = _("defector support cases")

    close = closing_transition(SupportStatus.OPEN, SupportStatus.CLOSED, by=lead_or_coordinator)


# --- The viewflow process -------------------------------------------------------------------


class DefectorProcess(ObjectProcess):
    """The viewflow process of a defector case (a case returned to the local programme
    after a hand-over gets a new one)."""

    case = models.ForeignKey(
        DefectorCase, on_delete=models.PROTECT, null=True, blank=True, related_name="processes"
    )

    class Meta(ObjectProcess.Meta):
        verbose_name = _("defector process")
        verbose_name_plural = _("defector processes")
