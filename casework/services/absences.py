"""Absence: a user names a deputy for a period, and cancels it.

The deputy must be another active case worker of the same organisation holding every
case role of the absent user (``casework.policy.may_deputise``); the periods of one
user's absences never overlap. The user's row is locked while the periods are checked,
so two absences posted at once cannot both pass. Each change is an access-log event
(ids and dates only: an absence holds no case data).
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from audit.services import record_event
from casework import policy
from casework.models import Absence, User

# How far ahead an absence may be planned, and how long it may last.
MAX_DAYS = 366


def name_deputy(
    *, user, deputy: User | None, starts_on: datetime.date, ends_on: datetime.date
) -> Absence:
    """``user`` will be away from ``starts_on`` to ``ends_on`` (both included); ``deputy``
    stands in for them."""
    if not policy.can_use_task_inbox(user):
        raise ValidationError(_("Only case workers name a deputy."), code="role")
    errors = {}
    if deputy is None:
        errors["deputy"] = _("This field is required.")
    elif deputy.pk == user.pk:
        errors["deputy"] = _("You cannot be your own deputy.")
    elif not policy.may_deputise(user, deputy):
        errors["deputy"] = _(
            "The deputy must work for your organisation and have the same case roles as you."
        )
    today = timezone.localdate()
    if ends_on < starts_on:
        errors["ends_on"] = _("The last day cannot be before the first day.")
    elif ends_on < today:
        errors["ends_on"] = _("The absence has already ended.")
    elif (ends_on - starts_on).days >= MAX_DAYS or (starts_on - today).days >= MAX_DAYS:
        errors["ends_on"] = _(
            "An absence is planned at most a year ahead and lasts at most a year."
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # One user's absences are checked and written one at a time.
        User.objects.select_for_update().filter(pk=user.pk).first()
        overlapping = Absence.objects.filter(
            user=user, cancelled_at__isnull=True, starts_on__lte=ends_on, ends_on__gte=starts_on
        ).exists()
        if overlapping:
            raise ValidationError(
                {"starts_on": _("You already have an absence during that period.")}
            )
        absence = Absence.objects.create(
            user=user, deputy=deputy, starts_on=starts_on, ends_on=ends_on
        )
        _event(user, absence, "name_deputy")
    return absence


def cancel_absence(*, user, absence_id) -> Absence:
    """Cancel one of ``user``'s absences: the deputy stands in no longer, from now on."""
    with transaction.atomic():
        absence = (
            Absence.objects.select_for_update()
            .filter(pk=absence_id, user=user, cancelled_at__isnull=True)
            .first()
        )
        if absence is None or absence.ends_on < timezone.localdate():
            raise ValidationError(_("There is no such absence to cancel."), code="missing")
        absence.cancelled_at = timezone.now()
        absence.save(update_fields=["cancelled_at"])
        _event(user, absence, "cancel")
    return absence


def _event(user, absence: Absence, step: str) -> None:
    record_event(
        action=AuditAction.ACCOUNT_CHANGE,
        user=user,
        obj=absence,
        fields=["deputy", "starts_on", "ends_on"],
        details={
            "absence": step,
            "deputy": absence.deputy_id,
            "starts_on": absence.starts_on.isoformat(),
            "ends_on": absence.ends_on.isoformat(),
        },
    )
