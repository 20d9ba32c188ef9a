"""The flow steps every programme shares: the step view, the screening context, the
receipt of a referral and the consent step.

Each view shows the case as its user may see it (``get_case_page``) and one or more forms;
a valid form calls the services inside one savepoint, so a step either lands whole or not
at all. Service errors come back as form errors in Swedish; a stale form gets the
"changed by someone else" message.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import personnummer as pnr
from casework.models import Case
from casework.selectors.cases import CaseNotFound, get_case_page, screening_registration
from casework.services import cases as case_services
from casework.services.cases import CaseDenied
from workflows.common import forms
from workflows.common.responses import case_url, denied, perform, put_errors


def screening_context(view) -> dict:
    """The screening step (every programme's): whether the person was already registered,
    within the coordinator's rights (``casework.selectors.cases.screening_registration``)."""
    return {
        "registration": screening_registration(
            user=view.request.user, case=view.case, purpose=str(view.purpose)
        )
    }


class StepView(View):
    """A step of a flow: a case, a page, forms by action name, services on POST.

    A programme's step sets ``template_name`` and ``purpose`` (its task page and the
    access log's purpose), ``actions`` (form classes by action name) and a ``do_<action>``
    for each; ``available()`` says which actions the case's state offers.
    """

    template_name = ""  # each programme's task page
    purpose = ""
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
        self.case: Case = self.activation.process.case
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
            response = perform(request, self.case, getattr(self, f"do_{action}"), form)
            if response is not None:
                return response
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


# --- The receipt of a referral ----------------------------------------------------------------


def entered_values(form) -> list[tuple[str, str]]:
    """What the referrer typed, label by label, from the valid form alone (choices shown by
    their label, the personnummer in its written form)."""
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


class ReferralStartView(View):
    """A flow's start: a referral form whose valid data opens the case (``register``), in
    one savepoint with the start of the flow; then the receipt. A programme sets
    ``template_name``, ``purpose``, ``form_class``, ``receipt_title`` (and
    ``receipt_message``) and ``register``."""

    template_name = ""
    purpose = ""
    form_class: type = forms.ReferralForm
    receipt_title = ""
    receipt_message = None

    def get(self, request, *args, **kwargs):
        return self.render(self.form_class())

    def render(self, form):
        return TemplateResponse(
            self.request,
            self.template_name,
            {"form": form, "activation": self.request.activation},
        )

    def register(self, data) -> Case:
        """Open the case from the valid form's data (a programme's service)."""
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        form = self.form_class(request.POST)
        if not form.is_valid():
            return self.render(form)
        try:
            with transaction.atomic():
                case = self.register(form.cleaned_data)
                request.activation.process.case = case
                request.activation.execute()
        except ValidationError as error:
            put_errors(form, error)
            return self.render(form)
        except CaseDenied:
            return denied(request)
        return referral_receipt(
            request,
            form=form,
            case=case,
            title=self.receipt_title,
            message=self.receipt_message,
        )


# --- The consent step -------------------------------------------------------------------------


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


class ConsentStepView(RecordsConsents, StepView):
    """The consent step: guardians, consents (with the organisations each covers), then
    complete or refused. A programme's step sets ``purpose``, ``intro``, ``do_complete``
    and ``do_refused``."""

    actions = {
        "guardian": forms.GuardianForm,
        "consent": forms.ConsentForm,
        "complete": forms.VersionedForm,
        "refused": forms.VersionedForm,
    }

    def form_kwargs(self, name):
        if name == "consent":
            return {"guardians": self.guardians()}
        return {}

    def guardians(self):
        """The person's guardians as the case page shows them (read once a request)."""
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

    def unmet(self):
        return case_services.unmet_conditions(self.case, "consents_given")


# --- The follow-up step ------------------------------------------------------------------------


class FollowUpStepView(StepView):
    """The follow-up on the review date: begin it (the case in ``active_status``, transition
    ``begin_transition``), then continue (``continue_case``: a new review date and the
    transition ``continue_transition``) or close the case (``close_case``). A programme's
    step sets those, ``purpose`` and ``intro``; one whose follow-up form has another action
    name sets ``follow_up_action`` and its own ``do_<action>``."""

    begin_label = _("Start the follow-up")
    actions = {"begin": forms.VersionedForm, "follow_up": forms.FollowUpForm}
    follow_up_action = "follow_up"
    active_status = ""
    begin_transition = "begin_follow_up"
    begin_message = _("Follow-up started.")
    continue_transition = ""
    continue_message = ""

    def available(self):
        if self.case.status == self.active_status:
            return {"begin"}
        return {self.follow_up_action}

    def unmet(self):
        if self.case.status == self.active_status:
            return case_services.unmet_conditions(self.case, self.begin_transition)
        return []

    def do_begin(self, form):
        self.transition(self.begin_transition, expected_version=self.version(form))
        return self.stay(self.begin_message)

    def do_follow_up(self, form):
        if form.cleaned_data["outcome"] != forms.FollowUpForm.CONTINUE:
            return self.finish(self.close_case(form))
        return self.finish(self.continue_case(form))

    def continue_case(self, form) -> str:
        """Continue the case from the valid follow-up form; returns the message shown."""
        data = form.cleaned_data
        case_services.update_case(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            review_date=data["review_date"],
            expected_version=self.version(form),
        )
        self.transition(self.continue_transition, reason=data["note"] or None)
        return self.continue_message

    def close_case(self, form) -> str:
        """Close the case from the valid follow-up form; returns the message shown."""
        data = form.cleaned_data
        case_services.close_case(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            reason=data["close_reason"],
            note=data["note"] or None,
            expected_version=self.version(form),
        )
        return _("The case is closed.")
