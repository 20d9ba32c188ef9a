"""Errors as ``application/problem+json`` (RFC 9457), in Swedish and English.

Every refusal of the API is a problem document: ``type`` (a stable slug under
``/api/v1/problems/``), ``title``, ``status``, ``detail`` in Swedish and ``detail_en`` in
English, and for bad input ``errors``, one entry per field. ``handle`` is Django REST
framework's exception handler; views raise :class:`Problem` or let the services'
errors through (a ``ValidationError`` is a 400, a refusal a 403, a stale version a 412).
Nothing here puts a submitted value in an answer.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response

from casework.selectors.cases import CaseNotFound
from casework.services.tasks import TaskDenied
from casework.services.transitions import Conflict, Denied

PROBLEM_TYPE = "application/problem+json"


def in_both(message: Any) -> tuple[str, str]:
    """``message`` (a lazy translation) rendered in Swedish and in English."""
    with translation.override("sv"):
        swedish = str(message)
    with translation.override("en"):
        english = str(message)
    return swedish, english


def validation_messages(error: ValidationError) -> list[Any]:
    """A Django ``ValidationError``'s messages, still lazy (its parameters applied when
    rendered), so that they can be rendered in both languages."""

    class Rendered:
        def __init__(self, item: ValidationError) -> None:
            self.item = item

        def __str__(self) -> str:
            message = str(self.item.message)
            return message % self.item.params if self.item.params else message

    return [Rendered(item) for item in error.error_list]


class Problem(exceptions.APIException):
    """One problem document: ``status``, a ``kind`` slug, a ``title`` and a ``detail``
    (lazy translations), and ``errors`` ({field: [lazy message, …]}) for bad input."""

    def __init__(
        self,
        status_code: int,
        kind: str,
        title: Any,
        detail: Any = None,
        *,
        errors: dict[str, list[Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.kind = kind
        self.title = title
        self.problem_detail = detail if detail is not None else title
        self.errors = errors or {}
        self.headers = headers or {}
        super().__init__(detail=str(self.problem_detail))


def bad_input(errors: dict[str, list[Any]]) -> Problem:
    return Problem(
        status.HTTP_400_BAD_REQUEST,
        "invalid-input",
        _("Invalid input"),
        _("The request has errors; see errors."),
        errors=errors,
    )


def not_found() -> Problem:
    return Problem(
        status.HTTP_404_NOT_FOUND,
        "not-found",
        _("Not found"),
        _("There is no such resource, or you may not see it."),
    )


def stale() -> Problem:
    return Problem(
        status.HTTP_412_PRECONDITION_FAILED,
        "stale",
        _("Changed by someone else"),
        _("The resource has changed since your ETag; read it again and retry. Nothing was saved."),
    )


def forbidden(message: Any = None) -> Problem:
    return Problem(
        status.HTTP_403_FORBIDDEN,
        "forbidden",
        _("Forbidden"),
        message or _("You may not do this."),
    )


# Errors whose problem is always the same: (status, slug, title, detail).
_FIXED: dict[type[Exception], tuple[int, str, Any, Any]] = {
    exceptions.MethodNotAllowed: (
        status.HTTP_405_METHOD_NOT_ALLOWED,
        "method-not-allowed",
        _("Method not allowed"),
        _("This address does not take that method."),
    ),
    exceptions.UnsupportedMediaType: (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        _("Unsupported media type"),
        _("Send the body as application/json."),
    ),
    exceptions.NotAcceptable: (
        status.HTTP_406_NOT_ACCEPTABLE,
        "not-acceptable",
        _("Not acceptable"),
        _("The API answers in application/json and application/problem+json."),
    ),
    exceptions.ParseError: (
        status.HTTP_400_BAD_REQUEST,
        "malformed",
        _("Malformed request"),
        _("The body is not valid JSON."),
    ),
    RequestDataTooBig: (
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "too-large",
        _("Request too large"),
        _("The body is larger than the API accepts."),
    ),
}


def _from(exc: Exception) -> Problem | None:
    """The problem for an error the API's views let through (``None``: not ours)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            errors = {
                field or "non_field_errors": validation_messages(ValidationError(messages))
                for field, messages in exc.error_dict.items()
            }
        else:
            errors = {"non_field_errors": validation_messages(exc)}
        return bad_input(errors)
    if isinstance(exc, (CaseNotFound, Http404, exceptions.NotFound)):
        return not_found()
    if isinstance(exc, Conflict):
        return stale()
    if isinstance(exc, (Denied, TaskDenied)):
        return forbidden(getattr(exc, "message", None))
    if isinstance(exc, DjangoPermissionDenied):
        # The person services' refusal (``deny_person``), already in the access log.
        return forbidden(exc.args[0] if exc.args else None)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return Problem(
            status.HTTP_401_UNAUTHORIZED,
            "unauthenticated",
            _("Not authenticated"),
            _("Send a valid access token: Authorization: Bearer <token>."),
            headers={"WWW-Authenticate": 'Bearer realm="samverkan"'},
        )
    if isinstance(exc, exceptions.PermissionDenied):
        return forbidden(exc.detail)
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(int(exc.wait))} if exc.wait is not None else {}
        return Problem(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "rate-limited",
            _("Too many requests"),
            _("This client has sent too many requests; wait and retry."),
            headers=headers,
        )
    for kind, (code, slug, title, detail) in _FIXED.items():
        if isinstance(exc, kind):
            return Problem(code, slug, title, detail)
    if isinstance(exc, exceptions.ValidationError):
        # A serializer's errors are rendered strings: the views validate through
        # ``casework.api.views.validated``, which keeps both languages; this is the rest.
        return bad_input({"non_field_errors": [str(exc.detail)]})
    return None


def document(problem: Problem, instance: str = "") -> dict[str, Any]:
    title, _title_en = in_both(problem.title)
    detail, detail_en = in_both(problem.problem_detail)
    body: dict[str, Any] = {
        "type": f"/api/v1/problems/{problem.kind}",
        "title": title,
        "status": problem.status_code,
        "detail": detail,
        "detail_en": detail_en,
    }
    if instance:
        body["instance"] = instance
    if problem.errors:
        body["errors"] = [
            dict(zip(("detail", "detail_en"), in_both(message), strict=True), field=field)
            for field, messages in problem.errors.items()
            for message in messages
        ]
    return body


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Django REST framework's exception handler: every error as a problem document."""
    problem = _from(exc)
    if problem is None:
        return None  # an unexpected error: Django's 500 (logged without values)
    request = context.get("request")
    response = Response(
        document(problem, instance=request.path if request is not None else ""),
        status=problem.status_code,
        headers=problem.headers,
        content_type=PROBLEM_TYPE,
    )
    return response
