"""SSPF — skola, socialtjänst, polis, fritid: the case's state machine and its flow, top-down.

Someone at a school, in social services, in the police or at a leisure centre
raises a concern about a child or young person (default 10-18,
``SAMVERKAN["SSPF_AGE_RANGE"]``). The SSPF coordinator assesses it, with a risk
assessment; every guardian gives **written** consent, and from
``SAMVERKAN["SSPF_OWN_CONSENT_AGE"]`` (default 15) the young person too; a
mapping conversation with the family follows; a network meeting adopts the
commitment plan (åtagandeplan: goals, and actions saying who does what when);
recurring follow-up meetings keep it going until the case closes with an
outcome reason.

* **Participation.** School and leisure staff see only the cases they are
  members of, and there only the plan and the school's and leisure's actions
  (``casework.policy.case_parts``). The police take part only once the case
  records a decision that they should (:class:`PoliceParticipation`, with its
  reason), and then only as far as the consents cover the police
  (``casework.policy.case_access``).
* **Anonymised case discussion.** Without consent the operational group may
  still discuss a situation, recorded without any personal data
  (:class:`AnonymisedDiscussion`: no person, free text refused when it holds
  anything like a personnummer), counted in statistics by its plain columns.
* **Operational group meetings** (:class:`OperationalMeeting`): the date, the
  organisations taking part, the agenda of cases (:class:`AgendaItem`, with the
  decision per case) and anonymised discussions.
* **Escalation** to SIG opens a linked SIG referral (through ``casework.programmes``)
  when the young person is within SIG's age range.

This module holds the models and the state machine (django-fsm-2: which states are
legal, who may take each transition and on which conditions); every transition goes
through ``casework.services.cases.transition``. The flow (viewflow: who does what
next) is in ``workflows/sspf/flow.py``, the programme's writes in ``services.py`` and
its reads (sealing and opening) in ``selectors.py``.

State diagram::

    concern_raised → assessment → consent_pending → mapping → network_meeting
        → plan_active ⇄ follow_up → closed     (every open state → closed)
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin

from casework import policy
from casework.fields import EncryptedTextField
from casework.fsm import status_field, step, when
from casework.models import Action, Case, Organisation, Person
from workflows.common.closing import closing_transition, consent_withdrawn_transition
from workflows.common.guards import age_within, coordinator, guard, with_message
from workflows.common.guards import consents_complete as common_consents_complete
from workflows.common.guards import review_date_ahead as common_review_date_ahead
from workflows.common.guards import review_date_reached as common_review_date_reached
from workflows.common.processes import ObjectProcess, process_of


class Status(models.TextChoices):
    CONCERN_RAISED = "concern_raised", _("Concern raised")
    ASSESSMENT = "assessment", _("Assessment")
    CONSENT_PENDING = "consent_pending", _("Awaiting consent")
    MAPPING = "mapping", _("Mapping conversation")
    NETWORK_MEETING = "network_meeting", _("Network meeting")
    PLAN_ACTIVE = "plan_active", _("Plan active")
    FOLLOW_UP = "follow_up", _("Follow-up")
    CLOSED = "closed", _("Closed")


OPEN_STATES = [s for s in Status.values if s != Status.CLOSED]
# The commitment plan is in force: members record their actions.
PLAN_STATES = (Status.PLAN_ACTIVE, Status.FOLLOW_UP)
# The organisations whose staff may raise a concern.
CONCERN_RAISERS = (
    Organisation.Kind.SCHOOL,
    Organisation.Kind.SOCIAL_SERVICES,
    Organisation.Kind.POLICE,
    Organisation.Kind.LEISURE,
)


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def within_age_range(person) -> bool:
    """The person's age today is within the SSPF age range."""
    return age_within(person, settings.SAMVERKAN["SSPF_AGE_RANGE"])


@guard(_("The young person's age is outside the SSPF age range."))
def age_in_range(case: SspfCase) -> bool:
    return within_age_range(case.person)


@guard(_("Record a risk assessment first."))
def risk_assessed(case: SspfCase) -> bool:
    return case.risk_assessments.exists()


consents_complete = with_message(
    common_consents_complete,
    _(
        "The consents are not complete: every guardian's written consent and, from the "
        "configured age, the young person's own."
    ),
)


@guard(_("Record the mapping conversation first."))
def mapping_recorded(case: SspfCase) -> bool:
    return case.mapping_note is not None and case.mapping_date is not None


@guard(_("Write the plan's goals first."))
def goals_written(case: SspfCase) -> bool:
    return case.plan_goals is not None


@guard(_("The plan needs at least one planned action."))
def has_planned_action(case: SspfCase) -> bool:
    return case.actions.exclude(status=Action.Status.CANCELLED).exists()


@guard(_("The plan has police actions, but no decision that the police take part."))
def police_actions_decided(case: SspfCase) -> bool:
    police_actions = (
        case.actions.exclude(status=Action.Status.CANCELLED)
        .filter(organisation__kind=Organisation.Kind.POLICE)
        .exists()
    )
    return not police_actions or policy.sspf_police_participates(case)


