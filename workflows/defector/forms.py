"""Forms of the defector programme's steps: input validation with Swedish messages.

The rules (who may, which state, routing) live in the services and the state
machine; a ``ValidationError`` they raise is put back on the form.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models import Case, Person
from workflows.common.forms import (
    LONG_TEXT,
    ContinueOrCloseForm,
    FutureDateField,
    ReferralForm,
    TeamForm,
    VersionedForm,
    When,
    choice_buttons,
    text_field,
)
from workflows.defector.models import CLOSE_REASONS, Level, ReferralSource


def future_date(label) -> FutureDateField:
    return FutureDateField(
        label=label, error_messages={"past": _("The date must be in the future.")}
    )


def _future(value):
    if value is not None and value <= timezone.localdate():
        raise ValidationError(_("The date must be in the future."))
    return value


class DefectorReferralForm(ReferralForm):
    source = forms.ChoiceField(label=_("Referred by"), choices=ReferralSource.choices)
    protected_identity = forms.TypedChoiceField(
        label=_("Protected identity"),
        choices=Person.ProtectedIdentity.choices,
        coerce=int,
        initial=Person.ProtectedIdentity.NONE,
        help_text=_("Used for a new person only; a registered person keeps theirs."),
    )

    field_order = ["personnummer", "name", "area", "phone", "address", "protected_identity"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = _(
            "Why the person wants to leave, and what is known of the threat."
        )


class InitialCheckForm(TeamForm):
    REJECT = "reject"

    outcome = choice_buttons(
        _("Outcome"),
        [
            (TeamForm.ACCEPT, _("Accept: form the team and ask for consent")),
            (REJECT, _("Not eligible")),
        ],
    )
    note = text_field(
        _("Initial check"),
        rows=4,
        required=False,
        help_text=_("Motivation to leave, the threat described, other agencies involved."),
    )
    required_when = {"note": When("outcome", REJECT, _("Describe the reason."))}


class PoliceCheckForm(VersionedForm):
    note = text_field(
        _("Result of the police check"),
        rows=4,
        max_length=LONG_TEXT,
        help_text=_("Criminal history and intelligence from police systems, in brief."),
    )


class AssessmentForm(VersionedForm):
    level = choice_buttons(_("Threat level"), Level.choices)
    evidence_person = forms.BooleanField(
        label=_("Evidence person (bevisperson)"),
        required=False,
        help_text=_("An evidence person never enters the local programme."),
    )
    national_programme = forms.BooleanField(
        label=_("Case for the national programme (särskilt personsäkerhetsarbete)"),
        required=False,
    )
    basis = text_field(_("Basis of the assessment"), rows=4, max_length=LONG_TEXT)
    valid_until = future_date(_("Valid until"))
    next_review = future_date(_("Next reassessment"))

    def clean(self):
        data = super().clean()
        valid, review = data.get("valid_until"), data.get("next_review")
        if valid and review and review > valid:
            self.add_error(
                "next_review", _("The next reassessment must be on or before the end date.")
            )
        return data

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "level",
                "evidence_person",
                "national_programme",
                "basis",
                "valid_until",
                "next_review",
            )
        }


class LoweringDecisionForm(VersionedForm):
    APPROVE = "approve"
    REJECT = "reject"

    outcome = choice_buttons(
        _("Decision on the lowered threat level"),
        [(APPROVE, _("Approve the lowering")), (REJECT, _("Reject the lowering"))],
    )
    note = text_field(_("Motivation"), required=False)
    required_when = {"note": When("outcome", REJECT, _("Give the reason for rejecting."))}


class ConditionsForm(VersionedForm):
    no_crime = forms.BooleanField(label=_("No crime"))
    drug_free = forms.BooleanField(label=_("Drug-free"))
    drug_tests = forms.BooleanField(label=_("Accepts drug tests"))


class ActivateForm(VersionedForm):
    review_date = future_date(_("Review date"))


_CLOSE_CHOICES = [
    (value, label) for value, label in Case.CloseReason.choices if value in CLOSE_REASONS
]


class ReviewForm(ContinueOrCloseForm):
    close_reason = forms.ChoiceField(
        label=_("Close reason"), choices=[("", "—"), *_CLOSE_CHOICES], required=False
    )
    note = text_field(_("Review note"), rows=4, max_length=LONG_TEXT, required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == self.CONTINUE:
            try:
                _future(data.get("review_date"))
            except ValidationError as error:
                self.add_error("review_date", error)
        return data


class DefectorCloseForm(VersionedForm):
    close_reason = forms.ChoiceField(label=_("Close reason"), choices=_CLOSE_CHOICES)
    note = text_field(_("Note"), max_length=LONG_TEXT, required=False)


class SupportCloseForm(DefectorCloseForm):
    close_reason = forms.ChoiceField(
        label=_("Close reason"),
        choices=[*_CLOSE_CHOICES, (Case.CloseReason.OTHER, Case.CloseReason.OTHER.label)],
    )
    required_when = {
        "note": When("close_reason", Case.CloseReason.OTHER, _("Describe the reason."))
    }


class ProtectedIdentityForm(VersionedForm):
    level = forms.TypedChoiceField(
        label=_("Protected identity"), choices=Person.ProtectedIdentity.choices, coerce=int
    )
