"""What every programme's steps completed through the integration API share: a decision
described by its page's form (``casework.programmes.Decision``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from casework import programmes


def form_decision(
    form_class,
    *,
    complete: Callable[..., None],
    purpose: Any,
    reason_required: Iterable[str] = (),
    field: str = "outcome",
) -> programmes.Decision:
    """A :class:`~casework.programmes.Decision` whose choices are those of the step page's
    form (its ``field``, labels and all); ``reason_required`` names the choices the form
    refuses without a reason."""
    required = set(reason_required)
    return programmes.Decision(
        choices=tuple(
            programmes.Choice(str(value), label, reason_required=value in required)
            for value, label in form_class.base_fields[field].choices
        ),
        complete=complete,
        purpose=purpose,
    )
