"""Forms of the GVI pages and tasks: input only; the services decide the rest."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.models import Organisation, Person, User
from workflows.common.forms import (
    PastDateField,
    PersonnummerField,
    VersionedForm,
    choice_buttons,
    date_field,
    text_field,
)
from workflows.gvi import models as gvi

TEXT = 10_000
# The browser's date-and-time picker; it posts ISO 8601 ("2026-11-28T18:30").
DATE_TIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name of the group"), max_length=200)
    area = forms.ChoiceField(label=_("Area"), choices=Person.Area.choices)
    size_band = forms.ChoiceField(label=_("Size"), choices=gvi.SizeBand.choices)
    notes = text_field(_("Notes"), rows=4, required=False, max_length=TEXT)


class NotesForm(VersionedForm):
    notes = text_field(_("Notes"), rows=4, required=False, max_length=TEXT)


class TransitionForm(VersionedForm):
    """A transition button: the transition's name travels with the version."""

    transition = forms.CharField(widget=forms.HiddenInput, max_length=50)


class MemberForm(VersionedForm):
    personnummer = PersonnummerField()
    # Needed for every number: asking for it only when the number is new would tell
    # whether it is registered (docs/adr/0015-lookups-leave-a-trace.md).
    name = forms.CharField(
        label=_("Name"),
        max_length=200,
        help_text=_("The name as you know it. A person registered before keeps the stored name."),
    )
    area = forms.ChoiceField(label=_("Area"), choices=Person.Area.choices)


class IncidentForm(forms.Form):
    date = PastDateField(label=_("Date"))
    area = forms.ChoiceField(label=_("Area"), choices=Person.Area.choices)
    kind = forms.ChoiceField(label=_("Type"), choices=gvi.Incident.Kind.choices)
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"),
        queryset=gvi.Group.objects.order_by("reference"),
        widget=forms.CheckboxSelectMultiple,
    )


class SanctionDecisionForm(VersionedForm):
    incident = forms.ModelChoiceField(label=_("Incident"), queryset=gvi.Incident.objects.none())

    def __init__(self, *args, group=None, **kwargs):
        super().__init__(*args, **kwargs)
        if group is not None:
            self.fields["incident"].queryset = group.incidents.all()
        self.fields["incident"].label_from_instance = lambda incident: (
            f"{incident.date:%Y-%m-%d} · {incident.get_kind_display()} · "
            f"{incident.get_area_display()}"
        )
        agencies = Organisation.objects.filter(
            is_active=True,
            kind__in=[Organisation.Kind.POLICE, Organisation.Kind.SOCIAL_SERVICES],
        )
        for lever, label in gvi.Lever.choices:
            self.fields[f"lever_{lever}"] = forms.ModelChoiceField(
                label=label, queryset=agencies, required=False, empty_label=_("Not used")
            )

    def levers(self):
        return [
            (lever, self.cleaned_data[f"lever_{lever}"])
            for lever in gvi.Lever.values
            if self.cleaned_data.get(f"lever_{lever}")
        ]


class SanctionStepForm(VersionedForm):
    sanction = forms.UUIDField(widget=forms.HiddenInput)
    step = forms.ChoiceField(
        choices=[("decide", "decide"), ("execute", "execute"), ("report", "report")],
        widget=forms.HiddenInput,
    )


class WithdrawSanctionForm(VersionedForm):
    """Withdraw one lever: its id, the version seen, and why (short, no personal data)."""

    sanction = forms.UUIDField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for withdrawing"),
        max_length=500,
        help_text=_("A short reason, e.g. the agency cannot carry it out. No names."),
    )


class EraseGroupForm(VersionedForm):
    reason = forms.CharField(
        label=_("Reason for erasing"),
        max_length=500,
        help_text=_("Kept in the access log, e.g. the retention decision. No names."),
    )
    confirmed = forms.BooleanField(
        label=_("I understand that the group's name and notes are destroyed for good"),
        required=True,
    )


class TakeUpForm(forms.Form):
    """Taking up a referral: the button is the whole form."""


class AcceptOfferForm(VersionedForm):
    programme = choice_buttons(_("Refer to"), gvi.ReferralProgramme.choices)
    reason = text_field(_("Reason for the referral"), max_length=2000)


