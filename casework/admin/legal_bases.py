"""The register of legal bases in the admin: data, maintained by administrators. Every
field that decides disclosure, and a new legal basis, is a request another administrator
approves."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.admin.four_eyes import (
    Kind,
    ReasonForm,
    RequestPages,
    buttons,
    posted,
    request_page,
    requested_object,
)
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
class LegalBasisAdmin(RequestPages, admin.ModelAdmin):
    """The register of legal bases: data, maintained by administrators (no case data).

    Name and description are edited here; every field that decides disclosure,
    and a new legal basis, needs a request another administrator approves.
    """

    list_display = ["name", "code", "kind", "max_age", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]
    fields = [*administration.LEGAL_BASIS_FIELDS, "four_eyes"]
    readonly_fields = [*administration.LEGAL_BASIS_DISCLOSURE_FIELDS, "four_eyes"]
    change_list_template = "admin/casework/legalbasis/change_list.html"

    def has_add_permission(self, request):
        # A new legal basis is a request another administrator approves.
        return False

    def has_delete_permission(self, request, obj=None):
        # Recorded decisions refer to their basis: deactivate instead.
        return False

    @admin.display(description=_("Disclosure (four eyes)"))
    def four_eyes(self, obj):
        return buttons(obj, ("casework_legalbasis_request_change", _("Request a change")))

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_request_legal_basis": policy.can_request_admin_change(
                request.user, Kind.LEGAL_BASIS
            ),
        }
        return super().changelist_view(request, extra_context)

    def request_pages(self):
        return [
            ("begar-ny/", self.request_view, "casework_legalbasis_request_new"),
            (
                "<path:object_id>/begar-andring/",
                self.request_view,
                "casework_legalbasis_request_change",
            ),
        ]

    def request_view(self, request, object_id=None):
        if object_id is None:
            if not policy.can_request_admin_change(request.user, Kind.LEGAL_BASIS):
                raise PermissionDenied
            basis = None
            initial = {"is_active": True}
        else:
            basis = requested_object(self, request, object_id, Kind.LEGAL_BASIS)
            initial = {name: getattr(basis, name) for name in administration.LEGAL_BASIS_FIELDS}
        form = LegalBasisRequestForm(posted(request), initial=initial)
        return request_page(
            self,
            request,
            form=form,
            submit=lambda data: administration.request_legal_basis(
                user=request.user, basis=basis, values=form.values(), reason=data["reason"]
            ),
            title=_("Request a new legal basis") if basis is None else _("Request a change"),
            obj=basis,
            intro=_(
                "A legal basis decides what one organisation may see of another's cases, on "
                "every case that recorded it. The change takes effect when another "
                "administrator approves it."
            ),
        )
