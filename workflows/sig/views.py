"""The task views of the SIG flow: one per step, thin.

Each view shows the case as its user may see it (``get_case_page``) and one or
more forms; a valid form calls the services inside one savepoint, so a step
either lands whole or not at all. Service errors come back as form errors in
Swedish; a stale form gets the "changed by someone else" message.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework.models import Action, CaseMembership
from casework.selectors import find_person
from casework.selectors.cases import CaseNotFound, get_case_page, screening_registration
from casework.services import cases as case_services
from casework.services import create_person
from casework.services.cases import CaseConflict, CaseDenied
from workflows.common import forms
from workflows.sig import services
from workflows.sig.models import SigCase, Status


def put_errors(form, error: ValidationError) -> None:
    """Attach a service's ``ValidationError`` to the form (unknown fields → form errors)."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def denied(request) -> TemplateResponse:
    return TemplateResponse(request, "403.html", status=403)


def case_url(case) -> str:
    return reverse("arenden:case", kwargs={"case_id": case.pk})


def screening_context(view) -> dict:
    """The screening step (every programme's): whether the person was already registered,
    within the coordinator's rights (``casework.selectors.cases.screening_registration``)."""
    return {
        "registration": screening_registration(
            user=view.request.user, case=view.case, purpose=str(view.purpose)
        )
    }


class StepView(View):
    """A step of the flow: a case, a page, forms by action name, services on POST."""

    template_name = "workflows/sig/task.html"
    purpose = _("SIG: work on the case")
    actions: dict[str, type] = {}
    intro = ""
    begin_label = ""  # the button that takes the step up ("begin"), if the step has one

    def dispatch(self, request, *args, **kwargs):
        self.activation = request.activation
        task = self.activation.task
        node = getattr(request.resolver_match, "node", None)
        # viewflow finds the task by its id alone: the URL's process and step must be the
        # task's own, or the owner of one task could run another step's view with it.
        if task.process_id != kwargs.get("process_pk") or (
            node is not None and task.flow_task.name != node.name
        ):
            raise Http404
        self.case: SigCase = self.activation.process.case
        return super().dispatch(request, *args, **kwargs)

    # --- rendering ---------------------------------------------------------------------

    def form_kwargs(self, name: str) -> dict:
        return {}

    def initial(self, name: str) -> dict:
        return {"version": self.case.version}

    def build_forms(self, bound: str | None = None, data=None) -> dict:
        built = {}
        for name, form_class in self.actions.items():
            # Several forms share a page: each its own element ids, so every label
            # points at its own field.
            kwargs = {"auto_id": f"id_{name}-%s", **self.form_kwargs(name)}
            if name == bound:
                built[name] = form_class(data, **kwargs)
            else:
                built[name] = form_class(initial=self.initial(name), **kwargs)
        return built

    def available(self) -> set[str]:
        """The action names this state offers."""
        return set(self.actions)

    def render(self, forms_by_name: dict, *, status: int = 200):
        try:
            self.page = get_case_page(
                user=self.request.user, purpose=str(self.purpose), case=self.case
            )
        except CaseNotFound:
            return denied(self.request)
        available = self.available()
        context = {
            "page": self.page,
            "case": self.case,
            "task": self.activation.task,
            "intro": self.intro,
            "forms": {name: form for name, form in forms_by_name.items() if name in available},
            "unmet": self.unmet(),
            "version": self.case.version,
            "begin_label": self.begin_label,
        }
        context.update(self.extra_context())
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def extra_context(self) -> dict:
        return {}

    def unmet(self) -> list[str]:
        return []

    def get(self, request, *args, **kwargs):
        return self.render(self.build_forms())

    # --- posting -----------------------------------------------------------------------

    def post(self, request, *args, **kwargs):
        action = request.POST.get("_action", "")
        if action not in self.actions or action not in self.available():
            messages.error(request, _("That step is not available now."))
            return HttpResponseRedirect(request.path)
        built = self.build_forms(bound=action, data=request.POST)
        form = built[action]
        if form.is_valid():
            try:
                with transaction.atomic():
                    response = getattr(self, f"do_{action}")(form)
                return response
            except ValidationError as error:
                put_errors(form, error)
            except CaseConflict as conflict:
                # A banner, not a form error: in the case's new state the form may be gone.
                messages.error(request, conflict.message)
                self.case.refresh_from_db()
            except CaseDenied:
                return denied(request)
        return self.render(built, status=200)

    def stay(self, message=None):
        if message:
            messages.success(self.request, message)
        return HttpResponseRedirect(self.request.path)

    def finish(self, message=None):
        self.activation.execute()
        messages.success(self.request, message or _("The step is done."))
        return HttpResponseRedirect(case_url(self.case))

    def transition(self, name: str, **kwargs):
        return case_services.transition(
            user=self.request.user, case=self.case, name=name, purpose=str(self.purpose), **kwargs
        )

    def version(self, form) -> int:
        return form.cleaned_data["version"]


