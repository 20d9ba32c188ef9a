"""GVI's objects as the transition engine knows them, who may act on them, and the
checks every GVI service shares.

Groups, members, call-ins, custom notifications and sanction levers are versioned
objects (:mod:`casework.services.transitions`): their timeline entries are
``GviEvent`` rows, a member's and a notification's events name the member's person,
a refusal raises :class:`~casework.services.transitions.Denied` ("You do not take
part in GVI.") and a stale form :class:`~casework.services.transitions.Conflict`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.crypto.keystore import GROUP, PERSON, load_data_key
from casework.selectors.persons import require_purpose
from casework.services import transitions
from casework.services.transitions import Denied
from workflows.gvi.models import (
    CallIn,
    CustomNotification,
    Group,
    GroupMember,
    GviEvent,
    Sanction,
)

NOTE_LIMIT = 10_000
NAME_LIMIT = 200
WITHDRAW_REASON_LIMIT = 500
NOT_IN_GVI = _("You do not take part in GVI.")


def deny(*, user, purpose: str, what: str, reason: str, obj=None) -> Denied:
    """Log the refusal of ``what`` (on ``obj``, or on GVI as a whole) and return the
    error to raise."""
    if obj is not None:
        return transitions.deny(user=user, obj=obj, purpose=purpose, what=what, reason=reason)
    transitions.refuse(
        user=user, purpose=purpose, what=what, reason=reason, object_type="workflows.gvi.models"
    )
    return Denied(NOT_IN_GVI)


def require_gvi_access(*, user, purpose: str, what: str, obj=None) -> policy.CaseAccess:
    """The user's GVI access, or :class:`Denied` after a denial event."""
    access = policy.gvi_access(user)
    if not access:
        raise deny(user=user, obj=obj, purpose=purpose, what=what, reason=access.denial)
    return access


def require_role(check, obj=None, *, user, purpose: str, what: str) -> str:
    """The cleaned ``purpose`` once the user has GVI access (to ``obj``, or to GVI as a
    whole) and ``check(user)`` (a ``casework.policy`` role rule) holds; else
    :class:`Denied`."""
    purpose = require_purpose(purpose)
    require_gvi_access(user=user, purpose=purpose, what=what, obj=obj)
    if not check(user):
        raise deny(user=user, obj=obj, purpose=purpose, what=what, reason="role")
    return purpose


def lock_in_state(obj, expected_version: int | None, *states: str) -> None:
    """Refuse (``invalid_state``) unless ``obj`` is in one of ``states``; then lock its row
    and check the version the user saw."""
    if obj.status not in states:
        raise ValidationError(transitions.WRONG_STATE, code="invalid_state")
    transitions.lock(obj, expected_version)


def group_dek(group: Group):
    return load_data_key(owner_type=GROUP, owner_id=group.pk)


def person_dek(person_id):
    return load_data_key(owner_type=PERSON, owner_id=person_id)


# --- The versioned GVI objects, described to the engine ------------------------------------


def _entry(group_of: Callable[[Any], Group | None]) -> Callable[..., GviEvent]:
    """The timeline writer of one GVI model: a ``GviEvent`` on the object's group."""

    def write(*, obj, user, name: str, source: str = "", target: str = "", reason=None):
        if reason:
            raise ValueError("a GVI timeline entry holds no reason")
        return GviEvent.objects.create(
            group=group_of(obj),
            object_type=obj._meta.label_lower,
            object_id=obj.pk,
            actor=user,
            transition=name,
            from_state=source,
            to_state=target,
        )

    return write


def _check_access(*, user, obj, purpose: str, what: str) -> None:
    require_gvi_access(user=user, purpose=purpose, what=what, obj=obj)


def _gvi_object(model, *, group, person=lambda obj: None) -> transitions.Versioned:
    return transitions.Versioned(
        model=model,
        timeline=_entry(group),
        person=person,
        check_access=_check_access,
        denied=lambda: Denied(NOT_IN_GVI),
        operation="gvi:{model}:{name}",
    )


transitions.register(
    _gvi_object(Group, group=lambda group: group),
    _gvi_object(
        GroupMember, group=lambda member: member.group, person=lambda member: member.person_id
    ),
    _gvi_object(
        CustomNotification,
        group=lambda notification: notification.member.group,
        person=lambda notification: notification.member.person_id,
    ),
    _gvi_object(CallIn, group=lambda call_in: None),
    _gvi_object(Sanction, group=lambda sanction: sanction.decision.group),
)
