"""GVI's objects as the transition engine knows them, who may act on them, and the
checks and the write every GVI service shares.

Groups, members, call-ins, custom notifications and sanction levers are versioned
objects (:mod:`casework.services.transitions`): their timeline entries are
``GviEvent`` rows, a member's and a notification's events name the member's person,
a refusal raises :class:`~casework.services.transitions.Denied` ("You do not take
part in GVI.") and a stale form :class:`~casework.services.transitions.Conflict`.
A service changes one of them in a :class:`GviChange` (:func:`changing`, :func:`locked`):
the row locked at the version the user saw, the change, then its record or transition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.crypto.keystore import GROUP, PERSON, load_data_key
from casework.crypto.records import seal_value
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


def store(obj, **values: Any) -> None:
    """Write ``values`` to ``obj``'s row (locked by the caller) and to ``obj``."""
    type(obj).objects.filter(pk=obj.pk).update(**values)
    for name, value in values.items():
        setattr(obj, name, value)


@dataclass
class GviChange:
    """A write to a versioned GVI object under way (:func:`locked`, :func:`changing`): the
    object, its row locked at the version the user saw, who writes and why."""

    obj: Any
    user: Any
    purpose: str

    def store(self, **values: Any) -> None:
        """:func:`store` ``values`` on the object."""
        store(self.obj, **values)

    def seal(self, dek, **values: str | None) -> list[str]:
        """Seal ``values`` in the object's encrypted fields under ``dek`` and write them;
        the names of those not cleared (``None``)."""
        for name, value in values.items():
            seal_value(self.obj, name, value, dek)
        self.store(**{name: getattr(self.obj, name) for name in values})
        return [name for name, value in values.items() if value is not None]

    def record(self, name: str, **details: Any) -> None:
        """The change's new version, timeline entry and access-log event
        (:func:`~casework.services.transitions.record_change`)."""
        transitions.record_change(
            obj=self.obj, user=self.user, purpose=self.purpose, name=name, **details
        )

    def transition(self, name: str, **kwargs: Any) -> None:
        """The object's transition ``name``, in the write (the engine's ``transition``)."""
        transitions.transition(
            user=self.user, obj=self.obj, name=name, purpose=self.purpose, **kwargs
        )


def locked(obj, expected_version: int | None, *states: str, user, purpose: str) -> GviChange:
    """In the caller's transaction: ``obj``'s row locked at the version the user saw (and,
    given ``states``, refused unless ``obj`` is in one of them: :func:`lock_in_state`); the
    write that follows."""
    if states:
        lock_in_state(obj, expected_version, *states)
    else:
        transitions.lock(obj, expected_version)
    return GviChange(obj=obj, user=user, purpose=purpose)


@contextmanager
def changing(
    obj, expected_version: int | None, *states: str, user, purpose: str
) -> Iterator[GviChange]:
    """One write to ``obj``: a transaction that holds its row lock (:func:`locked`). The
    write ends with :meth:`GviChange.record` or a transition."""
    with transaction.atomic():
        yield locked(obj, expected_version, *states, user=user, purpose=purpose)


def record_created(obj, name: str, *, user, purpose: str, **details: Any) -> None:
    """A new GVI object's first timeline entry (``name``, into the state it starts in) and
    its ``CREATE`` event with ``details``, in the caller's transaction."""
    transitions.timeline(obj=obj, user=user, name=name, target=obj.status)
    transitions.audit_created(obj, user=user, purpose=purpose, **details)


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
