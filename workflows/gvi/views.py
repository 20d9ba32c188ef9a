"""GVI pages: thin. Access, decryption and logging happen in
``workflows.gvi.selectors`` and ``workflows.gvi.services``.

A user outside GVI gets 403 on every page (the refusal is in the access log); a
bad form is shown again with its errors (400); a stale form gets the "changed by
someone else" banner (409). The flows' task views are ``workflows.gvi.task_views``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.mfa import require_step_up
from casework.services.transitions import Conflict, Denied
from workflows.common.record import ProtectedIdentityForm
from workflows.common.responses import ActionForms, denied, form_values, put_errors
from workflows.gvi import forms, selectors, services
from workflows.gvi.models import (
    CallIn,
    CustomNotification,
    Group,
    GroupMember,
    GroupStatus,
    MemberStatus,
    Sanction,
)

PURPOSE = _("GVI: group violence intervention")


def page_url(name: str, obj) -> str:
    """The URL of a GVI object's page (``gvi:<name>``)."""
    return reverse(f"gvi:{name}", args=[obj.pk])


class ServiceCall(NamedTuple):
    """An action that calls one ``service`` with the page's object and the valid form's
    ``fields`` (and the version it saw); then says ``message`` on the same page or, without
    one, goes on as the view's ``after_step()`` says."""

    service: Callable[..., Any]
    fields: tuple[str, ...] = ()
    message: str | None = None


class GviView(ActionForms, View):
    """A GVI page: refused (403, logged) to anyone who does not take part in GVI.

    ``actions`` maps an action name to its form class; ``do_<name>(form)`` runs the
    services for a valid form, in one savepoint. ``service_calls()`` maps the actions
    that only call a service to their ``ServiceCall`` (the service takes the page's
    object, ``self.object``, by the name of its page, ``page_name``). A page of one
    object finds it in its ``queryset`` by the URL's ``<page_name>_id`` (404 if none) and
    reads it through its ``selector`` (:meth:`page`).
    """

    template_name = ""
    page_name = ""
    queryset = None
    selector = None
    allowed = staticmethod(policy.gvi_access)

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        if self.queryset is not None:
            self.object = get_object_or_404(self.queryset, pk=kwargs[f"{self.page_name}_id"])

    def dispatch(self, request, *args, **kwargs):
        if not self.allowed(request.user):
            try:
                services.require_gvi_access(
                    user=request.user, purpose=str(PURPOSE), what=f"gvi:page:{request.path}"
                )
            except Denied:
                pass
            else:
                # A GVI participant without the role this page needs.
                services.deny(
                    user=request.user,
                    obj=None,
                    purpose=str(PURPOSE),
                    what=f"gvi:page:{request.path}",
                    reason="role",
                )
            return denied(request)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, name: str) -> dict:
        obj = getattr(self, "object", None)
        return {"version": obj.version} if obj is not None and hasattr(obj, "version") else {}

    def page(self):
        """The page's object as its ``selector`` reads it for this user (given the object
        by ``page_name``), once a request."""
        if not hasattr(self, "_page"):
            self._page = self.call(self.selector, **{self.page_name: self.object})
        return self._page

    def context(self) -> dict:
        """A page of one object: :meth:`page`, the object by its ``page_name`` and the
        transitions the user may take (``offered``)."""
        if self.selector is None:
            return {}
        return {
            "page": self.page(),
            self.page_name: self.object,
            "offered": self.offered(self.object),
        }

    def render(self, built: dict, status: int = 200):
        try:
            context = self.context()
        except selectors.GviNotFound:
            return denied(self.request)
        available = self.available()
        context["forms"] = {name: form for name, form in built.items() if name in available}
        context.update(self.forms_context(context["forms"]))
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def forms_context(self, shown: dict) -> dict:
        """More of the page's context, from the forms it shows."""
        return {}

    def post(self, request, *args, **kwargs):
        action = request.POST.get("_action", "")
        if not self.offers(action):
            messages.error(request, _("That step is not available now."))
            return self.render(self.build_forms(), status=400)
        built = self.build_forms(bound=action, data=request.POST)
        form = built[action]
        if form.is_valid():
            try:
                with transaction.atomic():
                    return self.handler(action)(form)
            except ValidationError as error:
                put_errors(form, error)
            except Conflict as conflict:
                messages.error(request, conflict.message)
                self.refresh()
                return self.render(self.build_forms(), status=409)
            except Denied:
                return denied(request)
        return self.render(built, status=400)

    def handler(self, action: str):
        """What a valid form of ``action`` does: its ``ServiceCall``, else
        ``do_<action>(form)``."""
        calls = self.service_calls()
        if action in calls:
            return partial(self.run_call, calls[action])
        return getattr(self, f"do_{action}")

    def service_calls(self) -> dict[str, ServiceCall]:
        return {}

    def run_call(self, call: ServiceCall, form):
        self.call(
            call.service, form, **{self.page_name: self.object}, **form_values(form, *call.fields)
        )
        return self.done(call.message) if call.message else self.after_step()

    def after_step(self):
        return self.done(_("Saved."))

    def refresh(self) -> None:
        obj = getattr(self, "object", None)
        if obj is not None:
            obj.refresh_from_db()

    def done(self, message, url=None):
        messages.success(self.request, message)
        return HttpResponseRedirect(url or self.request.path)

    def version(self, form) -> int | None:
        return form.cleaned_data.get("version")

    def call(self, function, form=None, /, **fields):
        """A GVI service or selector, as the request's user under GVI's purpose — and, given
        the ``form``, with the version it saw (``expected_version``)."""
        if form is not None:
            fields["expected_version"] = self.version(form)
        return function(user=self.request.user, purpose=str(PURPOSE), **fields)

    def do_transition(self, form):
        return self.run_transition(form, self.object)

    def run_transition(self, form, obj):
        name = form.cleaned_data["transition"]
        if name not in self.transitions:
            raise ValidationError(_("That step is not available now."))
        self.call(services.transition, form, obj=obj, name=name)
        return self.done(_("Saved."))

    transitions: tuple[str, ...] = ()

    def offered(self, obj, names=None) -> list:
        """The transitions this user may take from the object's state (buttons)."""
        return [
            (name, getattr(type(obj), name)._django_fsm.get_transition(obj.status).custom["label"])
            for name in (self.transitions if names is None else names)
            if services.may_transition(user=self.request.user, obj=obj, name=name)
        ]


