"""A client's own webhooks: list, register, delete (scope ``webhooks:manage``), and the
events they receive, described in the OpenAPI document's ``webhooks``.

The events carry identifiers and states only, so these operations need no acting
person. Registering answers with the webhook's secret, the only time it is told (a
retry with the same ``Idempotency-Key`` gets the same answer); the receiver checks each
delivery's ``Samverkan-Signature`` with it (``casework.services.webhooks``).
"""

from __future__ import annotations

import inspect

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema
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
    """The client's webhooks. Each event is POSTed as JSON to the webhook's address with
    the headers ``Samverkan-Event`` (the event), ``Samverkan-Delivery`` (the delivery's
    id, the same in every retry: drop one already handled) and ``Samverkan-Signature:
    t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>``: check
    it over the raw body and refuse a time more than five minutes off. Answer with a
    2xx within 5 seconds; anything else (a redirect too) is retried after 30 s, 1 min,
    2 min … up to 8 attempts. The events hold ids and states only: read more through
    the API as an acting person."""

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
    """One of the client's webhooks."""

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


# --- The events, as the OpenAPI document's ``webhooks`` (SPECTACULAR_SETTINGS) ------------------


class CaseRefOut(serializers.Serializer):
    id = serializers.UUIDField()
    programme = serializers.CharField()
    status = serializers.CharField()
    version = serializers.IntegerField(help_text='The case\'s ETag is "v<version>".')


class CaseIdOut(serializers.Serializer):
    id = serializers.UUIDField()


class TaskRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    flow = serializers.CharField()
    step = serializers.CharField()
    status = serializers.CharField(help_text="NEW (in a queue) or ASSIGNED (to a person).")


class EventOut(serializers.Serializer):
    event = serializers.ChoiceField(choices=Webhook.Event.choices)
    id = serializers.IntegerField(help_text="The delivery's id (Samverkan-Delivery).")
    occurred_at = serializers.DateTimeField()


class CaseStatusChangedOut(EventOut):
    case = CaseRefOut()


class TaskCreatedOut(EventOut):
    task = TaskRefOut()
    case = CaseIdOut(allow_null=True, help_text="The case the task is a step of, if any.")


def _event(name: str, serializer, summary: str) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=name,
        decorator=extend_schema(
            summary=summary,
            description=inspect.cleandoc(WebhooksView.__doc__ or ""),
            request=serializer,
            responses={200: OpenApiResponse(description="Received (any 2xx).")},
        ),
    )


CASE_STATUS_CHANGED = _event(
    "case.status_changed",
    CaseStatusChangedOut,
    "A case of the organisation (responsible, or on its team) has a new status",
)
TASK_CREATED = _event(
    "task.created",
    TaskCreatedOut,
    "A step for the organisation: its owner's, else the case's responsible one's",
)
