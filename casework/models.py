"""Identity: organisations and users. Case data models follow in later modules."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    """A party to the cooperation agreement: the police area, social services, a school …"""

    class Kind(models.TextChoices):
        POLICE = "police", _("Police")
        SOCIAL_SERVICES = "social_services", _("Social services")
        SCHOOL = "school", _("School")
        LEISURE = "leisure", _("Leisure")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who works in Samverkan, always on behalf of one organisation.

    Roles are Django groups (see ``casework.roles``); what a user may see is
    decided by ``casework.policy``, never by the template or the view.
    """

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text=_(
            "The organisation the user works for. Without one the user gets no access to cases."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Capability(models.Model):  # noqa: DJ008 (never instantiated)
    """Holder of the role-level permissions that belong to no single model.

    Unmanaged and without a table: it only gives the permissions below a
    content type, so role groups can carry them and views can require them.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_task_inbox", _("Can work on cases and the task inbox")),
            ("view_statistics", _("Can see anonymised statistics")),
            ("view_access_log", _("Can read and review the access log")),
        ]