# --- Start: the referral ----------------------------------------------------------------------


def entered_values(form) -> list[tuple[str, str]]:
    """What the referrer typed, label by label, from the valid form alone (choices shown by
    their label, the personnummer in its written form)."""
    from casework import personnummer as pnr

    rows = []
    for name, field in form.fields.items():
        if name == "version":
            continue
        value = form.cleaned_data.get(name)
        if value is None or value == "":
            text = ""
        elif name == "personnummer":
            text = pnr.display(value)
        elif getattr(field, "choices", None):
            text = str(dict(field.choices).get(value, value))
        else:
            text = str(value)
        rows.append((str(field.label), text))
    return rows


def referral_receipt(request, *, form, case, title, message=None) -> TemplateResponse:
    """The page after a referral: the case number and what the referrer typed — nothing read
    from the register, the same page whether the person was registered or not. The
    referrer is not on the case's team: screening decides who is (ADR 0012)."""
    return TemplateResponse(
        request,
        "workflows/referral_receipt.html",
        {
            "title": title,
            "reference": case.reference,
            "message": (message or _("The referral %(reference)s is registered."))
            % {"reference": case.reference},
            "entered": entered_values(form),
        },
    )


class ReferralView(View):
    """Register a referral: find or register the person, open the case, start the flow."""

    template_name = "workflows/sig/referral.html"
    purpose = _("SIG: registering a referral")

    def get(self, request, *args, **kwargs):
        return self.render(forms.ReferralForm())

    def render(self, form, status=200):
        return TemplateResponse(
            request=self.request,
            template=self.template_name,
            context={"form": form, "activation": self.request.activation},
            status=status,
        )

    def post(self, request, *args, **kwargs):
        form = forms.ReferralForm(request.POST)
        if not form.is_valid():
            return self.render(form)
        data = form.cleaned_data
        purpose = str(self.purpose)
        try:
            with transaction.atomic():
                person = find_person(
                    user=request.user, purpose=purpose, personnummer=data["personnummer"]
                )
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
                case = services.refer(
                    user=request.user, person=person, reason=data["reason"], purpose=purpose
                )
                process = request.activation.process
                process.case = case
                request.activation.execute()
        except ValidationError as error:
            put_errors(form, error)
            return self.render(form)
        except CaseDenied:
            return denied(request)
        return referral_receipt(request, form=form, case=case, title=_("New SIG referral"))


# --- Screening ---------------------------------------------------------------------------------


class ScreeningView(StepView):
    purpose = _("SIG: screening the referral")
    intro = _("Take the referral up, check the age and the need, and form the team.")
    begin_label = _("Start screening")
    actions = {"begin": forms.VersionedForm, "screen": forms.ScreeningForm}

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
        if data["outcome"] == forms.ScreeningForm.REJECT:
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


# --- Consent ---------------------------------------------------------------------------------


class RecordsConsents:
    """The consent step's two recordings, shared by every programme's consent step: a
    guardian, and a consent (the step's own ``do_complete`` moves the case on)."""

    def do_guardian(self, form):
        case_services.add_guardian(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            name=form.cleaned_data["guardian_name"],
            phone=form.cleaned_data["guardian_phone"] or None,
        )
        return self.stay(_("The guardian is registered."))

    def do_consent(self, form):
        data = form.cleaned_data
        guardian = None
        if data["guardian"]:
            guardian = self.case.person.guardians.filter(pk=data["guardian"]).first()
        case_services.record_consent(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            giver=data["giver"],
            guardian=guardian,
            decision=data["decision"],
            form=data["form"],
            organisations=data["organisations"],
            valid_until=data["valid_until"],
            expected_version=self.version(form),
        )
        return self.stay(_("The consent is recorded."))


