"""The shared case machinery: legal bases, the case, its team, consents, decisions,
actions, break-the-glass, the timeline, links between cases and reminders.

Every programme's case is a ``Case`` row extended by the programme's own model in
``workflows/`` (multi-table inheritance), which holds that programme's state machine.
Consent, legal bases, teams, decisions, actions, break-the-glass and the timeline hang
off ``Case``, so the access policy and the services are written once. Free text is
encrypted under the case's own data key (the person's identity under the person's).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.fields import EncryptedTextField
from casework.models.accounts import Organisation, User
from casework.models.base import VersionedModel
from casework.models.persons import Guardian, Person


class LegalBasis(models.Model):
    """A legal basis for processing or disclosing data, kept as data (not code).

    Managed by administrators and confirmed by a lawyer; ``discloser_kinds`` and
    ``recipient_kinds`` (organisation kinds, empty = any) and ``max_age`` (the
    person must be younger) are what ``casework.policy`` checks before data of
    one organisation is shown to another.
    """

    class Kind(models.TextChoices):
        CONSENT = "consent", _("Consent")
        STATUTE = "statute", _("Statute")

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    discloser_kinds = models.JSONField(_("may be disclosed by"), default=list, blank=True)
    recipient_kinds = models.JSONField(_("may be disclosed to"), default=list, blank=True)
    max_age = models.PositiveSmallIntegerField(
        _("only for persons younger than"), null=True, blank=True
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("legal basis")
        verbose_name_plural = _("legal bases")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Case(VersionedModel):
    """What every programme's case has in common (the programme model extends it)."""

    class Programme(models.TextChoices):
        SIG = "sig", _("SIG (social intervention group)")
        SSPF = "sspf", _("SSPF (school, social services, police, leisure)")
        DEFECTOR = "defector", _("Defector programme")

    class CloseReason(models.TextChoices):
        GOALS_MET = "goals_met", _("Goals met")
        ENDED_BY_PERSON = "ended_by_person", _("Ended by the person")
        CONSENT_REFUSED = "consent_refused", _("Consent refused")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        NOT_ELIGIBLE = "not_eligible", _("Not eligible after screening")
        NOT_STARTED = "not_started", _("Decided not to start")
        MOVED = "moved", _("Moved")
        DEFECTOR_PROGRAMME = "defector_programme", _("Handed to the defector programme")
        AGE_LIMIT = "age_limit", _("Age limit reached")
        OTHER = "other", _("Other")
        # The defector programme's outcomes (workflows.defector.models.CLOSE_REASONS).
        COMPLETED = "completed", _("Programme completed")
        RELAPSE = "relapse", _("Relapse into crime")
        LEFT_VOLUNTARILY = "left_voluntarily", _("Left the programme voluntarily")
        HANDED_OVER = "handed_over", _("Handed over")

    reference = models.CharField(_("case number"), max_length=20, unique=True, editable=False)
    programme = models.CharField(_("programme"), max_length=10, choices=Programme.choices)
    person = models.ForeignKey(
        Person, verbose_name=_("person"), on_delete=models.PROTECT, related_name="cases"
    )
    owner_organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("responsible organisation"),
        on_delete=models.PROTECT,
        related_name="owned_cases",
    )
    referred_by = models.ForeignKey(
        User, verbose_name=_("referred by"), on_delete=models.PROTECT, related_name="+"
    )
    referring_organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("referring organisation"),
        on_delete=models.PROTECT,
        related_name="referred_cases",
    )
    opened_at = models.DateTimeField(_("opened"), default=timezone.now, editable=False)
    review_date = models.DateField(_("next review"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    close_reason = models.CharField(
        _("close reason"), max_length=20, choices=CloseReason.choices, blank=True
    )
    close_note = EncryptedTextField(_("close note"))
    # Culled (gallrad, ``manage.py cull``): the case's data key is destroyed, its texts
    # read as "(culled)"; the plain columns stay for the statistics.
    culled_at = models.DateTimeField(_("culled"), null=True, blank=True, editable=False)
    # Since when every sealed value of the case is under the case's own data key
    # (docs/adr/0023-keys-per-case.md): set when the case is opened; empty for a case
    # opened before keys per case until ``manage.py reseal_case_keys`` has moved its
    # values from its person's key (reads fall back to that key meanwhile).
    keyed_at = models.DateTimeField(null=True, blank=True, default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("close_note",)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["programme", "opened_at"]),
            # Statistics: cases closed in a period.
            models.Index(fields=["programme", "closed_at"], name="case_programme_closed_idx"),
        ]

    def __str__(self) -> str:
        return self.reference


class CaseMembership(models.Model):
    """The need-to-know team of a case: who, in which role, from when until when."""

    class Role(models.TextChoices):
        LEAD = "lead", _("Lead social worker")
        SOCIAL_WORKER = "social_worker", _("Social worker")
        POLICE_CONTACT = "police_contact", _("Police contact officer")
        COORDINATOR = "coordinator", _("Coordinator")
        SCHOOL = "school", _("School")
        LEISURE = "leisure", _("Leisure")
        OTHER = "other", _("Other")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    valid_from = models.DateTimeField(_("from"), default=timezone.now)
    valid_to = models.DateTimeField(_("to"), null=True, blank=True)
    added_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True)

    class Meta:
        verbose_name = _("case team member")
        verbose_name_plural = _("case team")
        constraints = [
            models.UniqueConstraint(
                fields=["case", "user"],
                condition=models.Q(valid_to__isnull=True),
                name="casemembership_one_open_per_user",
            )
        ]
        indexes = [models.Index(fields=["user", "valid_to"])]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.user_id} ({self.role})"