# --- Overview, new group, new incident, new call-in -------------------------------------------


class OverviewView(GviView):
    template_name = "workflows/gvi/overview.html"

    def context(self):
        overview = selectors.get_overview(user=self.request.user, purpose=str(PURPOSE))
        user = self.request.user
        return {
            "overview": overview,
            "can_register": policy.coordinates_gvi_or_police(user),
            "can_record_incident": policy.gvi_police(user),
            "can_plan_call_in": policy.coordinates_gvi(user),
        }


class FormPageView(GviView):
    """A page of one form (``create``) under its ``title``, sent with ``submit``: the
    ``ServiceCall`` of ``creates()`` takes the form's fields, then says its message on the
    new object's page (``next_page``) or, without one, on the overview (a method, because
    the services import the flows that import these views)."""

    template_name = "workflows/gvi/form_page.html"
    title = ""
    submit = ""
    next_page = ""

    def context(self):
        return {"title": self.title, "submit": self.submit}

    def creates(self) -> ServiceCall:
        raise NotImplementedError

    def do_create(self, form):
        creates = self.creates()
        made = self.call(creates.service, **form_values(form, *creates.fields))
        url = page_url(self.next_page, made) if self.next_page else reverse("gvi:index")
        return self.done(creates.message, url)


class GroupCreateView(FormPageView):
    actions = {"create": forms.GroupForm}
    allowed = staticmethod(policy.coordinates_gvi_or_police)
    title = _("Register a group")
    submit = _("Register the group")
    next_page = "group"

    def creates(self):
        return ServiceCall(
            services.create_group,
            ("name", "area", "size_band", "notes"),
            _("The group is registered."),
        )


class IncidentCreateView(FormPageView):
    actions = {"create": forms.IncidentForm}
    allowed = staticmethod(policy.gvi_police)
    title = _("Record an incident")
    submit = _("Record the incident")

    def creates(self):
        return ServiceCall(
            services.record_incident,
            ("date", "area", "kind", "groups"),
            _("The incident is recorded."),
        )


