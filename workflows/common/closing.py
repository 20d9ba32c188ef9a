"""The closing transitions every programme's case shares (django-fsm).

Each programme's case builds its own transition from these factories (declared as
``casework.fsm.step`` declares a step), on its own ``status`` field and its own states: a
django-fsm transition belongs to one model, so the shared part is the method, not a mixin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.fsm import step, when
from casework.models import Case
from workflows.common.guards import consent_withdrawal_recorded, registers_withdrawal


def close_case(case: Case, close_reason: str) -> None:
    """Record why and when the case closed; a closed case has no review date."""
    case.close_reason = close_reason
    case.closed_at = timezone.now()
    case.review_date = None


def closing_transition(
    source: Sequence[str] | str,
    target: str,
    *,
    by: Callable,
    then: Callable[[Case, str], None] | None = None,
) -> Callable:
    """The case's ``close(close_reason=…)`` step ("Close the case") from ``source`` to
    ``target``, taken by whom ``by`` allows; ``then(case, close_reason)`` records what the
    programme notes on closing."""

    @step(source, target, _("Close the case"), by=by)
    def close(self, *, close_reason: str) -> None:
        close_case(self, close_reason)
        if then is not None:
            then(self, close_reason)

    return close


def consent_withdrawn_transition(
    source: Sequence[str] | str, target: str, *, by: Callable = registers_withdrawal
) -> Callable:
    """The case's ``consent_withdrawn()`` step ("Close: consent withdrawn"): a recorded
    withdrawal of consent closes the case and sharing stops."""

    @step(source, target, _("Close: consent withdrawn"), by=by)
    @when(consent_withdrawal_recorded)
    def consent_withdrawn(self) -> None:
        """A consent was withdrawn and no other legal basis applies: sharing stops."""
        close_case(self, Case.CloseReason.CONSENT_WITHDRAWN)

    return consent_withdrawn
