"""SSPF in the integration API: registering a concern (orosanmälan),
``POST /api/v1/sspf/concerns/``."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from workflows.common.api import PersonIn, ReferralOperation, referral_schema
from workflows.sspf import services


class ConcernIn(PersonIn):
    """Who the concern is about and what it is; as on the concern page, no phone or
    address."""

    phone = None
    address = None
    concern = serializers.CharField(max_length=4000)


@referral_schema("sspf_concern_create", "Register an SSPF concern")
class ConcernView(ReferralOperation):
    """Register a concern (orosanmälan) about a young person, as on the concern page: the
    person is found by personnummer or registered, the case opened and put in the SSPF
    coordinators' queue. The answer is the same whether the person was registered or
    not; the one who raised it is not on the case's team."""

    purpose = _("SSPF: raising a concern")
    request_class = ConcernIn
    service = staticmethod(services.register_concern)


def urls() -> list:
    return [path("concerns/", ConcernView.as_view(), name="sspf_concerns")]
