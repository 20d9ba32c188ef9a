"""A state machine's declaration (django-fsm): the status field of a case's, or a GVI
object's, and its steps.

The states change only through the model's transitions (``protected``: a plain
assignment raises), and the queues and overviews filter by state (``db_index``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition


def status_field(states: type[models.TextChoices], *, default: str) -> FSMField:
    """The model's ``status``: one of ``states``, ``default`` when created."""
    return FSMField(
        _("status"), default=default, choices=states.choices, protected=True, db_index=True
    )


def step(
    source: Sequence[str] | str,
    target: str,
    label,
    *,
    by: Callable,
    when: Iterable[Callable] = (),
    field: FSMField | str = "status",
) -> Callable:
    """The model's transition from ``source`` (a state or several) to ``target``, named
    ``label`` on the case page: taken by whom ``by(obj, user)`` allows, once every guard in
    ``when`` holds.

    A plain django-fsm ``transition`` of ``field`` (the model's ``status`` unless named;
    django-fsm binds a field's name to the field when the model class is ready), with
    ``permission=by``, ``conditions=when`` and ``custom={"label": label}``.
    """
    return transition(
        field,
        source=source,
        target=target,
        permission=by,
        conditions=list(when),
        custom={"label": label},
    )
