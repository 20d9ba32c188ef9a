"""The team page's reading: the case's team now, for a user who may change it.

Nothing of the person is decrypted (the page shows the case number and the team's staff);
a user who may not open the case, or may not change its team, is refused and the refusal
is logged."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from casework import policy
from casework.models import Case, CaseMembership
from casework.selectors.cases import deny_reading


def team_for_change(*, user, case: Case, purpose: str) -> list[CaseMembership]:
    """``case``'s current team, for ``user`` who may change it (:class:`CaseNotFound`,
    logged, when not)."""
    access = policy.case_access(user, case, any_ground=True)
    if not access or access.via == policy.CLOSED_LEAD:
        raise deny_reading(
            user=user,
            case=case,
            purpose=purpose,
            reason=access.denial or "case closed",
            what="team:read",
        )
    if not policy.may_change_team(user, case):
        raise deny_reading(user=user, case=case, purpose=purpose, reason="role", what="team:read")
    now = timezone.now()
    return list(
        CaseMembership.objects.filter(case=case, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("user", "user__organisation")
        .order_by("role", "valid_from")
    )