class Consent(models.Model):
    """A consent given (or refused) by the person or a guardian, with its scope.

    Withdrawal sets ``withdrawn_at``; the row stays, so the history of what was
    shared under which consent remains answerable.
    """

    class Giver(models.TextChoices):
        SELF = "self", _("The person")
        GUARDIAN = "guardian", _("Guardian")

    class Form(models.TextChoices):
        WRITTEN = "written", _("Written")
        ORAL = "oral", _("Oral")

    class Decision(models.TextChoices):
        GIVEN = "given", _("Given")
        REFUSED = "refused", _("Refused")

    class Purpose(models.TextChoices):
        """What the data may be shown to another organisation for (``purposes``): every
        reading that crosses organisations names one (``casework.policy.case_access``)
        and is refused unless the consent in force covers it (docs/adr/0028)."""

        COORDINATION = "coordination", _("Coordinating the joint work (case, team, plan, actions)")
        THREAT_ASSESSMENT = (
            "threat_assessment",
            _("Police searches of their systems and threat assessment"),
        )
        HAND_OVER = "hand_over", _("Handing the case over to another programme or agency")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="consents")
    giver = models.CharField(_("given by"), max_length=10, choices=Giver.choices)
    guardian = models.ForeignKey(
        Guardian, on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    form = models.CharField(_("form"), max_length=10, choices=Form.choices)
    organisations = models.ManyToManyField(
        Organisation, verbose_name=_("organisations covered"), related_name="+"
    )
    # ``Purpose`` values: what the consent allows the data to be shown for.
    purposes = models.JSONField(_("purposes"), default=list)
    given_at = models.DateTimeField(_("given"), default=timezone.now)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["given_at"]

    def __str__(self) -> str:
        return f"Consent {self.pk}"

    @property
    def purpose_labels(self) -> list[str]:
        """The purposes it covers, as the pages name them."""
        labels = dict(self.Purpose.choices)
        return [str(labels.get(value, value)) for value in self.purposes or ()]


class CaseLegalBasis(models.Model):
    """A legal basis other than consent recorded for a case (e.g. OSL 10 kap. 18 a §)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="legal_bases")
    legal_basis = models.ForeignKey(
        LegalBasis, verbose_name=_("legal basis"), on_delete=models.PROTECT, related_name="+"
    )
    justification = EncryptedTextField(_("justification"))
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    ENCRYPTED_FIELDS = ("justification",)

    class Meta:
        verbose_name = _("recorded legal basis")
        verbose_name_plural = _("recorded legal bases")

    def __str__(self) -> str:
        return f"{self.case_id}: {self.legal_basis_id}"


class CaseDecision(models.Model):
    """An agency's decision to start (or not) the joint work on a case."""

    class Decision(models.TextChoices):
        START = "start", _("Start")
        DECLINE = "decline", _("Do not start")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="decisions")
    agency = models.CharField(_("agency"), max_length=20, choices=Organisation.Kind.choices)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now, editable=False)
    note = EncryptedTextField(_("note"))

    ENCRYPTED_FIELDS = ("note",)

    class Meta:
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        constraints = [
            models.UniqueConstraint(fields=["case", "agency"], name="casedecision_one_per_agency")
        ]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.agency} {self.decision}"


