"""The two audit records of Samverkan and the seal that links them.

- ``AccessEvent``: the access log — one row per consultation, change,
  disclosure, login … Written only by ``audit.services.record_event``.
- ``ChangeRecord``: the change history of tracked tables, written only by the
  database trigger ``audit_record_change`` (so ``QuerySet.update()``, bulk
  operations and raw SQL cannot bypass it).
- ``ChainLink``: the hash chain over both, in sealing order (see
  ``audit.integrity`` and docs/adr/0005-audit-log.md); ``ChainBlock``: from chain
  format 3 on, one row per sealed block of entries (ADR 0031, session 22).
- ``PendingEntry``: the queue of committed entries not yet sealed into the chain.

``AccessEvent``, ``ChangeRecord``, ``ChainLink`` and ``ChainBlock`` are append-only at the
database: triggers installed by ``audit/migrations/0002`` (and ``0018``) raise on UPDATE,
DELETE and TRUNCATE. No row holds a personal-data value in plain text.

The access log is partitioned by month of ``occurred_at`` (PostgreSQL declarative
partitioning, ``audit/migrations/0011``; docs/adr/0031-partitioned-access-log.md). The
database's primary key is ``(id, occurred_at)`` — PostgreSQL wants the partition key in
every unique constraint — while Django keeps ``id`` as the model's primary key: ids come
from the one identity sequence of the parent table, so ``id`` alone stays unique.
``ArchivedPartition`` records a month detached for the archive.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AccessEvent(models.Model):
    class Action(models.TextChoices):
        CONSULT = "consult", _("Consultation")
        CREATE = "create", _("Creation")
        CHANGE = "change", _("Change")
        TRANSITION = "transition", _("State transition")
        DISCLOSE = "disclose", _("Disclosure to another organisation")
        COMBINE = "combine", _("Combination of police and social-services data")
        EXPORT = "export", _("Export")
        ERASE = "erase", _("Erasure")
        KEY_ROTATION = "key_rotation", _("Key rotation")
        LOGIN = "login", _("Login")
        LOGOUT = "logout", _("Logout")
        LOGIN_FAILED = "login_failed", _("Failed login")
        ACCESS_DENIED = "access_denied", _("Denied access")
        BREAK_GLASS = "break_glass", _("Break-the-glass")
        ACCOUNT_CHANGE = "account_change", _("Account or role change")
        AUDIT_READ = "audit_read", _("Reading of the access log")
        # A register extract released to the data subject (GDPR art. 15; ADR 0025).
        EXTRACT = "extract", _("Register extract to the data subject")
        CULL = "cull", _("Culling (gallring)")

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("Allowed")
        DENIED = "denied", _("Denied")

    # Indexed by a BRIN index (``Meta.indexes``): events are appended in time order.
    occurred_at = models.DateTimeField(_("time (UTC)"), default=timezone.now)
    # Who: the account and a snapshot of its identity at the time of the event
    # (accounts can be renamed, moved or deactivated later). For a failed login
    # ``username`` is the name that was tried (there may be no such account).
    # No index of its own: the search goes by the username snapshot, and
    # accounts are never deleted (PROTECT; administrators have no delete right).
    # No foreign-key constraint in the database (docs/adr/0031, session 14): its check
    # at every event's commit read and key-share-locked the account's row; the id is
    # the account's as the event's service found it, and the chain seals it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    organisation_name = models.CharField(_("organisation"), max_length=200, blank=True)
    roles = models.CharField(_("roles"), max_length=300, blank=True)
    # What
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    person_id = models.UUIDField(_("person"), null=True, blank=True)
    fields = models.JSONField(_("fields"), default=list, blank=True)
    # Why
    purpose = models.TextField(_("purpose / justification"), blank=True)
    legal_basis = models.CharField(_("legal basis"), max_length=200, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    # Where from
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    client_address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("access event")
        verbose_name_plural = _("access events")
        ordering = ["id"]
        default_permissions = ()
        # The auditor's search pages by id (keyset) within one filter; each
        # selective filter has an index ending in id so a page is an index range.
        # Every index costs every insert, so there is none beyond these. The period
        # (the log review's, the search's start and end) is a BRIN index: a few bytes per
        # block range, nothing written by an insert into the newest, unsummarised range,
        # where a B-tree took an entry per event (docs/adr/0031, session 14).
        indexes = [
            BrinIndex(fields=["occurred_at"], name="audit_event_occurred_brin", autosummarize=True),
            models.Index(fields=["username", "id"], name="audit_event_username_id"),
            models.Index(fields=["person_id", "id"], name="audit_event_person_id"),
            models.Index(fields=["action", "id"], name="audit_event_action_id"),
            models.Index(fields=["organisation_name", "id"], name="audit_event_org_id"),
            models.Index(
                fields=["id"],
                name="audit_event_denied_id",
                condition=models.Q(outcome="denied"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.pk}"

    @property
    def action_label(self) -> str:
        """The action's label (as ``get_action_display``, translating one label only)."""
        return str(_ACTION_LABELS.get(self.action, self.action))

    @property
    def outcome_label(self) -> str:
        """The outcome's label (as ``get_outcome_display``, translating one label only)."""
        return str(_OUTCOME_LABELS.get(self.outcome, self.outcome))


