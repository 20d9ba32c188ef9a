"""The status field of a state machine (django-fsm): a case's, or a GVI object's.

The states change only through the model's transitions (``protected``: a plain
assignment raises), and the queues and overviews filter by state (``db_index``).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField


def status_field(states: type[models.TextChoices], *, default: str) -> FSMField:
    """The model's ``status``: one of ``states``, ``default`` when created."""
    return FSMField(
        _("status"), default=default, choices=states.choices, protected=True, db_index=True
    )
