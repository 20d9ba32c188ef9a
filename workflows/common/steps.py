"""The flow steps every programme shares: the step view, the screening step, the receipt
of a referral and the consent step.

Each view shows the case as its user may see it (``get_case_page``) and one or more forms;
a valid form calls the services inside one savepoint, so a step either lands whole or not
at all. Service errors come back as form errors in Swedish; a stale form gets the
"changed by someone else" message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import personnummer as pnr
from casework.models import Action, Case, Consent
from casework.selectors.cases import CaseNotFound, screening_registration
from casework.services import cases as case_services
from casework.services.cases import CaseDenied
from casework.services.transitions import sole_transition
from workflows.common import forms
from workflows.common.responses import (
    ActionForms,
    CaseCalls,
    case_url,
    denied,
    form_values,
    put_errors,
)
from workflows.common.services import transition_with_review_date


class FormStep(NamedTuple):
    """One form of a task page (``templates/workflows/_steps.html``): its action name, the
    form, the heading over it (if any) and its button."""

    name: str
    form: Any
    heading: str | None
    submit: str


def form_steps(view, forms_by_name: dict, **labels) -> list[FormStep]:
    """The forms of a task page, each with its heading and button from the ``labels`` of the
    view's class and its bases (action name → (heading or None, button); a subclass's
    win, ``labels`` given here most): a form without one has no heading and "Save"."""
    found = {}
    for klass in reversed(type(view).__mro__):
        found.update(vars(klass).get("labels", {}))
    found.update(labels)
    return [
        FormStep(name, form, *found.get(name, (None, _("Save"))))
        for name, form in forms_by_name.items()
    ]


def screening_context(view) -> dict:
    """The screening step (every programme's): whether the person was already registered,
    within the coordinator's rights (``casework.selectors.cases.screening_registration``)."""
    return {
        "registration": screening_registration(
            user=view.request.user, case=view.case, purpose=str(view.purpose)
        )
    }


class StepView(CaseCalls, ActionForms, View):
    """A step of a flow: a case, a page, forms by action name, services on POST.

    A programme's step sets ``template_name`` and ``purpose`` (its task page and the
    access log's purpose), ``actions`` (form classes by action name), their ``labels``
    (``form_steps``) and a ``do_<action>`` for each; ``available()`` says which actions
    the case's state offers.
    """

    template_name = ""  # each programme's task page
    purpose = ""
    # What the step shows the case for (``Consent.Purpose``; a programme's step that
    # shows it for another purpose says so).
    consent_purpose = Consent.Purpose.COORDINATION
    intro = ""
    # A step taken up by a "begin" button: in the state its ``begin_transition`` leaves,
    # only that button (labelled as the transition is), which moves the case on (saying
    # ``begin_message``).
    begin_transition = ""
    begin_message = ""
    # The transition whose unmet conditions the page lists (in ``unmet_status`` only, if set).
    unmet_transition = ""
    unmet_status = None
    # Actions that only move the case on and end the step: action -> (transition, message).
    finishing: dict = {}
    # The programme's service that adds an action to the case's plan (``do_action``).
    action_service = None

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

    def initial(self, name: str) -> dict:
        initial = {"version": self.case.version}
        if name == "action":
            initial["status"] = Action.Status.PLANNED  # a step plans its actions
        if name == "plan":
            initial["review_date"] = self.case.review_date
        return initial

    def available(self) -> set[str]:
        """The action names this state offers."""
        if not self.begin_transition:
            return set(self.actions)
        if self.case.status == self.begin_status:
            return {"begin"}
        return set(self.actions) - {"begin"}

    @property
    def begin_status(self):
        """The state the step waits in to be begun: the one its ``begin_transition`` leaves."""
        return sole_transition(self.case, self.begin_transition).source

    @property
    def begin_label(self):
        """The begin button's label: its transition's."""
        if not self.begin_transition:
            return ""
        return sole_transition(self.case, self.begin_transition).custom["label"]

    def render(self, forms_by_name: dict, *, status: int = 200):
        try:
            self.page = self.read_case()
        except CaseNotFound:
            return denied(self.request)
        available = self.available()
        shown = {name: form for name, form in forms_by_name.items() if name in available}
        context = {
            "page": self.page,
            "case": self.case,
            "task": self.activation.task,
            "intro": self.intro,
            "forms": shown,
            "steps": [
                step for step in form_steps(self, shown, **self.step_labels()) if self.shows(step)
            ],
            "unmet": self.unmet(),
            "version": self.case.version,
            "begin_label": self.begin_label,
        }
        context.update(self.extra_context())
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def step_labels(self) -> dict:
        """Labels (``form_steps``) the step's attributes give rather than its ``labels``."""
        return {"begin": (None, self.begin_label or _("Start"))}

    def extra_context(self) -> dict:
        return {}

    def shows(self, step: FormStep) -> bool:
        """Whether the page shows the form now (an available one may wait for its moment)."""
        return True

    def unmet(self) -> list[str]:
        if not self.unmet_transition:
            return []
        if self.unmet_status is not None and self.case.status != self.unmet_status:
            return []
        return case_services.unmet_conditions(self.case, self.unmet_transition)

    # --- posting -----------------------------------------------------------------------

    def post(self, request, *args, **kwargs):
        action = request.POST.get("_action", "")
        if not self.offers(action):
            messages.error(request, _("That step is not available now."))
            return HttpResponseRedirect(request.path)
        return self.post_action(request, action, self.handler(action), case=self.case)

    def handler(self, action: str):
        """The ``do_<action>`` method, or for a ``finishing`` action its transition and message."""
        if action in self.finishing:
            transition, message = self.finishing[action]
            return lambda form: self.finish_with(transition, message, form)
        return getattr(self, f"do_{action}")

    def finish_with(self, transition: str, message, form):
        self.transition(transition, expected_version=self.version(form))
        return self.finish(message)

    def do_begin(self, form):
        self.transition(self.begin_transition, expected_version=self.version(form))
        return self.stay(self.begin_message)

    def do_action(self, form):
        self.add_action(self.action_service, form, form.cleaned_data["organisation"])
        return self.stay(_("The action is added to the plan."))

    def stay(self, message=None):
        if message:
            messages.success(self.request, message)
        return HttpResponseRedirect(self.request.path)

    def finish(self, message=None):
        self.activation.execute()
        messages.success(self.request, message or _("The step is done."))
        return HttpResponseRedirect(case_url(self.case))

    def transition(self, name: str, **kwargs):
        return self.call(case_services.transition, name=name, **kwargs)

    def version(self, form) -> int:
        return form.cleaned_data["version"]


# --- Screening a referral ------------------------------------------------------------------------


class ScreeningStepView(StepView):
    """The screening of a referral (SIG's screening, the defector programme's initial
    check): one form, under the action ``screening_action``, whose ``outcome`` accepts the
    referral (the note, then the team: the lead social worker and the police contact
    officer) or rejects it (``form.REJECT``). The programme's service, which
    ``screening_service()`` returns (a method: a programme's services may import its flow,
    which imports these views), records either (``accept`` and the form's
    ``screening_fields``); the step ends saying ``accepted_message`` or
    ``rejected_message``."""

    screening_action = ""
    screening_fields: tuple[str, ...] = ("note", "lead", "police_contact")
    accepted_message = ""
    rejected_message = ""

    def extra_context(self):
        return {**super().extra_context(), **screening_context(self)}

    def handler(self, action: str):
        if action == self.screening_action:
            return self.screen
        return super().handler(action)

    def screen(self, form):
        accept = form.cleaned_data["outcome"] != form.REJECT
        self.call(
            self.screening_service(),
            form,
            accept=accept,
            **form_values(form, *self.screening_fields),
        )
        return self.finish(self.accepted_message if accept else self.rejected_message)

    def screening_service(self):
        raise NotImplementedError


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
    guardian, and a consent (the step's own ``finishing`` entry or ``do_complete`` moves the
    case on)."""

    labels = {
        "guardian": (_("Register a guardian"), _("Register the guardian")),
        "consent": (_("Record a consent"), _("Record the consent")),
    }

    def do_guardian(self, form):
        self.call(
            case_services.add_guardian,
            name=form.cleaned_data["guardian_name"],
            phone=form.cleaned_data["guardian_phone"] or None,
        )
        return self.stay(_("The guardian is registered."))

    def do_consent(self, form):
        self.record_consent(form)
        return self.stay(_("The consent is recorded."))


class ConsentStepView(RecordsConsents, StepView):
    """The consent step: guardians, consents (with the organisations each covers), then
    complete (the transition ``consents_given``) or refused. A programme's step sets
    ``purpose``, ``intro``, the complete button's ``complete_button`` and
    ``complete_message`` (and ``complete_heading``) and, in ``finishing`` or as
    ``do_<action>`` methods, what refused does."""

    actions = {
        "guardian": forms.GuardianForm,
        "consent": forms.ConsentForm,
        "complete": forms.VersionedForm,
        "refused": forms.VersionedForm,
    }
    labels = {"refused": (_("Consent was refused"), _("Close the case: consent refused"))}
    complete_heading = _("All consents are recorded")
    complete_button = ""
    complete_message = ""
    # The closing buttons, each shown once it can work (``page.consent_state``) or with
    # its errors.
    closing_actions = ("complete", "refused")

    def shows(self, step):
        if step.name not in self.closing_actions or step.form.errors:
            return True
        return getattr(self.page.consent_state, step.name)

    def step_labels(self):
        return {**super().step_labels(), "complete": (self.complete_heading, self.complete_button)}

    def do_complete(self, form):
        return self.finish_with("consents_given", self.complete_message, form)

    def form_kwargs(self, name):
        if name == "consent":
            return {"guardians": self.guardians()}
        return {}

    def guardians(self):
        """The person's guardians as the case page shows them (read once a request)."""
        if not hasattr(self, "_guardian_rows"):
            self._guardian_rows = self.read_case().guardians
        return self._guardian_rows

    def initial(self, name):
        initial = super().initial(name)
        if name == "consent":
            initial["organisations"] = self.consent_organisations()
        return initial

    def consent_organisations(self) -> list:
        """The organisations a new consent covers at first: the case's owner and its team's."""
        return [
            self.case.owner_organisation_id,
            *[m.user.organisation_id for m in self.case.memberships.select_related("user")],
        ]

    unmet_transition = "consents_given"


# --- The follow-up step ------------------------------------------------------------------------


class FollowUpStepView(StepView):
    """The follow-up on the review date: begin it (the transition ``begin_transition``),
    then continue (``continue_case``: a new review date and the transition
    ``continue_transition``) or close the case (``close_case``). A programme's step sets
    those, ``purpose`` and ``intro``; one whose follow-up form has another action name sets
    its own ``actions`` and ``do_<action>``."""

    actions = {"begin": forms.VersionedForm, "follow_up": forms.FollowUpForm}
    labels = {"follow_up": (None, _("Record the follow-up"))}
    begin_transition = "begin_follow_up"
    begin_message = _("Follow-up started.")
    continue_transition = ""
    continue_message = ""

    def unmet(self):
        if self.case.status == self.begin_status:
            return case_services.unmet_conditions(self.case, self.begin_transition)
        return []

    def do_follow_up(self, form):
        if form.cleaned_data["outcome"] != forms.FollowUpForm.CONTINUE:
            return self.finish(self.close_case(form))
        return self.finish(self.continue_case(form))

    def continue_case(self, form) -> str:
        """Continue the case from the valid follow-up form; returns the message shown."""
        data = form.cleaned_data
        self.call(
            transition_with_review_date,
            form,
            name=self.continue_transition,
            review_date=data["review_date"],
            reason=data["note"] or None,
        )
        return self.continue_message

    def close_case(self, form) -> str:
        """Close the case from the valid follow-up form; returns the message shown."""
        self.close_with(case_services.close_case, form)
        return _("The case is closed.")
