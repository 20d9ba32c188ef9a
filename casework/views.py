"""Thin views of the case-work side: the start-page dispatcher and the statistics page."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from viewflow.urls import Application
from viewflow.workflow.flow import WorkflowAppViewset

from casework import policy
from workflows.registry import flow_viewsets


class PolicyRequiredMixin:
    """Refuse the view (403) unless ``policy_check(user)`` allows it."""

    policy_check = None

    def dispatch(self, request, *args, **kwargs):
        check = type(self).policy_check
        if check is None or not check(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def home(request):
    """Send each user to the start page of their role."""
    url = policy.start_url(request.user)
    if url is None:
        return TemplateResponse(request, "samverkan/no_role.html", status=403)
    return redirect(url)


class CaseworkApp(WorkflowAppViewset):
    """Task inbox, queue and archive over every registered process flow."""

    title = _("Cases")
    icon = "assignment"
    app_name = "arenden"

    def __init__(self, **kwargs):
        super().__init__(flow_viewsets=flow_viewsets(), **kwargs)

    def has_view_permission(self, user, obj=None):
        return policy.can_use_task_inbox(user)

    @property
    def cases_path(self):
        from workflows.case_views import CaseListView

        return path("fall/", CaseListView.as_view(), name="cases")

    @property
    def case_path(self):
        from workflows.case_views import CasePageView

        return path("fall/<uuid:case_id>/", CasePageView.as_view(), name="case")

    @property
    def break_glass_path(self):
        from workflows.case_views import BreakGlassView

        return path("bryt-glaset/", BreakGlassView.as_view(), name="break_glass")


class StatisticsView(PolicyRequiredMixin, TemplateView):
    template_name = "samverkan/statistics.html"
    policy_check = staticmethod(policy.can_view_statistics)


class StatisticsApp(Application):
    title = _("Statistics")
    icon = "insights"
    app_name = "statistik"
    menu_template_name = None

    def has_view_permission(self, user, obj=None):
        return policy.can_view_statistics(user)

    @property
    def index_path(self):
        return path("", StatisticsView.as_view(), name="index")
