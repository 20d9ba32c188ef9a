"""The auditor's pages (granskare only)."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from viewflow.urls import Application

from casework import policy
from casework.views import PolicyRequiredMixin


class AccessLogView(PolicyRequiredMixin, TemplateView):
    template_name = "audit/access_log.html"
    policy_check = staticmethod(policy.can_view_access_log)


class AuditApp(Application):
    title = _("Audit")
    icon = "policy"
    app_name = "granskning"
    menu_template_name = None

    def has_view_permission(self, user, obj=None):
        return policy.can_view_access_log(user)

    @property
    def index_path(self):
        return path("", AccessLogView.as_view(), name="index")
