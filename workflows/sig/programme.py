"""SIG in the programme registry (``casework.programmes``): what the core reaches of it."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.urls import path
from django.utils.translation import gettext

from casework import policy, programmes
from casework.models import Case, CaseMembership, Reminder
from workflows.common.registration import register_case_programme
from workflows.sig import api as sig_api
from workflows.sig import api_tasks as sig_api_tasks
from workflows.sig import demo as sig_demo
from workflows.sig import statistics as sig_statistics
from workflows.sig import views as sig_views
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status
from workflows.sig.services import police_may_add_actions, refer_from, refer_linked


def due_reviews(today: datetime.date) -> list[Reminder]:
    """SIG cases in ``active``/``follow_up`` whose review date has passed (their lead
    social worker is reminded)."""
    cases = list(
        SigCase.objects.filter(
            status__in=[Status.ACTIVE, Status.FOLLOW_UP], review_date__lt=today
        ).values_list("pk", flat=True)
    )
    leads = dict(
        CaseMembership.objects.filter(
            case_id__in=cases, role=CaseMembership.Role.LEAD, valid_to__isnull=True
        ).values_list("case_id", "user_id")
    )
    return programmes.make_reminders(
        Reminder.Kind.REVIEW_OVERDUE,
        today,
        ((case_id, case_id, leads.get(case_id)) for case_id in cases),
    )


def casework_urls() -> list:
    """The SIG case list (``arenden:cases``)."""
    return [path("fall/", sig_views.SigCaseListView.as_view(), name="cases")]


def seed_demo(stdout) -> None:
    created = sig_demo.seed_sig_cases()
    stdout.write(
        gettext("SIG demo cases: %(created)d new, %(total)d in all.")
        % {"created": created, "total": len(sig_demo.SLOTS)}
    )


def register() -> None:
    register_case_programme(
        Case.Programme.SIG,
        flows={SigFlow: "groups"},
        process=SigProcess,
        menu_position=10,
        casework_urls=casework_urls,
        api_urls=sig_api.urls,
        reminders=(programmes.ReminderSource(Reminder.Kind.REVIEW_OVERDUE, due_reviews),),
        seed_demo=seed_demo,
        statistics=lambda: sig_statistics.STATISTICS,
        api_decisions=sig_api_tasks.decisions,
        refer_linked=refer_linked,
        refer_from=refer_from,
        case_models=(SigCase,),
        case_page_view=sig_views.SigCasePageView.as_view(),
        age_range=lambda: settings.SAMVERKAN["SIG_AGE_RANGE"],
        may_add_action=lambda user, case: (
            not policy.is_police(user) or police_may_add_actions(case)
        ),
    )
