"""Forms for person data: validation only; saving goes through ``casework.services``. And
how any form shows a service's refusal."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from casework import personnummer as pnr
from casework.models import Person
from casework.services import TEXT_LIMITS


def put_errors(form: forms.Form, error: ValidationError) -> None:
    """Attach a service's ``ValidationError`` to the form (unknown fields → form errors)."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


class PersonForm(forms.Form):
    """Register or correct a person. ``cleaned_data`` fits ``services.create_person``."""

    name = forms.CharField(label=_("Name"), max_length=TEXT_LIMITS["name"])
    personnummer = forms.CharField(
        label=_("Personal identity number"),
        max_length=pnr.MAX_INPUT_LENGTH,
        help_text=_("10 or 12 digits; a samordningsnummer is accepted."),
    )
    address = forms.CharField(label=_("Address"), max_length=TEXT_LIMITS["address"], required=False)
    phone = forms.CharField(label=_("Phone"), max_length=TEXT_LIMITS["phone"], required=False)
    note = forms.CharField(
        label=_("Note"), max_length=TEXT_LIMITS["note"], required=False, widget=forms.Textarea
    )
    gender = forms.ChoiceField(
        label=_("Gender"), choices=Person.Gender.choices, initial=Person.Gender.UNKNOWN
    )
    area = forms.ChoiceField(
        label=_("Area"), choices=Person.Area.choices, initial=Person.Area.OTHER
    )
    protected_identity = forms.TypedChoiceField(
        label=_("Protected identity"),
        choices=Person.ProtectedIdentity.choices,
        coerce=int,
        initial=Person.ProtectedIdentity.NONE,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The form's own max_length would answer before our validator: a long
        # input gets the personnummer message, not a generic one.
        self.fields["personnummer"].max_length = None
        self.fields["personnummer"].validators = []
        self.fields["personnummer"].widget.attrs["maxlength"] = pnr.MAX_INPUT_LENGTH

    def clean_personnummer(self) -> str:
        return pnr.normalise(self.cleaned_data["personnummer"])
