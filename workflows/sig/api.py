"""SIG in the integration API: registering a referral (``POST /api/v1/sig/referrals/``)."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _

from workflows.common.api import ReferralOperation, referral_schema
from workflows.sig import services


class ReferralView(ReferralOperation):
    purpose = _("SIG: registering a referral")

    @referral_schema("sig_referral_create", "Register a SIG referral")
    def post(self, request):
        return super().post(request)

    def register(self, data):
        return services.register_referral(user=self.person, purpose=str(self.purpose), **data)


def urls() -> list:
    return [path("referrals/", ReferralView.as_view(), name="sig_referrals")]
