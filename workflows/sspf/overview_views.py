"""The SSPF pages outside a case: the overview (the inbox of school, leisure and the
coordinator) and the operational group's meetings. Thin: the selectors
(``workflows/sspf/selectors.py``) decide what the user sees, one service
(``workflows/sspf/services.py``) per form; service errors come back as form errors.
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View
from viewflow.workflow.models import Task

from casework.selectors.cases import list_cases
from casework.services.cases import CaseDenied
from workflows.common.case_page import CaseworkerRequiredMixin
from workflows.common.responses import ActionForms, denied, put_errors
from workflows.sspf import forms as sforms
from workflows.sspf import meeting_services
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import OperationalMeeting, SspfCase, Status
from workflows.sspf.selectors import (
    MeetingNotFound,
    anonymised_discussion_counts,
    concerns_raised_by,
    get_meeting,
    list_meetings,
)

# --- The overview: the inbox of school, leisure and the coordinator ------------------------------


class IndexView(CaseworkerRequiredMixin, View):
    """My SSPF cases (those I may open), the concerns I raised, and the meetings."""

    template_name = "workflows/sspf/index.html"

    def get(self, request):
        user = request.user
        # The SSPF tasks in my inbox (the school's and leisure's parts of the plan, the
        # coordinator's steps): the task and its case's number, nothing decrypted.
        tasks = [
            (task, task.flow_task.reverse("index", args=[task.process_id, task.pk]))
            for task in Task.objects.inbox([SspfFlow], user)
            .select_related("process__sspfprocess__case")
            .order_by("created", "pk")
        ]
        return TemplateResponse(
            request,
            self.template_name,
            {
                "tasks": tasks,
                "rows": list_cases(user=user, model=SspfCase),
                "concerns": concerns_raised_by(user=user),
                "meetings": list(list_meetings(user=user)[:10]),
                "may_raise": SspfFlow.start.can_execute(user),
                "coordinator": meeting_services.can_coordinate_sspf(user),
                "Status": Status,
            },
        )


# --- Operational group meetings ------------------------------------------------------------------


class MeetingListView(CaseworkerRequiredMixin, View):
    template_name = "workflows/sspf/meetings.html"
    purpose = _("SSPF: planning an operational group meeting")

    def render(self, form, status=200):
        user = self.request.user
        return TemplateResponse(
            self.request,
            self.template_name,
            {
                "meetings": list_meetings(user=user),
                "form": form if meeting_services.can_coordinate_sspf(user) else None,
                "counts": anonymised_discussion_counts()
                if meeting_services.can_coordinate_sspf(user)
                else [],
            },
            status=status,
        )

    def get(self, request):
        return self.render(sforms.MeetingForm(auto_id="id_meeting-%s"))

    def post(self, request):
        if not meeting_services.can_coordinate_sspf(request.user):
            return denied(request)
        form = sforms.MeetingForm(request.POST, auto_id="id_meeting-%s")
        if form.is_valid():
            try:
                meeting = meeting_services.create_meeting(
                    user=request.user,
                    purpose=str(self.purpose),
                    date=form.cleaned_data["date"],
                    organisations=form.cleaned_data["organisations"],
                )
            except ValidationError as error:
                put_errors(form, error)
            except CaseDenied:
                return denied(request)
            else:
                messages.success(request, _("The meeting is created."))
                return HttpResponseRedirect(
                    reverse("arenden:sspf:meeting", kwargs={"meeting_id": meeting.pk})
                )
        return self.render(form)


class MeetingView(CaseworkerRequiredMixin, ActionForms, View):
    """A meeting: its agenda of cases (with the decision on each) and anonymised discussions."""

    template_name = "workflows/sspf/meeting.html"
    purpose = _("SSPF: the operational group meeting")
    actions = {
        "agenda": sforms.AgendaForm,
        "decision": sforms.AgendaDecisionForm,
        "discussion": sforms.DiscussionForm,
    }

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.meeting_id = kwargs["meeting_id"]

    def render(self, built, status=200):
        try:
            page = get_meeting(
                user=self.request.user, purpose=str(self.purpose), meeting_id=self.meeting_id
            )
        except MeetingNotFound:
            raise Http404 from None
        if not page.coordinator:
            built = {}
        return TemplateResponse(
            self.request,
            self.template_name,
            {"page": page, "forms": built, "meeting": page.meeting},
            status=status,
        )

    def post(self, request, meeting_id):
        meeting = OperationalMeeting.objects.filter(pk=meeting_id).first()
        if meeting is None:
            raise Http404
        if not meeting_services.can_coordinate_sspf(request.user):
            return denied(request)
        action = request.POST.get("_action", "")
        if not self.offers(action):
            messages.error(request, _("That is not available."))
            return HttpResponseRedirect(request.path)
        return self.post_action(
            request, action, partial(getattr(self, f"do_{action}"), meeting=meeting)
        )

    def do_agenda(self, form, meeting):
        reference = form.cleaned_data["reference"].strip().upper()
        case = SspfCase.objects.filter(reference=reference).first()
        if case is None:
            raise ValidationError({"reference": _("There is no SSPF case with that number.")})
        meeting_services.add_to_agenda(
            user=self.request.user, meeting=meeting, case=case, purpose=str(self.purpose)
        )
        return _("The case is on the agenda.")

    def do_decision(self, form, meeting):
        item = meeting.items.select_related("case", "case__person").filter(
            pk=form.cleaned_data["item"]
        )
        item = item.first()
        if item is None:
            raise ValidationError(_("No such case on this agenda."))
        meeting_services.record_agenda_decision(
            user=self.request.user,
            item=item,
            decision=form.cleaned_data["decision"],
            purpose=str(self.purpose),
        )
        return _("The decision is recorded.")

    def do_discussion(self, form, meeting):
        data = form.cleaned_data
        meeting_services.record_anonymised_discussion(
            user=self.request.user,
            purpose=str(self.purpose),
            meeting=meeting,
            date=data["date"],
            organisation=data["organisation"],
            topic=data["topic"],
            age_band=data["age_band"],
            area=data["area"],
            summary=data["summary"],
            outcome=data["outcome"],
        )
        return _("The anonymised discussion is recorded.")


urlpatterns = [
    path("", IndexView.as_view(), name="index"),
    path("moten/", MeetingListView.as_view(), name="meetings"),
    path("moten/<uuid:meeting_id>/", MeetingView.as_view(), name="meeting"),
]
