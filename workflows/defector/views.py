"""The defector programme's pages: the flow's task views, the case page (and the
support case's), and the programme's case list with the coordinators' overdue
reassessments and pending lowerings. Thin: the services and selectors do the work.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.models import Action, CaseDecision, Consent
from casework.selectors.cases import CaseNotFound, list_cases
from casework.services.cases import CaseDenied
from workflows.common import forms
from workflows.common.case_page import timeline_rows
from workflows.common.responses import (
    ActionForms,
    CaseCalls,
    case_url,
    denied,
    form_values,
)
from workflows.common.services import transition_with_review_date
from workflows.common.steps import (
    ConsentStepView,
    FollowUpStepView,
    ReferralStartView,
    ScreeningStepView,
)
from workflows.common.steps import StepView as BaseStepView
from workflows.defector import forms as dforms
from workflows.defector import intake, services
from workflows.defector.models import (
    DefectorCase,
    DefectorSupportCase,
    Status,
    ThreatAssessment,
    involved_organisations,
)
from workflows.defector.selectors import (
    hand_over_notice,
    open_tasks,
    overdue_reassessments,
    pending_lowerings,
    threat_context,
)

PURPOSE_PREFIX = _("Defector programme")


def _reassessed(assessment: ThreatAssessment) -> str:
    if assessment.state == ThreatAssessment.State.PENDING:
        return _("The lowered threat level awaits a police coordinator's approval.")
    return _("The reassessment is in force and the case is routed by it.")


def _lowering_decided(approve: bool) -> str:
    if approve:
        return _("The lowering is approved and the case is routed by it.")
    return _("The lowering is rejected; the earlier assessment stays in force.")


def _refused(request, error: CaseDenied):
    """A refusal (already in the access log): 403 with its reason."""
    response = denied(request)
    if str(error.message) != str(CaseDenied().message):
        messages.error(request, error.message)
    return response


class StepView(BaseStepView):
    template_name = "workflows/defector/task.html"
    purpose = _("Defector programme: work on the case")

    def extra_context(self):
        return {"Status": Status}


# --- Start: the referral ----------------------------------------------------------------------


class ReferralView(ReferralStartView):
    template_name = "workflows/defector/referral.html"
    purpose = _("Defector programme: registering a referral")
    form_class = dforms.DefectorReferralForm
    receipt_title = _("New defector referral")

    def register(self, data):
        return intake.register_referral(
            user=self.request.user,
            purpose=str(self.purpose),
            personnummer=data["personnummer"],
            name=data["name"],
            area=data["area"],
            phone=data["phone"] or None,
            address=data["address"] or None,
            protected_identity=data["protected_identity"],
            source=data["source"],
            reason=data["reason"],
        )


# --- Initial check -----------------------------------------------------------------------------


class InitialCheckView(ScreeningStepView, StepView):
    purpose = _("Defector programme: initial check")
    intro = _(
        "Take the referral up: is the person motivated to leave, and is there a threat? "
        "Form the team with a lead social worker and a police contact officer."
    )
    begin_transition = "begin_check"
    begin_message = _("Initial check started.")
    actions = {"begin": forms.VersionedForm, "check": dforms.InitialCheckForm}
    labels = {"check": (_("Initial check"), _("Record the initial check"))}
    screening_action = "check"
    accepted_message = _("Accepted; the lead social worker asks for written consent.")
    rejected_message = _("The person is not eligible; the case is closed.")

    def screening_service(self):
        return intake.record_initial_check


# --- Consent -----------------------------------------------------------------------------------


class ConsentView(StepView, ConsentStepView):
    purpose = _("Defector programme: recording consent")
    intro = _(
        "Record the person's written consent (and, under 18, every guardian's). It must cover "
        "every agency involved: leaving one out rules the method out."
    )
    actions = {
        "guardian": forms.GuardianForm,
        "consent": forms.ConsentForm,
        "complete": forms.VersionedForm,
        "insufficient": forms.VersionedForm,
    }
    complete_heading = _("Written consent covers every agency")
    complete_button = _("Consent complete: joint assessment")
    complete_message = _("Consent complete: the police check and the joint assessment follow.")
    labels = {
        "insufficient": (_("Consent is partial or refused"), _("Not eligible: close the case"))
    }
    closing_actions = ()  # both shown from the start
    finishing = {
        "insufficient": (
            "consent_insufficient",
            _("Not eligible: the consent does not cover every agency in writing."),
        ),
    }

    def consent_organisations(self):
        return sorted(involved_organisations(self.case))

    def initial(self, name):
        initial = super().initial(name)
        if name == "consent":
            initial["form"] = "written"
        return initial


# --- Police check and threat assessment ----------------------------------------------------------


class AssessmentView(StepView):
    purpose = _("Defector programme: police check and threat assessment")
    consent_purpose = Consent.Purpose.THREAT_ASSESSMENT
    intro = _(
        "Record the check of police systems (allowed now that consent is recorded), then the "
        "threat assessment. The level routes the case: LOW to the local programme, ELEVATED "
        "or HIGH to the police region, an evidence person or a national case nationally."
    )
    actions = {"police_check": dforms.PoliceCheckForm, "assess": dforms.AssessmentForm}
    labels = {
        "police_check": (_("Police check"), _("Record the police check")),
        "assess": (_("Threat assessment"), _("Record the assessment and route the case")),
    }

    def available(self):
        return {"police_check"} if self.case.police_checked_at is None else {"assess"}

    def do_police_check(self, form):
        try:
            self.call(services.record_police_check, form, note=form.cleaned_data["note"])
        except CaseDenied as error:
            messages.error(self.request, error.message)
            raise
        return self.stay(_("The police check is recorded."))

    def do_assess(self, form):
        self.call(services.assess_threat, form, **form.values())
        return self.finish(_("The threat assessment is recorded and the case routed."))


# --- The local programme -------------------------------------------------------------------------


class IntakeView(StepView):
    purpose = _("Defector programme: local intake")
    intro = _(
        "Social services decide on support; the person accepts the conditions (no crime, "
        "drug-free, drug tests); then the agreement is signed and the programme starts."
    )
    actions = {
        "support": forms.DecisionForm,
        "conditions": dforms.ConditionsForm,
        "sign": forms.VersionedForm,
        "activate": dforms.ActivateForm,
    }
    labels = {
        "support": (_("Social services' support decision"), _("Record the decision")),
        "conditions": (_("The person's accepted conditions"), _("Record the accepted conditions")),
        "sign": (_("The agreement"), _("Agreement signed")),
        "activate": (_("Start the programme"), _("Start the programme")),
    }

    def available(self):
        if self.case.status == Status.AGREEMENT_SIGNED:
            return {"activate"}
        if self.case.status != Status.LOCAL_INTAKE:
            return set()
        found = set()
        if not self.case.decisions.filter(agency="social_services").exists():
            found.add("support")
        if self.case.conditions_accepted_at is None:
            found.add("conditions")
        return found or {"sign"}

    unmet_transition = "sign_agreement"
    unmet_status = Status.LOCAL_INTAKE

    def do_support(self, form):
        data = form.cleaned_data
        self.call(intake.decide_support, form, decision=data["decision"], note=data["note"] or None)
        if data["decision"] == CaseDecision.Decision.DECLINE:
            messages.success(
                self.request, _("Social services decided against support: the case is closed.")
            )
            return HttpResponseRedirect(case_url(self.case))
        return self.stay(_("The support decision is recorded."))

    def do_conditions(self, form):
        values = form_values(form, "no_crime", "drug_free", "drug_tests")
        self.call(intake.accept_conditions, form, **values)
        return self.stay(_("The accepted conditions are recorded."))

    def do_sign(self, form):
        self.transition("sign_agreement", expected_version=self.version(form))
        return self.stay(_("The agreement is signed."))

    def do_activate(self, form):
        self.call(
            transition_with_review_date,
            form,
            name="activate",
            review_date=form.cleaned_data["review_date"],
        )
        return self.finish(_("The programme has started."))


class ReviewView(StepView, FollowUpStepView):
    purpose = _("Defector programme: review")
    intro = _("The review date has come: review the support, then continue or close the case.")
    actions = {"begin": forms.VersionedForm, "review": dforms.ReviewForm}
    labels = {"review": (None, _("Record the review"))}
    begin_transition = "begin_review"
    begin_message = _("Review started.")
    continue_transition = "continue_case"
    continue_message = _("The case continues until the next review.")

    def do_review(self, form):
        return self.do_follow_up(form)

    def close_case(self, form) -> str:
        self.close_with(services.close_after_review, form)
        return _("The case is closed.")


# --- The threat review: reassessment on its date, approval of a lowering ---------------------


class ThreatReviewStepView(StepView):
    """A step of the threat review: the case with its threat level and history."""

    def extra_context(self):
        return {
            "Status": Status,
            "show_threat": True,
            **threat_context(user=self.request.user, purpose=str(self.purpose), case=self.case),
        }


class ReassessTaskView(ThreatReviewStepView):
    purpose = _("Defector programme: reassessing the threat")
    intro = _(
        "The threat assessment has reached its next review date: record a new assessment. "
        "A raised level re-routes the case at once; a lowered one needs a police "
        "coordinator's approval."
    )
    actions = {"reassess": dforms.AssessmentForm}
    labels = {"reassess": (_("Reassess the threat"), _("Record the reassessment"))}

    def do_reassess(self, form):
        assessment = self.call(services.record_reassessment, form, **form.values())
        return self.finish(_reassessed(assessment))


class LoweringTaskView(ThreatReviewStepView):
    purpose = _("Defector programme: deciding on a lowered threat level")
    intro = _(
        "A reassessment lowered the threat level. Approve it (the case is routed by it at "
        "once) or reject it with a reason (the earlier assessment stays in force)."
    )
    actions = {"lowering": dforms.LoweringDecisionForm}
    labels = {"lowering": (_("Decide on the lowered threat level"), _("Record the decision"))}

    def do_lowering(self, form):
        approve = form.cleaned_data["outcome"] == dforms.LoweringDecisionForm.APPROVE
        self.call(
            services.record_lowering_decision,
            approve=approve,
            note=form.cleaned_data["note"] or None,
        )
        return self.finish(_lowering_decided(approve))


# --- The case page -----------------------------------------------------------------------------


class DefectorCasePageView(CaseCalls, ActionForms, View):
    """A defector case (or a support case): person, threat level and its history, team,
    consents, support actions, timeline — and what this user can do. A local user of a
    handed-over case sees only the hand-over."""

    template_name = "workflows/defector/case_page.html"
    support_template_name = "workflows/defector/support_case_page.html"
    notice_template_name = "workflows/defector/handed_over.html"
    purpose = _("Defector programme: reading the case")
    consent_purpose = Consent.Purpose.COORDINATION

    def dispatch(self, request, *args, **kwargs):
        if not policy.can_use_task_inbox(request.user):
            return denied(request)
        case_id = kwargs["case_id"]
        self.case = DefectorCase.objects.select_related("person").filter(pk=case_id).first()
        if self.case is None:
            self.case = get_object_or_404(
                DefectorSupportCase.objects.select_related("person"), pk=case_id
            )
        self.is_support = isinstance(self.case, DefectorSupportCase)
        return super().dispatch(request, *args, **kwargs)

    # --- what the page offers ---------------------------------------------------------

    @property
    def actions(self) -> dict:
        if self.is_support:
            return {"action": forms.ActionForm, "close": dforms.SupportCloseForm}
        return {
            "action": forms.ActionForm,
            "reassess": dforms.AssessmentForm,
            "lowering": dforms.LoweringDecisionForm,
            "protected_identity": dforms.ProtectedIdentityForm,
            "close": dforms.DefectorCloseForm,
        }

    def can(self) -> dict:
        return intake.available_actions(user=self.request.user, case=self.case)

    def initial(self, name):
        initial = {"version": self.case.version}
        if name == "action":
            initial["status"] = Action.Status.PLANNED
        if name == "protected_identity":
            initial["level"] = self.case.person.protected_identity
        return initial

    def render(self, built, status=200):
        user, purpose = self.request.user, str(self.purpose)
        try:
            page = self.read_case()
        except CaseNotFound:
            return self.render_notice()
        context = {
            "page": page,
            "case": self.case,
            "forms": built,
            "can": self.can(),
            "Status": Status,
            "can_change_team": policy.may_change_team(user, self.case),
        }
        if self.is_support:
            return TemplateResponse(
                self.request, self.support_template_name, context, status=status
            )
        context.update(
            {
                **threat_context(user=user, purpose=purpose, case=self.case),
                "tasks": open_tasks(user=user, case=self.case),
                "timeline": timeline_rows(page.timeline, Status.choices),
                "State": ThreatAssessment.State,
            }
        )
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def render_notice(self):
        if self.is_support:
            raise Http404
        try:
            notice = hand_over_notice(
                user=self.request.user, purpose=str(self.purpose), case=self.case
            )
        except CaseNotFound:
            raise Http404 from None
        return TemplateResponse(
            self.request, self.notice_template_name, {"notice": notice, "case": self.case}
        )

    def post(self, request, case_id):
        action = request.POST.get("_action", "")
        can = self.can() if policy.case_access(request.user, self.case) else {}
        if action not in self.actions or not can.get(action):
            if not policy.case_access(request.user, self.case):
                raise Http404
            messages.error(request, _("That is not available."))
            return HttpResponseRedirect(case_url(self.case))
        return self.post_action(
            request,
            action,
            getattr(self, f"do_{action}"),
            case=self.case,
            then=case_url(self.case),
            refused=_refused,
        )

    # --- actions ---------------------------------------------------------------------

    def do_action(self, form):
        self.add_action(intake.add_action, form, form.cleaned_data["organisation"])
        return _("The action is recorded.")

    def do_reassess(self, form):
        return _reassessed(self.call(services.reassess_threat, form, **form.values()))

    def do_lowering(self, form):
        approve = form.cleaned_data["outcome"] == dforms.LoweringDecisionForm.APPROVE
        self.call(services.decide_lowering, approve=approve, note=form.cleaned_data["note"] or None)
        return _lowering_decided(approve)

    def do_protected_identity(self, form):
        self.call(intake.set_protected_identity, level=form.cleaned_data["level"])
        return _("The protected identity is recorded.")

    def do_close(self, form):
        self.close_with(services.close_defector_case, form)
        return _("The case is closed.")


# --- The programme's case list (with the coordinators' inbox sections) ----------------------------


class DefectorCaseListView(View):
    template_name = "workflows/defector/case_list.html"

    def get(self, request):
        user = request.user
        if not policy.can_use_task_inbox(user):
            return denied(request)
        rows = list_cases(user=user, model=DefectorCase)
        supports = list_cases(user=user, model=DefectorSupportCase)
        pending = pending_lowerings(user=user, cases=[row.case for row in rows])
        return TemplateResponse(
            request,
            self.template_name,
            {
                "rows": rows,
                "supports": supports,
                "overdue": overdue_reassessments(user=user),
                "pending": pending,
            },
        )
