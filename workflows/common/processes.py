"""The viewflow process of one object: a case, a call-in, a custom notification, a member."""

from __future__ import annotations

from django.db import models
from viewflow.workflow.models import Process


class ObjectProcess(Process):
    """A flow's process of one object, newest first (a concrete process subclasses it and
    its ``Meta`` subclasses ``ObjectProcess.Meta``)."""

    class Meta:
        abstract = True
        ordering = ["-created"]


def process_of(model, *, related_name: str = "process") -> models.OneToOneField:
    """The process's link to its object: one process per object, set when the flow starts;
    the object cannot be deleted while its process exists."""
    return models.OneToOneField(
        model, on_delete=models.PROTECT, null=True, blank=True, related_name=related_name
    )
