"""GVI in the integration API: the police record an incident
(``POST /api/v1/gvi/incidents/``) and a delivered custom notification
(``POST /api/v1/gvi/notifications/{id}/delivery/``, after a ``GET`` of the same address
for the notification's state and ``ETag``).

As on the pages, only a police officer in GVI does either (anyone else is refused, and the
refusal logged, before anything is looked up), with the same services; a delivery is the
notification's flow step "Schedule and deliver", done as its task page does it, and needs
the notification's ``ETag`` in ``If-Match``. The answers hold what the officer sees on
the pages: no name and no text.
"""

from __future__ import annotations

import copy

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from casework import policy
from casework.api import schema
from casework.api.http import etag, expected_version, idempotent
from casework.api.problems import not_found
from casework.api.views import ApiView
from casework.models import Person
from workflows.gvi import selectors, services
from workflows.gvi.models import (
    CustomNotification,
    Group,
    Incident,
    MemberResponse,
    ReferralProgramme,
)
from workflows.gvi.services.access import require_role
from workflows.gvi.views import PURPOSE

# The core's If-Match header, described for a notification.
IF_MATCH = copy.copy(schema.IF_MATCH)
IF_MATCH.description = 'The notification\'s ETag as last read (e.g. "v3"); a stale one gets 412.'


class PoliceOperation(ApiView):
    """A GVI write of the police: the acting person must be a police officer in GVI
    (``what`` names the operation in the access log's refusal)."""

    required_scope = "gvi:write"
    purpose = PURPOSE
    what = ""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require_role(policy.gvi_police, user=self.person, purpose=str(self.purpose), what=self.what)


# --- An incident -------------------------------------------------------------------------------


class IncidentIn(serializers.Serializer):
    date = serializers.DateField()
    area = serializers.ChoiceField(choices=Person.Area.choices)
    kind = serializers.ChoiceField(choices=Incident.Kind.choices)
    groups = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Group.objects.all(),
        pk_field=serializers.UUIDField(),
        error_messages={
            "does_not_exist": _("There is no such group."),
            "incorrect_type": _("There is no such group."),
        },
    )


class IncidentOut(serializers.Serializer):
    id = serializers.UUIDField()
    date = serializers.DateField()
    area = serializers.CharField()
    kind = serializers.CharField()
    groups = serializers.SerializerMethodField()
    recorded_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_groups(self, incident: Incident) -> list:
        return [str(group.pk) for group in incident.groups.all()]


class IncidentsView(PoliceOperation):
    """Record an incident (its date, area and type: no person, no free text) and link the
    groups, as a police officer in GVI does on the incident page."""

    what = "gvi:incident:create"

    @extend_schema(
        operation_id="gvi_incident_create",
        summary="Record a GVI incident and link the groups",
        request=IncidentIn,
        parameters=[schema.ACTING_USER, schema.IDEMPOTENCY_KEY],
        responses={
            201: OpenApiResponse(IncidentOut, description="The incident is recorded."),
            **schema.problems(400, 401, 403, 422, 429),
        },
    )
    @idempotent
    def post(self, request):
        data = self.validated(IncidentIn)
        incident = services.record_incident(user=self.person, purpose=str(self.purpose), **data)
        return Response(IncidentOut(incident).data, status=status.HTTP_201_CREATED)


# --- A delivered custom notification -----------------------------------------------------------


class DeliveryIn(serializers.Serializer):
    """The delivery form's fields: the offer of help and the member's response; an
    accepted offer names the programme to refer the member to and the reason."""

    offer_of_help = serializers.CharField(max_length=10_000)
    response = serializers.ChoiceField(choices=MemberResponse.choices)
    programme = serializers.ChoiceField(
        choices=ReferralProgramme.choices, required=False, allow_blank=True
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class NotificationOut(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField()
    status = serializers.CharField()
    response = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    follow_up_due = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField()


class NotificationDeliveryView(PoliceOperation):
    """A custom notification's delivery: ``GET`` its state and ``ETag`` (nothing decrypted),
    ``POST`` the delivery with that ``ETag`` in ``If-Match``."""

    what = "gvi:notification:deliver"

    def notification(self, notification_id) -> CustomNotification:
        notification = (
            CustomNotification.objects.select_related("member__group")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None:
            raise not_found()
        return notification

    @staticmethod
    def answer(notification: CustomNotification, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            NotificationOut(notification).data,
            status=code,
            headers={"ETag": etag(notification.version)},
        )

    @extend_schema(
        operation_id="gvi_notification_state",
        summary="A custom notification's state and ETag, before recording its delivery",
        parameters=[schema.ACTING_USER],
        responses={
            200: OpenApiResponse(NotificationOut, description="The notification's state."),
            **schema.problems(401, 403, 404, 429),
        },
    )
    def get(self, request, notification_id):
        notification = self.notification(notification_id)
        try:
            selectors.get_notification_state(
                user=self.person, purpose=str(self.purpose), notification=notification
            )
        except selectors.GviNotFound:
            raise not_found() from None
        return self.answer(notification)

    @extend_schema(
        operation_id="gvi_notification_delivery_create",
        summary="Record that a custom notification was delivered",
        request=DeliveryIn,
        parameters=[schema.ACTING_USER, schema.IDEMPOTENCY_KEY, IF_MATCH],
        responses={
            201: OpenApiResponse(NotificationOut, description="The delivery is recorded."),
            **schema.problems(400, 401, 403, 404, 412, 422, 428, 429),
        },
    )
    @idempotent
    def post(self, request, notification_id):
        notification = self.notification(notification_id)
        version = expected_version(request, notification.version)
        data = self.validated(DeliveryIn)
        services.record_delivery_step(
            user=self.person,
            purpose=str(self.purpose),
            notification=notification,
            expected_version=version,
            **data,
        )
        notification.refresh_from_db()
        return self.answer(notification, status.HTTP_201_CREATED)


def urls() -> list:
    return [
        path("incidents/", IncidentsView.as_view(), name="gvi_incidents"),
        path(
            "notifications/<uuid:notification_id>/delivery/",
            NotificationDeliveryView.as_view(),
            name="gvi_notification_delivery",
        ),
    ]
