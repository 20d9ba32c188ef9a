"""A state machine's declaration (django-fsm): the status field of a case's, or a GVI
object's, and its steps.

The states change only through the model's transitions (``protected``: a plain
assignment raises), and the queues and overviews filter by state (``db_index``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    field: FSMField | str = "status",
) -> Callable:
    """The model's transition from ``source`` (a state or several) to ``target``, named
    ``label`` on the case page and taken by whom ``by(obj, user)`` allows, once the guards
    of a ``@when`` under it hold.

    A plain django-fsm ``transition`` of ``field`` (the model's ``status`` unless named;
    django-fsm binds a field's name to the field when the model class is ready), with
    ``permission=by``, ``conditions`` the guards and ``custom={"label": label}``.
    """

    def declare(method: Callable) -> Callable:
        return transition(
            field,
            source=source,
            target=target,
            permission=by,
            conditions=list(getattr(method, _GUARDS, ())),
            custom={"label": label},
        )(method)

    return declare


_GUARDS = "_step_guards"


def when(*guards: Callable) -> Callable:
    """The guards (``condition(obj) -> bool``) that must all hold before the ``@step`` above
    may be taken."""

    def attach(method: Callable) -> Callable:
        if hasattr(method, "_django_fsm"):
            raise TypeError("@when goes under the @step it guards")
        setattr(method, _GUARDS, guards)
        return method

    return attach
