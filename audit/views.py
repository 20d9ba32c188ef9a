"""The auditor's pages (granskare only): search, event, CSV export, log review (with the
findings' outcomes), integrity, break-the-glass reviews, the auditor's reminders.

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
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from viewflow.urls import Application

from audit import findings, integrity, review, selectors
from audit.context import DENIAL_REASON_ATTRIBUTE
from audit.forms import BreakGlassReviewForm, FindingOutcomeForm, ReviewForm, SearchForm
from audit.models import AccessEvent, ChainLink, FindingOutcome
from audit.services import Action, record_event, sanitize_text
from casework import policy
from casework.models import AdminChangeRequest
from casework.selectors import break_glass
from casework.selectors.administration import list_change_requests
from casework.selectors.reminders import SHOWN_DAYS, reminder_rows
from casework.services import cases as case_services
from casework.services.case_changes import CaseDenied
from casework.services.reminders import AUDITOR_KINDS
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
        link = selectors.sealing_of(ChainLink.Source.ACCESS, event.pk)
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
    """The log review; each finding shows its outcome, or a form to give it one."""

    template_name = "audit/review.html"
    page = "review"

    def get(self, request, *args, **kwargs):
        if request.GET:
            form = ReviewForm(request.GET)
        else:
            first, last = ReviewForm.default_period()
            form = ReviewForm({"date_from": first.isoformat(), "date_to": last.isoformat()})
        return self.review(form)

    def review(self, form: ReviewForm, *, outcome_form=None) -> HttpResponse:
        report = None
        if form.is_valid():
            start, end = form.period()
            report = review.build_report(start=start, end=end, seed=form.cleaned_data["seed"])
            findings.attach_outcomes(report)
            self.log_read(start=start.isoformat(), end=end.isoformat(), seed=report.seed)
        else:
            self.log_read(invalid=True)
        context = self.get_context_data(form=form, report=report, outcome_form=outcome_form)
        if report is not None:
            context["period"] = {
                "date_from": form.cleaned_data["date_from"].isoformat(),
                "date_to": form.cleaned_data["date_to"].isoformat(),
                "seed": report.seed,
            }
            # Rendered once for the outcome form of every finding on the page.
            context["outcome_url"] = reverse("granskning:finding_outcome")
            context["outcome_options"] = format_html_join(
                "", '<option value="{}">{}</option>', FindingOutcome.Outcome.choices
            )
        ok = report is not None and outcome_form is None
        return self.render_to_response(context, status=200 if ok else 400)


class FindingOutcomeView(ReviewView):
    """POST: the outcome of one finding of the review of a period (written once)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = FindingOutcomeForm(request.POST)
        if form.is_valid():
            start, end = form.period()
            data = form.cleaned_data
            try:
                findings.record_outcome(
                    user=request.user,
                    rule=data["rule"],
                    key=data["key"],
                    outcome=data["outcome"],
                    start=start,
                    end=end,
                    seed=data["seed"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                query = urlencode(
                    {
                        "date_from": data["date_from"].isoformat(),
                        "date_to": data["date_to"].isoformat(),
                        "seed": data["seed"],
                    }
                )
                return redirect(f"{reverse('granskning:review')}?{query}#{data['rule']}")
        # The review of the period again, with the outcome's errors (400).
        return self.review(ReviewForm(request.POST), outcome_form=form)


class BreakGlassListView(AuditorView):
    """The break-the-glass accesses: those no auditor has reviewed (or all of them)."""

    template_name = "audit/break_glass.html"
    page = "break_glass"

    def get(self, request, *args, **kwargs):
        show_all = request.GET.get("visa") == "alla"
        accesses, unreviewed = break_glass.break_glass_list(
            user=request.user, unreviewed_only=not show_all
        )
        self.log_read(shown=len(accesses), show_all=show_all)
        context = self.get_context_data(accesses=accesses, unreviewed=unreviewed, show_all=show_all)
        return self.render_to_response(context)


class BreakGlassReviewView(AuditorView):
    """One break-the-glass access, its log entries, and its review (written once)."""

    template_name = "audit/break_glass_review.html"
    page = "break_glass"

    def _access(self, access_id):
        access = break_glass.break_glass_access(user=self.request.user, access_id=access_id)
        if access is None:
            raise Http404
        return access

    def _render(self, access, form, status: int = 200) -> HttpResponse:
        self.log_read(object_id=str(access.pk), break_glass=str(access.pk))
        context = self.get_context_data(
            access=access, events=break_glass.break_glass_events(access), form=form
        )
        return self.render_to_response(context, status=status)

    def get(self, request, *args, access_id, **kwargs):
        return self._render(self._access(access_id), BreakGlassReviewForm())

    def post(self, request, *args, access_id, **kwargs):
        access = self._access(access_id)
        form = BreakGlassReviewForm(request.POST)
        if form.is_valid():
            try:
                case_services.review_break_glass(
                    user=request.user,
                    access=access,
                    verdict=form.cleaned_data["verdict"],
                    note=form.cleaned_data["note"],
                    purpose="break-the-glass review",
                )
            except CaseDenied:
                raise PermissionDenied from None
            except ValidationError as error:
                form.add_error(None, _field_errors(error, {"review_note": "note"}))
            else:
                messages.success(request, _("The review is saved."))
                return redirect("granskning:break_glass")
        return self._render(access, form, status=400)


def _field_errors(error: ValidationError, renamed: dict[str, str]) -> ValidationError:
    """``error`` with the service's field names renamed to the form's."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {renamed.get(name, name): errors for name, errors in error.error_dict.items()}
    )


class RemindersView(AuditorView):
    """The auditor's reminders and alerts (unreviewed and new break-the-glass accesses)."""

    template_name = "audit/reminders.html"
    page = "reminders"

    def get(self, request, *args, **kwargs):
        rows = reminder_rows(user=request.user)
        self.log_read(shown=len(rows))
        context = self.get_context_data(
            rows=rows, shown_days=SHOWN_DAYS, break_glass_kinds=AUDITOR_KINDS
        )
        return self.render_to_response(context)


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
    """Audit: the access log's search, events and export, the log review and its findings'
    outcomes, the integrity check, the administrators' change requests, break-the-glass
    reviews and the auditor's reminders."""

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
    finding_outcome_path = path(
        "loggkontroll/utfall/", FindingOutcomeView.as_view(), name="finding_outcome"
    )
    break_glass_path = path("brutet-glas/", BreakGlassListView.as_view(), name="break_glass")
    break_glass_review_path = path(
        "brutet-glas/<uuid:access_id>/", BreakGlassReviewView.as_view(), name="break_glass_review"
    )
    reminders_path = path("paminnelser/", RemindersView.as_view(), name="reminders")
