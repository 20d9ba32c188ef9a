"""Identity (organisations, users), the data subject (``Person``) and the data keys.

Encrypted fields hold sealed values (``casework.fields``); only
``casework.services`` and ``casework.selectors`` seal and open them. ``DataKey``
lives in a database of its own (alias ``keystore``, see ``casework.routers``).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.fields import EncryptedDateField, EncryptedTextField


class Organisation(models.Model):
    """A party to the cooperation agreement: the police area, social services, a school …"""

    class Kind(models.TextChoices):
        POLICE = "police", _("Police")
        SOCIAL_SERVICES = "social_services", _("Social services")
        SCHOOL = "school", _("School")
        LEISURE = "leisure", _("Leisure")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who works in Samverkan, always on behalf of one organisation.

    Roles are Django groups (see ``casework.roles``); what a user may see is
    decided by ``casework.policy``, never by the template or the view.
    """

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text=_(
            "The organisation the user works for. Without one the user gets no access to cases."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Capability(models.Model):  # noqa: DJ008 (never instantiated)
    """Holder of the role-level permissions that belong to no single model.

    Unmanaged and without a table: it only gives the permissions below a
    content type, so role groups can carry them and views can require them.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_task_inbox", _("Can work on cases and the task inbox")),
            ("view_statistics", _("Can see anonymised statistics")),
            ("view_access_log", _("Can read and review the access log")),
            ("coordinate_cases", _("Can coordinate SIG, SSPF and GVI cases")),
            ("coordinate_defector_cases", _("Can coordinate defector cases")),
            ("break_glass", _("Can open a case outside the team in an emergency")),
        ]


class Person(models.Model):
    """The data subject: a young person, a group member, a defector …

    Name, personnummer, date of birth, address, phone and note are encrypted
    under the person's own data key; birth year, gender, area and protected
    identity are plain because statistics are computed from them without
    decrypting anything. After erasure (``erased_at``) the data key is gone,
    the encrypted columns and the blind index are empty, and only the plain
    statistics columns remain.
    """

    class Gender(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    class Area(models.TextChoices):
        """Örebro's partnership areas (the agreement's priority areas), and the rest."""

        VIVALLA_BARONBACKARNA = "vivalla_baronbackarna", "Vivalla/Baronbackarna"
        VARBERGA_OXHAGEN = "varberga_oxhagen", "Varberga/Oxhagen"
        BRICKEBACKEN = "brickebacken", "Brickebacken"
        OTHER = "other", _("Other area")

    class ProtectedIdentity(models.IntegerChoices):
        NONE = 0, _("None")
        CONFIDENTIALITY_MARKING = 1, _("Confidentiality marking (sekretessmarkering)")
        PROTECTED_REGISTRATION = 2, _("Protected population registration (skyddad folkbokföring)")
        ASSUMED_IDENTITY = 3, _("Assumed identity (fingerade personuppgifter)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Encrypted (sealed values; see casework.fields)
    name = EncryptedTextField(_("name"))
    personnummer = EncryptedTextField(_("personal identity number"))
    birth_date = EncryptedDateField(_("date of birth"))
    address = EncryptedTextField(_("address"))
    phone = EncryptedTextField(_("phone"))
    note = EncryptedTextField(_("note"))
    # Blind index of the personnummer (casework.crypto.blind_index); empty once erased.
    personnummer_index = models.IntegerField(
        _("personal identity number index"), null=True, blank=True, editable=False
    )
    # Plain: statistics only
    birth_year = models.PositiveSmallIntegerField(_("birth year"))
    gender = models.CharField(
        _("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN
    )
    area = models.CharField(_("area"), max_length=30, choices=Area.choices, default=Area.OTHER)
    protected_identity = models.PositiveSmallIntegerField(
        _("protected identity"), choices=ProtectedIdentity.choices, default=ProtectedIdentity.NONE
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True, editable=False)

    ENCRYPTED_FIELDS = ("name", "personnummer", "birth_date", "address", "phone", "note")

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        indexes = [models.Index(fields=["personnummer_index"], name="person_pnr_blind_idx")]
        permissions = [("erase_person", _("Can erase a person (destroys the data key)"))]

    def __str__(self) -> str:
        return f"Person {self.pk}"


class DataKey(models.Model):
    """A data key (DEK), wrapped under a key-encryption key; in the key-store database.

    One per owner: a person now, a GVI group later (``owner_type`` names the
    model). The row never holds the key in the clear; ``kek_version`` says which
    KEK of the keyring wraps it. Deleting the row is erasure: everything sealed
    under the key, in the database and in every backup of it, becomes noise.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_type = models.CharField(max_length=50)
    owner_id = models.UUIDField()
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["owner_type", "owner_id"], name="datakey_one_per_owner")
        ]
        indexes = [models.Index(fields=["kek_version", "id"], name="datakey_version_idx")]

    def __str__(self) -> str:
        return f"DataKey {self.pk} (KEK v{self.kek_version})"


