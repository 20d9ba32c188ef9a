"""Forms every programme's steps and pages share: input validation with Swedish messages,
no business rules.

The rules (who may, which state, which guards) live in the services and the
state machines; a ``ValidationError`` they raise is put back on the form.
"""

from __future__ import annotations

from typing import NamedTuple

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import personnummer as pnr
from casework.models import (
    Action,
    Case,
    CaseDecision,
    CaseMembership,
    Consent,
    Organisation,
    Person,
)
from casework.roles import POLICE_CONTACT, SOCIAL_WORKER

TEXT = 2_000
LONG_TEXT = 10_000


def text_field(label, *, rows: int = 3, max_length: int = TEXT, **kwargs) -> forms.CharField:
    """A free-text field shown as a text area of ``rows`` rows."""
    return forms.CharField(
        label=label,
        widget=forms.Textarea(attrs={"rows": rows}),
        max_length=max_length,
        **kwargs,
    )


def date_field(label, **kwargs) -> forms.DateField:
    """A date picked with the browser's date input."""
    return forms.DateField(label=label, widget=forms.DateInput(attrs={"type": "date"}), **kwargs)


class FutureDateField(forms.DateField):
    """A date picked with the browser's date input that must lie ahead (a review date)."""

    widget = forms.DateInput(attrs={"type": "date"})
    default_error_messages = {"past": _("The review date must be in the future.")}

    def validate(self, value):
        super().validate(value)
        if value and value <= timezone.localdate():
            raise ValidationError(self.error_messages["past"], code="past")


class PastDateField(forms.DateField):
    """A date picked with the browser's date input on which something happened: not after
    today (its ``error_messages["future"]`` says so in the form's words)."""

    widget = forms.DateInput(attrs={"type": "date"})
    default_error_messages = {"future": _("The date cannot be in the future.")}

    def validate(self, value):
        super().validate(value)
        if value and value > timezone.localdate():
            raise ValidationError(self.error_messages["future"], code="future")


def rejection_reason_field() -> forms.ChoiceField:
    """Why a referral or a concern is rejected: the close reasons that fit a rejection."""
    return forms.ChoiceField(
        label=_("Reason for rejecting"),
        choices=[("", "—")]
        + [
            (value, label)
            for value, label in Case.CloseReason.choices
            if value in ("not_eligible", "age_limit", "moved", "other")
        ],
        required=False,
    )


def require_rejection_reason(form, data: dict) -> None:
    """A rejection (the outcome ``form.REJECT``) needs its reason (``rejection_reason_field``);
    the reason "other" a note that says why."""
    if data.get("outcome") == form.REJECT and not data.get("close_reason"):
        form.add_error("close_reason", _("Choose the reason for rejecting."))
    if data.get("close_reason") == "other" and not data.get("note"):
        form.add_error("note", _("Describe the reason."))


def choice_buttons(label, choices, **kwargs) -> forms.ChoiceField:
    """A choice shown as radio buttons (an outcome, a level)."""
    return forms.ChoiceField(label=label, choices=choices, widget=forms.RadioSelect, **kwargs)


class When(NamedTuple):
    """A field's choice (``field`` set to ``value``) that makes another field required,
    and the error shown when that one is left empty (``VersionedForm.required_when``)."""

    field: str
    value: str
    message: str


