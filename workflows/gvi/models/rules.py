"""Who may take a GVI transition (django-fsm ``permission``) and the holder of the named
participants' permission. The transitions' guards (``conditions``) carry their messages
with ``workflows.common.guards.guard``, as every programme's do."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from casework import policy


def coordinator(obj, user) -> bool:
    """The GVI coordinator (``samordnare``)."""
    return policy.coordinates_gvi(user)


def police_or_coordinator(obj, user) -> bool:
    return policy.coordinates_gvi(user) or policy.gvi_police(user)


def police(obj, user) -> bool:
    return policy.gvi_police(user)


def gvi_staff(obj, user) -> bool:
    """Anyone who takes part in GVI: police, the coordinator, named social-services participants."""
    return bool(policy.gvi_access(user))


def owning_organisation(sanction, user) -> bool:
    """A sanction is recorded by the organisation whose lever it is, and by no one else."""
    return policy.may_record_sanction(user, sanction)


def owning_organisation_or_coordinator(sanction, user) -> bool:
    """A lever that will not be carried out is withdrawn by its organisation or the coordinator."""
    return policy.may_withdraw_sanction(user, sanction)


class GviParticipation(models.Model):  # noqa: DJ008 (never instantiated)
    """Holder of the GVI permission for named social-services participants.

    Unmanaged and without a table, like ``casework.Capability``: granting a social
    worker ``workflows.take_part_in_gvi`` (per user, by an administrator) names
    them a participant.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("take_part_in_gvi", _("Takes part in GVI for social services (named participant)"))
        ]
