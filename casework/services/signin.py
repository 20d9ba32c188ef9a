"""Sign-in locks (django-axes): the lock's access-log event and an administrator's lift.

A lift deletes the counted failures of the chosen account names and addresses, so
sign-in works again at once. It grants no role and opens no data — the account still
needs its password (and second factor) — so one administrator does it alone, without a
second one's approval (docs/adr/0016-lockout-sessions-and-headers.md). Each lift is an
``account_change`` event per lock; a refusal an ``access_denied`` event.
"""

from __future__ import annotations

from collections.abc import Iterable

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils.translation import gettext as _

from audit.services import Action, record_events, record_refusal, sanitize_text
from casework import policy

OBJECT_TYPE = "axes.accessattempt"


@receiver(user_locked_out, dispatch_uid="casework_sign_in_locked")
def record_lock(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    """A sign-in refused because the account name or the address is locked."""
    record_refusal(
        username=sanitize_text(str(username or ""), max_length=150),
        object_type=OBJECT_TYPE,
        details={"sign_in_locked": True},
    )


def lift_locks(*, user, attempt_ids: Iterable[int]) -> int:
    """Delete the chosen counted failures, and every other of the same account names
    (locked or not yet); returns how many rows went."""
    ids = [int(pk) for pk in attempt_ids]
    if not policy.can_lift_sign_in_locks(user):
        record_refusal(user=user, object_type=OBJECT_TYPE, details={"step": "lift_sign_in_lock"})
        raise PermissionDenied(_("You may not lift sign-in locks."))
    with transaction.atomic():
        # An account's lock is lifted whole: every address it was tried from.
        names = AccessAttempt.objects.filter(pk__in=ids, username__isnull=False).values("username")
        rows = list(
            AccessAttempt.objects.select_for_update()
            .filter(Q(pk__in=ids) | Q(username__in=names))
            .order_by("pk")
            .values("pk", "username", "ip_address", "failures_since_start")
        )
        AccessAttempt.objects.filter(pk__in=[row["pk"] for row in rows]).delete()
        record_events(
            *(
                {
                    "action": Action.ACCOUNT_CHANGE,
                    "user": user,
                    "object_type": OBJECT_TYPE,
                    "object_id": str(row["pk"]),
                    "details": {
                        "step": "lift_sign_in_lock",
                        "account": sanitize_text(str(row["username"] or ""), max_length=150),
                        "address": row["ip_address"],
                        "failures": row["failures_since_start"],
                    },
                }
                for row in rows
            )
        )
    return len(rows)