class VersionedForm(forms.Form):
    """Carries the case version the user saw; the service refuses a stale one.

    ``required_when`` maps a field that is optional by itself to the choice that makes it
    required (``When``)."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    required_when: dict[str, When] = {}

    def clean(self):
        data = super().clean()
        if "version" in self.errors:
            # A hidden field's error is not shown with the form: say it where it is seen.
            from casework.services.cases import CaseConflict

            self.add_error(None, CaseConflict.message)
        for name, when in self.required_when.items():
            if data.get(when.field) == when.value and not data.get(name):
                self.add_error(name, when.message)
        return data


class TeamForm(VersionedForm):
    """A step that forms the case's team: accepting (the ``outcome`` ``ACCEPT``) names the
    lead social worker and the police contact officer."""

    ACCEPT = "accept"

    lead = forms.ModelChoiceField(label=_("Lead social worker"), queryset=None, required=False)
    police_contact = forms.ModelChoiceField(
        label=_("Police contact officer"), queryset=None, required=False
    )

    field_order = ["version", "outcome", "lead", "police_contact"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from casework.models import User

        active = User.objects.filter(is_active=True).select_related("organisation")
        self.fields["lead"].queryset = active.filter(groups__name=SOCIAL_WORKER)
        self.fields["police_contact"].queryset = active.filter(groups__name=POLICE_CONTACT)
        for name in ("lead", "police_contact"):
            self.fields[name].label_from_instance = lambda u: (
                f"{u.get_full_name() or u.username} ({u.organisation})"
            )

    def clean(self):
        data = super().clean()
        if data.get("outcome") == self.ACCEPT:
            if not data.get("lead"):
                self.add_error("lead", _("Choose the lead social worker."))
            # The police decision is the police contact's step: accepted without one, it
            # would have no owner (issue 14, finding 6).
            if not data.get("police_contact"):
                self.add_error("police_contact", _("Choose the police contact officer."))
        return data


class PersonnummerField(forms.CharField):
    """A personnummer or samordningsnummer as the user writes it, cleaned to its stored form
    (``casework.personnummer.normalise``); left empty where it is optional, ""."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Personal identity number"))
        kwargs.setdefault(
            "help_text", _("12 or 10 digits, e.g. 20090815-1234 (samordningsnummer accepted).")
        )
        super().__init__(max_length=20, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        try:
            return pnr.normalise(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class ReferralForm(forms.Form):
    personnummer = PersonnummerField()
    name = forms.CharField(label=_("Name"), max_length=200)
    area = forms.ChoiceField(label=_("Area"), choices=Person.Area.choices)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    reason = text_field(
        _("Reason for the referral"),
        rows=5,
        help_text=_("What worries you, and what is known of the risk of crime."),
    )


class GuardianForm(VersionedForm):
    guardian_name = forms.CharField(label=_("Guardian's name"), max_length=200)
    guardian_phone = forms.CharField(label=_("Guardian's phone"), max_length=40, required=False)


class ConsentForm(VersionedForm):
    giver = forms.ChoiceField(label=_("Given by"), choices=Consent.Giver.choices)
    guardian = forms.ChoiceField(label=_("Guardian"), required=False)
    decision = choice_buttons(_("Decision"), Consent.Decision.choices)
    form = forms.ChoiceField(label=_("Form"), choices=Consent.Form.choices)
    organisations = forms.ModelMultipleChoiceField(
        label=_("Organisations the consent covers"),
        queryset=Organisation.objects.filter(is_active=True).exclude(kind=Organisation.Kind.OTHER),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    purposes = forms.MultipleChoiceField(
        label=_("Purposes the consent covers"),
        choices=Consent.Purpose.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=Consent.Purpose.values,
        help_text=_("Other organisations see the case only for the purposes ticked."),
    )
    valid_until = date_field(_("Valid until"), required=False)
    required_when = {
        "purposes": When(
            "decision", Consent.Decision.GIVEN, _("Choose the purposes the consent covers.")
        )
    }

    def __init__(self, *args, guardians=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.set_guardians(guardians)

    def set_guardians(self, guardians) -> None:
        """The guardians to choose from (rows with ``obj`` and ``name``; a protected
        identity hides a guardian's name from all but the named handlers)."""
        self.fields["guardian"].choices = [("", "—")] + [
            (str(g.obj.pk), g.name or _("Guardian %(number)d") % {"number": number})
            for number, g in enumerate(guardians, 1)
        ]

    def clean_valid_until(self):
        value = self.cleaned_data.get("valid_until")
        if value and value < timezone.localdate():
            raise ValidationError(_("The date cannot be in the past."))
        return value


class DecisionForm(VersionedForm):
    decision = choice_buttons(_("Decision"), CaseDecision.Decision.choices)
    note = text_field(
        _("Motivation"),
        rows=4,
        max_length=LONG_TEXT,
        required=False,
        help_text=_("Required when deciding not to start."),
    )
    required_when = {
        "note": When(
            "decision", CaseDecision.Decision.DECLINE, _("Give the reason for not starting.")
        )
    }


class ActionForm(VersionedForm):
    kind = forms.ChoiceField(label=_("Action"), choices=Action.Kind.choices)
    organisation = forms.ModelChoiceField(
        label=_("Organisation"),
        queryset=Organisation.objects.filter(is_active=True).exclude(kind=Organisation.Kind.OTHER),
        required=False,
        help_text=_("Leave empty for your own organisation."),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[(Action.Status.PLANNED, _("Planned")), (Action.Status.DONE, _("Done"))],
    )
    date = date_field(_("Date"))
    note = text_field(_("Note"), max_length=LONG_TEXT, required=False)
    visibility = forms.ChoiceField(label=_("Visible to"), choices=Action.Visibility.choices)


def require_close_note(form, data: dict) -> None:
    """A case closed for another reason, or handed to the defector programme, needs a note
    that says why."""
    if data.get("note"):
        return
    if data.get("close_reason") == Case.CloseReason.OTHER:
        form.add_error("note", _("Describe the reason."))
    elif data.get("close_reason") == Case.CloseReason.DEFECTOR_PROGRAMME:
        form.add_error("note", _("Describe why the person is referred to the defector programme."))


class ContinueOrCloseForm(VersionedForm):
    """A review of a case: it continues with a new review date, or is closed (for one of
    the programme's reasons: a subclass adds the ``close_reason`` field)."""

    CONTINUE = "continue"
    CLOSE = "close"

    outcome = choice_buttons(
        _("Outcome"),
        [(CONTINUE, _("Continue with a new review date")), (CLOSE, _("Close the case"))],
    )
    review_date = date_field(_("Next review date"), required=False)
    required_when = {
        "review_date": When("outcome", CONTINUE, _("Set the next review date.")),
        "close_reason": When("outcome", CLOSE, _("Choose the close reason.")),
    }


class FollowUpForm(ContinueOrCloseForm):
    close_reason = forms.ChoiceField(
        label=_("Close reason"), choices=[("", "—"), *Case.CloseReason.choices], required=False
    )
    note = text_field(_("Follow-up note"), rows=4, max_length=LONG_TEXT, required=False)

    def clean(self):
        data = super().clean()
        review = data.get("review_date")
        if data.get("outcome") == self.CONTINUE and review and review <= timezone.localdate():
            self.add_error("review_date", _("The review date must be in the future."))
        if data.get("outcome") == self.CLOSE and data.get("close_reason"):
            require_close_note(self, data)
        return data


class CloseForm(VersionedForm):
    close_reason = forms.ChoiceField(label=_("Close reason"), choices=Case.CloseReason.choices)
    note = text_field(_("Note"), max_length=LONG_TEXT, required=False)

    def clean(self):
        data = super().clean()
        require_close_note(self, data)
        return data


class BreakGlassForm(forms.Form):
    reason = text_field(
        _("Reason"),
        min_length=10,
        help_text=_("Why you must open this case now. The access is logged and reviewed."),
    )


class WithdrawConsentForm(forms.Form):
    consent = forms.UUIDField(widget=forms.HiddenInput)


class CaseSearchForm(forms.Form):
    personnummer = PersonnummerField(required=False, help_text="")


# --- The team page (``workflows.common.team_page``) ------------------------------------------


def _case_worker_choice(label) -> forms.ModelChoiceField:
    """An active case worker, shown with their organisation (the service decides whether
    they fit the seat)."""
    from casework.models import User
    from casework.roles import CASE_ROLES

    field = forms.ModelChoiceField(
        label=label,
        queryset=User.objects.filter(
            is_active=True, organisation__isnull=False, groups__name__in=CASE_ROLES
        )
        .select_related("organisation")
        .distinct()
        .order_by("first_name", "last_name", "username"),
    )
    field.label_from_instance = lambda u: f"{u.get_full_name() or u.username} ({u.organisation})"
    return field


def _reason_field():
    return text_field(_("Reason"), help_text=_("Shown in the case's timeline."))


class ReplaceMemberForm(VersionedForm):
    """Give a seat (the lead social worker, the police contact officer) to someone else."""

    role = forms.ChoiceField(
        label=_("Role"),
        choices=[
            (value, label)
            for value, label in CaseMembership.Role.choices
            if value in (CaseMembership.Role.LEAD, CaseMembership.Role.POLICE_CONTACT)
        ],
    )
    member = _case_worker_choice(_("New holder"))
    reason = _reason_field()


class AddMemberForm(VersionedForm):
    member = _case_worker_choice(_("Member"))
    role = forms.ChoiceField(label=_("Role"), choices=())
    reason = _reason_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from casework.services.team_changes import ADDABLE_ROLES

        self.fields["role"].choices = [
            (value, label) for value, label in CaseMembership.Role.choices if value in ADDABLE_ROLES
        ]


class EndMembershipForm(VersionedForm):
    membership_id = forms.TypedChoiceField(label=_("Member"), coerce=int, choices=())
    reason = _reason_field()

    def __init__(self, *args, team=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["membership_id"].choices = [
            (m.pk, f"{m.user.get_full_name() or m.user.username} — {m.get_role_display()}")
            for m in team
        ]
