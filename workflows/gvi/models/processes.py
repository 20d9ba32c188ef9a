"""The viewflow processes of GVI's flows (``workflows.gvi.flow``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from workflows.common.processes import ObjectProcess, process_of
from workflows.gvi.models.call_ins import CallIn
from workflows.gvi.models.members import GroupMember
from workflows.gvi.models.notifications import CustomNotification


class GviNotificationProcess(ObjectProcess):
    """The viewflow process of one custom notification."""

    notification = process_of(CustomNotification)

    class Meta(ObjectProcess.Meta):
        verbose_name = _("custom notification process")
        verbose_name_plural = _("custom notification processes")


class GviCallInProcess(ObjectProcess):
    """The viewflow process of one call-in."""

    call_in = process_of(CallIn)

    class Meta(ObjectProcess.Meta):
        verbose_name = _("call-in process")
        verbose_name_plural = _("call-in processes")


class GviMinorNoticeProcess(ObjectProcess):
    """Social services are told that a person under 18 is registered in a group."""

    member = process_of(GroupMember, related_name="minor_process")

    class Meta(ObjectProcess.Meta):
        verbose_name = _("notice of a member under 18")
        verbose_name_plural = _("notices of members under 18")


class GviReferralNoticeProcess(ObjectProcess):
    """A member accepted the offer of help: social services take up the referral opened
    for them (SIG or defector programme) within ``due``."""

    accepted_member = process_of(GroupMember, related_name="referral_notice")
    due = models.DateTimeField(_("take up by"), null=True, blank=True, db_index=True)

    class Meta(ObjectProcess.Meta):
        verbose_name = _("accepted offer of help")
        verbose_name_plural = _("accepted offers of help")
