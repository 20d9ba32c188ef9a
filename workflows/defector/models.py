"""Defector programme (avhopparverksamhet): the case's state machine, the threat
assessment, routing by threat level and the flow, top-down.

Someone who wants to leave organised crime is referred (by police, probation,
social services, a school, an NGO or themselves; no age limit). The defector
coordinator makes the initial check and forms the team; the lead social worker
records the person's **written** consent covering every agency involved (a
partial consent rules the method out); only then may the police search their
own systems (the recorded police check) and assess the threat. The assessment
routes the case (the agreement: the local defector coordinator handles LOW
threat):

* LOW → ``local_intake``: the local programme (the defector coordinator with
  social services): conditions accepted, social services' support decision,
  agreement, ``active`` ⇄ ``review``;
* ELEVATED / HIGH → ``handed_over_regional`` (the police region's defector
  coordinator and the personal-security unit); social services keep a linked
  support case (:class:`DefectorSupportCase`);
* an evidence person (bevisperson) or a national-programme case →
  ``handed_over_national``: never the local programme.

A reassessment that raises the level re-routes at once (and cuts local access,
``casework.policy.defector_local_access_cut``); one that lowers it waits for a
police coordinator's approval. The reassessment on the assessment's next review
date and that approval are tasks of :class:`ThreatReviewFlow`, which runs beside
the case's own process until the case is closed. ``threat_assessed`` is passed
through in the assessment's transaction (routing follows the level; ADR 0008).
Every routing step is an FSM transition whose guards re-check the assessment in
force, run through ``casework.services.cases.transition``. The writes with sealed text (the
assessment's basis, the police check, the support case) are in
``workflows.defector.services``.

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
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from viewflow import this
from viewflow.workflow import flow
from viewflow.workflow.lock import select_for_update_lock
from viewflow.workflow.models import Process

from casework import policy, roles
from casework.fields import EncryptedTextField
from casework.models import Case, CaseDecision, CaseMembership, Consent, Organisation


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


def reassessment_due(case, *, today: datetime.date | None = None) -> bool:
    """The assessment in force has passed its next review date (an open case)."""
    today = today or timezone.localdate()
    assessment = current_assessment(case)
    return (
        case.status not in FINAL_STATES
        and assessment is not None
        and assessment.next_review < today
    )


# --- Who may take a transition (django-fsm ``permission``) ----------------------------------


def _member_role(case, user) -> str | None:
    membership = policy.team_membership(user, case)
    return membership.role if membership else None


def coordinator(case, user) -> bool:
    return policy.coordinates(user, case)


def lead_or_coordinator(case, user) -> bool:
    return coordinator(case, user) or _member_role(case, user) == CaseMembership.Role.LEAD


def social_services_team(case, user) -> bool:
    return coordinator(case, user) or (
        _member_role(case, user) is not None
        and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES
    )


def police_assessor(case, user) -> bool:
    """Police assess the threat: the team's police contact officer (kontaktpolis), or a
    defector coordinator (avhopparsamordnare) who works for the police."""
    if not policy.is_police(user):
        return False
    return coordinator(case, user) or (
        _member_role(case, user) == CaseMembership.Role.POLICE_CONTACT
        and user.groups.filter(name=roles.POLICE_CONTACT).exists()
    )


def police_coordinator(case, user) -> bool:
    """A defector coordinator of the police: approves a lowered threat level."""
    return policy.is_police(user) and coordinator(case, user)


def router(case, user) -> bool:
    """Routing follows an assessment: the police assessor or a coordinator runs it."""
    return coordinator(case, user) or police_assessor(case, user)


def handler(case, user) -> bool:
    """Closing: the coordinator or the lead locally; the police handlers once handed over."""
    if case.status in HANDED_OVER_STATES:
        return police_assessor(case, user)
    return lead_or_coordinator(case, user)


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def _guard(message):
    def decorate(func):
        func.message = message
        return func

    return decorate


@_guard(_("Appoint a lead social worker to the team first."))
def has_lead(case) -> bool:
    return case.memberships.filter(role=CaseMembership.Role.LEAD, valid_to__isnull=True).exists()


@_guard(_("A police contact officer must be on the team."))
def has_police_contact(case) -> bool:
    return case.memberships.filter(
        role=CaseMembership.Role.POLICE_CONTACT, valid_to__isnull=True
    ).exists()


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


@_guard(
    _(
        "The person's written consent (and, under 18, every guardian's) must cover every "
        "agency involved."
    )
)
def written_consent_all_agencies(case) -> bool:
    return _written_consents_cover_all(case)


@_guard(_("No partial or refused consent is recorded."))
def consent_partial(case) -> bool:
    """A consent is recorded but does not cover every agency in writing, or was refused."""
    if not case.consents.exists():
        return False
    return not _written_consents_cover_all(case)


@_guard(_("The police check of police systems has not been recorded."))
def police_check_recorded(case) -> bool:
    return case.police_checked_at is not None


@_guard(_("No threat assessment is in force."))
def assessment_in_force(case) -> bool:
    return current_assessment(case) is not None


def _route_guard(route: str, message):
    @_guard(message)
    def guard(case) -> bool:
        return route_of(current_assessment(case)) == route

    guard.__name__ = f"routed_{route}"
    return guard


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


@_guard(_("The person's accepted conditions (no crime, drug-free, drug tests) are not recorded."))
def conditions_accepted(case) -> bool:
    return case.conditions_accepted_at is not None


@_guard(_("Social services have not decided on support."))
def support_decided(case) -> bool:
    return case.decisions.filter(
        agency=Organisation.Kind.SOCIAL_SERVICES, decision=CaseDecision.Decision.START
    ).exists()


@_guard(_("Set a review date in the future."))
def review_date_ahead(case) -> bool:
    return case.review_date is not None and case.review_date > timezone.localdate()


@_guard(_("The review date has not been reached yet."))
def review_date_reached(case) -> bool:
    return case.review_date is not None and case.review_date <= timezone.localdate()


@_guard(_("The consents are not complete."))
def consents_complete(case) -> bool:
    return policy.consent_state(case).complete


# --- The case and its state machine -------------------------------------------------------------


class DefectorCase(ConcurrentTransitionMixin, Case):
    """A defector case. Free text is encrypted under the person's data key."""

    Status = Status

    status = FSMField(
        _("status"), default=Status.REFERRED, choices=Status.choices, protected=True, db_index=True
    )
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

    ENCRYPTED_FIELDS = ("close_note", "referral_reason", "check_note", "police_check_note")

    class Meta:
        verbose_name = _("defector case")
        verbose_name_plural = _("defector cases")
        indexes = [
            models.Index(fields=["consented_at"], name="defectorcase_consented_idx"),
            models.Index(fields=["routed_at"], name="defectorcase_routed_idx"),
        ]

    def _routed(self, route: str) -> None:
        """The first routing of the case (a re-routing later leaves it as it was)."""
        if self.routed_at is None:
            self.routed_at = timezone.now()
            self.routed_to = route

    # Initial check -----------------------------------------------------------------------

    @transition(
        status,
        source=Status.REFERRED,
        target=Status.INITIAL_CHECK,
        permission=coordinator,
        custom={"label": _("Start the initial check")},
    )
    def begin_check(self) -> None:
        """The defector coordinator takes the referral up."""

    @transition(
        status,
        source=Status.INITIAL_CHECK,
        target=Status.CONSENT_PENDING,
        permission=coordinator,
        conditions=[has_lead, has_police_contact],
        custom={"label": _("Accept: ask for consent")},
    )
    def accept(self) -> None:
        """Motivated, a threat exists: the team asks for written consent."""

    @transition(
        status,
        source=Status.INITIAL_CHECK,
        target=Status.NOT_ELIGIBLE,
        permission=coordinator,
        custom={"label": _("Not eligible")},
    )
    def reject(self) -> None:
        self.close_reason = Case.CloseReason.NOT_ELIGIBLE
        self.closed_at = timezone.now()
        self._routed(FirstRouting.NOT_ELIGIBLE)

    # Consent -----------------------------------------------------------------------------

    @transition(
        status,
        source=Status.CONSENT_PENDING,
        target=Status.JOINT_ASSESSMENT,
        permission=social_services_team,
        conditions=[written_consent_all_agencies],
        custom={"label": _("Consent complete: joint assessment")},
    )
    def consents_given(self) -> None:
        """Written consent covers every agency: police may now search their systems."""
        self.consented_at = timezone.now()

    @transition(
        status,
        source=Status.CONSENT_PENDING,
        target=Status.NOT_ELIGIBLE,
        permission=social_services_team,
        conditions=[consent_partial],
        custom={"label": _("Not eligible: partial or refused consent")},
    )
    def consent_insufficient(self) -> None:
        """Leaving an agency out of the consent rules the method out."""
        self.close_reason = Case.CloseReason.NOT_ELIGIBLE
        self.closed_at = self.consent_refused_at = timezone.now()
        self._routed(FirstRouting.NOT_ELIGIBLE)

    # Threat assessment and routing --------------------------------------------------------

    @transition(
        status,
        source=Status.JOINT_ASSESSMENT,
        target=Status.THREAT_ASSESSED,
        permission=police_assessor,
        conditions=[police_check_recorded, assessment_in_force],
        custom={"label": _("Threat assessed")},
    )
    def assess(self) -> None:
        """The police recorded the check and the threat assessment."""
        if self.assessed_at is None:
            self.assessed_at = timezone.now()
            self.assessed_level = current_assessment(self).level

    @transition(
        status,
        source=[Status.THREAT_ASSESSED, *HANDED_OVER_STATES],
        target=Status.LOCAL_INTAKE,
        permission=router,
        conditions=[routed_local],
        custom={"label": _("Route to the local programme")},
    )
    def route_local(self) -> None:
        """LOW threat: the local defector coordinator with social services."""
        self.handed_over_at = None
        self.handed_over_to = ""
        self._routed(FirstRouting.LOCAL)

    @transition(
        status,
        source=[Status.THREAT_ASSESSED, *LOCAL_STATES, Status.HANDED_OVER_NATIONAL],
        target=Status.HANDED_OVER_REGIONAL,
        permission=router,
        conditions=[routed_regional],
        custom={"label": _("Hand over to the police region")},
    )
    def hand_over_regional(self) -> None:
        self.handed_over_at = self.handed_over_at or timezone.now()
        self.handed_over_to = Route.REGIONAL
        self.review_date = None
        self._routed(FirstRouting.REGIONAL)

    @transition(
        status,
        source=[Status.THREAT_ASSESSED, *LOCAL_STATES, Status.HANDED_OVER_REGIONAL],
        target=Status.HANDED_OVER_NATIONAL,
        permission=router,
        conditions=[routed_national],
        custom={"label": _("Hand over to the national programme")},
    )
    def hand_over_national(self) -> None:
        self.handed_over_at = self.handed_over_at or timezone.now()
        self.handed_over_to = Route.NATIONAL
        self.review_date = None
        self._routed(FirstRouting.NATIONAL)

    # The local programme -------------------------------------------------------------------

    @transition(
        status,
        source=Status.LOCAL_INTAKE,
        target=Status.AGREEMENT_SIGNED,
        permission=coordinator,
        conditions=[routed_local, conditions_accepted, support_decided, consents_complete],
        custom={"label": _("Agreement signed")},
    )
    def sign_agreement(self) -> None:
        """Conditions accepted (no crime, drug-free, drug tests) and support decided."""

    @transition(
        status,
        source=Status.AGREEMENT_SIGNED,
        target=Status.ACTIVE,
        permission=coordinator,
        conditions=[routed_local, review_date_ahead],
        custom={"label": _("Start the programme")},
    )
    def activate(self) -> None:
        """The support plan is under way until the review date."""
        self.started_at = self.started_at or timezone.now()

    @transition(
        status,
        source=Status.ACTIVE,
        target=Status.REVIEW,
        permission=lead_or_coordinator,
        conditions=[review_date_reached],
        custom={"label": _("Start the review")},
    )
    def begin_review(self) -> None:
        """The review date has come."""

    @transition(
        status,
        source=Status.REVIEW,
        target=Status.ACTIVE,
        permission=lead_or_coordinator,
        conditions=[routed_local, review_date_ahead, consents_complete],
        custom={"label": _("Continue with a new review date")},
    )
    def continue_case(self) -> None:
        """The review decided to go on."""

    # Closing -------------------------------------------------------------------------------

    @transition(
        status,
        source=OPEN_STATES,
        target=Status.CLOSED,
        permission=handler,
        custom={"label": _("Close the case")},
    )
    def close(self, *, close_reason: str) -> None:
        self.close_reason = close_reason
        self.closed_at = timezone.now()
        self.review_date = None


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

    status = FSMField(
        _("status"),
        default=SupportStatus.OPEN,
        choices=SupportStatus.choices,
        protected=True,
        db_index=True,
    )

    class Meta:
        verbose_name = _("defector support case")
        verbose_name_plural = _("defector support cases")

    @transition(
        status,
        source=SupportStatus.OPEN,
        target=SupportStatus.CLOSED,
        permission=lead_or_coordinator,
        custom={"label": _("Close the case")},
    )
    def close(self, *, close_reason: str) -> None:
        self.close_reason = close_reason
        self.closed_at = timezone.now()
        self.review_date = None


