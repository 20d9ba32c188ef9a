"""The statistics application in the site shell: the steering group's pages and their URLs."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from viewflow.urls import Application

from casework import policy
from casework.statistics.views import DashboardView, ReportPdfView, ReportView, TableCsvView


class StatisticsApp(Application):
    """Statistics: the dashboard, the follow-up report (page and PDF) and each table as CSV."""

    title = _("Statistics")
    icon = "insights"
    app_name = "statistik"
    menu_template_name = None
    permission = staticmethod(policy.can_view_statistics)

    index_path = path("", DashboardView.as_view(), name="index")
    report_path = path("rapport/", ReportView.as_view(), name="report")
    report_pdf_path = path("rapport.pdf", ReportPdfView.as_view(), name="report_pdf")
    csv_path = path("csv/<slug:programme>/<str:table>.csv", TableCsvView.as_view(), name="csv")
