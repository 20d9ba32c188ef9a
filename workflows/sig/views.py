"""The task views of the SIG flow: one per step, thin.

Each view shows the case as its user may see it (``get_case_page``) and one or
more forms; a valid form calls the services inside one savepoint, so a step
either lands whole or not at all. Service errors come back as form errors in
Swedish; a stale form gets the "changed by someone else" message.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.models import Action, CaseMembership
from casework.selectors import find_person
from casework.selectors.cases import list_cases
from casework.services import cases as case_services
from casework.services import create_person
from workflows.common import forms
from workflows.common.case_page import CasePageView, CaseworkerRequiredMixin
from workflows.common.responses import case_url
from workflows.common.steps import (
    ConsentStepView,
    FollowUpStepView,
    ReferralStartView,
    StepView,
    screening_context,
)
from workflows.sig import forms as sig_forms
from workflows.sig import services
from workflows.sig.models import SigCase, Status


class SigStep(StepView):
    """A step of the SIG flow."""

    template_name = "workflows/sig/task.html"
    purpose = _("SIG: work on the case")


# --- Start: the referral ----------------------------------------------------------------------


class ReferralView(ReferralStartView):
    """Register a referral: find or register the person, open the case, start the flow."""

    template_name = "workflows/sig/referral.html"
    purpose = _("SIG: registering a referral")
    receipt_title = _("New SIG referral")

    def register(self, data):
        request, purpose = self.request, str(self.purpose)
        person = find_person(user=request.user, purpose=purpose, personnummer=data["personnummer"])
        if person is None:
            person = create_person(
                user=request.user,
                purpose=purpose,
                name=data["name"],
                personnummer=data["personnummer"],
                area=data["area"],
                phone=data["phone"] or None,
                address=data["address"] or None,
            )
        return services.refer(
            user=request.user, person=person, reason=data["reason"], purpose=purpose
        )


# --- Screening --------------------------------------------------------------------------------


class ScreeningView(SigStep):
    purpose = _("SIG: screening the referral")
    intro = _("Take the referral up, check the age and the need, and form the team.")
    begin_label = _("Start screening")
    actions = {"begin": forms.VersionedForm, "screen": sig_forms.ScreeningForm}

    def available(self):
        return {"begin"} if self.case.status == Status.REFERRED else {"screen"}

    def extra_context(self):
        return screening_context(self)

    def do_begin(self, form):
        self.transition("begin_screening", expected_version=self.version(form))
        return self.stay(_("Screening started."))

    def do_screen(self, form):
        data = form.cleaned_data
        user, purpose = self.request.user, str(self.purpose)
        case_services.update_case(
            user=user,
            case=self.case,
            purpose=purpose,
            texts={"screening_note": data["note"] or None},
            expected_version=self.version(form),
        )
        if data["outcome"] == sig_forms.ScreeningForm.REJECT:
            case_services.close_case(
                user=user,
                case=self.case,
                purpose=purpose,
                reason=data["close_reason"],
                note=data["note"],
            )
            return self.finish(_("The referral was rejected and the case closed."))
        case_services.add_member(
            user=user,
            case=self.case,
            purpose=purpose,
            member=data["lead"],
            role=CaseMembership.Role.LEAD,
        )
        if data["police_contact"]:
            case_services.add_member(
                user=user,
                case=self.case,
                purpose=purpose,
                member=data["police_contact"],
                role=CaseMembership.Role.POLICE_CONTACT,
            )
        self.transition("accept")
        return self.finish(_("The referral was accepted; the lead social worker asks for consent."))


# --- Consent ----------------------------------------------------------------------------------


class ConsentView(SigStep, ConsentStepView):
    purpose = _("SIG: recording consent")
    intro = _(
        "Record the young person's own consent and, under 18, every guardian's. "
        "Choose which organisations each consent covers."
    )

    def do_complete(self, form):
        self.transition("consents_given", expected_version=self.version(form))
        return self.finish(_("The consents are complete; social services and the police decide."))

    def do_refused(self, form):
        self.transition("consent_refused", expected_version=self.version(form))
        case_services.close_case(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            reason=SigCase.CloseReason.CONSENT_REFUSED,
        )
        return self.finish(_("Consent was refused and the case is closed."))


# --- Decisions --------------------------------------------------------------------------------


class DecisionView(SigStep):
    purpose = _("SIG: deciding to start")
    intro = _("Decide for your agency whether to start the joint work.")
    actions = {"decide": forms.DecisionForm}

    def do_decide(self, form):
        data = form.cleaned_data
        user, purpose = self.request.user, str(self.purpose)
        case_services.record_decision(
            user=user,
            case=self.case,
            purpose=purpose,
            decision=data["decision"],
            note=data["note"] or None,
            expected_version=self.version(form),
        )
        if case_services.may_transition(user=user, case=self.case, name="decline") and not (
            case_services.unmet_conditions(self.case, "decline")
        ):
            self.transition("decline", reason=data["note"])
            self.activation.execute()
            self.activation.flow_class.instance.cancel(self.activation.process)
            messages.success(self.request, _("The case is closed: it will not be started."))
            return HttpResponseRedirect(case_url(self.case))
        if not case_services.unmet_conditions(self.case, "start"):
            self.transition("start")
            return self.finish(_("Both agencies decided to start: the plan is next."))
        return self.finish(_("Your decision is recorded; the other agency decides next."))


# --- Plan -------------------------------------------------------------------------------------


class PlanView(SigStep):
    purpose = _("SIG: drafting the plan")
    intro = _(
        "Write the plan with its goals, plan at least one action for social services and one "
        "for the police, and set the review date. Then send it to the coordinator."
    )
    actions = {"action": forms.ActionForm, "plan": sig_forms.PlanForm}

    def initial(self, name):
        initial = super().initial(name)
        if name == "plan":
            initial["review_date"] = self.case.review_date
        if name == "action":
            initial["status"] = Action.Status.PLANNED
        return initial

    def extra_context(self):
        return {"plan_text": self.page.texts.get("plan")}

    def do_action(self, form):
        data = form.cleaned_data
        case_services.add_action(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            kind=data["kind"],
            status=data["status"],
            date=data["date"],
            organisation=data["organisation"],
            note=data["note"] or None,
            visibility=data["visibility"],
            expected_version=self.version(form),
        )
        return self.stay(_("The action is added to the plan."))

    def do_plan(self, form):
        case_services.update_case(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            texts={"plan": form.cleaned_data["plan"]},
            review_date=form.cleaned_data["review_date"],
            expected_version=self.version(form),
        )
        return self.finish(_("The plan is sent to the coordinator for approval."))


class ApprovePlanView(SigStep):
    purpose = _("SIG: approving the plan")
    intro = _("Approve the plan to make the case active, or return it with a comment.")
    actions = {"review": sig_forms.ApprovalForm}

    def unmet(self):
        return case_services.unmet_conditions(self.case, "approve_plan")

    def do_review(self, form):
        data = form.cleaned_data
        if data["outcome"] == sig_forms.ApprovalForm.APPROVE:
            self.transition(
                "approve_plan",
                approved_by=self.request.user,
                reason=data["comment"] or None,
                expected_version=self.version(form),
            )
            return self.finish(_("The plan is approved and the case is active."))
        case_services.comment_case(
            user=self.request.user, case=self.case, purpose=str(self.purpose), text=data["comment"]
        )
        return self.finish(_("The plan is returned to the lead social worker."))


# --- Follow-up --------------------------------------------------------------------------------


class FollowUpView(SigStep, FollowUpStepView):
    purpose = _("SIG: following up the case")
    intro = _("The review date has come: follow up the plan, then continue or close the case.")
    active_status = Status.ACTIVE
    continue_transition = "continue_case"
    continue_message = _("The case continues until the next review.")

    def close_case(self, form) -> str:
        data = form.cleaned_data
        referral = services.close(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            reason=data["close_reason"],
            note=data["note"] or None,
            expected_version=self.version(form),
        )
        return closed_message(referral)


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


def review_overdue(case) -> bool:
    """An active case (or one in follow-up) whose review date has passed."""
    return (
        case.review_date is not None
        and case.status in (Status.ACTIVE, Status.FOLLOW_UP)
        and case.review_date < timezone.localdate()
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
        return TemplateResponse(
            request,
            self.template_name,
            {
                "form": form,
                "rows": rows,
                "searched": searched,
                "Status": Status,
                "overdue": {row.case.pk for row in rows if review_overdue(row.case)},
            },
        )


class SigCasePageView(CasePageView):
    """The SIG case page: person, consent, team, plan, actions, timeline — and what can be
    done."""

    case_model = SigCase
    template_name = "workflows/case_page.html"
    purpose = _("SIG: reading the case")
    FORM_CLASSES = {
        "action": forms.ActionForm,
        "close": forms.CloseForm,
        "legal_basis": sig_forms.LegalBasisForm,
        "withdraw": forms.WithdrawConsentForm,
    }
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

    def post(self, request, case_id):
        process = getattr(self.case, "process", None)
        if request.POST.get("_action") == "withdraw" and process is not None:
            # A withdrawal takes the flow's lock first, outside the request's transaction,
            # in the order a task step takes its locks (the process, then the case row):
            # racing a step it waits for it and then wins, never a deadlock.
            with process.flow_class.lock(process.pk):
                return self.post_form(request)
        return self.post_form(request)

    # --- actions ---------------------------------------------------------------------

    def do_action(self, form):
        data = form.cleaned_data
        user = self.request.user
        case_services.add_action(
            user=user,
            case=self.case,
            purpose=str(self.purpose),
            kind=data["kind"],
            status=data["status"],
            date=data["date"],
            organisation=data["organisation"] or user.organisation,
            note=data["note"] or None,
            visibility=data["visibility"],
            expected_version=data["version"],
        )
        return _("The action is recorded.")

    def do_close(self, form):
        data = form.cleaned_data
        referral = services.close(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            reason=data["close_reason"],
            note=data["note"] or None,
            expected_version=data["version"],
        )
        process = getattr(self.case, "process", None)
        if process is not None and process.finished is None:
            process.flow_class.instance.cancel(process)
        return closed_message(referral)

    def do_legal_basis(self, form):
        data = form.cleaned_data
        case_services.record_legal_basis(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            legal_basis=data["legal_basis"],
            justification=data["justification"],
            valid_until=data["valid_until"],
        )
        return _("The legal basis is recorded.")

    def do_withdraw(self, form):
        consent = self.case.consents.filter(pk=form.cleaned_data["consent"]).first()
        if consent is None:
            raise ValidationError(_("No such consent in this case."))
        user, purpose = self.request.user, str(self.purpose)
        case_services.withdraw_consent(user=user, case=self.case, purpose=purpose, consent=consent)
        if services.after_consent_withdrawn(user=user, case=self.case, purpose=purpose):
            return _("The consent is withdrawn: sharing has stopped and the case is closed.")
        return _("The consent is withdrawn: sharing under it has stopped.")


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
