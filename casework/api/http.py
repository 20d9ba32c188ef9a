"""The API's HTTP rules: idempotent POSTs, ETag/If-Match and pagination.

- **Idempotency-Key** (every POST): the first successful answer to a key is kept with a
  fingerprint of the request (method, path, acting person, body); a retry with the same
  key gets that answer again (``Idempotent-Replayed: true``) and changes nothing, the
  same key with another request is refused (422). Concurrent retries wait for the first
  (an advisory lock on the key) instead of both writing.
- **ETag / If-Match**: a resource with a version answers with ``ETag: "v<version>"``; an
  operation that changes it needs ``If-Match`` (428 without it, 412 when stale, and then
  nothing is saved).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, pagination, parsers, status
from rest_framework.response import Response

from casework.api.problems import Problem, stale
from casework.models import IdempotentRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Advisory-lock namespace of an idempotency key (``pg_advisory_xact_lock(key, hash)``).
IDEMPOTENCY_LOCK = 0x1D3
# An Idempotency-Key: 1 to 200 visible ASCII characters (the OpenAPI document says so too).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# Answer headers a replay repeats.
_KEPT_HEADERS = ("Location", "ETag")
# The key's lock and then its kept answer (plain statements: no query to compile per request).
_LOCK_AND_LOOK = (
    "SELECT pg_advisory_xact_lock(%s, hashtext(%s)); "  # noqa: S608 - a model's table
    "SELECT fingerprint, status_code, body, headers "
    f"FROM {IdempotentRequest._meta.db_table} WHERE client_id = %s AND key = %s"
)
# Keeping an answer (a plain statement too; the body and headers as ``JSONField`` stores them).
_KEEP = (
    f"INSERT INTO {IdempotentRequest._meta.db_table} "  # noqa: S608
    "(client_id, key, fingerprint, status_code, body, headers, created_at) "
    "VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)"
)


def _json(value):
    """A ``jsonb`` column as the driver gives it (Django has it loaded as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _fingerprint(request) -> str:
    person = request.auth.person
    canonical = json.dumps(
        [request.method, request.path, person.pk if person else None, request.data],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(handler):
    """Wrap a view's ``post``: the Idempotency-Key rules above, in one transaction with
    the handler (a handler that raises leaves neither its writes nor a kept answer)."""

    @functools.wraps(handler)
    def post(view, request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if not _KEY.match(key):
            raise Problem(
                status.HTTP_400_BAD_REQUEST,
                "idempotency-key",
                _("Idempotency-Key missing or malformed"),
                _("Send an Idempotency-Key header of 1 to 200 visible ASCII characters."),
            )
        client = request.auth.client
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            with connection.cursor() as cursor:
                # The lock, then the look-up (its snapshot taken once the lock is held):
                # two statements in one round trip. Unique per client and key: one row.
                cursor.execute(
                    _LOCK_AND_LOOK, [IDEMPOTENCY_LOCK, f"{client.pk}:{key}", client.pk, key]
                )
                cursor.nextset()
                kept = cursor.fetchone()
            if kept is not None:
                kept_fingerprint, kept_status, kept_body, kept_headers = kept
                if kept_fingerprint != fingerprint:
                    raise Problem(
                        status.HTTP_422_UNPROCESSABLE_ENTITY,
                        "idempotency-key-reused",
                        _("Idempotency-Key already used"),
                        _("This Idempotency-Key was used for another request; use a new key."),
                    )
                return Response(
                    _json(kept_body),
                    status=kept_status,
                    headers={**_json(kept_headers), "Idempotent-Replayed": "true"},
                )
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                headers = {h: response[h] for h in _KEPT_HEADERS if response.has_header(h)}
                with connection.cursor() as cursor:
                    cursor.execute(
                        _KEEP,
                        [
                            client.pk,
                            key,
                            fingerprint,
                            response.status_code,
                            json.dumps(response.data),
                            json.dumps(headers),
                            timezone.now(),
                        ],
                    )
        return response

    return post


def forget_idempotent_requests(*, now=None) -> int:
    """Delete the kept answers older than API_IDEMPOTENCY_HOURS; return how many."""
    hours = getattr(settings, "API_IDEMPOTENCY_HOURS", 24)
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted, _rows = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- ETag / If-Match --------------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(request, current: int) -> int:
    """The version the client's ``If-Match`` names (428 without one, 412 if it is not
    ``current``): pass it to the service, which checks it again under the row lock."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise Problem(
            status.HTTP_428_PRECONDITION_REQUIRED,
            "if-match-required",
            _("If-Match required"),
            _("Send the resource's ETag in an If-Match header to change it."),
        )
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" in tags:
        return current
    if etag(current) not in tags:
        raise stale()
    return current


class JsonParser(parsers.JSONParser):
    """Django REST framework's JSON parser, with a body nested too deep for Python's
    decoder (``[[[[…]]]]``: a ``RecursionError``, a 500) refused as malformed, a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError() from None


class Pages(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (at most 200 a page); an answer lists ``count``,
    ``next``, ``previous`` and ``results``."""

    page_size_query_param = "page_size"
    max_page_size = 200
