"""The OpenAPI 3.1 document's shared parts (drf-spectacular): the headers every operation
names, the problem document, and the links from a new case to its reading."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from casework.api.http import IDEMPOTENCY_KEY_PATTERN
from casework.api.problems import PROBLEM_TYPE

ACTING_USER = OpenApiParameter(
    "Samverkan-Acting-User",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The username of the employee the client acts for (its own organisation).",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    pattern=IDEMPOTENCY_KEY_PATTERN,
    description="A key unique to this request (1 to 200 visible ASCII characters); a retry "
    "with the same key gets the first answer and changes nothing.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the case as last read (e.g. "v3"); a stale one gets 412.',
)


class ClientCredentials(OpenApiAuthenticationExtension):
    """The client's bearer token (OAuth 2.0 client credentials), with the operation's scope."""

    target_class = "casework.api.auth.ClientAuthentication"
    name = "client"

    def get_security_requirement(self, auto_schema):
        scope = getattr(auto_schema.view, "required_scope", "")
        return {self.name: [scope] if scope else []}

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/api/v1/token/",
                    "scopes": dict(settings.API_SCOPES),
                }
            },
        }


class ProblemFieldOut(serializers.Serializer):
    field = serializers.CharField()
    detail = serializers.CharField()
    detail_en = serializers.CharField()


class ProblemOut(serializers.Serializer):
    """RFC 9457 problem details, with the detail in Swedish and in English."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    detail_en = serializers.CharField()
    instance = serializers.CharField(required=False)
    errors = ProblemFieldOut(many=True, required=False)


_DESCRIPTIONS = {
    400: "Bad input (errors lists each field's problem).",
    401: "No valid access token.",
    403: "The client's scopes or the acting person's rights do not allow this.",
    404: "No such resource, or not one the acting person may see.",
    409: "The resource is not in a state that allows this.",
    412: "The If-Match ETag is stale: nothing was saved.",
    422: "The Idempotency-Key was used for another request.",
    428: "If-Match is required.",
    429: "Too many requests from this client.",
}


def problems(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    """The refusals of an operation, as the problem documents they are answered with
    (``application/problem+json``, not ``application/json``: clients and Schemathesis
    check the media type)."""
    return {
        (code, PROBLEM_TYPE): OpenApiResponse(ProblemOut, description=_DESCRIPTIONS[code])
        for code in codes
    }


# Operations whose 201 answer is a new case: the document links them to its reading
# (schemathesis follows the link in its stateful tests).
CASE_CREATING = "x-samverkan-creates-case"


def link_new_cases(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular post-processing hook: a 201 answer of an operation marked
    ``x-samverkan-creates-case`` links to ``case_status`` with its ``id``."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or not operation.pop(CASE_CREATING, False):
                continue
            created = operation.get("responses", {}).get("201")
            if created is not None:
                created["headers"] = {
                    "Location": {
                        "schema": {"type": "string"},
                        "required": True,
                        "description": "The new case's address (case_status).",
                    }
                }
                created["links"] = {
                    "ReadCase": {
                        "operationId": "case_status",
                        "parameters": {"case_id": "$response.body#/id"},
                        "description": "The new case's status (for those who may see it).",
                    }
                }
    return result


def document_retry_after(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every 429 answer names its ``Retry-After``."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            limited = (
                operation.get("responses", {}).get("429") if isinstance(operation, dict) else None
            )
            if limited is not None:
                limited["headers"] = {
                    "Retry-After": {
                        "schema": {"type": "integer", "minimum": 0},
                        "required": True,
                        "description": "Seconds to wait before the next request.",
                    }
                }
    return result
