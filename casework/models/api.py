"""The integration API's own records: clients, idempotent answers and webhooks.

An API client is an organisation's own case system (docs/adr/0022-integration-api.md).
It authenticates with OAuth 2.0 client credentials (django-oauth-toolkit's
``Application``); this model adds what Samverkan needs on top: the organisation it
speaks for, the scopes granted to it and the approval of a second administrator.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models.accounts import Organisation


class ApiClient(models.Model):
    """An organisation's system that calls the API.

    Used only while active and while its configuration (name, organisation, scopes, rate
    limit, application: ``casework.services.api_credentials.api_client_state``) is the one a
    second administrator approved (``approved_digest``, written only by the four-eyes
    approval and, for fewer scopes, ``casework.services.api_clients``), as for identity
    providers (ADR 0014).
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="api_clients",
    )
    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        verbose_name=_("OAuth application"),
        on_delete=models.PROTECT,
        related_name="api_client",
        null=True,
        blank=True,
        editable=False,
    )
    # Space-separated, as in OAuth (``settings.API_SCOPES`` names the possible ones).
    scopes = models.CharField(_("scopes"), max_length=500, blank=True)
    # Requests per period, e.g. "600/min"; empty: the site default (API_RATE_LIMIT).
    rate_limit = models.CharField(_("rate limit"), max_length=20, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    approved_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]
        default_permissions = ("view", "add", "change")

    def __str__(self) -> str:
        return self.name

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class IdempotentRequest(models.Model):
    """The first answer to a POST with an ``Idempotency-Key``: a retry gets it again.

    Holds identifiers and states only (the API's answers to a POST carry no personal
    data); kept for ``API_IDEMPOTENCY_HOURS``.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    # Method, path, acting user and body, hashed: the same key with another request is
    # refused rather than answered with the first one's result.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(default=dict)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="api_idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class Webhook(models.Model):
    """Where a client wants to hear of events for its organisation (ids and states only)."""

    class Event(models.TextChoices):
        TASK_CREATED = "task.created", _("Task created for your organisation")
        CASE_STATUS_CHANGED = "case.status_changed", _("Case status changed")

    client = models.ForeignKey(
        ApiClient, verbose_name=_("API client"), on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField(_("address"), max_length=500)
    # Space-separated ``Event`` values.
    events = models.CharField(_("events"), max_length=200)
    # The HMAC key; shown once when the webhook is made, never in the admin or a log.
    secret = models.CharField(max_length=128, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        default_permissions = ("view", "add", "change")

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook, retried with backoff."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Given up")

    webhook = models.ForeignKey(
        Webhook, verbose_name=_("webhook"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(_("event"), max_length=40, choices=Webhook.Event.choices)
    # Ids and states only, never personal data.
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_response = models.CharField(_("last answer"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        default_permissions = ("view",)
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="api_webhook_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"


__all__ = ["ApiClient", "IdempotentRequest", "Webhook", "WebhookDelivery"]
