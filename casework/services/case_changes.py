"""How every change of a case is checked and written: the case's description for the
transition engine (:mod:`casework.services.transitions`) and the helpers the case
services of the core and of the programmes share. A write to a case runs in
:func:`case_change` (the row lock, the version check) and ends with its record (the new
version, the timeline entry, the access-log event).

A refusal writes an ``ACCESS_DENIED`` event that survives the rollback and raises
:class:`CaseDenied`; a form posted against an older version of the case raises
:class:`CaseConflict`; bad input raises ``ValidationError`` with Swedish messages.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition

from audit.services import Action as AuditAction
from audit.services import event_insert, event_written, record_event
from casework import policy
from casework.crypto.records import seal_value
from casework.models import Case, CaseEvent, CaseMembership, Guardian, Person
from casework.selectors.cases import case_event
from casework.selectors.persons import require_purpose
from casework.services import statements, transitions, webhooks
from casework.services.case_keys import case_data_key, person_data_key
from casework.services.transitions import Conflict, Denied

NOTE_LIMIT = 10_000
REASON_LIMIT = 2_000


class CaseDenied(Denied):
    """The user may not do this to this case (already recorded in the access log)."""

    message = _("You do not have access to this case.")


class CaseConflict(Conflict):
    """The case changed after the user loaded it: nothing was saved."""

    message = _("The case was changed by someone else. Reload the page and try again.")


def clean_text(value: Any, field: str, *, limit: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(
                {field: ValidationError(_("This field is required."), "required")}
            )
        return None
    if not isinstance(value, str):
        raise ValidationError({field: ValidationError(_("Enter text."), "invalid")})
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(
            {
                field: ValidationError(
                    _("Ensure this value has at most %(limit)d characters."),
                    "max_length",
                    {"limit": limit},
                )
            }
        )
    return value


def choice(value: Any, choices, field: str) -> str:
    """``value`` if it is one of the ``choices`` (a ``TextChoices``), else the error of
    ``field`` (code ``invalid``, as a form's choice field says it)."""
    if value not in choices.values:
        raise ValidationError({field: ValidationError(_("Select a valid choice."), "invalid")})
    return value


def past_date(
    value: Any,
    field: str,
    *,
    future=None,
    invalid=None,
) -> datetime.date:
    """``value`` if it is a date not after today (a day on which something happened, as a
    form's ``PastDateField`` takes it), else the error of ``field``: ``invalid`` (code
    ``invalid``; by default "Enter a valid date.") for what is not a date, ``future`` (code
    ``future``; by default "The date cannot be in the future.") for a later day."""
    if not isinstance(value, datetime.date):
        message = invalid or _("Enter a valid date.")
        raise ValidationError({field: ValidationError(message, "invalid")})
    if value > timezone.localdate():
        message = future or _("The date cannot be in the future.")
        raise ValidationError({field: ValidationError(message, "future")})
    return value


class FieldErrors:
    """The errors of a service's arguments, field by field, raised together at the end (as
    a form shows every field's error at once)."""

    def __init__(self):
        self.errors: dict[str, list[ValidationError]] = {}

    def __bool__(self) -> bool:
        return bool(self.errors)

    def add(self, field: str, message, code: str | None = None) -> None:
        self.errors[field] = [ValidationError(message, code)]

    @contextmanager
    def check(self) -> Iterator[None]:
        """Keep the field errors a check inside raises (``clean_text``, ``choice``)."""
        try:
            yield
        except ValidationError as error:
            self.errors.update(error.error_dict)

    def choices(self, *checks: tuple[str, Any, Any], optional: bool = False) -> None:
        """Each ``(field, value, choices)``: the value one of the ``choices`` (:func:`choice`),
        else the field's error kept; with ``optional``, an empty value passes."""
        for name, value, choices in checks:
            if optional and not value:
                continue
            with self.check():
                choice(value, choices, name)

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def deny_case(*, user, case: Case, purpose: str, what: str, reason: str) -> CaseDenied:
    """Log the refusal of ``what`` on the case and return the error to raise."""
    return transitions.deny(user=user, obj=case, purpose=purpose, what=what, reason=reason)


def require_role(*, user, case: Case, purpose: str, what: str, allowed: bool) -> None:
    """Refuse (:class:`CaseDenied` after a denial event, reason ``role``) unless
    ``allowed`` (the user has the role ``what`` needs)."""
    if not allowed:
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason="role")


def require_coordinator(*, user, case: Case, purpose: str, what: str) -> None:
    """Refuse (:class:`CaseDenied`, logged) unless ``user`` coordinates the case's programme."""
    require_role(
        user=user, case=case, purpose=purpose, what=what, allowed=policy.coordinates(user, case)
    )


