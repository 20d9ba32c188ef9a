"""The request an audit event belongs to: request id and client address.

``RequestContextMiddleware`` sets these for every request; services read them
when they write an event, so the request need not be passed through every
layer. Outside a request (management commands, cron) they are empty.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_address: str | None = None


_NO_REQUEST = RequestContext()
_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "samverkan_request_context", default=None
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current() -> RequestContext:
    return _current.get() or _NO_REQUEST


def request_id_from(header_value: str | None) -> str:
    """Use the proxy's ``X-Request-ID`` when it is well-formed, else make one."""
    if header_value and _REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Give each request an id (echoed as ``X-Request-ID``) and remember the client address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = RequestContext(
            request_id=request_id_from(request.headers.get("X-Request-ID")),
            # Behind the reverse proxy REMOTE_ADDR is the proxy; the proxy is
            # configured to overwrite it (see README, deployment).
            client_address=request.META.get("REMOTE_ADDR") or None,
        )
        request.request_id = context.request_id
        token = _current.set(context)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = context.request_id
        return response
