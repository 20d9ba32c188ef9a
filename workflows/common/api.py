"""What every programme's API operations share: registering a referral.

A programme's ``api.py`` subclasses :class:`ReferralOperation` with its own service and
purpose; the answer is the same whether the person was registered before or not (the
case number and state, nothing read from the register: ADR 0012), and the referrer is
not on the case's team, so reading the new case takes someone who is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from casework import personnummer as pnr
from casework.api import schema
from casework.api.http import etag, idempotent
from casework.api.views import ApiView
from casework.models import Case, Person


class PersonIn(serializers.Serializer):
    personnummer = serializers.CharField(max_length=20)
    name = serializers.CharField(max_length=200)
    area = serializers.ChoiceField(choices=Person.Area.choices)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate_personnummer(self, value: str) -> str:
        try:
            return pnr.normalise(value)
        except ValidationError as error:
            raise serializers.ValidationError(error.messages) from None


class ReferralIn(PersonIn):
    reason = serializers.CharField(max_length=4000)


class NewCaseOut(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    reference = serializers.CharField()
    programme = serializers.CharField()
    status = serializers.CharField()
    version = serializers.IntegerField()


# The answer's serializer, built once (as the case read's, ``casework.api.views``): a
# new serializer deep-copies its declared fields; ``to_representation`` keeps nothing.
_new_case_out = NewCaseOut()


def new_case_out(case: Case) -> dict[str, Any]:
    """:class:`NewCaseOut` of a case just opened."""
    return _new_case_out.to_representation(case)


class ReferralOperation(ApiView):
    """``POST``: register a referral; the programme sets ``purpose``, ``request_class``
    and ``register(data) -> case`` (its service, called with the acting person)."""

    # (The docstring is the operation's description in the API schema, where a programme's
    # view has none of its own.) A programme sets ``service``: its service that opens the
    # case, called by ``register`` with the acting person and the valid request's fields;
    # ``referral_schema`` describes the operation.
    required_scope = "referrals:write"
    request_class: type[serializers.Serializer] = ReferralIn
    service: Callable[..., Case]

    def register(self, data: dict[str, Any]) -> Case:
        return self.service(user=self.person, purpose=str(self.purpose), **data)

    @idempotent
    def post(self, request):
        case = self.register(self.validated(self.request_class))
        return Response(
            new_case_out(case),
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/cases/{case.pk}/", "ETag": etag(case.version)},
        )


def referral_schema(operation_id: str, summary: str):
    """Class decorator: the OpenAPI description of a programme's referral operation (its
    ``post``, taking the view's ``request_class``)."""

    def describe(view: type[ReferralOperation]) -> type[ReferralOperation]:
        post = extend_schema(
            operation_id=operation_id,
            summary=summary,
            request=view.request_class,
            parameters=[schema.ACTING_USER, schema.IDEMPOTENCY_KEY],
            responses={
                201: OpenApiResponse(NewCaseOut, description="The referral is registered."),
                **schema.problems(400, 401, 403, 422, 429),
            },
            extensions={schema.CASE_CREATING: True},
        )
        return extend_schema_view(post=post)(view)

    return describe
