"""Corrections of a person's record from a case, in every programme (ADR 0027): the name,
address and phone; the guardians (add one, end one's custody, correct one's contact
details); the protected identity (skyddade personuppgifter), set and lifted.

Each is one write to the case (:func:`casework.services.case_changes.case_change`: the
row lock, the version the user saw, the timeline entry with the sealed reason) and its
access-log events, naming fields, never values. The old values are not kept by this
code: the person and guardian tables are under change history (``audit.history``), and
the database copies each old row there, ciphertext and all, in the same transaction: the
history holds exactly what the table held, sealed under the person's data key, and an
erasure (the key destroyed) makes it unreadable with the rest.

Who may: ``casework.policy.may_correct_record`` and ``may_set_protected_identity``; a
refusal is logged and raises :class:`~casework.services.case_changes.CaseDenied`. Bad
input raises ``ValidationError`` with Swedish messages before anything is written; a
failure after the first write rolls the whole correction back.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from casework import policy
from casework.crypto.records import open_value
from casework.models import Case, CaseEvent, Guardian, Person
from casework.services.case_changes import (
    REASON_LIMIT,
    audit_case,
    case_change,
    clean_text,
    require_access_and_role,
)
from casework.services.consent import add_guardian as register_guardian
from casework.services.consent import keep_consent, under_way_on_consent
from casework.services.persons import UNSET, update_person

# The person's fields a correction may change, as the form and the access log name them.
CORRECTABLE = ("name", "address", "phone")


def _corrects(case: Case, user) -> bool:
    return policy.may_correct_record(user, case)


def _sets_identity(case: Case, user) -> bool:
    return policy.may_set_protected_identity(user, case)


def _reason(reason: Any) -> str:
    return clean_text(reason, "reason", limit=REASON_LIMIT, required=True)


def _nothing_changed() -> ValidationError:
    return ValidationError(
        _("Nothing was changed: the values are the ones already recorded."), code="unchanged"
    )


def correct_person(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    expected_version: int | None = None,
    name: Any = UNSET,
    address: Any = UNSET,
    phone: Any = UNSET,
) -> list[str]:
    """Correct the person's name, address or phone (the arguments given; an empty address
    or phone clears it); return the fields that changed. One ``CHANGE`` event of the
    person (``casework.services.persons.update_person``) and one of the case."""
    purpose = require_access_and_role(
        _corrects, user=user, case=case, purpose=purpose, what="person:correct"
    )
    reason = _reason(reason)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        change.data_key  # noqa: B018 - refused (a form error) once the person is erased
        changed = update_person(
            user=user,
            purpose=purpose,
            person_id=case.person_id,
            name=name,
            address=address,
            phone=phone,
        )
        if not changed:
            raise _nothing_changed()
        change.record(
            CaseEvent.Kind.RECORD,
            "person_corrected",
            fields=[f"person.{field}" for field in changed],
            reason=reason,
            correction=True,
        )
    return changed


def add_guardian(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    name: str,
    phone: str | None = None,
    replaces: uuid.UUID | str | None = None,
    expected_version: int | None = None,
) -> Guardian:
    """A new guardian; with ``replaces`` (a current guardian's id) that guardian's custody
    ends in the same change (custody moved to another parent).

    A custody change is a fact of the register, not a choice of the case: it is recorded
    also in a case under way on consent. The consents then no longer cover every current
    guardian, so the case waits for the new guardian's consent: nothing is shared with
    other organisations on consent (``policy.case_access``), the steps that need consent
    stop, and the case page says what is missing; the new guardian's consent (the case
    page's consent form) makes it complete again (ADR 0028, "A new guardian"). The
    timeline entry and both access-log events say so (``consent_needed``)."""
    purpose = require_access_and_role(
        _corrects, user=user, case=case, purpose=purpose, what="guardian:add"
    )
    reason = _reason(reason)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        change.data_key  # noqa: B018 - refused (a form error) once the person is erased
        was_complete = policy.consent_state(case).complete
        replaced = None
        if replaces:
            replaced = _current_guardian(case, replaces, field="replaces")
        guardian = register_guardian(
            user=user, case=case, purpose=purpose, name=name, phone=phone, keep=False
        )
        if replaced is not None:
            replaced.ended_at = timezone.now()
            replaced.save(update_fields=["ended_at"])
        consent_needed = was_complete and not policy.consent_state(case).complete
        details = {"consent_needed": True} if consent_needed else {}
        if replaced is not None:
            audit_case(
                action=AuditAction.CHANGE,
                user=user,
                case=case,
                purpose=purpose,
                fields=["ended_at"],
                obj=replaced,
                replaced_by=str(guardian.pk),
            )
            details["replaces"] = str(replaced.pk)
        label = "guardian_replaced" if replaced is not None else "guardian_added"
        change.record(
            CaseEvent.Kind.RECORD,
            f"{label}:{CONSENT_NEEDED}" if consent_needed else label,
            fields=[
                "guardian.name",
                *(["guardian.phone"] if phone else []),
                *(["guardian.ended_at"] if replaced is not None else []),
            ],
            reason=reason,
            guardian=str(guardian.pk),
            **details,
        )
    return guardian


# The timeline label's suffix of a guardian's change that left the case waiting for consent.
CONSENT_NEEDED = "consent_needed"


def _current_guardian(
    case: Case, guardian_id: uuid.UUID | str, *, field: str | None = None
) -> Guardian:
    try:
        guardian = (
            Guardian.objects.current()
            .select_for_update()
            .filter(person_id=case.person_id, pk=guardian_id)
            .first()
        )
    except (ValueError, ValidationError):  # not an id at all
        guardian = None
    if guardian is None:
        error = ValidationError(_("No such guardian in this case."), code="invalid")
        raise ValidationError({field: error}) if field else error
    return guardian


def _record_guardian(change, guardian: Guardian, label: str, fields, reason: str, **details):
    """A guardian's change: its own ``CHANGE`` event (``details`` with it), then the case's
    record (the timeline entry with the sealed reason, the case's ``CHANGE`` event)."""
    audit_case(
        action=AuditAction.CHANGE,
        user=change.user,
        case=change.case,
        purpose=change.purpose,
        fields=fields,
        obj=guardian,
        **details,
    )
    change.record(
        CaseEvent.Kind.RECORD,
        label,
        fields=[f"guardian.{field}" for field in fields],
        reason=reason,
        guardian=str(guardian.pk),
    )


def correct_guardian(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    guardian_id: uuid.UUID | str,
    name: str,
    phone: str | None,
    expected_version: int | None = None,
) -> list[str]:
    """Correct a current guardian's name and phone (an empty phone clears it); return the
    fields that changed."""
    purpose = require_access_and_role(
        _corrects, user=user, case=case, purpose=purpose, what="guardian:correct"
    )
    reason = _reason(reason)
    values = {
        "name": clean_text(name, "guardian_name", limit=200, required=True),
        "phone": clean_text(phone, "guardian_phone", limit=40),
    }
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        guardian = _current_guardian(case, guardian_id)
        dek = change.key_of(guardian)
        changed = [f for f, value in values.items() if open_value(guardian, f, dek) != value]
        if not changed:
            raise _nothing_changed()
        for field in changed:
            change.seal(guardian, field, values[field])
        guardian.save(update_fields=changed)
        _record_guardian(change, guardian, "guardian_corrected", changed, reason, correction=True)
    return changed


def end_guardian(
    *,
    user,
    case: Case,
    purpose: str,
    reason: str,
    guardian_id: uuid.UUID | str,
    expected_version: int | None = None,
) -> Guardian:
    """End a guardian's custody: they no longer count for consent nor show on the pages;
    their row and its history stay. A case under way on consent must keep valid consent
    (ending the only guardian of a minor is refused there until another is registered)."""
    purpose = require_access_and_role(
        _corrects, user=user, case=case, purpose=purpose, what="guardian:end"
    )
    reason = _reason(reason)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        guardian = _current_guardian(case, guardian_id)
        was_complete = policy.consent_state(case).complete
        guardian.ended_at = timezone.now()
        guardian.save(update_fields=["ended_at"])
        if was_complete and under_way_on_consent(case):
            state = policy.consent_state(case)
            if "guardian" in state.missing:
                # A minor left without a current guardian: the new one comes first.
                raise ValidationError(
                    _(
                        "The person is a minor and the case is under way: register the new "
                        "guardian first (the form can end this guardian's custody at the "
                        "same time)."
                    ),
                    code="guardian_required",
                )
        keep_consent(case, was_complete=was_complete)
        _record_guardian(change, guardian, "guardian_ended", ["ended_at"], reason)
    return guardian


def protected_identity_level(level: Any, field: str = "level") -> int:
    """``level`` as one of ``Person.ProtectedIdentity``, or a ``ValidationError`` on
    ``field``."""
    try:
        level = int(level)
    except (TypeError, ValueError):
        level = -1
    if level not in Person.ProtectedIdentity.values:
        raise ValidationError({field: ValidationError(_("Select a valid choice."), "invalid")})
    return level


def set_person_protected_identity(*, user, purpose: str, person_id, level: Any) -> dict:
    """Record the person's protected identity level (0 lifts it), in the caller's
    transaction. The caller has decided that ``user`` may (a case's or GVI's rule) and
    writes its own record with the returned details (the level, the previous one, whether
    it was lifted); the person's ``CHANGE`` event is written here."""
    level = protected_identity_level(level)
    previous = (
        Person.objects.select_for_update()
        .values_list("protected_identity", flat=True)
        .get(pk=person_id)
    )
    update_person(user=user, purpose=purpose, person_id=person_id, protected_identity=level)
    return {
        "protected_identity": level,
        "previous_level": previous,
        "lifted": bool(previous) and not level,
    }


def set_protected_identity(
    *,
    user,
    case: Case,
    purpose: str,
    level: Any,
    reason: str | None = None,
    expected_version: int | None = None,
) -> bool:
    """Set, change or lift (level 0) the protected identity of the case's person (every
    programme): the named handlers and the programme's coordinator. Whether it changed;
    the timeline and the access log say set or lifted, and which level."""
    purpose = require_access_and_role(
        _sets_identity, user=user, case=case, purpose=purpose, what="protected_identity"
    )
    level = protected_identity_level(level)
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        details = set_person_protected_identity(
            user=user, purpose=purpose, person_id=case.person_id, level=level
        )
        change.record(
            CaseEvent.Kind.RECORD,
            "protected_identity",
            fields=["person.protected_identity"],
            reason=reason,
            **details,
        )
    return details["previous_level"] != level
