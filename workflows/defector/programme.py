"""The defector programme in the programme registry (``casework.programmes``)."""

from __future__ import annotations

import datetime

from django.urls import path

from casework import programmes
from casework.models import Case, Reminder
from workflows.common.registration import register_case_programme
from workflows.defector import api as defector_api
from workflows.defector import api_tasks as defector_api_tasks
from workflows.defector import demo as defector_demo
from workflows.defector import statistics as defector_statistics
from workflows.defector import views as defector_views
from workflows.defector.flow import DefectorFlow, ThreatReviewFlow
from workflows.defector.intake import refer_from, refer_linked
from workflows.defector.models import (
    FINAL_STATES,
    DefectorCase,
    DefectorProcess,
    DefectorSupportCase,
    ThreatAssessment,
    adds_actions,
)


def overdue_reassessments(today: datetime.date) -> list[Reminder]:
    """Open defector cases whose threat assessment in force is past its next review date
    (the defector coordinators' list: no recipient in particular)."""
    overdue = (
        ThreatAssessment.objects.filter(
            state=ThreatAssessment.State.IN_FORCE, next_review__lt=today
        )
        .exclude(case__status__in=FINAL_STATES)
        .values_list("pk", "case_id")
    )
    return programmes.make_reminders(
        Reminder.Kind.REASSESSMENT_OVERDUE, today, ((pk, case_id, None) for pk, case_id in overdue)
    )


def handed_over(case) -> bool:
    """Whether ``case`` (a Case or a DefectorCase) left the local programme."""
    if "handed_over_at" in case.__dict__:
        return case.__dict__["handed_over_at"] is not None
    return DefectorCase.objects.filter(pk=case.pk, handed_over_at__isnull=False).exists()


def casework_urls() -> list:
    return [
        path(
            "avhoppare/",
            defector_views.DefectorCaseListView.as_view(),
            name="defector_cases",
        )
    ]


def register() -> None:
    register_case_programme(
        Case.Programme.DEFECTOR,
        flows={DefectorFlow: "shield", ThreatReviewFlow: "gpp_maybe"},
        process=DefectorProcess,
        menu_position=20,
        casework_urls=casework_urls,
        api_urls=defector_api.urls,
        case_models=(DefectorCase, DefectorSupportCase),
        case_page_view=defector_views.DefectorCasePageView.as_view(),
        # The register extract (docs/adr/0025-register-extract.md).
        extract_models=(ThreatAssessment,),
        reminders=(
            programmes.ReminderSource(Reminder.Kind.REASSESSMENT_OVERDUE, overdue_reassessments),
        ),
        seed_demo=lambda stdout: defector_demo.seed_defector_cases(stdout, enabled=True),
        statistics=lambda: defector_statistics.STATISTICS,
        api_decisions=defector_api_tasks.decisions,
        refer_linked=refer_linked,
        refer_from=refer_from,
        may_add_action=lambda user, case: adds_actions(case, user),
        coordinator_permission=DefectorFlow.coordinator_permission,
        handed_over=handed_over,
        handed_over_cases=lambda at: DefectorCase.objects.filter(handed_over_at__lte=at).values(
            "pk"
        ),
    )
