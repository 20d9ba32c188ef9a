"""The register of legal bases in the admin: data, maintained by administrators. Every
field that decides disclosure, and a new legal basis, is a request another administrator
approves."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from casework.admin.four_eyes import Kind, ReasonForm, RequestedRegister
from casework.models import LegalBasis, Organisation
from casework.services import administration


def _organisation_kinds(label) -> forms.MultipleChoiceField:
    """A choice of organisation kinds, none meaning any."""
    return forms.MultipleChoiceField(
        label=label,
        choices=Organisation.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: any organisation."),
    )


class LegalBasisRequestForm(ReasonForm):
    code = forms.SlugField(label=_("code"), max_length=50)
    name = forms.CharField(label=_("name"), max_length=200)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    kind = forms.ChoiceField(label=_("kind"), choices=LegalBasis.Kind.choices)
    discloser_kinds = _organisation_kinds(_("may be disclosed by"))
    recipient_kinds = _organisation_kinds(_("may be disclosed to"))
    max_age = forms.IntegerField(
        label=_("only for persons younger than"), required=False, min_value=1, max_value=150
    )
    is_active = forms.BooleanField(label=_("active"), required=False)
    field_order = [*administration.LEGAL_BASIS_FIELDS, "reason"]

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in administration.LEGAL_BASIS_FIELDS}


@admin.register(LegalBasis)
class LegalBasisAdmin(RequestedRegister, admin.ModelAdmin):
    """The register of legal bases: data, maintained by administrators (no case data).

    Name and description are edited here; every field that decides disclosure,
    and a new legal basis, needs a request another administrator approves
    (recorded decisions refer to their basis: deactivate instead of deleting).
    """

    list_display = ["name", "code", "kind", "max_age", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]
    fields = [*administration.LEGAL_BASIS_FIELDS, "four_eyes"]
    readonly_fields = [*administration.LEGAL_BASIS_DISCLOSURE_FIELDS, "four_eyes"]
    request_kind = Kind.LEGAL_BASIS

    @admin.display(description=_("Disclosure (four eyes)"))
    def four_eyes(self, obj):
        return self.change_button(obj)

    request_form = LegalBasisRequestForm
    new_entry_initial = {"is_active": True}
    request_new_title = _("Request a new legal basis")
    request_intro = _(
        "A legal basis decides what one organisation may see of another's cases, on "
        "every case that recorded it. The change takes effect when another "
        "administrator approves it."
    )

    def submit_request(self, *, user, entry, values, reason):
        return administration.request_legal_basis(
            user=user, basis=entry, values=values, reason=reason
        )
