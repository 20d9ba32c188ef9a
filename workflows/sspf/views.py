"""The SSPF pages of a case: the flow's task views (one per step) and the case page. Thin.

Each view calls the selectors (``workflows/sspf/selectors.py``, which decide access and
what of the case the user's role sees) and one service (``workflows/sspf/services.py``)
per form, inside one savepoint per step; service errors come back as form errors in
Swedish. The overview and the operational group's meetings are in
``workflows/sspf/overview_views.py``.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.models import Case
from casework.selectors.cases import CaseNotFound
from casework.services import cases as case_services
from workflows.common import forms
from workflows.common.case_page import CasePageView
from workflows.common.responses import form_values
from workflows.common.steps import (
    ConsentStepView,
    FollowUpStepView,
    ReferralStartView,
    StepView,
    screening_context,
)
from workflows.sspf import forms as sforms
from workflows.sspf import services as sspf_services
from workflows.sspf.models import SspfCase, Status
from workflows.sspf.selectors import get_sspf_case_page


class CaseForms:
    """What a step and the case page share: the plan's actions, the team and the police's
    part, each form mapped to its service (``CaseCalls.call``)."""

    action_service = staticmethod(sspf_services.add_sspf_action)

    def add_member(self, form) -> None:
        data = form.cleaned_data
        self.call(sspf_services.add_sspf_member, form, member=data["user"], role=data["role"])

    def record_participation(self, form) -> None:
        values = form_values(form, "participates", "reason")
        self.call(sspf_services.record_police_participation, form, **values)


class SspfStep(CaseForms, StepView):
    template_name = "workflows/sspf/task.html"
    purpose = _("SSPF: work on the case")
    labels = {
        "member": (_("Add to the team"), _("Add to the team")),
        "participation": (_("The police's part"), _("Record the decision")),
        "action": (_("Add an action: who does what, when"), _("Add the action")),
    }

    def do_member(self, form):
        self.add_member(form)
        return self.stay(_("The team member is added."))

    def do_participation(self, form):
        self.record_participation(form)
        return self.stay(_("The decision on the police's part is recorded."))


# --- Start: the concern --------------------------------------------------------------------


class ConcernView(ReferralStartView):
    """Raise a concern: find or register the young person, open the case, start the flow."""

    template_name = "workflows/sspf/concern.html"
    purpose = _("SSPF: raising a concern")
    form_class = sforms.ConcernForm
    receipt_title = _("New SSPF concern")
    receipt_message = _(
        "The concern %(reference)s is registered; the SSPF coordinator assesses it."
    )

    def register(self, data):
        return sspf_services.raise_concern_about(
            user=self.request.user,
            personnummer=data["personnummer"],
            name=data["name"],
            area=data["area"],
            concern=data["reason"],
            purpose=str(self.purpose),
        )


# --- Assessment ----------------------------------------------------------------------------


class AssessmentView(SspfStep):
    purpose = _("SSPF: assessing the concern")
    intro = _(
        "Take the concern up, record the risk assessment, put the school, leisure and social "
        "services staff on the team, then accept it (ask for consent) or reject it."
    )
    begin_transition = "begin_assessment"
    begin_message = _("Assessment started.")
    unmet_transition = "request_consent"
    unmet_status = Status.ASSESSMENT
    actions = {
        "begin": forms.VersionedForm,
        "risk": sforms.RiskAssessmentForm,
        "member": sforms.MemberForm,
        "outcome": sforms.AssessmentOutcomeForm,
    }
    labels = {
        "risk": (_("Risk assessment"), _("Record the risk assessment")),
        "outcome": (_("The assessment's outcome"), _("Record the outcome")),
    }

    def extra_context(self):
        return {**super().extra_context(), **screening_context(self)}

    def do_risk(self, form):
        data = form.cleaned_data
        self.call(
            sspf_services.record_risk_assessment,
            form,
            **form_values(form, "level", "risk_factors"),
            protective_factors=data["protective_factors"] or None,
        )
        return self.stay(_("The risk assessment is recorded."))

    def do_outcome(self, form):
        data = form.cleaned_data
        if data["outcome"] == sforms.AssessmentOutcomeForm.REJECT:
            self.close_with(case_services.close_case, form)
            return self.finish(_("The concern was rejected and the case closed."))
        self.transition(
            "request_consent", reason=data["note"] or None, expected_version=self.version(form)
        )
        return self.finish(_("The concern is accepted: ask the guardians for consent."))


# --- Consent --------------------------------------------------------------------------------


class ConsentView(SspfStep, ConsentStepView):
    purpose = _("SSPF: recording consent")
    intro = _(
        "Record every guardian's written consent and, from the configured age, the young "
        "person's own. Choose which organisations each consent covers: the police only if "
        "they are to take part."
    )
    complete_button = _("Consents complete: to the mapping conversation")
    complete_message = _("The consents are complete: hold the mapping conversation.")

    def do_refused(self, form):
        self.call(case_services.close_case, form, reason=Case.CloseReason.CONSENT_REFUSED)
        return self.finish(
            _(
                "Consent was refused and the case is closed. The operational group may still "
                "discuss the situation anonymously."
            )
        )


# --- Mapping --------------------------------------------------------------------------------


class MappingView(SspfStep):
    purpose = _("SSPF: the mapping conversation")
    intro = _("Record the mapping conversation with the young person and the guardians.")
    actions = {"mapping": sforms.MappingForm}
    labels = {"mapping": (None, _("Record the mapping conversation"))}

    def unmet(self):
        return [
            message
            for message in case_services.unmet_conditions(self.case, "mapping_done")
            if message != str(_("Record the mapping conversation first."))
        ]

    def do_mapping(self, form):
        values = form_values(form, "held_on", note="mapping_note")
        self.call(sspf_services.finish_mapping, form, **values)
        return self.finish(_("The mapping conversation is recorded: the network meeting is next."))


# --- Network meeting ------------------------------------------------------------------------


class NetworkMeetingView(SspfStep):
    purpose = _("SSPF: the network meeting")
    intro = _(
        "The network meeting writes the commitment plan: its goals, and the actions saying who "
        "does what and when. Decide whether the police take part. Then adopt the plan."
    )
    actions = {
        "member": sforms.MemberForm,
        "participation": sforms.PoliceParticipationForm,
        "action": forms.ActionForm,
        "plan": sforms.GoalsForm,
    }
    labels = {"plan": (_("The commitment plan"), _("Adopt the commitment plan"))}

    unmet_transition = "adopt_plan"

    def do_plan(self, form):
        values = form_values(form, "review_date", goals="plan_goals")
        self.call(sspf_services.adopt_plan, form, **values)
        return self.finish(_("The commitment plan is adopted."))


# --- Follow-up ------------------------------------------------------------------------------


class FollowUpView(SspfStep, FollowUpStepView):
    purpose = _("SSPF: the follow-up meeting")
    intro = _("The follow-up date has come: follow up the plan, then continue or close the case.")
    continue_transition = "continue_plan"
    continue_message = _("The plan continues until the next follow-up.")


# --- The school's and the leisure centre's part of the plan --------------------------------------


class PlanPartView(SspfStep):
    """A school or leisure member records their organisation's actions of the commitment
    plan and reports how it is going, before the next follow-up meeting."""

    purpose = _("SSPF: reporting the organisation's part of the plan")
    intro = _(
        "Record what your organisation does in the commitment plan (who does what, and "
        "when), then report how it is going. The coordinator reads your report before the "
        "follow-up meeting."
    )
    actions = {"action": sforms.OwnActionForm, "report": sforms.PartReportForm}
    labels = {"report": (_("Your report to the follow-up meeting"), _("Send the report"))}

    def unmet(self):
        if not sspf_services.has_own_action(user=self.request.user, case=self.case):
            return [str(sspf_services.NO_OWN_ACTION)]
        return []

    def do_action(self, form):
        self.add_action(self.action_service, form, self.request.user.organisation)
        return self.stay(_("The action is recorded."))

    def do_report(self, form):
        self.call(
            sspf_services.report_plan_part,
            form,
            note=form.cleaned_data["report"],
        )
        return self.finish(_("Your report is recorded for the follow-up meeting."))


# --- The case page --------------------------------------------------------------------------


class SspfCasePageView(CaseForms, CasePageView):
    """The SSPF case page: what the user's role sees of the case, and what can be done."""

    case_model = SspfCase
    template_name = "workflows/sspf/case_page.html"
    purpose = _("SSPF: reading the case")
    FORM_CLASSES = {
        **CasePageView.FORM_CLASSES,
        "member": sforms.MemberForm,
        "participation": sforms.PoliceParticipationForm,
        "escalate": sforms.EscalateForm,
    }

    def case_page(self):
        try:
            self.sspf_page = self.read_case(get_sspf_case_page, **self.read_with_case())
        except CaseNotFound:
            raise Http404 from None
        self._page = self.sspf_page.page
        return self._page

    def extra_context(self):
        return {"sspf": self.sspf_page, "Status": Status}

    def permitted(self):
        user = self.request.user
        coordinator = policy.coordinates(user, self.case)
        open_case = self.case.status != Status.CLOSED
        return {
            "action": open_case and sspf_services.may_add_action(user, self.case),
            "member": open_case and coordinator,
            "participation": open_case and coordinator,
            "escalate": open_case and coordinator,
            "close": open_case
            and case_services.may_transition(user=user, case=self.case, name="close"),
            "withdraw": open_case
            and case_services.may_transition(user=user, case=self.case, name="consent_withdrawn"),
        }

    def open_tasks(self):
        """The coordinator sees every open task; a member only their own."""
        tasks = super().open_tasks()
        if not policy.coordinates(self.request.user, self.case):
            return [(task, url) for task, url in tasks if url is not None]
        return [
            (task, url or task.flow_task.reverse("index", args=[task.process_id, task.pk]))
            for task, url in tasks
        ]

    def do_member(self, form):
        self.add_member(form)
        return _("The team member is added.")

    def do_participation(self, form):
        self.record_participation(form)
        return _("The decision on the police's part is recorded.")

    def do_escalate(self, form):
        sig_case = sspf_services.escalate_to_sig(
            user=self.request.user,
            case=self.case,
            reason=form.cleaned_data["reason"],
            purpose=str(self.purpose),
        )
        return _("The young person is referred to SIG: %(reference)s.") % {
            "reference": sig_case.reference
        }

    def do_close(self, form):
        self.close_with(sspf_services.close_case_and_process, form)
        return _("The case is closed.")

    def withdraw_consent(self, consent) -> bool:
        # The page takes the flow's lock first (``CasePageView.post``): see
        # ``workflows.sspf.services.withdraw_consent``.
        return self.call(sspf_services.withdraw_consent, consent=consent)
