"""The access log: one row per consultation, change, disclosure, login … of Samverkan.

Rows are written only by ``audit.services`` and never changed afterwards. The
row holds who, when, what and why — never a personal-data value.
"""

from __future__ import annotations

from django.conf import settings
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

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("Allowed")
        DENIED = "denied", _("Denied")

    occurred_at = models.DateTimeField(_("time (UTC)"), default=timezone.now, db_index=True)
    # Who: the account and a snapshot of its identity at the time of the event
    # (accounts can be renamed, moved or deactivated later).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    organisation_name = models.CharField(_("organisation"), max_length=200, blank=True)
    roles = models.CharField(_("roles"), max_length=300, blank=True)
    # What
    action = models.CharField(_("action"), max_length=20, choices=Action.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    person_id = models.UUIDField(_("person"), null=True, blank=True, db_index=True)
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
        indexes = [models.Index(fields=["user", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.action} #{self.pk}"
