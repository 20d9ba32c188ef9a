"""A client's own webhooks: list, register, delete (scope ``webhooks:manage``).

The events carry identifiers and states only, so these operations need no acting
person. Registering answers with the webhook's secret, the only time it is told (a
retry with the same ``Idempotency-Key`` gets the same answer); the receiver checks each
delivery's ``Samverkan-Signature`` with it (``casework.services.webhooks``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from casework.api import schema
from casework.api.http import idempotent
from casework.api.problems import Problem, not_found
from casework.api.views import ApiView
from casework.models import Webhook
from casework.services import webhooks


class EventsField(serializers.ListField):
    """The events, a list (the model keeps them space-separated)."""

    child = serializers.ChoiceField(choices=Webhook.Event.choices)

    def to_representation(self, data):
        return super().to_representation(data.split() if isinstance(data, str) else data)


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(
        max_length=500,
        help_text="Where to POST the events: https, on a host the operator allows.",
    )
    events = EventsField(min_length=1, max_length=len(Webhook.Event.values))


class WebhookOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = EventsField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class NewWebhookOut(WebhookOut):
    secret = serializers.CharField(
        help_text="The key of the deliveries' HMAC signature. Told only now: keep it."
    )


def _disabled() -> Problem:
    return Problem(
        status.HTTP_403_FORBIDDEN,
        "webhooks-disabled",
        _("Webhooks are not enabled"),
        _("The operator allows no host for webhooks; ask them to add yours."),
    )


class WebhooksView(ApiView):
    required_scope = "webhooks:manage"
    acting_person = False

    @extend_schema(
        operation_id="webhook_list",
        summary="The client's webhooks (never their secrets)",
        responses={
            200: OpenApiResponse(WebhookOut(many=True), description="Oldest first."),
            **schema.problems(401, 403, 429),
        },
    )
    def get(self, request):
        found = webhooks.client_webhooks(client=request.auth.client)
        return Response(WebhookOut(found, many=True).data)

    @extend_schema(
        operation_id="webhook_create",
        summary="Register a webhook for events of the client's organisation",
        request=WebhookIn,
        parameters=[schema.IDEMPOTENCY_KEY],
        responses={
            201: OpenApiResponse(NewWebhookOut, description="Registered; the secret is told once."),
            **schema.problems(400, 401, 403, 422, 429),
        },
    )
    @idempotent
    def post(self, request):
        data = self.validated(WebhookIn)
        try:
            webhook, secret = webhooks.register_webhook(
                client=request.auth.client, url=data["url"], events=data["events"]
            )
        except webhooks.WebhooksDisabled:
            raise _disabled() from None
        return Response(
            {**WebhookOut(webhook).data, "secret": secret}, status=status.HTTP_201_CREATED
        )


class WebhookView(ApiView):
    required_scope = "webhooks:manage"
    acting_person = False

    @extend_schema(
        operation_id="webhook_delete",
        summary="Delete one of the client's webhooks (and its pending deliveries)",
        responses={
            204: OpenApiResponse(description="Deleted."),
            **schema.problems(401, 403, 404, 429),
        },
    )
    def delete(self, request, webhook_id: int):
        if not webhooks.delete_webhook(client=request.auth.client, webhook_id=webhook_id):
            raise not_found()
        return Response(status=status.HTTP_204_NO_CONTENT)