_ACTION_LABELS = dict(AccessEvent.Action.choices)
_OUTCOME_LABELS = dict(AccessEvent.Outcome.choices)


class ChangeRecord(models.Model):
    """One INSERT, UPDATE or DELETE of a tracked row, written by a database trigger.

    ``data`` is the row after the change (before it, for a delete) as the
    database holds it — encrypted columns therefore hold ciphertext only —
    minus the columns excluded from tracking (password hashes, last login).
    ``context`` is what the application said about the change (acting user,
    request id), ``db_role`` the database role that made it.
    """

    class Operation(models.TextChoices):
        INSERT = "INSERT", _("Created")
        UPDATE = "UPDATE", _("Changed")
        DELETE = "DELETE", _("Deleted")
        TRUNCATE = "TRUNCATE", _("Emptied (every row)")

    occurred_at = models.DateTimeField(_("time (UTC)"), db_index=True)
    table_name = models.CharField(_("table"), max_length=63)
    row_id = models.CharField(_("row id"), max_length=64)
    operation = models.CharField(_("operation"), max_length=8, choices=Operation.choices)
    data = models.JSONField(_("row"))
    changed_fields = models.JSONField(_("changed fields"), default=list)
    context = models.JSONField(_("context"), null=True, blank=True)
    db_role = models.CharField(_("database role"), max_length=63)

    class Meta:
        verbose_name = _("change record")
        verbose_name_plural = _("change records")
        ordering = ["id"]
        default_permissions = ()
        indexes = [models.Index(fields=["table_name", "row_id", "id"], name="audit_change_row")]

    def __str__(self) -> str:
        return f"{self.table_name} {self.operation} #{self.pk}"


class ChainLink(models.Model):
    """Position ``position`` of the hash chain: which entry, its hash, the running hash."""

    class Source(models.TextChoices):
        ACCESS = "access", _("access event")
        HISTORY = "history", _("change record")

    position = models.BigIntegerField(_("position"), primary_key=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    entry_id = models.BigIntegerField(_("entry id"))
    entry_hash = models.CharField(_("entry hash"), max_length=64)
    chain_hash = models.CharField(_("chain hash"), max_length=64)
    sealed_at = models.DateTimeField(_("sealed at (UTC)"))
    # How the entry and the link were hashed (ADR 0031, session 19): 1 the entry's
    # canonical JSON document, 2 its row's COPY text line. Both tags differ, so a link
    # whose format is changed no longer verifies.
    format = models.PositiveSmallIntegerField(_("chain format"), default=1, db_default=1)

    class Meta:
        verbose_name = _("chain link")
        verbose_name_plural = _("chain links")
        ordering = ["position"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["source", "entry_id"], name="audit_chain_one_per_entry")
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.entry_id} @ {self.position}"


class ChainBlock(models.Model):
    """Positions ``first_position``..``last_position`` of the hash chain in chain format 3
    (ADR 0031, session 22): the entries of one source sealed together, one row per block.

    The entries' ids are in chain order (ascending); ``entry_digests`` holds their format-2
    entry digests (32 bytes each, in the same order), read by the verifier only to name the
    entry of a block whose running hash does not follow. ``chain_hash`` is the running hash
    after the block (the head at ``last_position``)."""

    first_position = models.BigIntegerField(_("first position"), primary_key=True)
    last_position = models.BigIntegerField(_("last position"), unique=True)
    source = models.CharField(_("source"), max_length=10, choices=ChainLink.Source.choices)
    entry_ids = ArrayField(models.BigIntegerField(), verbose_name=_("entry ids"))
    entry_digests = models.BinaryField(_("entry digests"))
    chain_hash = models.CharField(_("chain hash"), max_length=64)
    sealed_at = models.DateTimeField(_("sealed at (UTC)"))

    class Meta:
        verbose_name = _("chain block")
        verbose_name_plural = _("chain blocks")
        ordering = ["first_position"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.source} @ {self.first_position}..{self.last_position}"


