"""The API's base view and the core's operations (a case's status, an action on a case).

Every operation is a thin view over the same services and selectors as the pages,
called with the acting person (``casework.api.auth``): the answer holds exactly what
that person may see, and the access log records the reading or the change as on the
page. A programme's own operations live in its package (``workflows/<programme>/api.py``)
and are mounted through the registry.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.utils import translation
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from casework import policy
from casework.api import schema
from casework.api.http import JsonParser, etag, expected_version, idempotent
from casework.api.problems import bad_input, not_found
from casework.models import Consent
from casework.selectors.case_status import find_case, get_case_status
from casework.selectors.cases import deny_reading
from casework.services import cases as case_services
from casework.services.case_changes import reload_version


class Bilingual:
    """A message already rendered in Swedish and in English (a serializer's error)."""

    def __init__(self, swedish: str, english: str) -> None:
        self.swedish, self.english = swedish, english

    def __str__(self) -> str:
        return self.english if translation.get_language().startswith("en") else self.swedish

    @classmethod
    def paired(
        cls, swedish: dict[str, list[str]], english: dict[str, list[str]]
    ) -> dict[str, list[Bilingual]]:
        """Each field's messages, rendered once in Swedish and once in English, paired in
        order (a field the English rendering lacks keeps its Swedish messages for both)."""
        return {
            field: [
                cls(sv, en) for sv, en in zip(messages, english.get(field, messages), strict=False)
            ]
            for field, messages in swedish.items()
        }


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """A serializer's nested errors as {"field.sub": [message, …]}."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for name, value in errors.items():
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(errors, list) and errors and not isinstance(errors[0], str):
        flat = {}
        for index, value in enumerate(errors):
            flat.update(_flatten(value, f"{prefix}.{index}"))
        return flat
    return {prefix or "non_field_errors": [str(message) for message in errors]}


@method_decorator(login_not_required, name="dispatch")
class ApiView(APIView):
    """An API operation: the scope it needs, whether it needs an acting person, and the
    purpose its services and access-log events record. It answers for itself (a 401
    problem without a token), not with the login page's redirect."""

    required_scope: str = ""
    acting_person = True
    purpose: Any = ""
    # What the operation shows or uses the case for (``Consent.Purpose``): a user of
    # another organisation needs a consent covering it (or a statute).
    consent_purpose: str = Consent.Purpose.COORDINATION
    parser_classes = [JsonParser]

    @property
    def person(self):
        """The acting person (the permission class has made sure there is one)."""
        return self.request.auth.person

    def visible_case(self, case_id):
        """The programme case ``case_id`` if the acting person may see it; else a 404
        (after a denial event where it exists): a guessed id learns nothing."""
        case = find_case(case_id)
        if case is None:
            raise not_found()
        access = policy.case_access(
            self.person, case, any_ground=True, purpose=self.consent_purpose
        )
        if not access:
            raise deny_reading(
                user=self.person,
                case=case,
                purpose=str(self.purpose),
                reason=access.denial,
                what=f"api:{self.required_scope}",
                access=access,
            )
        return case

    def validated(self, serializer_class: type[serializers.Serializer], **context) -> dict:
        """The request body, validated by ``serializer_class``; bad input is a 400 problem
        with every message in Swedish and in English."""
        data = self.request.data
        with translation.override("sv"):
            serializer = serializer_class(data=data, context=context)
            if serializer.is_valid():
                return serializer.validated_data
            swedish = _flatten(serializer.errors)
        with translation.override("en"):
            again = serializer_class(data=data, context=context)
            again.is_valid()
            english = _flatten(again.errors)
        raise bad_input(Bilingual.paired(swedish, english))


@method_decorator(login_not_required, name="dispatch")
class NoSuchOperation(APIView):
    """Every other address under ``/api/v1/`` (an unknown path, or a path parameter that is
    not of its type, e.g. a case id that is no UUID): a 404 problem document, not the
    site's HTML page, whatever the method and whether or not a token is sent."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    schema = None  # not an operation of the document

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise not_found()


# --- A case's status -------------------------------------------------------------------------


class MemberOut(serializers.Serializer):
    role = serializers.CharField()
    username = serializers.CharField(source="user.username")
    name = serializers.CharField(source="user.get_full_name")
    organisation = serializers.CharField(source="user.organisation.name", allow_null=True)
    since = serializers.DateTimeField(source="valid_from")


class CaseStatusOut(serializers.Serializer):
    id = serializers.UUIDField(source="case.pk")
    reference = serializers.CharField(source="case.reference")
    programme = serializers.CharField(source="case.programme")
    status = serializers.CharField()
    status_label = serializers.CharField()
    review_date = serializers.DateField(allow_null=True)
    closed_at = serializers.DateTimeField(source="case.closed_at", allow_null=True)
    version = serializers.IntegerField(source="case.version")
    team = MemberOut(many=True)


# The answer's serializer, built once: a new serializer deep-copies its declared fields
# (a third of the answer's CPU); its ``to_representation`` keeps nothing of an answer.
_case_status_out = CaseStatusOut()


class CaseStatusView(ApiView):
    required_scope = "cases:read"
    purpose = _("API: reading a case's status")

    @extend_schema(
        operation_id="case_status",
        summary="A case's status, next review date and team",
        parameters=[schema.ACTING_USER],
        responses={
            200: OpenApiResponse(CaseStatusOut, description="The case as the person may see it."),
            **schema.problems(401, 403, 404, 429),
        },
    )
    def get(self, request, case_id):
        page = get_case_status(
            user=self.person,
            purpose=str(self.purpose),
            case_id=case_id,
            consent_purpose=self.consent_purpose,
        )
        return Response(
            _case_status_out.to_representation(page), headers={"ETag": etag(page.case.version)}
        )


# --- An action on a case -----------------------------------------------------------------------


class ActionIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=case_services.Action.Kind.choices)
    status = serializers.ChoiceField(
        choices=[
            (case_services.Action.Status.PLANNED, _("Planned")),
            (case_services.Action.Status.DONE, _("Done")),
        ]
    )
    date = serializers.DateField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class ActionOut(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.UUIDField(source="case_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    date = serializers.DateField()
    organisation = serializers.CharField(source="organisation.name")


class CaseActionsView(ApiView):
    required_scope = "actions:write"
    purpose = _("API: recording an action")

    @extend_schema(
        operation_id="case_action_create",
        summary="Record an action (insats) of the acting person's organisation in a case",
        request=ActionIn,
        parameters=[schema.ACTING_USER, schema.IDEMPOTENCY_KEY, schema.IF_MATCH],
        responses={
            201: OpenApiResponse(ActionOut, description="The action is recorded."),
            **schema.problems(400, 401, 403, 404, 412, 422, 428, 429),
        },
    )
    @idempotent
    def post(self, request, case_id):
        case = self.visible_case(case_id)
        version = expected_version(request, case.version)
        data = self.validated(ActionIn)
        action = case_services.add_action(
            user=self.person,
            case=case,
            purpose=str(self.purpose),
            kind=data["kind"],
            status=data["status"],
            date=data["date"],
            note=data.get("note") or None,
            expected_version=version,
        )
        reload_version(case)
        return Response(
            ActionOut(action).data,
            status=status.HTTP_201_CREATED,
            headers={"ETag": etag(case.version)},
        )
