"""The steering group's pages: dashboard, CSV per table, printable report and its PDF.

Every view asks ``policy.can_view_statistics`` (and so does the viewflow
application around them); every page and export is an access-log event.
"""

from __future__ import annotations

import csv
import io

from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views import View

from casework import policy
from casework.statistics import access, charts, disclosure, pdf, tables
from casework.statistics.forms import StatisticsForm
from casework.views import PolicyRequiredMixin


class _StatisticsView(PolicyRequiredMixin, View):
    policy_check = staticmethod(policy.can_view_statistics)
    template_name = "samverkan/statistics.html"
    trends = True

    def form(self) -> StatisticsForm:
        data = self.request.GET.copy()
        data.setdefault("period", StatisticsForm.default_period())
        return StatisticsForm(data)

    def reports(self, form: StatisticsForm) -> list[tables.ProgrammeReport]:
        """Raises ``SelectionRefused`` for a selection below the threshold in every
        programme (a programme where it is refused shows the refusal instead)."""
        data = form.cleaned_data
        return tables.reports(data["period"], data["selection"], trends=self.trends)

    def refuse(self, form, message: str, *, status: int = 400):
        access.log_view(
            user=self.request.user,
            period=form.data.get("period", ""),
            selection=form.data.get("selection", ""),
            invalid=True,
        )
        context = {
            "form": form,
            "refusal": message,
            "reports": [],
            "threshold": disclosure.threshold(),
        }
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        form = self.form()
        if not form.is_valid():
            return self.refuse(form, "")
        try:
            reports = self.reports(form)
        except disclosure.SelectionRefused as exc:
            return self.refuse(form, str(exc))
        return self.respond(form, reports)


class DashboardView(_StatisticsView):
    def respond(self, form, reports):
        period = form.cleaned_data["period"]
        access.log_view(
            user=self.request.user, period=period.key, selection=form.cleaned_data["selection"]
        )
        context = {
            "form": form,
            "period": period,
            "preliminary": period.is_current(),
            "reports": reports,
            "charts": {r.spec.code: [charts.bar_chart(t) for t in r.trends] for r in reports},
            "query": form.data.urlencode(),
            "threshold": disclosure.threshold(),
        }
        return TemplateResponse(self.request, self.template_name, context)


class ReportView(_StatisticsView):
    """The follow-up report for a period: printable HTML (every table, all cases)."""

    template_name = "samverkan/statistics_report.html"

    def form(self):
        form = super().form()
        form.data["selection"] = ""  # the report is of all cases
        return form

    def respond(self, form, reports):
        period = form.cleaned_data["period"]
        access.log_export(user=self.request.user, period=period.key, format="html")
        context = {
            "period": period,
            "preliminary": period.is_current(),
            "reports": reports,
            "charts": {r.spec.code: [charts.bar_chart(t) for t in r.trends] for r in reports},
            "threshold": reports[0].threshold if reports else disclosure.threshold(),
        }
        return TemplateResponse(self.request, self.template_name, context)


class ReportPdfView(ReportView):
    def respond(self, form, reports):
        period = form.cleaned_data["period"]
        access.log_export(user=self.request.user, period=period.key, format="pdf")
        content = pdf.render(
            reports=reports, period_label=period.label, preliminary=period.is_current()
        )
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="uppfoljning-{period.key}.pdf"'
        response["Cache-Control"] = "no-store"
        return response


class TableCsvView(_StatisticsView):
    """One table as CSV: ``overview``, ``medians``, ``trend.<measure>`` or a breakdown."""

    def reports(self, form: StatisticsForm) -> list[tables.ProgrammeReport]:
        """The table's programme's publication only (the others' are not shown). A
        refusal's message names no programme, so a refusal in this programme answers as
        when every programme was read. An unknown programme, or one that does not offer
        the selection, reads them all as before: 404, or the refusal if it is refused in
        every programme that offers it."""
        data = form.cleaned_data
        found = tables.reports(
            data["period"],
            data["selection"],
            trends=self.trends,
            codes=frozenset([self.kwargs["programme"]]),
        )
        return found or super().reports(form)

    def respond(self, form, reports):
        period = form.cleaned_data["period"]
        code, key = self.kwargs["programme"], self.kwargs["table"]
        report = next((r for r in reports if r.spec.code == code), None)
        if report is None:
            raise Http404(_("No such table."))
        if report.refusal:
            return self.refuse(form, report.refusal)
        rows = self._rows(report, key)
        if rows is None:
            raise Http404(_("No such table."))
        access.log_export(
            user=self.request.user, period=period.key, format="csv", programme=code, table=key
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([str(cell) for cell in row])
        response = HttpResponse(
            "\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8"
        )
        selection = form.cleaned_data["selection"].replace(":", "-")
        name = "-".join(part for part in (code, key, period.key, selection) if part)
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _rows(report: tables.ProgrammeReport, key: str):
        if key == "overview":
            return [[_("Measure"), _("Count")], *[[r.label, r.display] for r in report.overview]]
        if key == "medians":
            return [[_("Measure"), _("Median")], *[[m.label, m.display] for m in report.medians]]
        if key.startswith("trend."):
            trend = next((t for t in report.trends if t.key == key[6:]), None)
            if trend is None:
                return None
            header = [[_("Period"), trend.label]]
            return header + [[pt.period.label, pt.row.display] for pt in trend.points]
        table = next((t for t in report.tables if t.key == key), None)
        if table is None or table.withheld:
            return None
        body = [[r.label, r.display] for r in table.rows]
        return [[table.heading, table.title], *body, [table.total.label, table.total.display]]
