"""The auditor's pages (granskare only): search, event, CSV export, log review, integrity.

Every page and export asks ``policy.can_view_access_log`` (twice: the viewflow
application and the view), and every page view is itself an access-log event:
auditors are audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from viewflow.urls import Application

from audit import integrity, review, selectors
from audit.context import DENIAL_REASON_ATTRIBUTE
from audit.forms import ReviewForm, SearchForm
from audit.models import AccessEvent, ChainLink
from audit.services import Action, record_event, sanitize_text
from casework import policy
from casework.models import AdminChangeRequest
from casework.selectors.administration import list_change_requests
from casework.views import PolicyRequiredMixin

EXPORT_COLUMNS = (
    "id",
    "occurred_at",
    "username",
    "organisation_name",
    "roles",
    "action",
    "object_type",
    "object_id",
    "person_id",
    "fields",
    "purpose",
    "legal_basis",
    "outcome",
    "request_id",
    "client_address",
    "details",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 403 page; keeps the refusal's reason for the denied-access event."""
    reason = ""
    if exception is not None:
        reason = str(exception) or type(exception).__name__
    setattr(request, DENIAL_REASON_ATTRIBUTE, reason)
    return render(request, "403.html", status=403)


def _int_param(value: str | None) -> int | None:
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 < number < 2**63 else None


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _details_text(details: Any) -> str:
    return sanitize_text(json.dumps(details, ensure_ascii=False, sort_keys=True), max_length=20000)


