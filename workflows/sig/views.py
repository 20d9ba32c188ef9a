"""The task views of the SIG flow: one per step, thin.

Each view shows the case as its user may see it (``get_case_page``) and one or
more forms; a valid form calls the services inside one savepoint, so a step
either lands whole or not at all. Service errors come back as form errors in
Swedish; a stale form gets the "changed by someone else" message.
"""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.selectors import find_person
from casework.selectors.cases import list_cases
from casework.services import cases as case_services
from workflows.common import forms
from workflows.common.case_page import CasePageView, CaseworkerRequiredMixin
from workflows.common.responses import case_url, form_values
from workflows.common.services import cancel_running_process
from workflows.common.steps import (
    ConsentStepView,
    FollowUpStepView,
    ReferralStartView,
    ScreeningStepView,
    StepView,
)
from workflows.sig import forms as sig_forms
from workflows.sig import services
from workflows.sig.models import SigCase, SigProcess, Status


class ClosesSigCase:
    """Closing a SIG case, from the follow-up step or the case page (``services.close`` may
    refer the person to the defector programme)."""

    def close_sig_case(self, form) -> str:
        return closed_message(self.close_with(services.close, form))


class SigStep(StepView):
    """A step of the SIG flow."""

    template_name = "workflows/sig/task.html"
    purpose = _("SIG: work on the case")
    action_service = staticmethod(case_services.add_action)


# --- Start: the referral ----------------------------------------------------------------------


class ReferralView(ReferralStartView):
    """Register a referral: find or register the person, open the case, start the flow."""

    template_name = "workflows/sig/referral.html"
    purpose = _("SIG: registering a referral")
    receipt_title = _("New SIG referral")

    def register(self, data):
        return services.refer_person(user=self.request.user, purpose=str(self.purpose), **data)


# --- Screening --------------------------------------------------------------------------------


class ScreeningView(ScreeningStepView, SigStep):
    purpose = _("SIG: screening the referral")
    intro = _("Take the referral up, check the age and the need, and form the team.")
    begin_transition = "begin_screening"
    begin_message = _("Screening started.")
    actions = {"begin": forms.VersionedForm, "screen": sig_forms.ScreeningForm}
    labels = {"screen": (_("Screening"), _("Record the screening"))}
    screening_action = "screen"
    screening_fields = (*ScreeningStepView.screening_fields, "close_reason")
    accepted_message = _("The referral was accepted; the lead social worker asks for consent.")
    rejected_message = _("The referral was rejected and the case closed.")

    def screening_service(self):
        return services.record_screening


# --- Consent ----------------------------------------------------------------------------------


class ConsentView(SigStep, ConsentStepView):
    purpose = _("SIG: recording consent")
    intro = _(
        "Record the young person's own consent and, under 18, every guardian's. "
        "Choose which organisations each consent covers."
    )
    complete_button = _("Consents complete: go to decisions")
    complete_message = _("The consents are complete; social services and the police decide.")

    def do_refused(self, form):
        self.transition("consent_refused", expected_version=self.version(form))
        self.call(case_services.close_case, reason=SigCase.CloseReason.CONSENT_REFUSED)
        return self.finish(_("Consent was refused and the case is closed."))


# --- Decisions --------------------------------------------------------------------------------


class DecisionView(SigStep):
    purpose = _("SIG: deciding to start")
    intro = _("Decide for your agency whether to start the joint work.")
    actions = {"decide": forms.DecisionForm}
    labels = {"decide": (None, _("Record the decision"))}

    def do_decide(self, form):
        data = form.cleaned_data
        outcome = services.decide_to_start(
            user=self.request.user,
            activation=self.activation,
            choice=data["decision"],
            reason=data["note"],
            expected_version=self.version(form),
            purpose=str(self.purpose),
        )
        messages.success(self.request, DECIDED[outcome])
        return HttpResponseRedirect(case_url(self.case))


# What the decision step says it came to (``services.decide_to_start``).
DECIDED = {
    "declined": _("The case is closed: it will not be started."),
    "started": _("Both agencies decided to start: the plan is next."),
    "recorded": _("Your decision is recorded; the other agency decides next."),
}


# --- Plan -------------------------------------------------------------------------------------


class PlanView(SigStep):
    purpose = _("SIG: drafting the plan")
    intro = _(
        "Write the plan with its goals, plan at least one action for social services and one "
        "for the police, and set the review date. Then send it to the coordinator."
    )
    actions = {"action": forms.ActionForm, "plan": sig_forms.PlanForm}
    labels = {
        "action": (_("Add a planned action"), _("Add the action")),
        "plan": (_("The plan"), _("Send for approval")),
    }

    def extra_context(self):
        return {"plan_text": self.page.texts.get("plan")}

    def do_plan(self, form):
        data = form.cleaned_data
        self.call(
            case_services.update_case,
            form,
            texts={"plan": data["plan"]},
            review_date=data["review_date"],
        )
        return self.finish(_("The plan is sent to the coordinator for approval."))