review_date_ahead = with_message(common_review_date_ahead, _("Set a follow-up date in the future."))
review_date_reached = with_message(
    common_review_date_reached, _("The follow-up date has not been reached yet.")
)


def note_consent_refused(case: SspfCase, close_reason: str) -> None:
    """A case closed for refused consent keeps the moment (the steering group's statistics)."""
    if close_reason == Case.CloseReason.CONSENT_REFUSED:
        case.consent_refused_at = case.closed_at


# --- The case and its state machine -------------------------------------------------------------


class SspfCase(ConcurrentTransitionMixin, Case):
    """An SSPF case. Free text is encrypted under the case's own data key (ADR 0023)."""

    Status = Status

    status = status_field(Status, default=Status.CONCERN_RAISED)
    concern = EncryptedTextField(_("concern"))
    mapping_note = EncryptedTextField(_("mapping conversation"))
    mapping_date = models.DateField(_("mapping conversation held"), null=True, blank=True)
    plan_goals = EncryptedTextField(_("goals of the commitment plan"))
    plan_adopted_at = models.DateTimeField(_("plan adopted"), null=True, blank=True)
    plan_adopted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # When the consents were complete or refused (plain, for the steering group's statistics).
    consented_at = models.DateTimeField(_("consents complete"), null=True, blank=True)
    consent_refused_at = models.DateTimeField(_("consent refused"), null=True, blank=True)

    ENCRYPTED_FIELDS = (*Case.ENCRYPTED_FIELDS, "concern", "mapping_note", "plan_goals")
    # From the mapping conversation on, the work rests on the consents.
    CONSENT_REQUIRED_STATES = (
        Status.MAPPING,
        Status.NETWORK_MEETING,
        Status.PLAN_ACTIVE,
        Status.FOLLOW_UP,
    )

    class Meta:
        verbose_name = _("SSPF case")
        verbose_name_plural = _("SSPF cases")
        # Every stage moment the statistics count: the running month is counted live by
        # each moment's range (ADR 0037, session 18).
        indexes = [
            models.Index(fields=["consented_at"], name="sspfcase_consented_idx"),
            models.Index(fields=["consent_refused_at"], name="sspfcase_refused_idx"),
            models.Index(fields=["plan_adopted_at"], name="sspfcase_plan_adopted_idx"),
        ]

    @step(Status.CONCERN_RAISED, Status.ASSESSMENT, _("Start the assessment"), by=coordinator)
    def begin_assessment(self) -> None:
        """The coordinator takes the concern up."""

    @step(Status.ASSESSMENT, Status.CONSENT_PENDING, _("Accept: ask for consent"), by=coordinator)
    @when(age_in_range, risk_assessed)
    def request_consent(self) -> None:
        """Assessed and within the age range: the guardians (and the young person) are asked."""

    @step(Status.CONSENT_PENDING, Status.MAPPING, _("Consents complete"), by=coordinator)
    @when(age_in_range, consents_complete)
    def consents_given(self) -> None:
        """The consents are in place: the mapping conversation with the family."""
        self.consented_at = timezone.now()

    @step(
        Status.MAPPING,
        Status.NETWORK_MEETING,
        _("Mapping done: to the network meeting"),
        by=coordinator,
    )
    @when(mapping_recorded, consents_complete)
    def mapping_done(self) -> None:
        """The family has been heard: the network meeting writes the plan."""

    @step(
        Status.NETWORK_MEETING, Status.PLAN_ACTIVE, _("Adopt the commitment plan"), by=coordinator
    )
    @when(
        goals_written,
        has_planned_action,
        police_actions_decided,
        review_date_ahead,
        consents_complete,
    )
    def adopt_plan(self, *, adopted_by) -> None:
        self.plan_adopted_by = adopted_by
        self.plan_adopted_at = timezone.now()

    @step(Status.PLAN_ACTIVE, Status.FOLLOW_UP, _("Start the follow-up meeting"), by=coordinator)
    @when(review_date_reached)
    def begin_follow_up(self) -> None:
        """The follow-up date has come."""

    @step(
        Status.FOLLOW_UP,
        Status.PLAN_ACTIVE,
        _("Continue with a new follow-up date"),
        by=coordinator,
    )
    @when(review_date_ahead, consents_complete)
    def continue_plan(self) -> None:
        """The follow-up meeting decided to go on."""

    consent_withdrawn = consent_withdrawn_transition(OPEN_STATES, Status.CLOSED)
    close = closing_transition(
        OPEN_STATES, Status.CLOSED, by=coordinator, then=note_consent_refused
    )


# --- The programme's records -------------------------------------------------------------------