def review_interval_days() -> int:
    return settings.SAMVERKAN.get("DEFECTOR_REVIEW_INTERVAL_DAYS", 90)


# --- The flow --------------------------------------------------------------------------------


class DefectorProcess(Process):
    """The viewflow process of a defector case (a case returned to the local programme
    after a hand-over gets a new one)."""

    case = models.ForeignKey(
        DefectorCase, on_delete=models.PROTECT, null=True, blank=True, related_name="processes"
    )

    class Meta:
        verbose_name = _("defector process")
        verbose_name_plural = _("defector processes")
        ordering = ["-created"]


def _member(role):
    def owner(activation):
        from workflows.common.nodes import team_member

        return team_member(activation.process.case, role)

    return owner


def _in_state(*states):
    return lambda activation: activation.process.case.status in states


def _review_time(activation) -> datetime.datetime:
    review = activation.process.case.review_date or timezone.localdate()
    hour = settings.SAMVERKAN["REVIEW_TASK_HOUR"]
    return timezone.make_aware(datetime.datetime.combine(review, datetime.time(hour)))


from workflows.common.nodes import Step  # noqa: E402
from workflows.defector import views  # noqa: E402


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


class DefectorFlow(flow.Flow):
    """Who does each step of a defector case, in order."""

    process_class = DefectorProcess
    process_title = _("Defector case")
    process_description = _("Defector programme: support and protection for leaving crime.")
    process_summary_template = (
        "{{ process.case.reference }} · {{ process.case.get_status_display }}"
    )
    lock_impl = select_for_update_lock
    coordinator_permission = "casework.coordinate_defector_cases"

    # A referral from anyone with a case role (police, social services, school …).
    start = (
        flow.Start(views.ReferralView.as_view())
        .Annotation(title=_("New defector referral"))
        .Permission("casework.use_task_inbox")
        .Next(this.check)
    )
    # Another programme refers the person (a GVI member who accepted the offer of help,
    # a SIG case handed to the defector programme): ``refer_linked`` starts here.
    start_linked = flow.StartHandle(this.start_case).Next(this.check)
    # A case back in the local programme after an approved lowering.
    start_local = flow.StartHandle(this.start_case).Next(this.intake)
    # The defector coordinators' queue: the initial check and the team.
    check = (
        CaseStep(views.InitialCheckView.as_view(), allowed=local_handler)
        .Annotation(title=_("Initial check of the referral"))
        .Permission("casework.coordinate_defector_cases")
        .Next(this.after_check)
    )
    after_check = flow.If(_in_state(Status.CONSENT_PENDING)).Then(this.consent).Else(this.end)
    # The lead social worker records the written consent covering every agency.
    consent = (
        Step(views.ConsentView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Record written consent"))
        .Assign(_member(CaseMembership.Role.LEAD))
        .Permission("casework.coordinate_defector_cases")
        .Next(this.after_consent)
    )
    after_consent = (
        flow.If(_in_state(Status.JOINT_ASSESSMENT)).Then(this.assess_threat).Else(this.end)
    )
    # The police contact officer: the police check (after consent), then the threat level.
    assess_threat = (
        Step(views.AssessmentView.as_view(), team_role=CaseMembership.Role.POLICE_CONTACT)
        .Annotation(title=_("Police check and threat assessment"))
        .Assign(_member(CaseMembership.Role.POLICE_CONTACT))
        .Permission("casework.coordinate_defector_cases")
        .Next(this.route)
    )
    # Routing by the assessment (the FSM's guards decided the state; the flow follows it).
    route = (
        flow.Switch()
        .Case(this.intake, _in_state(Status.LOCAL_INTAKE))
        .Case(this.handed_over, _in_state(*HANDED_OVER_STATES))
        .Default(this.end)
    )
    # The local programme: support decision, conditions, agreement, start.
    intake = (
        CaseStep(views.IntakeView.as_view(), allowed=local_handler)
        .Annotation(title=_("Local intake and agreement"))
        .Permission("casework.coordinate_defector_cases")
        .Next(this.after_intake)
    )
    after_intake = flow.If(_in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.end)
    wait_for_review = flow.Timer(_review_time).Next(this.review)
    review = (
        Step(views.ReviewView.as_view(), team_role=CaseMembership.Role.LEAD)
        .Annotation(title=_("Review the defector case"))
        .Assign(_member(CaseMembership.Role.LEAD))
        .Permission("casework.coordinate_defector_cases")
        .Next(this.after_review)
    )
    after_review = flow.If(_in_state(Status.ACTIVE)).Then(this.wait_for_review).Else(this.end)
    handed_over = flow.End()
    end = flow.End()

    def start_case(self, activation, case: DefectorCase) -> Process:
        activation.process.case = case
        return activation.process

    def has_view_permission(self, user, obj=None):
        if obj is not None:
            case = getattr(obj, "case", None)
            return case is not None and bool(policy.case_access(user, case))
        return policy.can_use_task_inbox(user)

    def has_manage_permission(self, user, obj=None):
        return False


# --- The threat review: reassessment on its date, approval of a lowering ------------------------


def reassessment_falls_due(case, *, today: datetime.date | None = None) -> bool:
    """The assessment in force has reached its next review date (an open case): the
    reassessment task is due from that morning (``reassessment_due`` is past it)."""
    today = today or timezone.localdate()
    assessment = current_assessment(case)
    return (
        case.status not in FINAL_STATES
        and assessment is not None
        and assessment.next_review <= today
    )


def lowering_approver(case, user) -> bool:
    """A police defector coordinator who is not the assessor of the pending lowering."""
    pending = pending_lowering(case)
    return (
        pending is not None and pending.assessed_by_id != user.pk and police_coordinator(case, user)
    )


def _police_reassessor(activation):
    """The team's police contact officer (in the kontaktpolis group) gets the reassessment;
    without one it waits in the defector coordinators' queue, where only a police
    coordinator can take it (``CaseStep``)."""
    from casework.services.cases import members

    case = activation.process.case
    for user in members(case, CaseMembership.Role.POLICE_CONTACT):
        if police_assessor(case, user):
            return user
    return None


def _reassessment_time(activation) -> datetime.datetime:
    """The morning of the next review date of the assessment in force."""
    assessment = current_assessment(activation.process.case)
    day = assessment.next_review if assessment else timezone.localdate()
    hour = settings.SAMVERKAN["REVIEW_TASK_HOUR"]
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def _lowering_awaits(activation) -> bool:
    case = activation.process.case
    return case.status not in FINAL_STATES and pending_lowering(case) is not None


def _assessment_kept(activation) -> bool:
    case = activation.process.case
    return case.status not in FINAL_STATES and current_assessment(case) is not None


def _falls_due(activation) -> bool:
    return reassessment_falls_due(activation.process.case)


class ThreatReviewFlow(flow.Flow):
    """The review cycle of a case's threat assessment, beside the case's own process (it
    runs whether the case is local or handed over, until it is closed).

    On the morning of the next review date of the assessment in force
    (``manage.py send_reminders`` fires due timers) the police reassess: the team's
    police contact officer, or a police defector coordinator from the queue. A
    reassessment goes through ``workflows.defector.services.assess_threat``: a raise
    re-routes at once, a lowering waits for the approval step of a police
    coordinator other than its assessor. Every assessment recorded outside this
    flow (the first one, one from the case page) starts the cycle anew
    (:func:`restart_threat_review`): the open step disappears and the timer
    follows the new date. Closing the case cancels the cycle.
    """

    process_class = DefectorProcess
    process_title = _("Threat review")
    process_description = _("Defector programme: reassessing the threat and approving a lowering.")
    process_summary_template = (
        "{{ process.case.reference }} · {{ process.case.get_status_display }}"
    )
    lock_impl = select_for_update_lock
    coordinator_permission = "casework.coordinate_defector_cases"

    start = flow.StartHandle(this.start_case).Next(this.next_step)
    next_step = (
        flow.Switch()
        .Case(this.approve_lowering, _lowering_awaits)
        .Case(this.wait_for_reassessment, _assessment_kept)
        .Default(this.end)
    )
    wait_for_reassessment = flow.Timer(_reassessment_time).Next(this.falls_due)
    falls_due = flow.If(_falls_due).Then(this.reassess).Else(this.next_step)
    reassess = (
        CaseStep(views.ReassessTaskView.as_view(), allowed=police_assessor)
        .Annotation(title=_("Reassess the threat"))
        .Assign(_police_reassessor)
        .Permission(roles.PERM_COORDINATE_DEFECTOR)
        .Next(this.next_step)
    )
    approve_lowering = (
        CaseStep(views.LoweringTaskView.as_view(), allowed=lowering_approver)
        .Annotation(title=_("Approve or reject the lowered threat level"))
        .Permission(roles.PERM_COORDINATE_DEFECTOR)
        .Next(this.next_step)
    )
    end = flow.End()

    def start_case(self, activation, case: DefectorCase) -> Process:
        activation.process.case = case
        return activation.process

    def has_view_permission(self, user, obj=None):
        if obj is not None:
            case = getattr(obj, "case", None)
            return case is not None and bool(policy.case_access(user, case))
        return policy.can_use_task_inbox(user)

    def has_manage_permission(self, user, obj=None):
        return False


# --- Services of this programme (the shared machinery does the writing) ----------------------


def _owner_organisation(user) -> Organisation:
    """Social services carry the main responsibility: the referrer's office or the only one."""
    from django.core.exceptions import ValidationError

    if user.organisation and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES:
        return user.organisation
    offices = list(
        Organisation.objects.filter(kind=Organisation.Kind.SOCIAL_SERVICES, is_active=True)[:2]
    )
    if len(offices) != 1:
        raise ValidationError(
            _("No single social services organisation is registered to lead the case.")
        )
    return offices[0]


def refer(*, user, person, source: str, reason: str, purpose: str) -> DefectorCase:
    """Open a defector case for ``person`` (no age limit)."""
    from django.core.exceptions import ValidationError

    from casework.services.cases import open_case

    if source not in ReferralSource.values:
        raise ValidationError({"source": ValidationError(_("Select a valid choice."))})
    case = DefectorCase(
        programme=Case.Programme.DEFECTOR,
        person=person,
        owner_organisation=_owner_organisation(user),
        referred_by=user,
        referring_organisation=user.organisation,
        referral_source=source,
    )
    return open_case(
        user=user, purpose=purpose, case=case, reason_field="referral_reason", reason=reason
    )


def refer_linked(*, user, from_case: Case, kind: str, reason: str, purpose: str) -> DefectorCase:
    """Refer the person of another programme's case to the defector programme, linked.

    Opens the defector case, starts its flow (the defector coordinators' initial
    check) and records the link, shown on both cases — all or nothing. The
    referral source is the referrer's organisation kind (police or social services).
    """
    from django.db import transaction

    from casework.services.cases import link_cases

    with transaction.atomic():
        case = refer(
            user=user,
            person=from_case.person,
            source=_referral_source(user),
            reason=reason,
            purpose=purpose,
        )
        DefectorFlow.start_linked.run(case=case)
        link_cases(
            user=user, from_case=from_case, to_case=case, kind=kind, reason=reason, purpose=purpose
        )
        case.refresh_from_db(fields=["version"])
    return case


def refer_from(*, user, person, reason: str, purpose: str, source: str = "") -> DefectorCase:
    """Refer ``person`` to the defector programme from something that is not a case (a GVI
    group member who accepted the offer of help and wants out).

    Opens the defector case and starts its flow, all or nothing; ``source`` (e.g.
    ``gvi_member:<id>``) goes on the new case's timeline so its page shows where it
    came from.
    """
    from django.db import transaction

    from casework.services.cases import record_source

    with transaction.atomic():
        case = refer(
            user=user, person=person, source=_referral_source(user), reason=reason, purpose=purpose
        )
        DefectorFlow.start_linked.run(case=case)
        if source:
            record_source(user=user, case=case, source=source, purpose=purpose)
        case.refresh_from_db(fields=["version"])
    return case


def _referral_source(user) -> str:
    """The referral source of a referral one of our users makes from another programme."""
    kind_of = user.organisation.kind if user.organisation else ""
    return {
        Organisation.Kind.POLICE: ReferralSource.POLICE,
        Organisation.Kind.SCHOOL: ReferralSource.SCHOOL,
    }.get(kind_of, ReferralSource.SOCIAL_SERVICES)


def _cancel_processes(case: DefectorCase, flow_class: type[flow.Flow] | None = None) -> None:
    """Cancel the case's open processes (of ``flow_class`` only, if given)."""
    processes = DefectorProcess.objects.filter(case=case, finished__isnull=True)
    if flow_class is not None:
        processes = processes.filter(flow_class=flow_class)
    for process in processes:
        process.flow_class.instance.cancel(process)


def _lock_processes(case: DefectorCase) -> None:
    """Lock the case's open processes before the case row (inside the caller's transaction).

    A task view holds its process's lock (viewflow's ``select_for_update_lock``) when it
    locks the case row; a write that may cancel processes (a re-route, a restarted
    threat review, closing) takes the same locks in the same order — processes first —
    so the two wait for each other instead of failing on a lock timeout.
    """
    list(
        DefectorProcess.objects.select_for_update()
        .filter(case=case, finished__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _follow_route(case: DefectorCase, previous_status: str) -> None:
    """Keep the case's process in step with a re-route: a case that left the local
    programme stops its local tasks; one that came back starts a new local intake.
    (The threat review runs on: see :func:`restart_threat_review`.)"""
    if case.status == previous_status:
        return
    if case.status in HANDED_OVER_STATES or case.status in FINAL_STATES:
        _cancel_processes(case, DefectorFlow)
    elif case.status == Status.LOCAL_INTAKE and previous_status in HANDED_OVER_STATES:
        _cancel_processes(case, DefectorFlow)
        DefectorFlow.start_local.run(case=case)


def restart_threat_review(case: DefectorCase) -> None:
    """Start the threat review anew after an assessment recorded outside it (the first
    one, one from the case page, a decision on a lowering from the case page): the
    open step or timer is cancelled; the new cycle waits for the next review date of
    the assessment in force, or asks for the approval of a pending lowering. A closed
    case has none. Runs inside the caller's transaction."""
    _cancel_processes(case, ThreatReviewFlow)
    if case.status not in FINAL_STATES and (
        current_assessment(case) is not None or pending_lowering(case) is not None
    ):
        ThreatReviewFlow.start.run(case=case)


def assess(*, user, case: DefectorCase, purpose: str, expected_version=None, **values):
    """The first threat assessment (the joint assessment's task): recorded and routed
    (``workflows.defector.services.assess_threat``); its review cycle starts."""
    from django.db import transaction

    from workflows.defector import services

    with transaction.atomic():
        assessment = services.assess_threat(
            user=user, case=case, purpose=purpose, expected_version=expected_version, **values
        )
        restart_threat_review(case)
    return assessment


def _reassess(*, user, case, purpose, expected_version, values):
    from workflows.defector import services

    _lock_processes(case)
    previous = case.status
    assessment = services.assess_threat(
        user=user, case=case, purpose=purpose, expected_version=expected_version, **values
    )
    _follow_route(case, previous)
    return assessment


def reassess(*, user, case: DefectorCase, purpose: str, expected_version=None, **values):
    """A reassessment from the case page: recorded, re-routed, the case's process kept in
    step; the threat review starts anew from it."""
    from django.db import transaction

    with transaction.atomic():
        assessment = _reassess(
            user=user, case=case, purpose=purpose, expected_version=expected_version, values=values
        )
        restart_threat_review(case)
    return assessment


def record_reassessment(*, user, case: DefectorCase, purpose: str, expected_version=None, **values):
    """The reassessment task of the threat review: recorded and re-routed like any other;
    the review flow itself goes on (to the approval of a lowering, or the next date)."""
    from django.db import transaction

    with transaction.atomic():
        return _reassess(
            user=user, case=case, purpose=purpose, expected_version=expected_version, values=values
        )


def _decide_lowering(*, user, case, purpose, approve, note):
    from workflows.defector import services

    _lock_processes(case)
    previous = case.status
    assessment = services.decide_lowering(
        user=user, case=case, purpose=purpose, approve=approve, note=note
    )
    _follow_route(case, previous)
    return assessment


def decide_lowering(*, user, case: DefectorCase, purpose: str, approve: bool, note=None):
    """A police coordinator approves (re-routing at once) or rejects a pending lowering
    from the case page; the threat review starts anew from the outcome."""
    from django.db import transaction

    with transaction.atomic():
        assessment = _decide_lowering(
            user=user, case=case, purpose=purpose, approve=approve, note=note
        )
        restart_threat_review(case)
    return assessment


def approve_or_reject_lowering(*, user, case: DefectorCase, purpose: str, approve: bool, note=None):
    """The approval task of the threat review (the review flow goes on by itself)."""
    from django.db import transaction

    with transaction.atomic():
        return _decide_lowering(user=user, case=case, purpose=purpose, approve=approve, note=note)


def stop_threat_review(case: DefectorCase) -> None:
    """A closed case has no threat review: its open step or timer is cancelled."""
    _cancel_processes(case, ThreatReviewFlow)


def close(*, user, case: DefectorCase, purpose: str, reason: str, note=None, expected_version=None):
    """Close the case: every open process of it (its own, its threat review) is cancelled."""
    from django.db import transaction

    from workflows.defector import services

    with transaction.atomic():
        _lock_processes(case)
        services.close_defector_case(
            user=user,
            case=case,
            purpose=purpose,
            reason=reason,
            note=note,
            expected_version=expected_version,
        )
        _cancel_processes(case)
    return case
