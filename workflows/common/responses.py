"""What every programme's pages answer with: a refusal, the way back to a case, a service's
errors on the form; a form's action run in one savepoint; and the call of a case's service
from a page's form (``CaseCalls``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from casework.forms import put_errors
from casework.selectors.cases import get_case_page
from casework.services import cases as case_services
from casework.services.cases import CaseConflict, CaseDenied


def denied(request) -> TemplateResponse:
    return TemplateResponse(request, "403.html", status=403)


def case_url(case) -> str:
    return reverse("arenden:case", kwargs={"case_id": case.pk})


def perform(request, case, action, form, *, refused=None):
    """Run ``action(form)`` (a page's ``do_<name>``) in one savepoint and return its result.

    A service's ``ValidationError`` goes on the form and a conflict is shown as a banner
    (the case, if any, re-read: in its new state the form may be gone), and ``None`` is
    returned; a refusal returns the 403 page (or ``refused(request, error)``).
    """
    try:
        with transaction.atomic():
            return action(form)
    except ValidationError as error:
        put_errors(form, error)
    except CaseConflict as conflict:
        messages.error(request, conflict.message)
        if case is not None:
            case.refresh_from_db()
    except CaseDenied as error:
        return denied(request) if refused is None else refused(request, error)
    return None


def perform_and_say(request, case, action, form, *, then, refused=None):
    """:func:`perform` for a page whose actions return the message to show: the message is
    shown and the answer a redirect to ``then`` (a URL, or a function giving it once the
    action is done); a refusal's response is returned as it is, and ``None`` when the form
    is to be shown again with its errors."""
    result = perform(request, case, action, form, refused=refused)
    if result is None or isinstance(result, HttpResponseBase):
        return result
    messages.success(request, result)
    return HttpResponseRedirect(then() if callable(then) else then)


def form_values(form, *names: str, **renamed: str) -> dict:
    """The valid form's values of the fields ``names``, by name (a service's arguments of
    the same names), and of the fields ``renamed`` (service argument → field name)."""
    return {
        **{name: form.cleaned_data[name] for name in names},
        **{argument: form.cleaned_data[field] for argument, field in renamed.items()},
    }


class ActionForms:
    """A page's forms by action name (``actions``: action name → form class): the posted
    one bound to the data, the others with their ``initial()``; ``available()`` says which
    of them the page offers now. A GET shows them (the page's ``render``)."""

    actions: dict[str, type] = {}

    def form_kwargs(self, name: str) -> dict:
        return {}

    def initial(self, name: str) -> dict:
        return {}

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
        """The action names the page offers now."""
        return set(self.actions)

    def offers(self, action: str) -> bool:
        return action in self.actions and action in self.available()

    def get(self, request, *args, **kwargs):
        return self.render(self.build_forms())

    def post_action(
        self, request, action: str, do, *, case=None, then=None, refused=None, status=200
    ):
        """The posted form of ``action`` (one the page offers): valid, ``do(form)`` as
        :func:`perform_and_say` runs it on ``case`` (its message, then ``then``: by default
        this page again); else, or when the action failed, the page again (``status``)."""
        built = self.build_forms(bound=action, data=request.POST)
        form = built[action]
        if form.is_valid():
            response = perform_and_say(
                request, case, do, form, then=then or request.path, refused=refused
            )
            if response is not None:
                return response
        return self.render(built, status=status)


class CaseCalls:
    """A page's or a step's calls of the case's services: each for the page's ``case``, as
    the request's user, under the page's ``purpose``."""

    def read_case(self, selector=get_case_page, **read):
        """The case as the request's user may see it under the page's ``purpose`` and for its
        ``consent_purpose``, by ``selector`` (the core's case page or a programme's, which
        raises ``CaseNotFound`` where the user may not see the case); ``read``: more of the
        selector's arguments (a case page's ``parties``)."""
        return selector(
            user=self.request.user,
            purpose=str(self.purpose),
            case=self.case,
            consent_purpose=self.consent_purpose,
            **read,
        )

    def call(self, service, form=None, /, **fields):
        """``service`` with ``fields`` — and, given the ``form``, the case's version the form
        saw (``expected_version``)."""
        if form is not None:
            fields["expected_version"] = form.cleaned_data["version"]
        return service(user=self.request.user, case=self.case, purpose=str(self.purpose), **fields)

    def record_consent(self, form):
        """A consent form's consent (``forms.ConsentForm``: the consent step's, the case
        page's renewal) by ``record_consent``, naming the case's guardian it chose."""
        guardian = None
        if guardian_id := form.cleaned_data["guardian"]:
            guardian = self.case.person.guardians.filter(pk=guardian_id).first()
        return self.call(
            case_services.record_consent,
            form,
            guardian=guardian,
            **form_values(
                form, "giver", "decision", "form", "organisations", "valid_until", "purposes"
            ),
        )

    def close_with(self, service, form):
        """Close the case by ``service`` (the programme's close) with the valid form's close
        reason and note."""
        data = form.cleaned_data
        return self.call(service, form, reason=data["close_reason"], note=data["note"] or None)

    def add_action(self, service, form, organisation) -> None:
        """An action form's action for ``organisation``, by ``service`` (the programme's
        ``add_action``)."""
        self.call(
            service,
            form,
            **form_values(form, "kind", "status", "date", "visibility"),
            organisation=organisation,
            note=form.cleaned_data["note"] or None,
        )
