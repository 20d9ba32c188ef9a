"""The request an audit event belongs to: request id, client address, acting user.

``RequestContextMiddleware`` sets these for every request; services read them
when they write an event, so the request need not be passed through every
layer. Outside a request (management commands, cron) they are empty.

The middleware also
- tells the database who is acting, for the change history
  (``audit.history.context``), and
- records every 403 answer of the site as a denied-access event, through a
  write that does not depend on the request's own transaction.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

logger = logging.getLogger(__name__)

# Set by the 403 handler (audit.views.permission_denied) so the middleware can
# log why access was refused.
DENIAL_REASON_ATTRIBUTE = "_audit_denial_reason"
# Set by the API's authentication: the client (an organisation's system) the request
# came through; every event of the request names it beside the acting person.
API_CLIENT_ATTRIBUTE = "_audit_api_client"


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_address: str | None = None
    request: Any = None

    @property
    def user(self) -> Any:
        """The authenticated user of the request, or ``None``."""
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    @property
    def api_client(self) -> str:
        """The API client the request came through (its name), or ``""``."""
        return getattr(self.request, API_CLIENT_ATTRIBUTE, "")


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


def _history_metadata(context: RequestContext) -> dict[str, Any]:
    user = context.user
    return {
        "user_id": user.pk if user is not None else None,
        "username": user.get_username() if user is not None else "",
        "request_id": context.request_id,
    }


class RequestContextMiddleware:
    """Give each request an id (echoed as ``X-Request-ID``); log denied access."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from audit import history, services

        context = RequestContext(
            request_id=request_id_from(request.headers.get("X-Request-ID")),
            # Behind the reverse proxy REMOTE_ADDR is the proxy; the proxy is
            # configured to overwrite it (see README, deployment).
            client_address=request.META.get("REMOTE_ADDR") or None,
            request=request,
        )
        request.request_id = context.request_id
        token = _current.set(context)
        try:
            with history.context(lambda: _history_metadata(context)):
                response = self.get_response(request)
            if response.status_code == 403:
                try:
                    services.record_denied_access(
                        path=request.path,
                        method=request.method,
                        reason=getattr(request, DENIAL_REASON_ATTRIBUTE, ""),
                    )
                except DatabaseError:
                    # The request is refused either way; a failed write must not
                    # turn the 403 into a 500. Operators are alerted by the log.
                    logger.exception(
                        "could not record a denied access (request %s)", context.request_id
                    )
        finally:
            _current.reset(token)
        response["X-Request-ID"] = context.request_id
        return response