class ConsentView(RecordsConsents, StepView):
    purpose = _("SIG: recording consent")
    intro = _(
        "Record the young person's own consent and, under 18, every guardian's. "
        "Choose which organisations each consent covers."
    )
    actions = {
        "guardian": forms.GuardianForm,
        "consent": forms.ConsentForm,
        "complete": forms.VersionedForm,
        "refused": forms.VersionedForm,
    }

    def form_kwargs(self, name):
        if name == "consent":
            return {"guardians": self._guardians()}
        return {}

    def _guardians(self):
        if not hasattr(self, "_guardian_rows"):
            page = get_case_page(user=self.request.user, purpose=str(self.purpose), case=self.case)
            self._guardian_rows = page.guardians
        return self._guardian_rows

    def initial(self, name):
        initial = super().initial(name)
        if name == "consent":
            initial["organisations"] = [
                self.case.owner_organisation_id,
                *[m.user.organisation_id for m in self.case.memberships.select_related("user")],
            ]
        return initial

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

    def unmet(self):
        return case_services.unmet_conditions(self.case, "consents_given")


# --- Decisions -----------------------------------------------------------------------------


class DecisionView(StepView):
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


# --- Plan ----------------------------------------------------------------------------------


class PlanView(StepView):
    purpose = _("SIG: drafting the plan")
    intro = _(
        "Write the plan with its goals, plan at least one action for social services and one "
        "for the police, and set the review date. Then send it to the coordinator."
    )
    actions = {"action": forms.ActionForm, "plan": forms.PlanForm}

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


class ApprovePlanView(StepView):
    purpose = _("SIG: approving the plan")
    intro = _("Approve the plan to make the case active, or return it with a comment.")
    actions = {"review": forms.ApprovalForm}

    def unmet(self):
        return case_services.unmet_conditions(self.case, "approve_plan")

    def do_review(self, form):
        data = form.cleaned_data
        if data["outcome"] == forms.ApprovalForm.APPROVE:
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


# --- Follow-up -------------------------------------------------------------------------------


class FollowUpView(StepView):
    purpose = _("SIG: following up the case")
    intro = _("The review date has come: follow up the plan, then continue or close the case.")
    begin_label = _("Start the follow-up")
    actions = {"begin": forms.VersionedForm, "follow_up": forms.FollowUpForm}

    def available(self):
        return {"begin"} if self.case.status == Status.ACTIVE else {"follow_up"}

    def unmet(self):
        if self.case.status == Status.ACTIVE:
            return case_services.unmet_conditions(self.case, "begin_follow_up")
        return []

    def do_begin(self, form):
        self.transition("begin_follow_up", expected_version=self.version(form))
        return self.stay(_("Follow-up started."))

    def do_follow_up(self, form):
        data = form.cleaned_data
        user, purpose = self.request.user, str(self.purpose)
        if data["outcome"] == forms.FollowUpForm.CONTINUE:
            case_services.update_case(
                user=user,
                case=self.case,
                purpose=purpose,
                review_date=data["review_date"],
                expected_version=self.version(form),
            )
            self.transition("continue_case", reason=data["note"] or None)
            return self.finish(_("The case continues until the next review."))
        referral = services.close(
            user=user,
            case=self.case,
            purpose=purpose,
            reason=data["close_reason"],
            note=data["note"] or None,
            expected_version=self.version(form),
        )
        if referral is not None:
            return self.finish(
                _(
                    "The case is closed and the person is referred to the defector programme "
                    "(%(reference)s)."
                )
                % {"reference": referral.reference}
            )
        return self.finish(_("The case is closed."))


__all__ = [
    "ApprovePlanView",
    "ConsentView",
    "DecisionView",
    "FollowUpView",
    "PlanView",
    "ReferralView",
    "ScreeningView",
]
