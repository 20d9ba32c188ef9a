"""The case pages every programme shares: the case page's base and its dispatcher (each
programme's own page, by the case's programme), and break-the-glass.

Thin views: access, decryption and logging happen in ``casework.selectors.cases`` and
``casework.services.cases``; a case the user may not see answers 404 (and the refusal is in
the access log).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, NamedTuple

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy, programmes
from casework.compiled import CompiledQuery
from casework.menu_counts import page_menu_counts
from casework.mfa import require_step_up
from casework.models import Action, Case, CaseEvent, Consent
from casework.selectors import case_reads
from casework.selectors.cases import CaseNotFound
from casework.services import cases as case_services
from casework.services.cases import CaseDenied
from casework.services.consent import CONSENTS_COMPLETE, renewal_gap, under_way_on_consent
from casework.services.person_corrections import CONSENT_NEEDED
from workflows.common import forms
from workflows.common.nodes import open_tasks, open_tasks_read
from workflows.common.responses import CaseCalls, case_url, denied, perform_and_say, put_errors


class TimelineRow(NamedTuple):
    event: Any  # an ``Opened`` timeline entry (its reason decrypted, if shown)
    kind: str
    from_state: str
    to_state: str
    at_iso: str
    at_text: str
    actor: str
    # A renewed consent: the gap since the withdrawal it ends ("" otherwise).
    gap: str = ""
    # A custody change that left the case waiting for consent, or the consent that ended
    # the wait ("" otherwise).
    note: str = ""

    @property
    def html(self) -> str:
        """The line's markup inside its ``<li>`` (``templates/workflows/_timeline.html``),
        each text escaped as the template escaped it: one string a line, not a dozen
        variable lookups and conditions."""
        parts = [
            f'<time datetime="{escape(self.at_iso)}">{escape(self.at_text)}</time>'
            f" · {escape(str(self.kind))}"
        ]
        if self.event.obj.to_state:
            from_state = escape(str(self.from_state or "—"))
            parts.append(f": {from_state} → {escape(str(self.to_state))}")
        if self.gap:
            parts.append(f" ({escape(str(self.gap))})")
        if self.note:
            parts.append(f" ({escape(str(self.note))})")
        if self.actor:
            parts.append(f" · {escape(self.actor)}")
        reason = self.event.reason
        if reason:
            parts.append(f" — {escape(reason)}")
        return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def consent_note(entry) -> str:
    """What a timeline entry did to the consents, where it changed whether they are
    complete (ADR 0028, "A new guardian"); "" for other entries."""
    suffix = (entry.transition or "").rsplit(":", 1)[-1]
    if entry.kind == CaseEvent.Kind.RECORD and suffix == CONSENT_NEEDED:
        return _("the new guardian's consent is missing: nothing is shared on consent")
    if entry.kind == CaseEvent.Kind.CONSENT and suffix == CONSENTS_COMPLETE:
        return _("the consents needed are complete again")
    return ""


def consent_gap(entry) -> str:
    """The gap a renewed consent ends, as the timeline says it ("" for other entries)."""
    dates = renewal_gap(entry)
    if dates is None:
        return ""
    withdrawn_on, renewed_on = dates
    return _("without consent from %(withdrawn)s to %(renewed)s (%(days)d days)") % {
        "withdrawn": withdrawn_on.isoformat(),
        "renewed": renewed_on.isoformat(),
        "days": (renewed_on - withdrawn_on).days,
    }


def timeline_rows(timeline, status_choices) -> list[TimelineRow]:
    """The case page's timeline (``templates/workflows/_timeline.html``) as plain text:
    labels looked up once a page and times formatted here, not once an entry in the
    template (a long timeline is most of a case page's rendering). A renewed consent
    shows the gap since its withdrawal."""
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
                gap=consent_gap(entry),
                note=consent_note(entry),
            )
        )
    return rows


def record_link(user, case, team) -> bool:
    """Whether the case page links to the person's record page (``workflows.common.record``);
    ``team``: the case's current team, as the page read it."""
    return policy.may_correct_record(user, case, team=team) or policy.may_set_protected_identity(
        user, case, team=team
    )


class CaseworkerRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if not policy.can_use_task_inbox(request.user):
            return denied(request)
        return super().dispatch(request, *args, **kwargs)


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
    "renew": _("Record the new consent"),
}


# Case id → programme, per process (bounded): which programme's page serves a case.
_programmes: dict = {}
_PROGRAMMES_REMEMBERED = 50_000


def case_page(request, case_id):
    """The case page of whichever programme the case belongs to (the programme hands its
    page to the registry: ``casework.programmes.Programme.case_page_view``)."""
    if not policy.can_use_task_inbox(request.user):
        return denied(request)
    code = _programmes.get(case_id)
    if code is None:
        code = Case.objects.filter(pk=case_id).values_list("programme", flat=True).first()
        if code is not None:
            # A case never changes programme and a case id is never reused: remembered.
            if len(_programmes) >= _PROGRAMMES_REMEMBERED:
                _programmes.clear()
            _programmes[case_id] = code
    programme = programmes.get(code) if code else None
    view = programme.case_page_view if programme is not None else None
    if view is None:
        raise Http404
    return view(request, case_id=case_id)


