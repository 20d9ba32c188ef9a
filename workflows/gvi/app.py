"""The GVI application in the site shell: its pages and their URLs."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from viewflow.urls import Application

from casework import policy
from workflows.gvi.views import (
    CallInCreateView,
    CallInPageView,
    GroupCreateView,
    GroupPageView,
    IncidentCreateView,
    MemberPageView,
    NotificationPageView,
    OverviewView,
)

# --- The GVI application (its pages in the site shell) ----------------------------------------


class GviApp(Application):
    """GVI: the overview, groups, members, incidents, call-ins and notifications."""

    title = _("GVI")
    icon = "diversity_3"
    app_name = "gvi"
    menu_template_name = None

    def has_view_permission(self, user, obj=None):
        return bool(policy.gvi_access(user))

    index_path = path("", OverviewView.as_view(), name="index")
    group_create_path = path("grupper/ny/", GroupCreateView.as_view(), name="group_create")
    group_path = path("grupper/<uuid:group_id>/", GroupPageView.as_view(), name="group")
    member_path = path("medlemmar/<uuid:member_id>/", MemberPageView.as_view(), name="member")
    incident_path = path("incidenter/ny/", IncidentCreateView.as_view(), name="incident_create")
    call_in_create_path = path("call-in/ny/", CallInCreateView.as_view(), name="call_in_create")
    call_in_path = path("call-in/<uuid:call_in_id>/", CallInPageView.as_view(), name="call_in")
    notification_path = path(
        "underrattelser/<uuid:notification_id>/",
        NotificationPageView.as_view(),
        name="notification",
    )
