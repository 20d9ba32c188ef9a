"""GVI pages and task views: thin. Access, decryption and logging happen in
``workflows.gvi.selectors`` and ``workflows.gvi.services``.

A user outside GVI gets 403 on every page (the refusal is in the access log); a
bad form is shown again with its errors (400); a stale form gets the "changed by
someone else" banner (409).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.mfa import require_step_up
from casework.services.transitions import Conflict, Denied
from workflows.common.responses import denied, put_errors
from workflows.gvi import forms, selectors, services

PURPOSE = _("GVI: group violence intervention")


def _url(name: str, obj) -> str:
    return reverse(f"gvi:{name}", args=[obj.pk])


class GviView(View):
    """A GVI page: refused (403, logged) to anyone who does not take part in GVI.

    ``actions`` maps an action name to its form class; ``do_<name>(form)`` runs the
    services for a valid form, in one savepoint.
    """

    template_name = ""
    actions: dict[str, type] = {}
    allowed = staticmethod(policy.gvi_access)

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

    def form_kwargs(self, name: str) -> dict:
        return {}

    def initial(self, name: str) -> dict:
        obj = getattr(self, "object", None)
        return {"version": obj.version} if obj is not None and hasattr(obj, "version") else {}

    def build_forms(self, bound: str | None = None, data=None) -> dict:
        built = {}
        for name, form_class in self.actions.items():
            kwargs = {"auto_id": f"id_{name}-%s", **self.form_kwargs(name)}
            if name == bound:
                built[name] = form_class(data, **kwargs)
            else:
                built[name] = form_class(initial=self.initial(name), **kwargs)
        return built

    def available(self) -> set[str]:
        return set(self.actions)

    def context(self) -> dict:
        return {}

    def render(self, built: dict, status: int = 200):
        try:
            context = self.context()
        except selectors.GviNotFound:
            return denied(self.request)
        available = self.available()
        context["forms"] = {name: form for name, form in built.items() if name in available}
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        return self.render(self.build_forms())

    def post(self, request, *args, **kwargs):
        action = request.POST.get("_action", "")
        if action not in self.actions or action not in self.available():
            messages.error(request, _("That step is not available now."))
            return self.render(self.build_forms(), status=400)
        built = self.build_forms(bound=action, data=request.POST)
        form = built[action]
        if form.is_valid():
            try:
                with transaction.atomic():
                    return getattr(self, f"do_{action}")(form)
            except ValidationError as error:
                put_errors(form, error)
            except Conflict as conflict:
                messages.error(request, conflict.message)
                self.refresh()
                return self.render(self.build_forms(), status=409)
            except Denied:
                return denied(request)
        return self.render(built, status=400)

    def refresh(self) -> None:
        obj = getattr(self, "object", None)
        if obj is not None:
            obj.refresh_from_db()

    def done(self, message, url=None):
        messages.success(self.request, message)
        return HttpResponseRedirect(url or self.request.path)

    def version(self, form) -> int | None:
        return form.cleaned_data.get("version")

    def run_transition(self, form, obj):
        name = form.cleaned_data["transition"]
        if name not in self.transitions:
            raise ValidationError(_("That step is not available now."))
        services.transition(
            user=self.request.user,
            obj=obj,
            name=name,
            purpose=str(PURPOSE),
            expected_version=self.version(form),
        )
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


class GroupCreateView(GviView):
    template_name = "workflows/gvi/form_page.html"
    actions = {"create": forms.GroupForm}
    allowed = staticmethod(policy.coordinates_gvi_or_police)

    def context(self):
        return {"title": _("Register a group"), "submit": _("Register the group")}

    def do_create(self, form):
        data = form.cleaned_data
        group = services.create_group(
            user=self.request.user,
            purpose=str(PURPOSE),
            name=data["name"],
            notes=data["notes"] or None,
            area=data["area"],
            size_band=data["size_band"],
        )
        return self.done(_("The group is registered."), _url("group", group))


class IncidentCreateView(GviView):
    template_name = "workflows/gvi/form_page.html"
    actions = {"create": forms.IncidentForm}
    allowed = staticmethod(policy.gvi_police)

    def context(self):
        return {"title": _("Record an incident"), "submit": _("Record the incident")}

    def do_create(self, form):
        data = form.cleaned_data
        services.record_incident(
            user=self.request.user,
            purpose=str(PURPOSE),
            date=data["date"],
            area=data["area"],
            kind=data["kind"],
            groups=data["groups"],
        )
        return self.done(_("The incident is recorded."), reverse("gvi:index"))


class CallInCreateView(GviView):
    template_name = "workflows/gvi/form_page.html"
    actions = {"create": forms.CallInForm}
    allowed = staticmethod(policy.coordinates_gvi)

    def context(self):
        return {"title": _("Plan a call-in"), "submit": _("Plan the call-in")}

    def do_create(self, form):
        call_in = services.create_call_in(
            user=self.request.user, purpose=str(PURPOSE), date=form.cleaned_data["date"]
        )
        return self.done(_("The call-in is planned."), _url("call_in", call_in))


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

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(services.Group, pk=kwargs["group_id"])

    def form_kwargs(self, name):
        return {"group": self.object} if name == "sanctions" else {}

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
        if policy.may_erase_gvi_group(user) and group.status == services.gvi.GroupStatus.DORMANT:
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
        page = selectors.get_group_page(
            user=self.request.user, purpose=str(PURPOSE), group=self.object
        )
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
            "page": page,
            "group": self.object,
            "offered": self.offered(self.object),
            "decisions": decisions,
            "unmet_sanctions": services.unmet_conditions(self.object, "decide_sanctions")
            if self.object.status == services.gvi.GroupStatus.INCIDENT_LINKED
            else [],
        }

    def do_transition(self, form):
        return self.run_transition(form, self.object)

    def do_notes(self, form):
        services.update_group_notes(
            user=self.request.user,
            purpose=str(PURPOSE),
            group=self.object,
            notes=form.cleaned_data["notes"] or None,
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))

    def do_member(self, form):
        data = form.cleaned_data
        member = services.add_member_by_personnummer(
            user=self.request.user,
            purpose=str(PURPOSE),
            group=self.object,
            personnummer=data["personnummer"],
            name=data["name"],
            area=data["area"],
            expected_version=self.version(form),
        )
        return self.done(_("The member is registered."), _url("member", member))

    def do_sanctions(self, form):
        services.decide_sanctions(
            user=self.request.user,
            purpose=str(PURPOSE),
            group=self.object,
            incident=form.cleaned_data["incident"],
            levers=form.levers(),
            expected_version=self.version(form),
        )
        return self.done(_("The sanctions are decided."))

    def _sanction(self, form):
        sanction = services.Sanction.objects.filter(
            pk=form.cleaned_data["sanction"], decision__group=self.object
        ).first()
        if sanction is None:
            raise ValidationError(_("Unknown sanction."))
        return sanction

    def do_withdraw_sanction(self, form):
        sanction = self._sanction(form)
        services.withdraw_sanction(
            user=self.request.user,
            purpose=str(PURPOSE),
            sanction=sanction,
            reason=form.cleaned_data["reason"],
            expected_version=self.version(form),
        )
        self.object.refresh_from_db()
        if self.object.status == services.gvi.GroupStatus.INCIDENT_LINKED:
            return self.done(
                _(
                    "The lever is withdrawn. Every lever of the decision is withdrawn: the "
                    "decision has ended and the group is back at the linked incident."
                )
            )
        return self.done(_("The lever is withdrawn."))

    def do_erase(self, form):
        services.erase_group(
            user=self.request.user,
            purpose=str(PURPOSE),
            group=self.object,
            reason=form.cleaned_data["reason"],
            confirmed=form.cleaned_data["confirmed"],
            expected_version=self.version(form),
        )
        return self.done(_("The group is erased: its data key is destroyed."))

    def do_sanction_step(self, form):
        sanction = services.Sanction.objects.filter(
            pk=form.cleaned_data["sanction"], decision__group=self.object
        ).first()
        if sanction is None:
            raise ValidationError(_("Unknown sanction."))
        services.sanction_step(
            user=self.request.user,
            purpose=str(PURPOSE),
            sanction=sanction,
            name=form.cleaned_data["step"],
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))


# --- The member page ---------------------------------------------------------------------------


class MemberPageView(GviView):
    template_name = "workflows/gvi/member.html"
    actions = {
        "transition": forms.TransitionForm,
        "accept": forms.AcceptOfferForm,
        "notify": forms.RequestNotificationForm,
    }
    transitions = ("select", "decline_offer")

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(
            services.GroupMember.objects.select_related("person", "group"), pk=kwargs["member_id"]
        )

    def available(self):
        user = self.request.user
        names = {"transition"}
        if services.may_transition(user=user, obj=self.object, name="decline_offer"):
            names.add("accept")
        if policy.coordinates_gvi_or_police(user) and self.object.status != (
            services.gvi.MemberStatus.OFFER_ACCEPTED
        ):
            names.add("notify")
        return names

    def context(self):
        page = selectors.get_member_page(
            user=self.request.user, purpose=str(PURPOSE), member=self.object
        )
        return {"page": page, "member": self.object, "offered": self.offered(self.object)}

    def do_transition(self, form):
        return self.run_transition(form, self.object)

    def do_accept(self, form):
        case = services.accept_offer(
            user=self.request.user,
            purpose=str(PURPOSE),
            member=self.object,
            programme=form.cleaned_data["programme"],
            reason=form.cleaned_data["reason"],
            expected_version=self.version(form),
        )
        return self.done(_("The referral %(reference)s is opened.") % {"reference": case.reference})

    def do_notify(self, form):
        notification = services.request_notification(
            user=self.request.user,
            purpose=str(PURPOSE),
            member=self.object,
            police_officer=form.cleaned_data["police_officer"],
        )
        return self.done(
            _("The custom notification is requested."), _url("notification", notification)
        )


# --- Call-in and notification pages (read; the work is in their tasks) ----------------------


def _open_tasks(process, user):
    if process is None:
        return []
    return [
        (task, task.flow_task.reverse("index", args=[task.process_id, task.pk]))
        for task in process.task_set.filter(finished__isnull=True, flow_task_type="HUMAN")
    ]


class CallInPageView(GviView):
    template_name = "workflows/gvi/call_in.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(services.CallIn, pk=kwargs["call_in_id"])

    def context(self):
        page = selectors.get_call_in_page(
            user=self.request.user, purpose=str(PURPOSE), call_in=self.object
        )
        process = getattr(self.object, "process", None)
        return {"page": page, "call_in": self.object, "tasks": _open_tasks(process, None)}


class NotificationPageView(GviView):
    template_name = "workflows/gvi/notification.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(
            services.CustomNotification.objects.select_related("member__person", "member__group"),
            pk=kwargs["notification_id"],
        )

    def context(self):
        page = selectors.get_notification_page(
            user=self.request.user, purpose=str(PURPOSE), notification=self.object
        )
        process = getattr(self.object, "process", None)
        return {"page": page, "notification": self.object, "tasks": _open_tasks(process, None)}


# --- Flow task views ---------------------------------------------------------------------------


class TaskMixin:
    """A flow task: only at its own step and process (viewflow finds tasks by id alone)."""

    template_name = "workflows/gvi/task.html"

    def dispatch(self, request, *args, **kwargs):
        self.activation = request.activation
        task = self.activation.task
        node = getattr(request.resolver_match, "node", None)
        if task.process_id != kwargs.get("process_pk") or (
            node is not None and task.flow_task.name != node.name
        ):
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def finish(self, message):
        self.activation.execute()
        messages.success(self.request, message)
        return HttpResponseRedirect(self.object_url())


class NotificationStepView(TaskMixin, GviView):
    """The steps of a custom notification: assess, approve, deliver, follow up."""

    step = ""
    STEP_ACTIONS = {
        "assess": {"assess": forms.LegalAssessmentForm, "transition": forms.TransitionForm},
        "approve": {"approve": forms.MessageForm, "transition": forms.TransitionForm},
        "deliver": {
            "messenger": forms.MessengerForm,
            "schedule": forms.ScheduleForm,
            "deliver": forms.DeliveryForm,
            "transition": forms.TransitionForm,
        },
        "follow_up": {"follow_up": forms.FollowUpForm},
    }
    STEP_TRANSITIONS = {
        "assess": ("reject",),
        "approve": ("reject",),
        "deliver": ("not_reached", "give_up"),
        "follow_up": (),
    }

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.actions = self.STEP_ACTIONS[self.step]
        self.transitions = self.STEP_TRANSITIONS[self.step]

    def dispatch(self, request, *args, **kwargs):
        self.object = request.activation.process.notification
        return super().dispatch(request, *args, **kwargs)

    def object_url(self):
        return _url("notification", self.object)

    def available(self):
        status = self.object.status
        s = services.gvi.NotificationStatus
        names = {"transition"} & set(self.actions)
        if self.step == "assess" and status in (s.REQUESTED, s.LEGAL_ASSESSMENT):
            names.add("assess")
        elif self.step == "approve" and status == s.LEGAL_ASSESSMENT:
            names.add("approve")
        elif self.step == "deliver":
            if status in (s.APPROVED, s.NOT_REACHED, s.SCHEDULED):
                names.add("messenger")
            if status in (s.APPROVED, s.NOT_REACHED):
                names.add("schedule")
            if status == s.SCHEDULED:
                names.add("deliver")
        elif self.step == "follow_up" and status in (s.DELIVERED, s.FOLLOW_UP):
            names.add("follow_up")
        return names

    def context(self):
        page = selectors.get_notification_page(
            user=self.request.user, purpose=str(PURPOSE), notification=self.object
        )
        unmet = []
        for name in {"approve": ["approve"], "deliver": ["schedule", "deliver"]}.get(self.step, []):
            if self.object.status == services.gvi.NotificationStatus.NOT_REACHED:
                name = "retry" if name == "schedule" else name
            found = getattr(type(self.object), name)._django_fsm.get_transition(self.object.status)
            if found is not None:
                unmet += services.unmet_conditions(self.object, name)
        return {
            "page": page,
            "notification": self.object,
            "task": self.activation.task,
            "offered": self.offered(self.object),
            "unmet": sorted(set(unmet)),
        }

    def _step_over(self):
        s = services.gvi.NotificationStatus
        over = {
            "assess": self.object.status != s.REQUESTED and self.object.lawful is not None,
            "approve": self.object.status != s.LEGAL_ASSESSMENT,
            "deliver": self.object.status in (s.DELIVERED, s.CLOSED),
            "follow_up": self.object.status == s.CLOSED,
        }[self.step]
        if over:
            return self.finish(_("The step is done."))
        return self.done(_("Saved."))

    def do_transition(self, form):
        self.run_transition(form, self.object)
        return self._step_over()

    def do_assess(self, form):
        services.record_legal_assessment(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            lawful=form.cleaned_data["lawful"],
            assessment=form.cleaned_data["assessment"],
            expected_version=self.version(form),
        )
        if self.object.lawful is False:
            return self.done(_("Saved."))
        return self._step_over()

    def do_approve(self, form):
        services.approve_notification(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            message=form.cleaned_data["message"],
            expected_version=self.version(form),
        )
        return self._step_over()

    def do_messenger(self, form):
        services.add_messenger(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            kind=form.cleaned_data["kind"],
            description=form.cleaned_data["description"],
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))

    def do_schedule(self, form):
        services.schedule_notification(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            scheduled_for=form.cleaned_data["scheduled_for"],
            expected_version=self.version(form),
        )
        return self.done(_("The visit is scheduled."))

    def do_deliver(self, form):
        data = form.cleaned_data
        services.record_delivery(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            offer_of_help=data["offer_of_help"],
            response=data["response"],
            programme=data["programme"],
            reason=data["reason"],
            expected_version=self.version(form),
        )
        return self._step_over()

    def do_follow_up(self, form):
        services.record_notification_follow_up(
            user=self.request.user,
            purpose=str(PURPOSE),
            notification=self.object,
            note=form.cleaned_data["note"],
            expected_version=self.version(form),
        )
        return self._step_over()


class CallInStepView(TaskMixin, GviView):
    """Planning and holding a call-in, then the follow-up with each attendee."""

    step = ""
    STEP_ACTIONS = {
        "plan": {
            "attendee": forms.AttendeeForm,
            "speaker": forms.SpeakerForm,
            "attendance": forms.AttendanceForm,
            "transition": forms.TransitionForm,
            "hold": forms.HoldForm,
            "cancel": forms.CancelForm,
        },
        "follow_up": {"follow_up": forms.CallInFollowUpForm, "transition": forms.TransitionForm},
    }
    STEP_TRANSITIONS = {
        "plan": ("select_attendees", "invite"),
        "follow_up": ("complete_follow_up",),
    }

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.actions = self.STEP_ACTIONS[self.step]
        self.transitions = self.STEP_TRANSITIONS[self.step]

    def dispatch(self, request, *args, **kwargs):
        self.object = request.activation.process.call_in
        return super().dispatch(request, *args, **kwargs)

    def object_url(self):
        return _url("call_in", self.object)

    def page(self):
        if not hasattr(self, "_page"):
            self._page = selectors.get_call_in_page(
                user=self.request.user, purpose=str(PURPOSE), call_in=self.object
            )
        return self._page

    def form_kwargs(self, name):
        if name == "attendance":
            return {"attendees": self.page().attendees}
        return {}

    def available(self):
        s = services.gvi.CallInStatus
        status = self.object.status
        if self.step == "plan":
            names = {"transition"}
            if status in (s.PLANNED, s.ATTENDEES_SELECTED):
                names.add("attendee")
            if status in services.gvi.CALL_IN_OPEN_STATES:
                names |= {"speaker", "cancel"}
            if status == s.INVITED:
                names |= {"attendance", "hold"}
            return names
        return {"transition", "follow_up"} if status == s.HELD else set()

    def context(self):
        unmet = []
        if self.object.status == services.gvi.CallInStatus.INVITED:
            unmet = services.unmet_conditions(self.object, "hold")
        return {
            "page": self.page(),
            "call_in": self.object,
            "task": self.activation.task,
            "offered": self.offered(self.object),
            "unmet": unmet,
        }

    def render(self, built, status=200):
        if "attendee" in built:
            invited = {a.obj.member_id for a in self.page().attendees}
            field = built["attendee"].fields["member"]
            field.queryset = services.GroupMember.objects.filter(
                pk__in=[c.obj.pk for c in self.page().candidates]
            ).exclude(pk__in=invited)
            names = {c.obj.pk: c.name for c in self.page().candidates}
            field.label_from_instance = lambda m: f"{names.get(m.pk) or '—'} ({m.group.reference})"
        return super().render(built, status)

    def _after(self):
        s = services.gvi.CallInStatus
        over = {
            "plan": self.object.status in (s.HELD, s.CANCELLED),
            "follow_up": self.object.status == s.FOLLOWED_UP,
        }[self.step]
        if over:
            return self.finish(_("The step is done."))
        return self.done(_("Saved."))

    def do_transition(self, form):
        self.run_transition(form, self.object)
        return self._after()

    def do_attendee(self, form):
        services.add_attendee(
            user=self.request.user,
            purpose=str(PURPOSE),
            call_in=self.object,
            member=form.cleaned_data["member"],
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))

    def do_speaker(self, form):
        services.set_speaker(
            user=self.request.user,
            purpose=str(PURPOSE),
            call_in=self.object,
            role=form.cleaned_data["role"],
            speaker=form.cleaned_data["speaker"],
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))

    def do_attendance(self, form):
        services.record_attendance(
            user=self.request.user,
            purpose=str(PURPOSE),
            call_in=self.object,
            attendance=form.attendance(),
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))

    def do_hold(self, form):
        services.hold_call_in(
            user=self.request.user,
            purpose=str(PURPOSE),
            call_in=self.object,
            expected_version=self.version(form),
        )
        return self._after()

    def do_cancel(self, form):
        services.transition(
            user=self.request.user,
            obj=self.object,
            name="cancel",
            purpose=str(PURPOSE),
            expected_version=self.version(form),
            cancel_reason=form.cleaned_data["cancel_reason"],
        )
        return self._after()

    def do_follow_up(self, form):
        attendee = self.object.attendees.filter(pk=form.cleaned_data["attendee"]).first()
        if attendee is None:
            raise ValidationError(_("Unknown attendee."))
        services.record_call_in_follow_up(
            user=self.request.user,
            purpose=str(PURPOSE),
            attendee=attendee,
            expected_version=self.version(form),
        )
        return self.done(_("Saved."))


class MinorNoticeView(TaskMixin, GviView):
    """Social services take note of a group member under 18."""

    actions = {"acknowledge": forms.TransitionForm}
    allowed = staticmethod(policy.gvi_participant)

    def dispatch(self, request, *args, **kwargs):
        self.object = request.activation.process.member
        return super().dispatch(request, *args, **kwargs)

    def initial(self, name):
        return {"version": self.object.version, "transition": "acknowledge"}

    def object_url(self):
        return _url("member", self.object)

    def context(self):
        page = selectors.get_member_page(
            user=self.request.user, purpose=str(PURPOSE), member=self.object
        )
        return {
            "page": page,
            "member": self.object,
            "task": self.activation.task,
            "intro": _(
                "A person under 18 is registered as a member of a group. Consider a "
                "report of concern and the support social services can offer."
            ),
        }

    def do_acknowledge(self, form):
        services.acknowledge_minor_notice(
            user=self.request.user, purpose=str(PURPOSE), member=self.object
        )
        return self.finish(_("Noted."))


class ReferralNoticeView(TaskMixin, GviView):
    """Social services take up the referral of a member who accepted the offer of help:
    the participant who takes it joins the referral case's team."""

    actions = {"take_up": forms.TakeUpForm}
    allowed = staticmethod(policy.gvi_participant)

    def dispatch(self, request, *args, **kwargs):
        self.process = request.activation.process
        self.object = self.process.accepted_member
        return super().dispatch(request, *args, **kwargs)

    def initial(self, name):
        return {}

    def object_url(self):
        return _url("member", self.object)

    def context(self):
        page = selectors.get_member_page(
            user=self.request.user, purpose=str(PURPOSE), member=self.object
        )
        case = self.object.referral_case
        return {
            "page": page,
            "member": self.object,
            "task": self.activation.task,
            "referral": {
                "case": case,
                "programme": self.object.get_referral_programme_display(),
                "closed": case is not None and case.closed_at is not None,
                "due": self.process.due,
                "overdue": self.process.due is not None and self.process.due < timezone.now(),
            },
            "intro": _(
                "The member accepted the offer of help and a referral is opened. Take it up: "
                "you join the case's team as a social worker and contact the member quickly."
            ),
        }

    def do_take_up(self, form):
        outcome = services.take_up_referral(
            user=self.request.user, purpose=str(PURPOSE), member=self.object
        )
        case = self.object.referral_case
        self.activation.execute()
        if outcome is services.TakeUp.CLOSED:
            messages.info(
                self.request,
                _(
                    "The referral %(reference)s was closed before it was taken up: "
                    "there is no team to join. The task is done."
                )
                % {"reference": case.reference},
            )
            return HttpResponseRedirect(self.object_url())
        if outcome is services.TakeUp.ALREADY_ON_TEAM:
            message = _("You are already on the team of %(reference)s.")
        else:
            message = _("You are on the team of %(reference)s as a social worker.")
        messages.success(self.request, message % {"reference": case.reference})
        return HttpResponseRedirect(reverse("arenden:case", kwargs={"case_id": case.pk}))
