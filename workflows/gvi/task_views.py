"""The task views of GVI's flows (``workflows.gvi.flow``): the steps of a custom
notification and of a call-in, the notice of a member under 18 and the take-up of an
accepted offer of help. Thin, like the pages (``workflows.gvi.views``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import policy
from workflows.common.responses import form_values
from workflows.common.steps import form_steps
from workflows.gvi import forms, selectors, services
from workflows.gvi.models import CALL_IN_OPEN_STATES, CallInStatus, GroupMember, NotificationStatus
from workflows.gvi.views import GviView, ServiceCall, page_url


class TaskView(GviView):
    """A flow task: only at its own step and process (viewflow finds tasks by id alone).

    ``object_of(process)`` is the GVI object the task works on; ``page_name`` the URL
    name of that object's page, where a finished task leads."""

    template_name = "workflows/gvi/task.html"
    # The forms the page shows apart from its steps: the transitions as buttons (``offered``).
    shown_apart: tuple[str, ...] = ("transition",)

    def object_of(self, process):
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        self.activation = request.activation
        self.process = self.activation.process
        self.object = self.object_of(self.process)
        task = self.activation.task
        node = getattr(request.resolver_match, "node", None)
        if task.process_id != kwargs.get("process_pk") or (
            node is not None and task.flow_task.name != node.name
        ):
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def context(self):
        return {**super().context(), "task": self.activation.task}

    def forms_context(self, shown):
        steps = {name: form for name, form in shown.items() if name not in self.shown_apart}
        return {"steps": form_steps(self, steps)}

    def object_url(self):
        return page_url(self.page_name, self.object)

    def finish(self, message):
        self.activation.execute()
        messages.success(self.request, message)
        return HttpResponseRedirect(self.object_url())


class StepTaskView(TaskView):
    """A task whose forms and transitions are its step's (``as_view(step=...)``): the
    task is done once ``step_over()`` says its object has left the step.

    Its ``service_calls()`` (``GviView``) without a message end the task if the object
    has left the step."""

    step = ""
    STEP_ACTIONS: dict[str, dict[str, type]] = {}
    STEP_TRANSITIONS: dict[str, tuple[str, ...]] = {}

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.actions = self.STEP_ACTIONS[self.step]
        self.transitions = self.STEP_TRANSITIONS[self.step]

    def step_over(self) -> bool:
        raise NotImplementedError

    def after_step(self):
        if self.step_over():
            return self.finish(_("The step is done."))
        return self.done(_("Saved."))

    def do_transition(self, form):
        self.run_transition(form, self.object)
        return self.after_step()


class NotificationStepView(StepTaskView):
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
    labels = {
        "assess": (_("Legal assessment"), _("Record the legal assessment")),
        "approve": (_("The message"), _("Approve the message")),
        "messenger": (_("Add to the delivery team"), _("Add the messenger")),
        "schedule": (_("Schedule the visit"), _("Schedule the visit")),
        "deliver": (_("The delivery"), _("Record the delivery")),
        "follow_up": (_("Follow-up"), _("Record the follow-up")),
    }

    page_name = "notification"
    selector = staticmethod(selectors.get_notification_page)

    def service_calls(self):
        return {
            "approve": ServiceCall(services.approve_notification, ("message",)),
            "messenger": ServiceCall(services.add_messenger, ("kind", "description"), _("Saved.")),
            "schedule": ServiceCall(
                services.schedule_notification, ("scheduled_for",), _("The visit is scheduled.")
            ),
            "deliver": ServiceCall(
                services.record_delivery, ("offer_of_help", "response", "programme", "reason")
            ),
            "follow_up": ServiceCall(services.record_notification_follow_up, ("note",)),
        }

    def object_of(self, process):
        return process.notification

    def available(self):
        status = self.object.status
        s = NotificationStatus
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
        context = super().context()
        unmet = []
        for name in {"approve": ["approve"], "deliver": ["schedule", "deliver"]}.get(self.step, []):
            if self.object.status == NotificationStatus.NOT_REACHED:
                name = "retry" if name == "schedule" else name
            found = getattr(type(self.object), name)._django_fsm.get_transition(self.object.status)
            if found is not None:
                unmet += services.unmet_conditions(self.object, name)
        return {
            **context,
            "unmet": sorted(set(unmet)),
        }

    def step_over(self) -> bool:
        s = NotificationStatus
        return {
            "assess": self.object.status != s.REQUESTED and self.object.lawful is not None,
            "approve": self.object.status != s.LEGAL_ASSESSMENT,
            "deliver": self.object.status in (s.DELIVERED, s.CLOSED),
            "follow_up": self.object.status == s.CLOSED,
        }[self.step]

    def do_assess(self, form):
        self.call(
            services.record_legal_assessment,
            form,
            notification=self.object,
            **form_values(form, "lawful", "assessment"),
        )
        if self.object.lawful is False:
            return self.done(_("Saved."))
        return self.after_step()