class Action(models.Model):
    """An action (insats) of one organisation in a case: planned, then done."""

    class Kind(models.TextChoices):
        SUPPORT_TALKS = "support_talks", _("Support talks")
        FAMILY_SUPPORT = "family_support", _("Family support")
        SCHOOL_SUPPORT = "school_support", _("School support")
        LEISURE_ACTIVITY = "leisure_activity", _("Leisure activity")
        EMPLOYMENT = "employment", _("Work or education")
        TREATMENT = "treatment", _("Treatment")
        HOUSING = "housing", _("Housing")
        DEBT = "debt", _("Debt counselling")
        PROTECTION = "protection", _("Protection measures")
        POLICE_TALK = "police_talk", _("Police talk")
        POLICE_FOLLOW_UP = "police_follow_up", _("Police follow-up")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    class Visibility(models.TextChoices):
        TEAM = "team", _("The case team")
        ORGANISATION = "organisation", _("Own organisation only")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="actions")
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        User, verbose_name=_("recorded by"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    date = models.DateField(_("date"))
    note = EncryptedTextField(_("note"))
    visibility = models.CharField(
        _("visible to"), max_length=15, choices=Visibility.choices, default=Visibility.TEAM
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("note",)

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        ordering = ["date", "created_at"]

    def __str__(self) -> str:
        return f"Action {self.pk}"


class BreakGlassAccess(models.Model):
    """Access to a case outside the team, with a reason, for a limited time, reviewed later."""

    class Verdict(models.TextChoices):
        JUSTIFIED = "justified", _("Justified")
        NOT_JUSTIFIED = "not_justified", _("Not justified")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="break_glass")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="break_glass")
    reason = EncryptedTextField(_("reason"))
    opened_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    # The review (an auditor other than ``user``): written once, never changed — a check
    # constraint refuses the breaker as reviewer and a trigger refuses any change of a
    # review once written (casework/migrations/0020).
    reviewed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(_("verdict"), max_length=20, choices=Verdict.choices, blank=True)
    review_note = models.TextField(_("comment"), blank=True)

    ENCRYPTED_FIELDS = ("reason",)

    class Meta:
        verbose_name = _("break-the-glass access")
        verbose_name_plural = _("break-the-glass accesses")
        indexes = [
            models.Index(fields=["user", "case", "expires_at"]),
            # The auditors' list of accesses still to review.
            models.Index(
                fields=["opened_at"],
                name="break_glass_unreviewed",
                condition=models.Q(reviewed_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reviewed_by__isnull=True)
                | ~models.Q(reviewed_by=models.F("user")),
                name="break_glass_reviewer_not_breaker",
            ),
            models.CheckConstraint(
                # (Reviews written before the verdict existed have none.)
                condition=models.Q(reviewed_at__isnull=True, reviewed_by__isnull=True, verdict="")
                | models.Q(reviewed_at__isnull=False, reviewed_by__isnull=False),
                name="break_glass_review_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"Break-the-glass {self.pk}"


class CaseEvent(models.Model):
    """The case's timeline as its team sees it (the access log is the auditors' record)."""

    class Kind(models.TextChoices):
        TRANSITION = "transition", _("State change")
        CONSENT = "consent", _("Consent")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        CONSENT_RENEWED = "consent_renewed", _("Consent renewed after a withdrawal")
        LEGAL_BASIS = "legal_basis", _("Legal basis")
        TEAM = "team", _("Team")
        DECISION = "decision", _("Decision")
        ACTION = "action", _("Action")
        PLAN = "plan", _("Plan")
        BREAK_GLASS = "break_glass", _("Break-the-glass")
        LINK = "link", _("Linked case")
        THREAT_ASSESSMENT = "threat_assessment", _("Threat assessment")
        HAND_OVER = "hand_over", _("Hand-over")
        RECORD = "record", _("Personal details")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    transition = models.CharField(max_length=50, blank=True)
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30, blank=True)
    reason = EncryptedTextField(_("reason"))

    ENCRYPTED_FIELDS = ("reason",)

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.kind}"


