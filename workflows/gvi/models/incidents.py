"""Incidents police record and link to groups."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models import Organisation, Person
from workflows.gvi.models.groups import Group


class Incident(models.Model):
    """A shooting, an explosion, a serious assault …: police record it and link groups.

    No free text and no person: date, area and type are what the mapping and the
    statistics need.
    """

    class Kind(models.TextChoices):
        SHOOTING = "shooting", _("Shooting")
        EXPLOSION = "explosion", _("Explosion")
        SERIOUS_ASSAULT = "serious_assault", _("Serious assault")
        OTHER = "other", _("Other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    date = models.DateField(_("date"))
    area = models.CharField(_("area"), max_length=30, choices=Person.Area.choices)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    groups = models.ManyToManyField(Group, verbose_name=_("groups"), related_name="incidents")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-date", "-recorded_at"]

    def __str__(self) -> str:
        return f"Incident {self.pk}"
