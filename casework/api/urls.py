"""``/api/v1/``: the token endpoint, the OpenAPI document and its docs page, the core's
operations and every programme's (through the registry)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from oauth2_provider.views import TokenView

from casework import programmes
from casework.api import statistics, tasks, views, webhooks

app_name = "api"


def _public(view):
    """The API answers for itself (a token, or a 401 problem), not with the login page's
    redirect (``ApiView`` says so itself; this is for the libraries' views)."""
    return login_not_required(view)


urlpatterns = [
    # OAuth 2.0 client credentials: POST grant_type=client_credentials with the client's
    # id and secret (HTTP Basic) for a short-lived access token.
    path("token/", _public(TokenView.as_view()), name="token"),
    path("schema/", _public(SpectacularAPIView.as_view()), name="schema"),
    path(
        "docs/",
        _public(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("cases/<uuid:case_id>/", views.CaseStatusView.as_view(), name="case"),
    path(
        "cases/<uuid:case_id>/actions/",
        views.CaseActionsView.as_view(),
        name="case_actions",
    ),
    # The client's own webhooks (events out, ids and states only).
    path("webhooks/", webhooks.WebhooksView.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>/", webhooks.WebhookView.as_view(), name="webhook"),
    # Each programme's own operations (``workflows/<programme>/api.py``).
    *programmes.api_urls(),
    # The acting person's tasks (``casework/api/tasks.py``).
    path("tasks/", tasks.TaskListView.as_view(), name="tasks"),
    path(
        "tasks/<int:task_id>/complete/",
        tasks.TaskCompleteView.as_view(),
        name="task_complete",
    ),
    # The steering group's statistics (``casework/api/statistics.py``).
    path("statistics/", statistics.StatisticsView.as_view(), name="statistics"),
    # Last: any other address under /api/v1/ is a 404 problem document (not the site's
    # HTML page), e.g. a path parameter that is not of its type.
    re_path(r"^", views.NoSuchOperation.as_view(), name="no_such_operation"),
]