class CallInCreateView(FormPageView):
    actions = {"create": forms.CallInForm}
    allowed = staticmethod(policy.coordinates_gvi)
    title = _("Plan a call-in")
    submit = _("Plan the call-in")
    next_page = "call_in"

    def creates(self):
        return ServiceCall(services.create_call_in, ("date",), _("The call-in is planned."))


# --- The group page ---------------------------------------------------------------------------


class GroupPageView(GviView):
    template_name = "workflows/gvi/group.html"
    actions = {
        "transition": forms.TransitionForm,
        "notes": forms.NotesForm,
        "member": forms.MemberForm,
        "sanctions": forms.SanctionDecisionForm,
        "sanction_step": forms.SanctionStepForm,
        "withdraw_sanction": forms.WithdrawSanctionForm,
        "erase": forms.EraseGroupForm,
    }
    transitions = (
        "map",
        "deliver_message",
        "monitor",
        "clear_incident",
        "end_sanctions",
        "go_dormant",
    )

    page_name = "group"
    queryset = Group.objects.all()
    selector = staticmethod(selectors.get_group_page)

    def form_kwargs(self, name):
        return {"group": self.object} if name == "sanctions" else {}

    def service_calls(self):
        return {
            "notes": ServiceCall(services.update_group_notes, ("notes",)),
            "erase": ServiceCall(
                services.erase_group,
                ("reason", "confirmed"),
                _("The group is erased: its data key is destroyed."),
            ),
        }

    def available(self):
        user = self.request.user
        group = self.object
        names = {"transition", "sanction_step", "withdraw_sanction"}
        if group.erased_at is not None:
            return names
        if policy.coordinates_gvi_or_police(user):
            names |= {"notes", "member"}
        if services.may_transition(user=user, obj=group, name="decide_sanctions"):
            names.add("sanctions")
        if policy.may_erase_gvi_group(user) and group.status == GroupStatus.DORMANT:
            names.add("erase")
        return names

    def post(self, request, *args, **kwargs):
        if request.POST.get("_action") == "erase" and not policy.may_erase_gvi_group(request.user):
            # Erasing is the coordinator's alone: anyone else is refused and logged, as the
            # service would (a GVI participant without the role too).
            if policy.gvi_access(request.user):
                services.deny(
                    user=request.user,
                    obj=self.object,
                    purpose=str(PURPOSE),
                    what="gvi:group:erase",
                    reason="role",
                )
            return denied(request)
        # Erasing needs a fresh second factor first (docs/adr/0017-mfa-and-step-up.md).
        if (
            request.POST.get("_action") == "erase"
            and (step_up := require_step_up(request)) is not None
        ):
            return step_up
        return super().post(request, *args, **kwargs)

    def withdrawable(self, sanction) -> bool:
        return services.may_transition(user=self.request.user, obj=sanction, name="withdraw")

    def context(self):
        context = super().context()
        page = context["page"]
        decisions = [
            (
                decision,
                [
                    (
                        sanction,
                        self.offered(sanction, ("decide", "execute", "report")),
                        self.withdrawable(sanction),
                        page.withdraw_reasons.get(sanction.pk),
                    )
                    for sanction in decision.sanctions.all()
                ],
            )
            for decision in page.decisions
        ]
        return {
            **context,
            "decisions": decisions,
            "unmet_sanctions": services.unmet_conditions(self.object, "decide_sanctions")
            if self.object.status == GroupStatus.INCIDENT_LINKED
            else [],
        }

    def do_member(self, form):
        member = self.call(
            services.add_member_by_personnummer,
            form,
            group=self.object,
            **form_values(form, "personnummer", "name", "area"),
        )
        return self.done(_("The member is registered."), page_url("member", member))

    def do_sanctions(self, form):
        self.call(
            services.decide_sanctions,
            form,
            group=self.object,
            incident=form.cleaned_data["incident"],
            levers=form.levers(),
        )
        return self.done(_("The sanctions are decided."))

    def _sanction(self, form):
        sanction = Sanction.objects.filter(
            pk=form.cleaned_data["sanction"], decision__group=self.object
        ).first()
        if sanction is None:
            raise ValidationError(_("Unknown sanction."))
        return sanction

    def do_withdraw_sanction(self, form):
        self.call(
            services.withdraw_sanction,
            form,
            sanction=self._sanction(form),
            reason=form.cleaned_data["reason"],
        )
        self.object.refresh_from_db()
        if self.object.status == GroupStatus.INCIDENT_LINKED:
            return self.done(
                _(
                    "The lever is withdrawn. Every lever of the decision is withdrawn: the "
                    "decision has ended and the group is back at the linked incident."
                )
            )
        return self.done(_("The lever is withdrawn."))

    def do_sanction_step(self, form):
        self.call(
            services.sanction_step,
            form,
            sanction=self._sanction(form),
            name=form.cleaned_data["step"],
        )
        return self.done(_("Saved."))


