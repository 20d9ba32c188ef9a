"""SIG in the integration API: registering a referral (``POST /api/v1/sig/referrals/``)."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _

from workflows.common.api import ReferralOperation, referral_schema
from workflows.sig import services


@referral_schema("sig_referral_create", "Register a SIG referral")
class ReferralView(ReferralOperation):
    purpose = _("SIG: registering a referral")
    service = staticmethod(services.register_referral)


def urls() -> list:
    return [path("referrals/", ReferralView.as_view(), name="sig_referrals")]
