"""Case pages outside the flow's tasks: the list, the case page and its actions, break-the-glass.

Thin views: access, decryption and logging happen in ``casework.selectors.cases``
and ``casework.services.cases``; a case the user may not see answers 404 (and
the refusal is in the access log).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.mfa import require_step_up
from casework.models import Action, Case, CaseEvent
from casework.selectors import find_person
from casework.selectors.cases import CaseNotFound, get_case_page, list_cases
from casework.services import cases as case_services
from casework.services.cases import CaseConflict, CaseDenied
from workflows.common import forms
from workflows.sig.models import SigCase, Status, after_consent_withdrawn, police_may_add_actions
from workflows.sig.views import case_url, denied, put_errors


def review_overdue(case) -> bool:
    """An active case (or one in follow-up) whose review date has passed."""
    return (
        case.review_date is not None
        and case.status in (Status.ACTIVE, Status.FOLLOW_UP)
        and case.review_date < timezone.localdate()
    )


class TimelineRow(NamedTuple):
    event: Any  # an ``Opened`` timeline entry (its reason decrypted, if shown)
    kind: str
    from_state: str
    to_state: str
    at_iso: str
    at_text: str
    actor: str


def timeline_rows(timeline, status_choices) -> list[TimelineRow]:
    """The case page's timeline (``templates/workflows/_timeline.html``) as plain text:
    labels looked up once a page and times formatted here, not once an entry in the
    template (a long timeline is most of a case page's rendering)."""
    states = dict(status_choices)
    kinds = dict(CaseEvent.Kind.choices)
    rows = []
    for event in timeline:
        entry = event.obj
        at = timezone.localtime(entry.at)
        actor = entry.actor
        rows.append(
            TimelineRow(
                event=event,
                kind=kinds.get(entry.kind, entry.kind),
                from_state=states.get(entry.from_state, entry.from_state),
                to_state=states.get(entry.to_state, entry.to_state),
                at_iso=at.isoformat(),
                at_text=at.strftime("%Y-%m-%d %H:%M"),
                actor=(actor.get_full_name() or actor.username) if actor else "",
            )
        )
    return rows


class CaseworkerRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if not policy.can_use_task_inbox(request.user):
            return denied(request)
        return super().dispatch(request, *args, **kwargs)


class CaseListView(CaseworkerRequiredMixin, View):
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


class LazyForms(dict):
    """The forms of a page by name, each built the first time it is asked for
    (a template that never shows a form never builds it)."""

    def __init__(self, build):
        super().__init__()
        self._build = build

    def __missing__(self, name):
        form = self._build(name)
        self[name] = form
        return form


FORM_SUBMIT_LABELS = {
    "action": _("Record the action"),
    "legal_basis": _("Record the legal basis"),
    "close": _("Close the case"),
}


# Case id → programme, per process (bounded): which programme's page serves a case.
_programmes: dict = {}
_PROGRAMMES_REMEMBERED = 50_000


def case_page(request, case_id):
    """The case page of whichever programme the case belongs to."""
    from workflows.common.viewsets import case_page_view

    if not policy.can_use_task_inbox(request.user):
        return denied(request)
    programme = _programmes.get(case_id)
    if programme is None:
        programme = Case.objects.filter(pk=case_id).values_list("programme", flat=True).first()
        if programme is not None:
            # A case never changes programme and a case id is never reused: remembered.
            if len(_programmes) >= _PROGRAMMES_REMEMBERED:
                _programmes.clear()
            _programmes[case_id] = programme
    view = case_page_view(programme) if programme else None
    if view is None:
        raise Http404
    return view(request, case_id=case_id)


class CasePageView(CaseworkerRequiredMixin, View):
    """The case page: person, consent, team, plan, actions, timeline — and what can be done."""

    template_name = "workflows/case_page.html"
    purpose = _("SIG: reading the case")

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.case = get_object_or_404(
            SigCase.objects.select_related("person", "process"), pk=kwargs["case_id"]
        )

    FORM_CLASSES = {
        "action": forms.ActionForm,
        "close": forms.CloseForm,
        "legal_basis": forms.LegalBasisForm,
        "withdraw": forms.WithdrawConsentForm,
    }
    # The step forms the page folds away: each is fetched (a Turbo frame) when the
    # user opens it, so a plain view of the page neither builds nor renders them.
    FOLDED_FORMS = ("action", "legal_basis", "close")

    def forms(self, bound=None, data=None):
        def build(name):
            form_class = self.FORM_CLASSES[name]
            # Several forms share the page: each its own element ids.
            auto_id = f"id_{name}-%s"
            if name == bound:
                return form_class(data, auto_id=auto_id)
            initial = {"version": self.case.version}
            if name == "action":
                initial["status"] = Action.Status.DONE
            return form_class(initial=initial, auto_id=auto_id)

        return LazyForms(build)

    def permitted(self) -> dict[str, bool]:
        """Which of the page's forms this user may use on the case as it is."""
        user = self.request.user
        is_police = policy.is_police(user)
        open_case = self.case.status != Status.CLOSED
        return {
            "action": open_case and (not is_police or police_may_add_actions(self.case)),
            "close": open_case
            and case_services.may_transition(user=user, case=self.case, name="close"),
            "legal_basis": open_case and user.organisation_id == self.case.owner_organisation_id,
            "withdraw": open_case
            and case_services.may_transition(user=user, case=self.case, name="consent_withdrawn"),
        }

    def folded_form(self, name: str):
        """One folded form on its own (``?form=<name>`` in a Turbo frame): no case data
        in it, so nothing is decrypted; a user without access gets 404 (logged)."""
        if name not in self.FOLDED_FORMS:
            raise Http404
        try:
            case_services.require_access(
                user=self.request.user, case=self.case, purpose=str(self.purpose), what="case:form"
            )
        except CaseDenied:
            raise Http404 from None
        if not self.permitted()[name]:
            raise Http404
        return TemplateResponse(
            self.request,
            "workflows/_form_frame.html",
            {"action": name, "form": self.forms()[name], "submit": FORM_SUBMIT_LABELS[name]},
        )

    # The folded form shown open (posted with errors, or ``?form=`` without JavaScript).
    open_form = ""

    def render(self, built, status=200):
        user = self.request.user
        try:
            page = get_case_page(user=user, purpose=str(self.purpose), case=self.case)
        except CaseNotFound:
            raise Http404 from None
        can = self.permitted()
        tasks = []
        process = getattr(self.case, "process", None)
        if process is not None:
            # A link only to the tasks this user may take or do; the others are listed.
            tasks = [
                (
                    task,
                    task.flow_task.reverse("index", args=[task.process_id, task.pk])
                    if task.flow_task.can_execute(user, task)
                    or task.flow_task.can_assign(user, task)
                    else None,
                )
                for task in process.task_set.filter(flow_task_type="HUMAN")
                .exclude(status__in=["DONE", "CANCELED"])
                .select_related("owner")
            ]
        timeline = timeline_rows(page.timeline, Status.choices)
        return TemplateResponse(
            self.request,
            self.template_name,
            {
                "page": page,
                "case": self.case,
                "forms": built,
                "can": can,
                "tasks": tasks,
                "timeline": timeline,
                "Status": Status,
                "review_overdue": review_overdue(self.case),
                "open_form": self.open_form,
                "submit_labels": FORM_SUBMIT_LABELS,
            },
            status=status,
        )

    def get(self, request, case_id):
        name = request.GET.get("form", "")
        if name and request.headers.get("Turbo-Frame"):
            return self.folded_form(name)
        # ``?form=<name>`` without a frame (no JavaScript): the page with that form open.
        self.open_form = name if name in self.FOLDED_FORMS else ""
        return self.render(self.forms())

    def post(self, request, case_id):
        process = getattr(self.case, "process", None) if isinstance(self.case, SigCase) else None
        if request.POST.get("_action") == "withdraw" and process is not None:
            # A withdrawal takes the flow's lock first, outside the request's transaction,
            # in the order a task step takes its locks (the process, then the case row):
            # racing a step it waits for it and then wins, never a deadlock.
            from workflows.sig.models import SigFlow

            with SigFlow.lock(process.pk):
                return self.post_form(request)
        return self.post_form(request)

    def post_form(self, request):
        action = request.POST.get("_action", "")
        built = self.forms(bound=action, data=request.POST)
        try:
            form = built[action]
        except KeyError:
            form = None
        if form is None:
            messages.error(request, _("That is not available."))
            return HttpResponseRedirect(case_url(self.case))
        if form.is_valid():
            try:
                with transaction.atomic():
                    message = getattr(self, f"do_{action}")(form)
                messages.success(request, message)
                return HttpResponseRedirect(case_url(self.case))
            except ValidationError as error:
                put_errors(form, error)
            except CaseConflict as conflict:
                # A banner, not a form error: in the case's new state the form may be gone.
                messages.error(request, conflict.message)
                self.case.refresh_from_db()
            except CaseDenied:
                return denied(request)
        if action == "withdraw":
            # A withdrawal is a button by its consent, with no form to show errors in.
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        self.open_form = action
        return self.render(built)

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
        from workflows.sig.models import close

        data = form.cleaned_data
        referral = close(
            user=self.request.user,
            case=self.case,
            purpose=str(self.purpose),
            reason=data["close_reason"],
            note=data["note"] or None,
            expected_version=data["version"],
        )
        process = getattr(self.case, "process", None)
        if process is not None and process.finished is None:
            from workflows.sig.models import SigFlow

            SigFlow.instance.cancel(process)
        if referral is not None:
            return _(
                "The case is closed and the person is referred to the defector programme "
                "(%(reference)s)."
            ) % {"reference": referral.reference}
        return _("The case is closed.")

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
        if after_consent_withdrawn(user=user, case=self.case, purpose=purpose):
            return _("The consent is withdrawn: sharing has stopped and the case is closed.")
        return _("The consent is withdrawn: sharing under it has stopped.")


class BreakGlassView(View):
    """Open a case outside the team in an emergency: a reason, a time limit, a review."""

    template_name = "workflows/break_glass.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.can_break_glass(request.user):
            return denied(request)
        # A fresh second factor first (docs/adr/0017-mfa-and-step-up.md).
        if (step_up := require_step_up(request)) is not None:
            return step_up
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return TemplateResponse(request, self.template_name, {"form": self._form()})

    def _form(self, data=None):
        from django import forms as django_forms

        class Form(forms.BreakGlassForm):
            reference = django_forms.CharField(label=_("Case number"), max_length=20)

            field_order = ["reference", "reason"]

        return Form(data)

    def post(self, request):
        form = self._form(request.POST)
        if form.is_valid():
            case = Case.objects.filter(
                reference=form.cleaned_data["reference"].strip().upper()
            ).first()
            if case is None:
                form.add_error("reference", _("There is no case with that number."))
            else:
                try:
                    case_services.break_glass(
                        user=request.user, case=case, reason=form.cleaned_data["reason"]
                    )
                except ValidationError as error:
                    put_errors(form, error)
                except CaseDenied:
                    # The view admits only roles that may break the glass: what is
                    # missing is a legal basis for this organisation (logged as denied).
                    form.add_error(
                        None,
                        _(
                            "Break-the-glass cannot open this case for you: your organisation "
                            "has no legal basis for the person's data (a consent covering it "
                            "or a recorded legal basis)."
                        ),
                    )
                else:
                    messages.warning(
                        request,
                        _("Break-the-glass access is open and logged; auditors will review it."),
                    )
                    return HttpResponseRedirect(case_url(case))
        return TemplateResponse(request, self.template_name, {"form": form})


__all__ = ["BreakGlassView", "CaseListView", "CasePageView"]
