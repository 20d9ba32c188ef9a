"""The API clients' webhooks and their deliveries in the admin (docs/adr/0022-integration-api.md).

Administrators see them (ids and states only: no personal data), switch a webhook off
and send a waiting or given-up delivery again now. A client registers and deletes its
webhooks through the API; nothing is added or edited here, and a webhook's secret is
never shown (``casework.services.webhooks``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from casework.admin.four_eyes import NoWrites
from casework.models import Webhook, WebhookDelivery
from casework.services import webhooks

# Who switches webhooks off and sends deliveries again (the administrators' role).
MANAGE = "casework.change_webhook"


class ReadOnly(NoWrites, admin.ModelAdmin):
    """Shown, never added, edited or deleted here."""

    def get_readonly_fields(self, request, obj=None):
        return self.fields


@admin.register(Webhook)
class WebhookAdmin(ReadOnly):
    list_display = ["id", "client", "url", "events", "is_active", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["client"]
    search_fields = ["url", "client__name"]
    ordering = ["-created_at", "-id"]
    # Never the secret.
    fields = ["client", "url", "events", "is_active", "created_at"]
    actions = ["deactivate"]

    def has_deactivate_permission(self, request):
        return request.user.has_perm(MANAGE)

    @admin.action(description=_("Switch the selected webhooks off"), permissions=["deactivate"])
    def deactivate(self, request, queryset):
        count = webhooks.deactivate_webhooks(
            user=request.user, webhooks=queryset.values_list("pk", flat=True)
        )
        messages.success(request, _("%(count)d webhooks switched off.") % {"count": count})


# Where a delivery stands: in the list of deliveries and on a delivery's page.
DELIVERY_STATE = [
    "status",
    "attempts",
    "next_attempt_at",
    "last_response",
    "created_at",
    "delivered_at",
]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly):
    list_display = ["id", "event", "webhook", "client", *DELIVERY_STATE]
    list_filter = ["status", "event"]
    list_select_related = ["webhook__client"]
    ordering = ["-id"]
    fields = ["webhook", "event", *DELIVERY_STATE, "payload"]
    actions = ["retry"]

    @admin.display(description=_("API client"), ordering="webhook__client__name")
    def client(self, obj):
        return obj.webhook.client

    def has_retry_permission(self, request):
        return request.user.has_perm(MANAGE)

    @admin.action(description=_("Send again now"), permissions=["retry"])
    def retry(self, request, queryset):
        count = webhooks.retry_now(deliveries=queryset.values_list("pk", flat=True))
        messages.success(request, _("%(count)d deliveries are due now.") % {"count": count})