class PendingEntry(models.Model):
    """A committed log entry waiting to be sealed (filled by a trigger, emptied by the sealer).

    Only the trigger of the two log tables writes here (``audit/migrations/0006``: a
    guard refuses any other INSERT, and production grants the application role no
    INSERT at all); one row per entry. The sealer skips rows of entries already in
    the chain, so no stray row can stop sealing (issue 14, ADR 0005 addendum).
    """

    source = models.CharField(max_length=10, choices=ChainLink.Source.choices)
    entry_id = models.BigIntegerField()

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["source", "entry_id"], name="audit_pending_one_per_entry"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} #{self.entry_id}"


class FindingOutcome(models.Model):
    """The outcome of one finding of the log review (loggkontroll), written once.

    A finding is identified by its rule and its key (``audit.findings``): the access
    event's id for the rules that select events (and the random sample), the username and
    local day for unusual volume, the account name or address and local hour for a burst
    of failed sign-ins. The period (and seed) of the review that showed it are kept beside
    it but are not part of its identity: the same event found again in an overlapping
    period is the same finding, with the outcome already given.

    Append-only at the database like the access log (``audit/migrations/0007``: UPDATE,
    DELETE and TRUNCATE raise). Holds no personal-data value: ids, a username, a rule.
    """

    class Outcome(models.TextChoices):
        REVIEWED = "reviewed", _("Reviewed, no action")
        NEEDS_ACTION = "needs_action", _("Needs action")
        REFERRED_DPO = "referred_dpo", _("Referred to the data protection officer")

    rule = models.CharField(_("rule"), max_length=40)
    key = models.CharField(_("finding"), max_length=300)
    # No foreign-key constraint in the database: the access log is partitioned, and
    # PostgreSQL can reference it only by its whole key (id, occurred_at); a constraint
    # would also keep a month from being detached for the archive (ADR 0031).
    event = models.ForeignKey(
        AccessEvent,
        verbose_name=_("access event"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    period_start = models.DateTimeField(_("review period from"))
    period_end = models.DateTimeField(_("review period to"))
    seed = models.BigIntegerField(_("sample seed"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed at (UTC)"), default=timezone.now)

    class Meta:
        verbose_name = _("finding outcome")
        verbose_name_plural = _("finding outcomes")
        ordering = ["id"]
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="audit_finding_one_outcome")
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.key}: {self.outcome}"


class ArchivedPartition(models.Model):
    """A month of the access log detached from the live table and exported for the archive.

    Written once by ``manage.py audit archive`` (``audit.integrity.partitions``) and
    append-only at the database. ``id_ranges`` are the ids of the month's events as
    inclusive ``[first, last]`` ranges: the verifier accepts a sealed access event that is
    no longer in the live table only when its id is in one of them. The record is signed
    with the checkpoint key (``signature`` over every other field), so a row added behind
    the archive command's back cannot hide a deleted event.
    """

    month = models.DateField(_("month"), unique=True)
    table_name = models.CharField(_("table"), max_length=63)
    entries = models.BigIntegerField(_("entries"))
    first_position = models.BigIntegerField(_("first position"), null=True)
    last_position = models.BigIntegerField(_("last position"), null=True)
    id_ranges = models.JSONField(_("ids"), default=list)
    export_name = models.CharField(_("export file"), max_length=255)
    export_sha256 = models.CharField(_("export SHA-256"), max_length=64)
    detached_at = models.DateTimeField(_("detached at (UTC)"))
    key_id = models.CharField(_("signing key"), max_length=16)
    signature = models.TextField(_("signature"))

    class Meta:
        verbose_name = _("archived month of the access log")
        verbose_name_plural = _("archived months of the access log")
        ordering = ["month"]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} ({self.entries} events)"


class DailyVolume(models.Model):
    """Person-data events of one account name and organisation on one local day (the log
    review's "unusual volume", ``audit.review``), counted once for a day that has ended.

    Filled by ``manage.py audit summarise`` on a timer (``audit.volumes.summarise``): only
    the days that ended since its last run. A review reads the days it covers here and
    counts the rest of its period live from the access log (docs/adr/0037)."""

    day = models.DateField(_("day"))
    username = models.CharField(_("username"), max_length=150, blank=True)
    organisation_name = models.CharField(_("organisation"), max_length=200, blank=True)
    count = models.IntegerField(_("events"))

    class Meta:
        verbose_name = _("daily volume")
        verbose_name_plural = _("daily volumes")
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["day", "username", "organisation_name"], name="audit_volume_unique"
            )
        ]
        # The rule reads the user-days above its threshold: an index range on the count.
        indexes = [models.Index(fields=["count", "day"], name="audit_volume_count_day")]

    def __str__(self) -> str:
        return f"{self.username} {self.day}: {self.count}"


class VolumeSummaryState(models.Model):
    """How far ``DailyVolume`` is filled: every local day before ``filled_until``. One row;
    its lock serialises the fills."""

    filled_until = models.DateField(null=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"volume summary until {self.filled_until}"