class AuditorView(PolicyRequiredMixin, TemplateView):
    policy_check = staticmethod(policy.can_view_access_log)
    page = ""

    def log_read(self, *, object_id: str = "", **details: Any) -> None:
        record_event(
            action=Action.AUDIT_READ,
            user=self.request.user,
            object_type="audit.accessevent",
            object_id=object_id,
            purpose="log review",
            details={"page": self.page, **details},
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(audit_page=self.page, **kwargs)


class SearchView(AuditorView):
    template_name = "audit/search.html"
    page = "search"

    def get(self, request, *args, **kwargs):
        form = SearchForm(request.GET or None, user=request.user)
        result = None
        if not form.is_bound or form.is_valid():
            event_filter = form.event_filter() if form.is_bound else selectors.EventFilter()
            before = _int_param(request.GET.get("before"))
            after = _int_param(request.GET.get("after"))
            result = selectors.search_events(event_filter=event_filter, before=before, after=after)
            self.log_read(filters=event_filter.describe(), before=before, after=after)
        else:
            self.log_read(invalid=True)
        query = request.GET.copy()
        query.pop("before", None)
        query.pop("after", None)
        context = self.get_context_data(form=form, result=result, query=query.urlencode())
        return self.render_to_response(context, status=200 if result is not None else 400)


class EventDetailView(AuditorView):
    template_name = "audit/event.html"
    page = "event"

    def get(self, request, *args, pk: int, **kwargs):
        event = selectors.get_event(event_id=pk)
        if event is None:
            raise Http404
        self.log_read(object_id=str(event.pk))
        link = ChainLink.objects.filter(source=ChainLink.Source.ACCESS, entry_id=event.pk).first()
        context = self.get_context_data(
            event=event, link=link, details_text=_details_text(event.details)
        )
        return self.render_to_response(context)


class _Echo:
    def write(self, value: str) -> str:
        return value


class ExportView(AuditorView):
    template_name = "audit/search.html"
    page = "export"

    def get(self, request, *args, **kwargs):
        form = SearchForm(request.GET or None, user=request.user)
        if form.is_bound and not form.is_valid():
            self.log_read(invalid=True)
            context = self.get_context_data(form=form, result=None, query="")
            return self.render_to_response(context, status=400)
        event_filter = form.event_filter() if form.is_bound else selectors.EventFilter()
        limit = getattr(settings, "AUDIT_EXPORT_MAX_ROWS", 100_000)
        record_event(
            action=Action.EXPORT,
            user=request.user,
            object_type="audit.accessevent",
            purpose="log review",
            details={"format": "csv", "filters": event_filter.describe(), "max_rows": limit},
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(
            self._rows(event_filter, limit), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="access-log-{stamp}.csv"'
        response["Cache-Control"] = "no-store"
        return response

    def _rows(self, event_filter: selectors.EventFilter, limit: int) -> Iterator[str]:
        writer = csv.writer(_Echo())
        header = [str(AccessEvent._meta.get_field(name).verbose_name) for name in EXPORT_COLUMNS]
        yield "\ufeff" + writer.writerow([csv_cell(cell) for cell in header])
        for event in selectors.iter_events(event_filter=event_filter, limit=limit):
            values = {
                "id": event.pk,
                "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat(),
                "fields": ";".join(event.fields),
                "details": json.dumps(event.details, ensure_ascii=False, sort_keys=True),
            }
            yield writer.writerow(
                [csv_cell(values.get(name, getattr(event, name))) for name in EXPORT_COLUMNS]
            )


class ReviewView(AuditorView):
    template_name = "audit/review.html"
    page = "review"

    def get(self, request, *args, **kwargs):
        if request.GET:
            form = ReviewForm(request.GET)
        else:
            first, last = ReviewForm.default_period()
            form = ReviewForm({"date_from": first.isoformat(), "date_to": last.isoformat()})
        report = None
        if form.is_valid():
            start, end = form.period()
            report = review.build_report(start=start, end=end, seed=form.cleaned_data["seed"])
            self.log_read(start=start.isoformat(), end=end.isoformat(), seed=report.seed)
        else:
            self.log_read(invalid=True)
        context = self.get_context_data(form=form, report=report)
        return self.render_to_response(context, status=200 if report else 400)


class IntegrityView(AuditorView):
    template_name = "audit/integrity.html"
    page = "integrity"

    def get(self, request, *args, **kwargs):
        self.log_read()
        return self.render_to_response(self.get_context_data(result=None))

    def post(self, request, *args, **kwargs):
        result = integrity.verify()
        self.log_read(
            verified=result.ok,
            entries=result.entries,
            checkpoints=result.checkpoints,
            finding=str(result.finding) if result.finding else "",
        )
        finding = result.finding
        return self.render_to_response(
            self.get_context_data(
                result=result,
                finding_kind=finding.kind if finding else "",
                finding_text=sanitize_text(str(finding)) if finding else "",
                checkpoint_problem=_checkpoint_problem(finding),
            )
        )


def _checkpoint_problem(finding: integrity.Finding | None) -> str:
    """The auditor's words for a chain that is intact but not (recently) vouched for."""
    if finding is None:
        return ""
    if finding.kind == integrity.Problem.NO_CHECKPOINT:
        return _(
            "No signed checkpoint exists: nothing kept outside the database vouches for the "
            "log, so a log rewritten as a whole could not be told from the real one. Ask the "
            "operators to write one (manage.py audit checkpoint) and to schedule it at least "
            "hourly."
        )
    if finding.kind == integrity.Problem.STALE_CHECKPOINT:
        now = timezone.now()
        return _(
            "The newest signed checkpoint is older than %(max_age)s: what was logged since then "
            "is vouched for by nothing outside the database. Ask the operators to check that "
            "checkpoints are written on schedule (manage.py audit checkpoint)."
        ) % {"max_age": timesince(now - integrity.checkpoint_max_age(), now)}
    return ""


class ChangeRequestsView(AuditorView):
    """The administrators' change requests (four eyes on power), pending and decided:
    read-only for the auditor (docs/adr/0014-four-eyes-on-power.md)."""

    template_name = "audit/change_requests.html"
    page = "change_requests"

    def get(self, request, *args, **kwargs):
        decision = request.GET.get("decision", "")
        if decision not in AdminChangeRequest.Decision.values:
            decision = ""
        rows = list_change_requests(user=request.user, decision=decision)
        self.log_read(decision=decision, shown=len(rows))
        context = self.get_context_data(
            rows=rows, decision=decision, decisions=AdminChangeRequest.Decision.choices
        )
        return self.render_to_response(context)


class AuditApp(Application):
    """Audit: the access log's search, events and export, the log review, the integrity
    check and the administrators' change requests."""

    title = _("Audit")
    icon = "policy"
    app_name = "granskning"
    menu_template_name = None
    permission = staticmethod(policy.can_view_access_log)

    index_path = path("", SearchView.as_view(), name="index")
    event_path = path("handelse/<int:pk>/", EventDetailView.as_view(), name="event")
    export_path = path("export.csv", ExportView.as_view(), name="export")
    review_path = path("loggkontroll/", ReviewView.as_view(), name="review")
    integrity_path = path("integritet/", IntegrityView.as_view(), name="integrity")
    change_requests_path = path(
        "andringsbegaran/", ChangeRequestsView.as_view(), name="change_requests"
    )