class CallInStepView(StepTaskView):
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
    labels = {
        "attendee": (_("Invite a group member"), _("Add the attendee")),
        "speaker": (_("Speakers"), _("Set the speaker")),
        "attendance": (_("Attendance"), _("Record the attendance")),
        "hold": (_("Hold the call-in"), _("The call-in is held")),
        "cancel": (_("Cancel the call-in"), _("Cancel the call-in")),
    }
    # The follow-up is a button by each attendee (``_call_in_body.html``).
    shown_apart = ("transition", "follow_up")

    page_name = "call_in"
    selector = staticmethod(selectors.get_call_in_page)

    def service_calls(self):
        return {
            "attendee": ServiceCall(services.add_attendee, ("member",), _("Saved.")),
            "speaker": ServiceCall(services.set_speaker, ("role", "speaker"), _("Saved.")),
            "hold": ServiceCall(services.hold_call_in),
        }

    def object_of(self, process):
        return process.call_in

    def form_kwargs(self, name):
        if name == "attendance":
            return {"attendees": self.page().attendees}
        return {}

    def available(self):
        s = CallInStatus
        status = self.object.status
        if self.step == "plan":
            names = {"transition"}
            if status in (s.PLANNED, s.ATTENDEES_SELECTED):
                names.add("attendee")
            if status in CALL_IN_OPEN_STATES:
                names |= {"speaker", "cancel"}
            if status == s.INVITED:
                names |= {"attendance", "hold"}
            return names
        return {"transition", "follow_up"} if status == s.HELD else set()

    def context(self):
        context = super().context()
        unmet = []
        if self.object.status == CallInStatus.INVITED:
            unmet = services.unmet_conditions(self.object, "hold")
        return {
            **context,
            "unmet": unmet,
        }

    def render(self, built, status=200):
        if "attendee" in built:
            invited = {a.obj.member_id for a in self.page().attendees}
            field = built["attendee"].fields["member"]
            field.queryset = GroupMember.objects.filter(
                pk__in=[c.obj.pk for c in self.page().candidates]
            ).exclude(pk__in=invited)
            names = {c.obj.pk: c.name for c in self.page().candidates}
            field.label_from_instance = lambda m: f"{names.get(m.pk) or '—'} ({m.group.reference})"
        return super().render(built, status)

    def step_over(self) -> bool:
        return {
            "plan": self.object.status in (CallInStatus.HELD, CallInStatus.CANCELLED),
            "follow_up": self.object.status == CallInStatus.FOLLOWED_UP,
        }[self.step]

    def do_attendance(self, form):
        self.call(
            services.record_attendance,
            form,
            call_in=self.object,
            attendance=form.attendance(),
        )
        return self.done(_("Saved."))

    def do_cancel(self, form):
        self.call(
            services.transition,
            form,
            obj=self.object,
            name="cancel",
            cancel_reason=form.cleaned_data["cancel_reason"],
        )
        return self.after_step()

    def do_follow_up(self, form):
        attendee = self.object.attendees.filter(pk=form.cleaned_data["attendee"]).first()
        if attendee is None:
            raise ValidationError(_("Unknown attendee."))
        self.call(
            services.record_call_in_follow_up,
            form,
            attendee=attendee,
        )
        return self.done(_("Saved."))


class MemberNoticeView(TaskView):
    """A social-services participant's task about a group member (``object_of``): the
    member's page as the participant may see it, the task, its ``intro`` and what
    ``notice()`` adds; a finished task leads to the member's page."""

    allowed = staticmethod(policy.gvi_participant)
    page_name = "member"
    selector = staticmethod(selectors.get_member_page)
    intro = ""

    def notice(self) -> dict:
        return {}

    def context(self):
        return {
            **super().context(),
            **self.notice(),
            "intro": self.intro,
        }


class MinorNoticeView(MemberNoticeView):
    """Social services take note of a group member under 18."""

    actions = {"acknowledge": forms.TransitionForm}
    labels = {"acknowledge": (None, _("Noted"))}
    intro = _(
        "A person under 18 is registered as a member of a group. Consider a "
        "report of concern and the support social services can offer."
    )

    def object_of(self, process):
        return process.member

    def initial(self, name):
        return {"version": self.object.version, "transition": "acknowledge"}

    def do_acknowledge(self, form):
        self.call(services.acknowledge_minor_notice, member=self.object)
        return self.finish(_("Noted."))


class ReferralNoticeView(MemberNoticeView):
    """Social services take up the referral of a member who accepted the offer of help:
    the participant who takes it joins the referral case's team."""

    actions = {"take_up": forms.TakeUpForm}
    labels = {"take_up": (None, _("Take up the referral"))}
    intro = _(
        "The member accepted the offer of help and a referral is opened. Take it up: "
        "you join the case's team as a social worker and contact the member quickly."
    )

    def object_of(self, process):
        return process.accepted_member

    def initial(self, name):
        return {}

    def notice(self):
        case = self.object.referral_case
        return {
            "referral": {
                "case": case,
                "programme": self.object.get_referral_programme_display(),
                "closed": case is not None and case.closed_at is not None,
                "due": self.process.due,
                "overdue": self.process.due is not None and self.process.due < timezone.now(),
            }
        }

    def do_take_up(self, form):
        outcome = self.call(services.take_up_referral, member=self.object)
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