def require_access(
    *, user, case: Case, purpose: str, what: str, any_ground: bool = False
) -> policy.CaseAccess:
    """The user's access to the case, or :class:`CaseDenied` after a denial event.

    ``any_ground``: see :func:`casework.policy.case_access` (``via`` may differ).
    """
    access = policy.case_access(user, case, any_ground=any_ground)
    if not access:
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason=access.denial)
    if access.via == policy.CLOSED_LEAD:
        # The lead of a closed case reads it for the documentation duty; nothing more.
        raise deny_case(user=user, case=case, purpose=purpose, what=what, reason="case closed")
    return access


def require_access_and_role(
    rule: Callable[[Case, Any], bool], *, user, case: Case, purpose: str, what: str
) -> str:
    """The cleaned ``purpose`` once ``user`` may work on the case (:func:`require_access`)
    and ``rule(case, user)`` (a django-fsm permission) says they hold the role ``what``
    needs (:func:`require_role`); a refusal is logged."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what=what)
    require_role(user=user, case=case, purpose=purpose, what=what, allowed=rule(case, user))
    return purpose


def _coordinates(case: Case, user) -> bool:
    return policy.coordinates(user, case)


def require_coordinator_access(*, user, case: Case, purpose: str, what: str) -> str:
    """The cleaned ``purpose`` once ``user`` may work on the case (:func:`require_access`)
    and coordinates its programme (:func:`require_coordinator`); a refusal is logged."""
    return require_access_and_role(_coordinates, user=user, case=case, purpose=purpose, what=what)


def save_case(case: Case) -> None:
    """Save the programme's case model: its FSM field is written back unchanged and the
    ``ConcurrentTransitionMixin`` refuses it (:class:`CaseConflict`) if the state moved
    meanwhile."""
    try:
        case.save()
    except ConcurrentTransition:
        raise CaseConflict() from None


def lock_version(case: Case, expected_version: int | None) -> Case:
    """Lock the case row for this transaction and check the version the user saw."""
    return transitions.lock(case, expected_version)


def lock_case(*, case: Case, expected_version: int | None) -> None:
    """Lock the case row for the caller's transaction and check the version the user saw
    (:class:`CaseConflict`): for a caller that writes several things before the service
    that would check it (closing a SIG case to the defector programme)."""
    transitions.lock(case, expected_version)


def bump_version(case: Case) -> None:
    transitions.bump(case)


_VERSION = f"SELECT version FROM {Case._meta.db_table} WHERE id = %s"  # noqa: S608


def reload_version(case: Case) -> Case:
    """Set ``case.version`` to the one in the database (what other writes of the
    transaction left; one statement, the rest of the instance untouched); return the case."""
    with connection.cursor() as cursor:
        cursor.execute(_VERSION, [case.pk])
        (case.version,) = cursor.fetchone()
    return case


def timeline_row(
    *, case: Case, user, kind: str, reason: str | None = None, dek=None, **fields: Any
) -> CaseEvent:
    """A timeline entry of the case, not yet saved (the reason sealed under the case's key)."""
    event = CaseEvent(case=case, actor=user, kind=kind, **fields)
    if reason:
        seal_value(event, "reason", reason, dek or case_data_key(case))
    return event


def timeline_event(
    *, case: Case, user, kind: str, reason: str | None = None, dek=None, **fields: Any
) -> CaseEvent:
    event = timeline_row(case=case, user=user, kind=kind, reason=reason, dek=dek, **fields)
    event.save()
    return event


def audit_case(**event: Any) -> None:
    """An access-log event on a case's data (``event``: :func:`case_event`'s keywords)."""
    record_event(**case_event(**event))


def record_change(
    *,
    case: Case,
    user,
    purpose: str,
    kind: str,
    label: str = "",
    reason: str | None = None,
    **event: Any,
) -> None:
    """Every change of a case, in the caller's transaction: the new row version,
    the timeline entry the team sees and the access-log event the auditors see, in one
    statement (docs/adr/0032-one-statement-transition.md). ``event``: the ``action``,
    ``fields``, ``obj``, ``legal_basis`` and details of :func:`case_event`."""
    entry = timeline_row(case=case, user=user, kind=kind, transition=label, reason=reason)
    sql, values, built = event_insert(**case_event(case=case, user=user, purpose=purpose, **event))
    _entry_id, event_id = transitions.bump_with_rows(
        case, [statements.row_insert(entry), (sql, values)]
    )
    entry._state.adding = False
    entry._state.db = DEFAULT_DB_ALIAS
    event_written(built, event_id)


@dataclass
class CaseChange:
    """A write to a case under way (:func:`case_change`): the case, who writes and why,
    and the fields it has sealed."""

    case: Case
    user: Any
    purpose: str
    sealed: list[str] = field(default_factory=list)

    @cached_property
    def data_key(self):
        """The case's data key (:func:`~casework.services.case_keys.case_data_key`), loaded
        once for the write."""
        return case_data_key(self.case)

    @cached_property
    def person_key(self):
        """The person's data key (their identity and guardians:
        :func:`~casework.services.case_keys.person_data_key`), loaded once for the write."""
        return person_data_key(self.case.person)

    def key_of(self, obj):
        """The key ``obj``'s sealed fields are under: the person's for the person and the
        guardians, else the case's."""
        return self.person_key if isinstance(obj, Person | Guardian) else self.data_key

    def seal(self, obj, name: str, value: str | None) -> None:
        """Seal ``value`` in ``obj``'s field ``name`` under its key (:meth:`key_of`;
        ``None`` clears it); the write's record names the field unless it was cleared."""
        seal_value(obj, name, value, self.key_of(obj))
        if value is not None:
            self.sealed.append(name)

    def record(
        self,
        kind: str,
        label: str = "",
        *,
        action: str = AuditAction.CHANGE,
        fields: Iterable[str] | None = None,
        **details: Any,
    ) -> None:
        """The write's :func:`record_change`; ``fields`` are by default those it sealed."""
        record_change(
            case=self.case,
            user=self.user,
            purpose=self.purpose,
            kind=kind,
            label=label,
            action=action,
            fields=list(self.sealed) if fields is None else fields,
            **details,
        )

    def record_created(self, obj, kind: str, label: str = "", **details: Any) -> None:
        """:meth:`record` of the new ``obj`` (its ``CREATE`` event)."""
        self.record(kind, label, action=AuditAction.CREATE, obj=obj, **details)


@contextmanager
def case_change(
    case: Case, expected_version: int | None = None, *, user, purpose: str
) -> Iterator[CaseChange]:
    """One write to the case: a transaction that holds the case's row lock, once the
    version the user saw is checked (:func:`lock_version`). The write ends with
    :meth:`CaseChange.record`."""
    with transaction.atomic():
        lock_version(case, expected_version)
        yield CaseChange(case=case, user=user, purpose=purpose)


def next_reference(programme: str) -> str:
    """``SIG-2026-0001``: per programme and year (serialised to the end of the caller's
    transaction)."""
    return transitions.next_reference(Case, programme.upper())


# --- The case, as the transition engine knows it ------------------------------------------


def _transition_row(*, obj: Case, user, name: str, source="", target="", reason=None):
    return timeline_row(
        case=obj,
        user=user,
        kind=CaseEvent.Kind.TRANSITION,
        transition=name,
        from_state=source,
        to_state=target,
        reason=reason,
    )


def _transition_entry(**entry: Any) -> CaseEvent:
    event = _transition_row(**entry)
    event.save()
    return event


def _end_team_at_close(case: Case) -> Callable[[], Callable[[], dict] | None]:
    """A closed case has no team: every open membership ends at the close (in the
    transition's transaction). The lead's reading for the documentation duty is the
    policy's (``casework.policy.closed_case_lead``), not a membership. ADR 0012.

    Asked after the transition method ran: the work that ends the team when the
    transition closed an open case, else ``None`` (nothing to do: the transition is
    written in one statement)."""
    was_open = case.closed_at is None

    def end() -> dict:
        ended = CaseMembership.objects.filter(case_id=case.pk, valid_to__isnull=True).update(
            valid_to=case.closed_at
        )
        return {"memberships_ended": ended} if ended else {}

    def work() -> Callable[[], dict] | None:
        return end if was_open and case.closed_at else None

    return work


def _after_transition(case: Case) -> transitions.Effects:
    """What follows every transition of a case, in its transaction: when its status
    changed, the ``case.status_changed`` webhooks (told to the team as it was; looked
    up only when the transition's statement found a webhook subscribed to the event at
    all), then a close ends the team (:func:`_end_team_at_close`)."""
    source = getattr(case, "status", None)

    def moved(subscribed: bool) -> None:
        if subscribed and getattr(case, "status", None) != source:
            webhooks.case_status_changed(case=case)

    return transitions.Effects(
        probe=webhooks.subscribed_sql(webhooks.Event.CASE_STATUS_CHANGED),
        moved=moved,
        details=_end_team_at_close(case),
    )


def _check_case_access(*, user, obj: Case, purpose: str, what: str) -> None:
    # Only allowed or not matters here: a coordinator's access needs no team query.
    require_access(user=user, case=obj, purpose=purpose, what=what, any_ground=True)


transitions.register(
    transitions.Versioned(
        model=Case,
        timeline=_transition_entry,
        timeline_row=_transition_row,
        person=lambda case: case.person_id,
        check_access=_check_case_access,
        denied=CaseDenied,
        operation="transition:{name}",
        conflict=CaseConflict,
        wrong_state=_("The case is not in a state where this can be done."),
        effects=_after_transition,
    )
)