class RiskAssessment(models.Model):
    """The coordinator's risk assessment; the newest one counts. Level plain (statistics)."""

    class Level(models.TextChoices):
        LOW = "low", _("Low")
        MODERATE = "moderate", _("Moderate")
        HIGH = "high", _("High")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(SspfCase, on_delete=models.CASCADE, related_name="risk_assessments")
    level = models.CharField(_("risk level"), max_length=10, choices=Level.choices)
    risk_factors = EncryptedTextField(_("risk factors"))
    protective_factors = EncryptedTextField(_("protective factors"))
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assessed_at = models.DateTimeField(_("assessed"), default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("risk_factors", "protective_factors")

    class Meta:
        verbose_name = _("risk assessment")
        verbose_name_plural = _("risk assessments")
        ordering = ["assessed_at"]

    def __str__(self) -> str:
        return f"RiskAssessment {self.pk}"


class PoliceParticipation(models.Model):
    """The decision whether the police take part in the case, with its reason.

    The newest decision counts; a later "no" ends the police's access at once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(SspfCase, on_delete=models.CASCADE, related_name="police_decisions")
    participates = models.BooleanField(_("the police take part"))
    reason = EncryptedTextField(_("reason"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("reason",)

    class Meta:
        verbose_name = _("police participation decision")
        verbose_name_plural = _("police participation decisions")
        ordering = ["decided_at"]

    def __str__(self) -> str:
        return f"PoliceParticipation {self.pk}"


class OperationalMeeting(models.Model):
    """A meeting of the operational group: its date and the organisations taking part."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    date = models.DateField(_("date"))
    organisations = models.ManyToManyField(
        Organisation, verbose_name=_("participating organisations"), related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("operational group meeting")
        verbose_name_plural = _("operational group meetings")
        ordering = ["-date", "-created_at"]

    def __str__(self) -> str:
        return f"OperationalMeeting {self.date}"


class AgendaItem(models.Model):
    """A case on a meeting's agenda, with the meeting's decision on it (sealed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    meeting = models.ForeignKey(OperationalMeeting, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(SspfCase, on_delete=models.PROTECT, related_name="agenda_items")
    decision = EncryptedTextField(_("decision"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    added_at = models.DateTimeField(default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("decision",)

    class Meta:
        verbose_name = _("agenda item")
        verbose_name_plural = _("agenda items")
        ordering = ["added_at"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "case"], name="agendaitem_case_once")
        ]

    def __str__(self) -> str:
        return f"AgendaItem {self.pk}"


class AgeBand(models.TextChoices):
    AGE_10_12 = "10-12", "10-12"
    AGE_13_15 = "13-15", "13-15"
    AGE_16_18 = "16-18", "16-18"


class AnonymisedDiscussion(models.Model):
    """A situation the operational group discussed without consent: no personal data.

    No person, no case; the text is refused when it holds anything like a
    personnummer (:func:`find_personnummer_like`). Date, organisation, age band,
    area and topic are plain columns for statistics.
    """

    class Topic(models.TextChoices):
        ABSENCE = "absence", _("School absence")
        SUBSTANCES = "substances", _("Alcohol or drugs")
        CRIME = "crime", _("Crime or rule-breaking")
        VIOLENCE = "violence", _("Violence or threats")
        COMPANY = "company", _("Worrying company")
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    meeting = models.ForeignKey(
        OperationalMeeting,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="discussions",
    )
    date = models.DateField(_("date"))
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("raised by"), on_delete=models.PROTECT, related_name="+"
    )
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices)
    age_band = models.CharField(_("age band"), max_length=5, choices=AgeBand.choices, blank=True)
    area = models.CharField(_("area"), max_length=30, choices=Person.Area.choices, blank=True)
    summary = models.TextField(_("situation"))
    outcome = models.TextField(_("advice or outcome"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("anonymised case discussion")
        verbose_name_plural = _("anonymised case discussions")
        ordering = ["date", "created_at"]
        indexes = [models.Index(fields=["date", "organisation"])]

    def __str__(self) -> str:
        return f"AnonymisedDiscussion {self.pk}"


# Anything that looks like a personnummer or samordningsnummer, valid or not: 6 or 8
# digits, optionally a separator (-, +, space), then 4 digits — or the last four masked
# (XXXX, ****). Digits may also be grouped by spaces or dots ("0908 15-1234"). Strict on
# purpose: a false alarm costs a rewording, a miss puts a person into anonymous data.
_PERSONNUMMER_LIKE = re.compile(
    r"(?<!\d)"
    r"(?:\d{2}[ .]?)?"  # century
    r"\d{2}[ .]?\d{2}[ .]?\d{2}"  # yymmdd (day + 60 for a samordningsnummer)
    r"\s*[-+\u2013]?\s*"  # hyphen, plus or en dash
    r"(?:\d{4}|\d{3}[a-zA-Z*]|[xX*]{4})"
    r"(?!\d)"
)


def find_personnummer_like(text: str) -> bool:
    """Whether ``text`` holds something that looks like a personnummer (or samordningsnummer).

    Any 10 or 12 digits in the shape of one, with or without a separator, whether or
    not the check digit validates, and dates of birth followed by masked last digits.
    """
    return bool(_PERSONNUMMER_LIKE.search(text or ""))


# --- The flow's process ------------------------------------------------------------------------


class SspfProcess(ObjectProcess):
    """The viewflow process of one SSPF case."""

    case = process_of(SspfCase)

    class Meta(ObjectProcess.Meta):
        verbose_name = _("SSPF process")
        verbose_name_plural = _("SSPF processes")
