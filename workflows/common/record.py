"""The person's record from a case, in every programme (ADR 0027): correct the name,
address and phone, the guardians (add, correct, end), set or lift the protected identity;
and the case worker's search of their own cases by name or date of birth.

Thin views: each form goes to one service of ``casework.services.person_corrections``
(access rules and logging there and in ``casework.policy``); the page reads the case
through ``casework.selectors.cases.get_case_page`` (the same masking and the same
access-log events as the case page). A user who may neither correct nor set the
protected identity gets 404, the refusal logged.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.models import Person
from casework.selectors.case_status import find_case
from casework.selectors.cases import CaseNotFound, deny_reading, get_case_page
from casework.selectors.person_search import search_own_cases
from casework.services import person_corrections as corrections
from workflows.common.case_page import CaseworkerRequiredMixin
from workflows.common.forms import GuardianForm, VersionedForm, text_field
from workflows.common.responses import (
    ActionForms,
    CaseCalls,
    denied,
    form_values,
    put_errors,
)

PURPOSE = _("Correction of the personal details in a case")
SEARCH_PURPOSE = _("Finding a person among my own cases")


def reason_field():
    return text_field(
        _("Reason for the change"),
        rows=2,
        max_length=2_000,
        help_text=_(
            "Why the details change (the source, e.g. the population register). "
            "Do not write the new values here: the reason is shown in the timeline."
        ),
    )


class PersonForm(VersionedForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    reason = reason_field()


class GuardianAddForm(GuardianForm):
    """A new guardian; ``replaces``: a current guardian whose custody ends with it (custody
    moved to another parent)."""

    replaces = forms.ChoiceField(
        label=_("Replaces (their custody ends)"),
        required=False,
        help_text=_(
            "In a case under way on consent, the case then waits for the new guardian's "
            "consent: nothing is shared with other organisations on consent until it is "
            "recorded on the case page."
        ),
    )
    reason = reason_field()

    field_order = ["guardian_name", "guardian_phone", "replaces", "reason"]

    def __init__(self, *args, guardians=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.set_guardians(guardians)

    def set_guardians(self, guardians) -> None:
        """The current guardians to choose from (rows with ``obj`` and ``name``; a hidden
        name is numbered, as on the page)."""
        self.fields["replaces"].choices = [("", _("Nobody (an additional guardian)"))] + [
            (str(g.obj.pk), g.name or _("Guardian %(number)d") % {"number": number})
            for number, g in enumerate(guardians, 1)
        ]


class GuardianCorrectForm(GuardianForm):
    guardian = forms.UUIDField(widget=forms.HiddenInput)
    reason = reason_field()

    field_order = ["guardian", "guardian_name", "guardian_phone", "reason"]


class GuardianEndForm(VersionedForm):
    guardian = forms.UUIDField(widget=forms.HiddenInput)
    reason = reason_field()


class ProtectedIdentityForm(VersionedForm):
    level = forms.TypedChoiceField(
        label=_("Protected identity"), choices=Person.ProtectedIdentity.choices, coerce=int
    )
    reason = text_field(_("Reason for the change"), rows=2, max_length=2_000, required=False)


class RecordView(CaseCalls, ActionForms, CaseworkerRequiredMixin, View):
    """``/arenden/fall/<id>/personuppgifter/``: the forms of the person's record."""

    template_name = "workflows/record.html"
    purpose = PURPOSE
    actions = {
        "person": PersonForm,
        "guardian_add": GuardianAddForm,
        "guardian": GuardianCorrectForm,
        "guardian_end": GuardianEndForm,
        "protected_identity": ProtectedIdentityForm,
    }

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        # The programme's own case (its model, its state), as the API's reading finds it.
        self.case = find_case(kwargs["case_id"])
        if self.case is None:
            raise Http404

    def contact_hidden(self) -> bool:
        """A protected person's address, phone and guardians' details: hidden from this
        user (``casework.policy.sees_protected_contact``), so not corrected by them."""
        return bool(self.case.person.protected_identity) and not policy.sees_protected_contact(
            self.request.user, self.case
        )

    def build_forms(self, bound=None, data=None) -> dict:
        built = super().build_forms(bound, data)
        if self.contact_hidden():
            for name in ("address", "phone"):
                del built["person"].fields[name]
        return built

    def available(self) -> set[str]:
        user = self.request.user
        names = set()
        if policy.may_correct_record(user, self.case):
            names |= {"person", "guardian_add", "guardian_end"}
            if not self.contact_hidden():
                names.add("guardian")
        if policy.may_set_protected_identity(user, self.case):
            names.add("protected_identity")
        return names

    def form_kwargs(self, name: str) -> dict:
        if name != "guardian_add":
            return {}
        # Before the page is read: the current guardians by id only (a posted form is
        # checked against ids; nothing is decrypted). ``render`` names them.
        from casework.selectors.cases import Opened

        current = self.case.person.guardians.current()
        return {"guardians": [Opened(g, {"name": None}) for g in current]}

    def initial(self, name: str) -> dict:
        initial = {"version": self.case.version}
        if name == "protected_identity":
            initial["level"] = self.case.person.protected_identity
        return initial

    def page(self):
        """The case as the user may see it; 404 (logged) without access or without a form."""
        user = self.request.user
        if not self.available():
            # On the case or not, this page is not theirs: logged, and nothing told.
            deny_reading(
                user=user,
                case=self.case,
                purpose=str(self.purpose),
                reason="role",
                what="person:record",
            )
            raise Http404
        try:
            return get_case_page(user=user, purpose=str(self.purpose), case=self.case)
        except CaseNotFound:
            raise Http404 from None

    def render(self, built: dict, status: int = 200):
        page = self.page()
        person = page.person
        if not built["person"].is_bound:
            built["person"].initial.update(
                name=person.name, address=person.address or "", phone=person.phone or ""
            )
        available = self.available()
        # The current guardians by name (numbered where a protected identity hides them).
        built["guardian_add"].set_guardians(page.guardians)
        guardian_forms = []
        for guardian in page.guardians:
            correct = built["guardian"]
            if not (correct.is_bound and str(correct.data.get("guardian")) == str(guardian.obj.pk)):
                correct = GuardianCorrectForm(
                    initial={
                        "version": self.case.version,
                        "guardian": guardian.obj.pk,
                        "guardian_name": guardian.name,
                        "guardian_phone": guardian.phone or "",
                    },
                    auto_id=f"id_guardian-{guardian.obj.pk}-%s",
                )
            end = built["guardian_end"]
            if not (end.is_bound and str(end.data.get("guardian")) == str(guardian.obj.pk)):
                end = GuardianEndForm(
                    initial={"version": self.case.version, "guardian": guardian.obj.pk},
                    auto_id=f"id_guardian_end-{guardian.obj.pk}-%s",
                )
            guardian_forms.append((guardian, correct, end))
        shown = {id(form) for row in guardian_forms for form in row[1:]}
        for name in ("guardian", "guardian_end"):
            form = built[name]
            if form.is_bound and form.errors and id(form) not in shown:
                # A guardian no longer listed (ended meanwhile): the errors as a banner.
                for errors in form.errors.values():
                    for error in errors:
                        messages.error(self.request, error)
        context = {
            "page": page,
            "case": self.case,
            "forms": {name: form for name, form in built.items() if name in available},
            "guardian_forms": guardian_forms,
            "contact_hidden": page.address_hidden,
        }
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def post(self, request, case_id):
        action = request.POST.get("_action", "")
        if action in self.actions and not self.offers(action):
            # Not theirs to do (another form of the page may be): logged, refused.
            deny_reading(
                user=request.user,
                case=self.case,
                purpose=str(self.purpose),
                reason="role",
                what=f"person:{action}",
            )
            return denied(request) if self.available() else self.page()
        if not self.offers(action):
            self.page()  # 404 for a user the page is not for
            messages.error(request, _("That is not available."))
            return self.render(self.build_forms(), status=400)
        return self.post_action(
            request,
            action,
            getattr(self, f"do_{action}"),
            case=self.case,
            then=reverse("arenden:record", args=[self.case.pk]),
            status=400,
        )

    def do_person(self, form):
        # Without the address and phone fields (a protected person's, hidden from this
        # user) they are left as they are.
        fields = [name for name in ("name", "address", "phone") if name in form.fields]
        self.call(corrections.correct_person, form, **form_values(form, *fields, "reason"))
        return str(_("The personal details are corrected."))

    def do_guardian_add(self, form):
        replaces = form.cleaned_data["replaces"] or None
        self.call(
            corrections.add_guardian,
            form,
            name=form.cleaned_data["guardian_name"],
            phone=form.cleaned_data["guardian_phone"] or None,
            replaces=replaces,
            reason=form.cleaned_data["reason"],
        )
        state = policy.consent_state(self.case)
        if not state.complete and any(m.startswith("guardian:") for m in state.missing):
            return str(
                _(
                    "The guardian is registered. Their consent is missing: record it on the "
                    "case page; until then nothing is shared with other organisations on "
                    "consent."
                )
            )
        if replaces:
            return str(_("The guardian is registered and the earlier guardian's custody ended."))
        return str(_("The guardian is registered."))

    def do_guardian(self, form):
        self.call(
            corrections.correct_guardian,
            form,
            guardian_id=form.cleaned_data["guardian"],
            name=form.cleaned_data["guardian_name"],
            phone=form.cleaned_data["guardian_phone"] or None,
            reason=form.cleaned_data["reason"],
        )
        return str(_("The guardian's details are corrected."))

    def do_guardian_end(self, form):
        values = form_values(form, "reason", guardian_id="guardian")
        self.call(corrections.end_guardian, form, **values)
        return str(_("The guardian's custody is ended."))

    def do_protected_identity(self, form):
        self.call(corrections.set_protected_identity, form, **form_values(form, "level", "reason"))
        return str(_("The protected identity is saved."))


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name or date of birth"),
        max_length=200,
        help_text=_("Searches only the cases you are on the team of."),
    )


class PersonSearchView(CaseworkerRequiredMixin, View):
    """``/arenden/personer/sok/``: a case worker's own cases, by name or date of birth."""

    template_name = "workflows/person_search.html"

    def get(self, request):
        form = SearchForm(request.GET if "q" in request.GET else None)
        results = None
        if form.is_valid():
            try:
                results = search_own_cases(
                    user=request.user, purpose=str(SEARCH_PURPOSE), text=form.cleaned_data["q"]
                )
            except ValidationError as error:
                put_errors(form, error)
        status = 400 if form.is_bound and form.errors else 200
        return TemplateResponse(
            request, self.template_name, {"form": form, "results": results}, status=status
        )


def record_urls() -> list:
    """The record page and the own-case search, under ``arenden:``."""
    return [
        path("fall/<uuid:case_id>/personuppgifter/", RecordView.as_view(), name="record"),
        path("personer/sok/", PersonSearchView.as_view(), name="person_search"),
    ]