class ApprovePlanView(SigStep):
    purpose = _("SIG: approving the plan")
    intro = _("Approve the plan to make the case active, or return it with a comment.")
    actions = {"review": sig_forms.ApprovalForm}
    labels = {"review": (None, _("Record the review"))}
    unmet_transition = "approve_plan"

    def do_review(self, form):
        approve = form.cleaned_data["outcome"] == sig_forms.ApprovalForm.APPROVE
        self.call(services.review_plan, form, approve=approve, comment=form.cleaned_data["comment"])
        if approve:
            return self.finish(_("The plan is approved and the case is active."))
        return self.finish(_("The plan is returned to the lead social worker."))


# --- Follow-up --------------------------------------------------------------------------------


class FollowUpView(ClosesSigCase, SigStep, FollowUpStepView):
    purpose = _("SIG: following up the case")
    intro = _("The review date has come: follow up the plan, then continue or close the case.")
    continue_transition = "continue_case"
    continue_message = _("The case continues until the next review.")

    def close_case(self, form) -> str:
        return self.close_sig_case(form)


def closed_message(referral) -> str:
    """What closing a SIG case says: closed, or closed and referred to the defector
    programme (``referral``, the new case)."""
    if referral is not None:
        return _(
            "The case is closed and the person is referred to the defector programme "
            "(%(reference)s)."
        ) % {"reference": referral.reference}
    return _("The case is closed.")


# --- The case list and the case page ----------------------------------------------------------


def review_overdue(case, today: datetime.date | None = None) -> bool:
    """An active case (or one in follow-up) whose review date has passed (``today``: the
    local day, when the caller asks for many cases)."""
    return (
        case.review_date is not None
        and case.status in (Status.ACTIVE, Status.FOLLOW_UP)
        and case.review_date < (today or timezone.localdate())
    )


class SigCaseListView(CaseworkerRequiredMixin, View):
    """The SIG cases this user may open; search by personnummer."""

    template_name = "workflows/case_list.html"
    purpose = _("SIG: finding a case by personal identity number")

    def get(self, request):
        form = forms.CaseSearchForm(request.GET or None)
        searched = False
        if form.is_bound and form.is_valid() and form.cleaned_data["personnummer"]:
            searched = True
            person = find_person(
                user=request.user,
                purpose=str(self.purpose),
                personnummer=form.cleaned_data["personnummer"],
            )
            rows = (
                []
                if person is None
                else list_cases(user=request.user, model=SigCase, person_id=person.pk)
            )
        else:
            rows = list_cases(user=request.user, model=SigCase)
        today = timezone.localdate()
        return TemplateResponse(
            request,
            self.template_name,
            {
                "form": form,
                "rows": rows,
                "searched": searched,
                "Status": Status,
                "overdue": {row.case.pk for row in rows if review_overdue(row.case, today)},
            },
        )


class SigCasePageView(ClosesSigCase, CasePageView):
    """The SIG case page: person, consent, team, plan, actions, timeline — and what can be
    done."""

    case_model = SigCase
    template_name = "workflows/case_page.html"
    purpose = _("SIG: reading the case")
    FORM_CLASSES = {**CasePageView.FORM_CLASSES, "legal_basis": sig_forms.LegalBasisForm}
    FOLDED_FORMS = ("action", "legal_basis", "close")

    def permitted(self) -> dict[str, bool]:
        user = self.request.user
        is_police = policy.is_police(user)
        open_case = self.case.status != Status.CLOSED
        return {
            "action": open_case and (not is_police or services.police_may_add_actions(self.case)),
            "close": open_case
            and case_services.may_transition(user=user, case=self.case, name="close"),
            "legal_basis": open_case and user.organisation_id == self.case.owner_organisation_id,
            "withdraw": open_case
            and case_services.may_transition(user=user, case=self.case, name="consent_withdrawn"),
        }

    def extra_context(self) -> dict:
        return {"Status": Status, "review_overdue": review_overdue(self.case)}

    # --- actions ---------------------------------------------------------------------

    def do_close(self, form):
        message = self.close_sig_case(form)
        cancel_running_process(SigProcess, self.case)
        return message

    def do_legal_basis(self, form):
        self.call(
            case_services.record_legal_basis,
            **form_values(form, "legal_basis", "justification", "valid_until"),
        )
        return _("The legal basis is recorded.")

    def withdraw_consent(self, consent) -> bool:
        self.call(case_services.withdraw_consent, consent=consent)
        return self.call(services.after_consent_withdrawn)


__all__ = [
    "ApprovePlanView",
    "ConsentView",
    "DecisionView",
    "FollowUpView",
    "PlanView",
    "ReferralView",
    "ScreeningView",
    "SigCaseListView",
    "SigCasePageView",
]
