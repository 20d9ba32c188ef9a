"""SSPF in the programme registry (``casework.programmes``)."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path

from casework.models import Case
from workflows.common.registration import register_case_programme
from workflows.sspf import api as sspf_api
from workflows.sspf import demo as sspf_demo
from workflows.sspf import overview_views
from workflows.sspf import statistics as sspf_statistics
from workflows.sspf import views as sspf_views
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import (
    AgendaItem,
    PoliceParticipation,
    RiskAssessment,
    SspfCase,
    SspfProcess,
)
from workflows.sspf.services import may_add_action

# The register extract (docs/adr/0025-register-extract.md): its rows of a case.
EXTRACT_MODELS = (RiskAssessment, PoliceParticipation, AgendaItem)


def police_take_part(case) -> bool:
    """The newest police participation decision of the case says the police take part."""
    decision = (
        PoliceParticipation.objects.filter(case_id=case.pk)
        .order_by("-decided_at")
        .values_list("participates", flat=True)
        .first()
    )
    return bool(decision)


def casework_urls() -> list:
    return [path("sspf/", include((overview_views.urlpatterns, "sspf")))]


def register() -> None:
    register_case_programme(
        Case.Programme.SSPF,
        flows={SspfFlow: "school"},
        process=SspfProcess,
        menu_position=30,
        casework_urls=casework_urls,
        api_urls=sspf_api.urls,
        case_models=(SspfCase,),
        case_page_view=sspf_views.SspfCasePageView.as_view(),
        seed_demo=lambda stdout: sspf_demo.seed_sspf_cases(),
        statistics=lambda: sspf_statistics.STATISTICS,
        police_take_part=police_take_part,
        may_add_action=may_add_action,
        written_guardian_consent=True,
        own_consent_age=lambda: settings.SAMVERKAN["SSPF_OWN_CONSENT_AGE"],
        age_range=lambda: settings.SAMVERKAN["SSPF_AGE_RANGE"],
        limits_school_and_leisure=True,
        extract_models=EXTRACT_MODELS,
    )
