"""The GVI timeline."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from workflows.gvi.models.groups import Group


class GviEvent(models.Model):
    """The GVI timeline the participants see (the access log is the auditors' record).

    Holds no free text: what happened, to which object, by whom and when. Every
    event of a group's members, notifications and sanctions names the group, so
    the group page shows them all.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    object_type = models.CharField(max_length=50)
    object_id = models.UUIDField()
    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    transition = models.CharField(max_length=50)
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.transition}"
