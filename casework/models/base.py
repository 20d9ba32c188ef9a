"""What the models of the core and of the programmes are built on."""

from __future__ import annotations

import uuid

from django.db import models


class VersionedModel(models.Model):
    """An object the transition engine changes (``casework.services.transitions``): a
    case (each programme's case extends ``Case``) and GVI's groups, members, call-ins,
    custom notifications and sanction levers.

    ``version`` is the row version: every change of the object raises it, so a form
    posted against an older version is refused ("changed by someone else"). A model
    with a state machine adds django-fsm's ``ConcurrentTransitionMixin`` beside its
    ``status`` field (``casework.fsm.status_field``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True


__all__ = ["VersionedModel"]
