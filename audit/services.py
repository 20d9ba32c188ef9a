"""Writing the access log. The only code that creates ``AccessEvent`` rows.

Every service that touches personal data calls :func:`record_event` inside the
same ``transaction.atomic()`` block as the change it records, so a change never
lands without its event and a rolled-back change leaves none. Field *names*
are logged, never values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models

from audit import context
from audit.models import AccessEvent

Action = AccessEvent.Action
Outcome = AccessEvent.Outcome

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def sanitize_text(value: str, *, max_length: int = 2000) -> str:
    """Make free text inert: control characters (newlines included) become visible escapes.

    A justification like ``"ok\\n2026-01-01 login admin"`` is stored as one line
    with a literal ``\\n``, so it can never pose as a second log entry in any
    line-oriented export or viewer.
    """
    text = str(value)[:max_length]
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _describe(obj: models.Model | None, object_type: str, object_id: str) -> tuple[str, str]:
    if obj is None:
        return object_type, object_id
    return obj._meta.label_lower, str(obj.pk)


def record_event(
    *,
    action: str,
    user: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    person_id: uuid.UUID | str | None = None,
    fields: Iterable[str] = (),
    purpose: str = "",
    legal_basis: str = "",
    outcome: str = Outcome.ALLOWED,
    details: dict[str, Any] | None = None,
) -> AccessEvent:
    """Append one event to the access log (in the caller's transaction).

    ``user`` is the account acting (``None`` for the system or an anonymous
    request); ``obj`` or ``object_type``/``object_id`` what was touched;
    ``person_id`` the data subject; ``fields`` the names of the fields read or
    written; ``purpose`` the justification and ``legal_basis`` the recorded
    basis for the processing or disclosure. ``details`` holds further
    identifiers (never personal-data values).
    """
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    object_type, object_id = _describe(obj, object_type, object_id)
    request = context.current()
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AccessEvent.objects.create(
        user=user if authenticated else None,
        username=sanitize_text(user.get_username(), max_length=150) if authenticated else "",
        organisation_name=(
            str(user.organisation)[:200] if authenticated and user.organisation_id else ""
        ),
        roles=",".join(sorted(user.groups.values_list("name", flat=True)))[:300]
        if authenticated
        else "",
        action=action,
        object_type=object_type[:100],
        object_id=sanitize_text(object_id, max_length=64),
        person_id=person_id,
        fields=sorted({sanitize_text(name, max_length=100) for name in fields}),
        purpose=sanitize_text(purpose),
        legal_basis=sanitize_text(legal_basis, max_length=200),
        outcome=outcome,
        request_id=request.request_id,
        client_address=request.client_address,
        details=details or {},
    )
