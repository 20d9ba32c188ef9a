"""The defector programme in the integration API: registering a referral,
``POST /api/v1/defector/referrals/``."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from casework.models import Person
from workflows.common.api import ReferralIn, ReferralOperation, referral_schema
from workflows.defector import intake
from workflows.defector.models import ReferralSource


class DefectorReferralIn(ReferralIn):
    """The referral form's fields: who referred the person, and the protected identity of
    a person not registered before (a registered person keeps theirs)."""

    source = serializers.ChoiceField(choices=ReferralSource.choices)
    protected_identity = serializers.ChoiceField(
        choices=Person.ProtectedIdentity.choices,
        required=False,
        default=Person.ProtectedIdentity.NONE,
    )


@referral_schema("defector_referral_create", "Register a defector referral")
class ReferralView(ReferralOperation):
    """Register a referral to the defector programme, as on the referral page: the person
    is found by personnummer or registered, the case opened and put in the defector
    coordinators' queue (the initial check). The answer is the same whether the person
    was registered or not; the referrer is not on the case's team."""

    purpose = _("Defector programme: registering a referral")
    request_class = DefectorReferralIn
    service = staticmethod(intake.receive_referral)


def urls() -> list:
    return [path("referrals/", ReferralView.as_view(), name="defector_referrals")]