@functools.cache
def _page_case_read(model: type[Case]) -> CompiledQuery:
    """The programme case model's read by id for its page, with the person and the flow's
    process, compiled once a process (``casework.compiled``); the stand-in is no case's
    id."""
    return CompiledQuery(
        lambda case_id: model.objects.select_related("person", "process").filter(pk=case_id),
        case_id=uuid.UUID("00000000-5e1e-c7ed-0000-00000000000b"),
    )


class CasePageView(CaseCalls, CaseworkerRequiredMixin, View):
    """A programme's case page: the case as this user may see it, its open tasks, its
    timeline, and the forms of what can be done on it.

    A programme's page sets ``case_model``, ``template_name``, ``purpose``,
    ``FORM_CLASSES`` (by action name), ``permitted()`` and a ``do_<action>`` for each
    form (it returns the success message); ``FOLDED_FORMS`` are the forms the page folds
    away and fetches when opened (a Turbo frame). A page with a "withdraw" form sets
    ``withdraw_consent()``.
    """

    case_model: type[Case] = Case
    # What the page shows the case for: another organisation's user needs a consent that
    # covers it (or a statute).
    consent_purpose = Consent.Purpose.COORDINATION
    # Every programme's case page has these; a programme's adds its own.
    FORM_CLASSES: dict[str, type] = {
        "action": forms.ActionForm,
        "close": forms.CloseForm,
        "withdraw": forms.WithdrawConsentForm,
        "renew": forms.ConsentForm,
    }
    FOLDED_FORMS: tuple[str, ...] = ()
    # The programme's service that adds an action to the case's plan (``do_action``).
    action_service = staticmethod(case_services.add_action)

    # The case's team and consents as read with the case (a page's GET), for the page.
    _parties: case_reads.Parties | None = None

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        case_id = uuid.UUID(str(kwargs["case_id"]))
        read = _page_case_read(self.case_model)
        if request.method == "GET" and not request.headers.get("Turbo-Frame"):
            # The page shows the case's team and consents: read with the case, in one
            # execution (the access check comes after, in ``get_case_page``, with them).
            case, self._parties = case_reads.case_and_parties(read, case_id, now=timezone.now())
            found = [case] if case is not None else []
        else:
            found = read.run(case_id=case_id)
        if not found:
            raise Http404
        self.case = found[0]

    # The side menu's counts read with the case's rows: the menu's ``MenuCounts`` and where
    # its rows start among the page's ``also`` (:meth:`read_with_case`).
    _menu: tuple | None = None

    def read_with_case(self) -> dict:
        """The selector's arguments: the ``parties`` read with the case (once: a second
        reading of the case in the request reads them anew), and to read with the case's
        rows (``also``) the process's open tasks (:meth:`open_tasks` takes them from the
        page) and the side menu's counts (:meth:`render` hands them to the menu)."""
        parties, self._parties = self._parties, None
        process = getattr(self.case, "process", None)
        tasks = [open_tasks_read(process)] if process else []
        menu = page_menu_counts(self.request)
        menu_reads = menu.reads() if menu is not None else []
        self._menu = (menu, len(tasks)) if menu_reads else None
        return {"parties": parties, "also": [*tasks, *menu_reads]}

    def forms(self, bound=None, data=None):
        def build(name):
            form_class = self.FORM_CLASSES[name]
            # Several forms share the page: each its own element ids.
            auto_id = f"id_{name}-%s"
            kwargs = {"guardians": self.guardian_choices()} if name == "renew" else {}
            if name == bound:
                return form_class(data, auto_id=auto_id, **kwargs)
            initial = {"version": self.case.version}
            if name == "action":
                initial["status"] = Action.Status.DONE
            if name == "renew":
                initial["organisations"] = self.renewal_organisations()
            return form_class(initial=initial, auto_id=auto_id, **kwargs)

        return LazyForms(build)

    def permitted(self) -> dict[str, bool]:
        """Which of the page's forms this user may use on the case as it is."""
        return {}

    def do_action(self, form):
        """An action on the case's plan (``action_service``) for the organisation the form
        names, or else the user's own."""
        organisation = form.cleaned_data["organisation"] or self.request.user.organisation
        self.add_action(self.action_service, form, organisation)
        return _("The action is recorded.")

    # --- a new consent after a withdrawal (every programme's page) ----------------------

    def consent_needed(self, page) -> bool:
        """An open case under way on consent whose consents are incomplete though nobody
        refused or withdrew: a giver's consent is missing (a new guardian's, the person's
        own from 18). The page says so and offers the consent form (ADR 0028)."""
        state = page.consent_state
        return (
            under_way_on_consent(self.case)
            and not state.complete
            and not state.refused
            and bool(state.missing)
            and not policy.withdrawn_givers(page.consents)
        )

    def may_renew(self, page) -> bool:
        """The consent form on the page: an open case with a consent withdrawn and not yet
        renewed, or one waiting for a missing consent (:meth:`consent_needed`), for its own
        organisation (not the police) or the coordinator. The service decides."""
        user = self.request.user
        return (
            self.case.closed_at is None
            and (bool(policy.withdrawn_givers(page.consents)) or self.consent_needed(page))
            and not policy.is_police(user)
            and (
                user.organisation_id == self.case.owner_organisation_id
                or policy.coordinates(user, self.case)
            )
        )

    def guardian_choices(self) -> list:
        """The guardians a renewal can name: as the page shows them when it was read,
        else by id only (a posted form is checked against ids; nothing is decrypted)."""
        page = getattr(self, "_page", None)
        if page is not None:
            return page.guardians
        from casework.selectors.cases import Opened

        return [Opened(g, {"name": None}) for g in self.case.person.guardians.all()]

    def renewal_organisations(self) -> list:
        """What the renewal covers at first: what the withdrawn consents covered (without a
        withdrawal: what the consents in force cover, for a missing giver's consent)."""
        consents = self.case.consents.filter(withdrawn_at__isnull=False)
        if not consents.exists():
            consents = self.case.consents.filter(decision=Consent.Decision.GIVEN)
        return sorted({org.pk for consent in consents for org in consent.organisations.all()})

    def do_renew(self, form):
        self.record_consent(form)
        return _("The new consent is recorded.")

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

    def open_tasks(self) -> list:
        """The case's open tasks, each with a link only if this user may take or do it (read
        with the page's rows, :meth:`read_with_case`)."""
        process = getattr(self.case, "process", None)
        page = getattr(self, "_page", None)
        read = page.also[0] if process is not None and page is not None and page.also else None
        return open_tasks([process] if process is not None else [], self.request.user, read=read)

    def extra_context(self) -> dict:
        return {}

    def case_page(self):
        """The case as this user may see it (404 if not at all)."""
        try:
            self._page = self.read_case(**self.read_with_case())
        except CaseNotFound:
            raise Http404 from None
        return self._page

    def render(self, built, status=200):
        page = self.case_page()
        if self._menu is not None:
            # The menu's counts were read with the case's rows, after the access check.
            menu, start = self._menu
            menu.take(page.also[start:])
        if "renew" in built:
            # A renewal posted with errors, built before the page: its guardians by name.
            built["renew"].set_guardians(page.guardians)
        context = {
            "page": page,
            "case": self.case,
            "forms": built,
            "can": {**self.permitted(), "renew": self.may_renew(page)},
            "consent_needed": self.consent_needed(page),
            "missing_guardians": [
                guardian
                for guardian in page.guardians
                if f"guardian:{guardian.obj.pk}" in page.consent_state.missing
            ],
            "tasks": self.open_tasks(),
            "timeline": timeline_rows(page.timeline, self.case_model.Status.choices),
            "open_form": self.open_form,
            "submit_labels": FORM_SUBMIT_LABELS,
            "can_change_team": policy.may_change_team(self.request.user, self.case),
            "record_link": record_link(self.request.user, self.case, page.team),
            **self.extra_context(),
        }
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request, case_id):
        name = request.GET.get("form", "")
        if name and request.headers.get("Turbo-Frame"):
            return self.folded_form(name)
        # ``?form=<name>`` without a frame (no JavaScript): the page with that form open.
        self.open_form = name if name in self.FOLDED_FORMS else ""
        return self.render(self.forms())

    def post(self, request, case_id):
        process = getattr(self.case, "process", None)
        if request.POST.get("_action") == "withdraw" and process is not None:
            # A withdrawal takes the flow's lock first, outside the request's transaction,
            # in the order a task step takes its locks (the process, then the case row):
            # racing a step it waits for it and then wins, never a deadlock.
            with process.flow_class.lock(process.pk):
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
            response = perform_and_say(
                request, self.case, getattr(self, f"do_{action}"), form, then=case_url(self.case)
            )
            if response is not None:
                return response
        if action == "withdraw":
            # A withdrawal is a button by its consent, with no form to show errors in.
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        self.open_form = action
        return self.render(built)

    def do_withdraw(self, form):
        consent = self.case.consents.filter(pk=form.cleaned_data["consent"]).first()
        if consent is None:
            raise ValidationError(_("No such consent in this case."))
        if self.withdraw_consent(consent):
            return _("The consent is withdrawn: sharing has stopped and the case is closed.")
        return _("The consent is withdrawn: sharing under it has stopped.")

    def withdraw_consent(self, consent) -> bool:
        """Withdraw ``consent`` (the programme's services); returns whether that closed the
        case."""
        raise NotImplementedError


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


def casework_urls() -> list:
    """The shared pages under ``arenden:``: the case page (it dispatches on the case's
    programme), its team page and break-the-glass."""
    from workflows.common.team_page import TeamPageView

    return [
        path("fall/<uuid:case_id>/", case_page, name="case"),
        path("fall/<uuid:case_id>/team/", TeamPageView.as_view(), name="case_team"),
        path("bryt-glaset/", BreakGlassView.as_view(), name="break_glass"),
    ]