# --- The shared case machinery ------------------------------------------------------
#
# Every programme's case (SIG, SSPF, defector) is a ``Case`` row extended by the
# programme's own model in ``workflows/`` (multi-table inheritance), which holds
# that programme's state machine. Consent, legal bases, teams, decisions,
# actions, break-the-glass and the timeline hang off ``Case``, so the access
# policy and the services are written once. Free text is encrypted under the
# data key of the case's person.


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


class Case(models.Model):
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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
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
    # Row version: every change of the case bumps it, so a form posted against
    # an older version is refused ("changed by someone else").
    version = models.PositiveIntegerField(default=1, editable=False)

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


class Guardian(models.Model):
    """A guardian (vårdnadshavare) of a minor person; contact data encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="guardians")
    name = EncryptedTextField(_("name"))
    phone = EncryptedTextField(_("phone"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    ENCRYPTED_FIELDS = ("name", "phone")

    class Meta:
        verbose_name = _("guardian")
        verbose_name_plural = _("guardians")

    def __str__(self) -> str:
        return f"Guardian {self.pk}"


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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="break_glass")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="break_glass")
    reason = EncryptedTextField(_("reason"))
    opened_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    ENCRYPTED_FIELDS = ("reason",)

    class Meta:
        verbose_name = _("break-the-glass access")
        verbose_name_plural = _("break-the-glass accesses")
        indexes = [models.Index(fields=["user", "case", "expires_at"])]

    def __str__(self) -> str:
        return f"Break-the-glass {self.pk}"


class CaseEvent(models.Model):
    """The case's timeline as its team sees it (the access log is the auditors' record)."""

    class Kind(models.TextChoices):
        TRANSITION = "transition", _("State change")
        CONSENT = "consent", _("Consent")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        LEGAL_BASIS = "legal_basis", _("Legal basis")
        TEAM = "team", _("Team")
        DECISION = "decision", _("Decision")
        ACTION = "action", _("Action")
        PLAN = "plan", _("Plan")
        BREAK_GLASS = "break_glass", _("Break-the-glass")
        LINK = "link", _("Linked case")
        THREAT_ASSESSMENT = "threat_assessment", _("Threat assessment")
        HAND_OVER = "hand_over", _("Hand-over")

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
    under the person's data key."""

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
    """A reminder ``manage.py send_reminders`` recorded: one per kind, object and day.

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

    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    # The case id, the viewflow task id or the break-the-glass access id.
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
            models.UniqueConstraint(
                fields=["kind", "object_id", "date"], name="reminder_once_per_day"
            )
        ]
        indexes = [models.Index(fields=["recipient", "date"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} {self.date}"


class AdminChangeRequest(models.Model):
    """A change of power that waits for a second administrator (four eyes).

    Granting a role that gives access to case data, to the access log or to
    account management, a set-password link for another user, a new or changed
    legal basis and a changed organisation kind are requested here and applied
    only when another administrator approves (``casework.services.administration``).
    ``change`` holds identifiers and values that are not personal data (group
    and account ids, organisation kinds, legal-basis fields); ``target_digest``
    is a keyed digest of the target's state when requested, so a request whose
    target changed since is refused as stale.
    """

    class Kind(models.TextChoices):
        GRANT_ROLE = "grant_role", _("Grant a role")
        PASSWORD_LINK = "password_link", _("Set-password link")
        LEGAL_BASIS = "legal_basis", _("New or changed legal basis")
        ORGANISATION_KIND = "organisation_kind", _("Change of organisation type")
        # Single sign-on (docs/adr/0018-single-sign-on.md): a provider's configuration
        # and an identity linked to an account take effect only once approved.
        IDENTITY_PROVIDER = "identity_provider", _("Identity provider configuration")
        EXTERNAL_IDENTITY = "external_identity", _("Identity linked to an account")

    class Decision(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    target_type = models.CharField(_("object type"), max_length=100)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    change = models.JSONField(_("requested change"), default=dict)
    target_digest = models.CharField(max_length=64, blank=True, editable=False)
    reason = models.TextField(_("reason"))
    requested_by = models.ForeignKey(
        User, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, editable=False)
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING
    )
    decided_by = models.ForeignKey(
        User,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_reason = models.TextField(_("reason for the decision"), blank=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)

    class Meta:
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        ordering = ["-requested_at", "-id"]
        default_permissions = ("view", "add")
        permissions = [("decide_adminchangerequest", _("Can approve or reject change requests"))]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(decision="pending", decided_by__isnull=True, decided_at__isnull=True)
                    | models.Q(
                        ~models.Q(decision="pending"),
                        decided_by__isnull=False,
                        decided_at__isnull=False,
                    )
                ),
                name="adminchangerequest_decided_by_someone",
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="adminchangerequest_four_eyes",
            ),
        ]
        indexes = [models.Index(fields=["decision", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


# --- Single sign-on (docs/adr/0018-single-sign-on.md) ------------------------------------

_SECRET_ENV = RegexValidator(
    r"^SAMVERKAN_OIDC_SECRET_[A-Z0-9_]{1,60}$",
    _("Name an environment variable SAMVERKAN_OIDC_SECRET_… (capitals, digits, underscores)."),
)


class IdentityProvider(models.Model):
    """An OpenID Connect provider through which the users of some organisations sign in.

    Configuration, not code: edited in the admin (every change is in the access
    log), but a provider is used for sign-in only while its configuration is the
    one a second administrator approved (``approved_digest``, written only by
    ``casework.services.administration``). The client secret is never stored: the
    provider names the environment variable that holds it.
    """

    class AccountField(models.TextChoices):
        LINKED = "linked", _("A linked identity (an administrator links each account)")
        USERNAME = "username", _("The account's username")

    slug = models.SlugField(_("short name"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    issuer = models.URLField(_("issuer"), max_length=300)
    client_id = models.CharField(_("client id"), max_length=200)
    client_secret_env = models.CharField(
        _("environment variable of the client secret"),
        max_length=100,
        blank=True,
        validators=[_SECRET_ENV],
        help_text=_("Empty for a public client (PKCE only). The secret itself is never stored."),
    )
    authorization_endpoint = models.URLField(_("authorization endpoint"), blank=True)
    token_endpoint = models.URLField(_("token endpoint"), blank=True)
    userinfo_endpoint = models.URLField(_("userinfo endpoint"), blank=True)
    jwks_uri = models.URLField(_("JWKS address"), blank=True)
    scopes = models.CharField(_("scopes"), max_length=200, default="openid")
    match_claim = models.CharField(
        _("matching claim"),
        max_length=100,
        default="sub",
        help_text=_("The claim that identifies the person: sub, or e.g. an HSA-id claim."),
    )
    account_field = models.CharField(
        _("matched against"),
        max_length=20,
        choices=AccountField.choices,
        default=AccountField.LINKED,
    )
    acr_levels = models.CharField(
        _("assurance levels (acr)"),
        max_length=500,
        blank=True,
        help_text=_(
            "The provider's acr values from the lowest to the highest, separated by spaces."
        ),
    )
    organisations = models.ManyToManyField(
        Organisation,
        through="IdentityProviderOrganisation",
        verbose_name=_("organisations served"),
        related_name="identity_providers",
        blank=True,
    )
    is_active = models.BooleanField(_("active"), default=True)
    approved_digest = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("identity provider")
        verbose_name_plural = _("identity providers")
        ordering = ["name"]
        default_permissions = ("view", "add", "change")

    def __str__(self) -> str:
        return self.name


class IdentityProviderOrganisation(models.Model):
    """An organisation whose users may sign in through a provider, with the lowest
    assurance level (acr) the organisation accepts from it."""

    provider = models.ForeignKey(
        IdentityProvider, verbose_name=_("identity provider"), on_delete=models.CASCADE
    )
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT
    )
    minimum_acr = models.CharField(
        _("lowest assurance level (acr)"),
        max_length=200,
        blank=True,
        help_text=_("Empty: any level the provider sends."),
    )

    class Meta:
        verbose_name = _("organisation served")
        verbose_name_plural = _("organisations served")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "organisation"], name="identityprovider_organisation_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.organisation}"


class ExternalIdentity(models.Model):
    """The identity a provider asserts (the value of its matching claim) linked to an
    account. Used for sign-in only once a second administrator approved the link."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.PROTECT, related_name="external_identities"
    )
    provider = models.ForeignKey(
        IdentityProvider, verbose_name=_("identity provider"), on_delete=models.PROTECT
    )
    subject = models.CharField(_("identity at the provider"), max_length=255)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    approved_digest = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("linked identity")
        verbose_name_plural = _("linked identities")
        default_permissions = ("view", "add", "change")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "subject"], name="externalidentity_one_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.subject}"