def _police_officers():
    return User.objects.filter(
        is_active=True, organisation__kind=Organisation.Kind.POLICE
    ).order_by("last_name", "first_name")


class RequestNotificationForm(forms.Form):
    police_officer = forms.ModelChoiceField(label=_("Police officer"), queryset=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["police_officer"].queryset = _police_officers()
        self.fields["police_officer"].label_from_instance = lambda u: (
            u.get_full_name() or u.username
        )

    def clean_police_officer(self):
        officer = self.cleaned_data["police_officer"]
        if not policy.gvi_police(officer):
            raise ValidationError(_("Choose a police officer to assess and deliver."))
        return officer


class CallInForm(forms.Form):
    date = date_field(_("Date"))


# --- Task forms ---------------------------------------------------------------------------


class AttendeeForm(VersionedForm):
    member = forms.ModelChoiceField(label=_("Group member"), queryset=gvi.GroupMember.objects.all())


class SpeakerForm(VersionedForm):
    role = forms.ChoiceField(label=_("Speaker role"), choices=gvi.SpeakerRole.choices)
    speaker = forms.CharField(
        label=_("Speaker"),
        max_length=200,
        help_text=_("The speaker's role, e.g. imam, prosecutor."),
    )


class AttendanceForm(VersionedForm):
    """One yes/no per attendee (field ``attended_<id>``)."""

    def __init__(self, *args, attendees=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.attendee_ids = []
        for attendee in attendees:
            name = f"attended_{attendee.obj.pk}"
            self.attendee_ids.append(attendee.obj.pk)
            self.fields[name] = forms.TypedChoiceField(
                label=attendee.name or str(attendee.obj.member.group),
                choices=[("yes", _("Attended")), ("no", _("Did not attend"))],
                coerce=lambda value: value == "yes",
                widget=forms.RadioSelect,
            )

    def attendance(self):
        return {pk: self.cleaned_data[f"attended_{pk}"] for pk in self.attendee_ids}


class HoldForm(VersionedForm):
    """Hold the call-in: nothing to fill in (the guards say what is missing)."""


class CancelForm(VersionedForm):
    cancel_reason = forms.ChoiceField(label=_("Reason"), choices=gvi.CancelReason.choices)


class CallInFollowUpForm(VersionedForm):
    attendee = forms.UUIDField(widget=forms.HiddenInput)


class LegalAssessmentForm(VersionedForm):
    lawful = forms.TypedChoiceField(
        label=_("Outcome"),
        choices=[
            ("yes", _("Supports a custom notification")),
            ("no", _("Does not support it")),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    assessment = text_field(
        _("Legal assessment"),
        rows=5,
        help_text=_("Legal history, vulnerabilities, risks of the visit."),
        max_length=TEXT,
    )


class MessageForm(VersionedForm):
    message = text_field(_("The message"), rows=5, max_length=TEXT)


class MessengerForm(VersionedForm):
    kind = forms.ChoiceField(label=_("Messenger"), choices=gvi.MessengerKind.choices)
    description = forms.CharField(label=_("Who"), max_length=200)


class ScheduleForm(VersionedForm):
    scheduled_for = forms.DateTimeField(label=_("Visit (date and time)"), widget=DATE_TIME)


class DeliveryForm(VersionedForm):
    offer_of_help = text_field(_("Offer of help"), max_length=TEXT)
    response = choice_buttons(_("The member's response"), gvi.MemberResponse.choices)
    programme = forms.ChoiceField(
        label=_("Refer to (if accepted)"),
        choices=[("", "—"), *gvi.ReferralProgramme.choices],
        required=False,
    )
    reason = text_field(
        _("Reason for the referral (if accepted)"), rows=2, max_length=2000, required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("response") == gvi.MemberResponse.ACCEPTED:
            if not data.get("programme"):
                self.add_error("programme", _("Choose where to refer the member."))
            if not (data.get("reason") or "").strip():
                self.add_error("reason", _("This field is required."))
        return data


class FollowUpForm(VersionedForm):
    note = text_field(_("Follow-up"), max_length=TEXT)