class CaseLink(models.Model):
    """One case led to another of the same person (an escalation, an accepted offer,
    a hand-over, a support case). Both cases show the link; the reason is sealed
    under the data key of the case the link starts from (``from_case``)."""

    # Whose data key seals the reason (docs/adr/0023): the case the link comes from.
    CASE_KEY_FIELD = "from_case"

    class Kind(models.TextChoices):
        ESCALATED = "escalated", _("Escalated")
        OFFER_ACCEPTED = "offer_accepted", _("Offer of help accepted")
        HANDED_OVER = "handed_over", _("Handed over")
        SUPPORT_CASE = "support_case", _("Support case")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    from_case = models.ForeignKey(
        Case, verbose_name=_("from case"), on_delete=models.PROTECT, related_name="links_out"
    )
    to_case = models.ForeignKey(
        Case, verbose_name=_("to case"), on_delete=models.PROTECT, related_name="links_in"
    )
    kind = models.CharField(_("kind of link"), max_length=20, choices=Kind.choices)
    reason = EncryptedTextField(_("reason"))
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("linked"), default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("reason",)

    class Meta:
        verbose_name = _("case link")
        verbose_name_plural = _("case links")
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["from_case", "to_case"], name="caselink_once"),
            models.CheckConstraint(
                condition=~models.Q(from_case=models.F("to_case")), name="caselink_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_case_id} -> {self.to_case_id}"


class Reminder(models.Model):
    """A reminder ``manage.py send_reminders`` recorded, or an alert
    (``casework.services.alerts``): one per kind, object, recipient and day.

    Holds ids and dates only, never personal data. The unique key makes the
    command idempotent: a second run the same day reminds of nothing new.
    """

    class Kind(models.TextChoices):
        REVIEW_OVERDUE = "review_overdue", _("Review date passed")
        TASK_OVERDUE = "task_overdue", _("Task waiting too long")
        BREAK_GLASS_UNREVIEWED = "break_glass_unreviewed", _("Break-the-glass access not reviewed")
        REASSESSMENT_OVERDUE = "reassessment_overdue", _("Threat reassessment overdue")
        GVI_FOLLOW_UP_OVERDUE = "gvi_follow_up_overdue", _("GVI follow-up overdue")
        GVI_REFERRAL_OVERDUE = "gvi_referral_overdue", _("GVI referral not taken up in time")
        CONSENT_EXPIRING = "consent_expiring", _("Consent expires soon")
        TURNED_18 = "turned_18", _("Came of age (own consent needed)")
        AGE_RANGE_LEFT = "age_range_left", _("The person has left the programme's age range")
        TEAM_MEMBER_LEFT = "team_member_left", _("A team member's account was closed")
        # Alerts (``casework.services.alerts``): recorded when it happens, not by the command.
        BREAK_GLASS_OPENED = "break_glass_opened", _("Break-the-glass access opened")
        LOWERING_AWAITS_APPROVAL = (
            "lowering_awaits_approval",
            _("Lowered threat level awaits approval"),
        )
        TASK_ASSIGNED = "task_assigned", _("New task for you")

    # Kinds reminded of once per event (the object id names the event), not once a day.
    ONCE_PER_EVENT = frozenset({Kind.CONSENT_EXPIRING, Kind.TURNED_18, Kind.AGE_RANGE_LEFT})
    # The alerts (``casework.services.alerts``), sent when something happens.
    ALERTS = frozenset({Kind.BREAK_GLASS_OPENED, Kind.LOWERING_AWAITS_APPROVAL, Kind.TASK_ASSIGNED})
    # Kinds recorded when something happens (not listed by ``send_reminders``): an
    # account closed by an administrator (``casework.services.team_changes``) and the
    # alerts.
    RECORDED_AT_ONCE = frozenset({Kind.TEAM_MEMBER_LEFT, *ALERTS})

    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    # The case id, the viewflow task id or the break-the-glass access id; for
    # ``team_member_left`` "<case id>:<account id>:<coordinator id>" (one per coordinator).
    object_id = models.CharField(max_length=64)
    date = models.DateField(_("date"))
    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, null=True, blank=True, related_name="reminders"
    )
    # Who is reminded: the task owner, the lead social worker; nobody in
    # particular for a queue task or for the auditors' review list.
    recipient = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="reminders"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the recipient was e-mailed about it (``None``: not yet, or no e-mail).
    delivered_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            # Once per recipient (or once for a queue, without one) and day.
            models.UniqueConstraint(
                fields=["kind", "object_id", "date", "recipient"],
                name="reminder_once_per_day",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["recipient", "date"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} {self.date}"


__all__ = [
    "Action",
    "BreakGlassAccess",
    "Case",
    "CaseDecision",
    "CaseEvent",
    "CaseLegalBasis",
    "CaseLink",
    "CaseMembership",
    "Consent",
    "LegalBasis",
    "Reminder",
]