# --- The member page ---------------------------------------------------------------------------


class MemberPageView(GviView):
    template_name = "workflows/gvi/member.html"
    actions = {
        "transition": forms.TransitionForm,
        "accept": forms.AcceptOfferForm,
        "notify": forms.RequestNotificationForm,
        "protected_identity": ProtectedIdentityForm,
    }
    transitions = ("select", "decline_offer")
    page_name = "member"
    queryset = GroupMember.objects.select_related("person", "group")
    selector = staticmethod(selectors.get_member_page)

    def service_calls(self):
        return {
            "protected_identity": ServiceCall(
                services.set_member_protected_identity,
                ("level",),
                _("The protected identity is saved."),
            )
        }

    def available(self):
        user = self.request.user
        names = {"transition"}
        if services.may_transition(user=user, obj=self.object, name="decline_offer"):
            names.add("accept")
        if policy.coordinates_gvi_or_police(user) and self.object.status != (
            MemberStatus.OFFER_ACCEPTED
        ):
            names.add("notify")
        if policy.may_set_gvi_protected_identity(user):
            names.add("protected_identity")
        return names

    def initial(self, name: str) -> dict:
        initial = super().initial(name)
        if name == "protected_identity":
            initial["level"] = self.object.person.protected_identity
        return initial

    def do_accept(self, form):
        case = self.call(
            services.accept_offer,
            form,
            member=self.object,
            **form_values(form, "programme", "reason"),
        )
        return self.done(_("The referral %(reference)s is opened.") % {"reference": case.reference})

    def do_notify(self, form):
        notification = self.call(
            services.request_notification,
            member=self.object,
            police_officer=form.cleaned_data["police_officer"],
        )
        return self.done(
            _("The custom notification is requested."), page_url("notification", notification)
        )


# --- Call-in and notification pages (read; the work is in their tasks) ----------------------


def open_tasks(process) -> list:
    """The open human tasks of a process, each with the URL of its page."""
    if process is None:
        return []
    return [
        (task, task.flow_task.reverse("index", args=[task.process_id, task.pk]))
        for task in process.task_set.filter(finished__isnull=True, flow_task_type="HUMAN")
    ]


class ProcessPageView(GviView):
    """The page of a GVI object that has a process (read; the work is in its tasks): the
    object's ``title`` and number, its body (``workflows/gvi/_<page_name>_body.html``), the
    process's open tasks and the timeline. The object is ``<page_name>_id`` of the URL, the
    ``selector``'s argument and the templates' variable ``page_name``."""

    template_name = "workflows/gvi/process_page.html"
    title = ""

    def context(self):
        return {
            **super().context(),
            "object": self.object,
            "title": self.title,
            "body_template": f"workflows/gvi/_{self.page_name}_body.html",
            "tasks": open_tasks(getattr(self.object, "process", None)),
        }


class CallInPageView(ProcessPageView):
    page_name = "call_in"
    title = _("Call-in")
    queryset = CallIn.objects.all()
    selector = staticmethod(selectors.get_call_in_page)


class NotificationPageView(ProcessPageView):
    page_name = "notification"
    title = _("Custom notification")
    queryset = CustomNotification.objects.select_related("member__person", "member__group")
    selector = staticmethod(selectors.get_notification_page)
