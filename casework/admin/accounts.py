"""Organisations and user accounts in the admin. A change of an organisation's type, a
role that opens case data, the access log or accounts, and a set-password link are
requested here and applied once a second administrator approves."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from casework import policy
from casework.admin.four_eyes import (
    NONE,
    Kind,
    ReasonForm,
    RequestPages,
    buttons,
    posted,
    reason_request_page,
    request_page,
    requested_object,
)
from casework.models import Organisation, User
from casework.services import administration, team_changes

# --- Organisations ------------------------------------------------------------------------


class OrganisationKindForm(ReasonForm):
    kind = forms.ChoiceField(label=_("New type"), choices=Organisation.Kind.choices)
    field_order = ["kind", "reason"]


@admin.register(Organisation)
class OrganisationAdmin(RequestPages, admin.ModelAdmin):
    list_display = ["name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]

    def get_fields(self, request, obj=None):
        fields = ["name", "kind", "is_active"]
        return [*fields, "four_eyes"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        # A new organisation has no users yet: its type is set when it is added.
        return ["kind", "four_eyes"] if obj is not None else []

    @admin.display(description=_("Change of type"))
    def four_eyes(self, obj):
        return buttons(obj, ("casework_organisation_request_kind", _("Request a change of type")))

    def request_pages(self):
        return [
            (
                "<path:object_id>/begar-typ/",
                self.request_kind_view,
                "casework_organisation_request_kind",
            ),
        ]

    def request_kind_view(self, request, object_id):
        organisation = requested_object(self, request, object_id, Kind.ORGANISATION_KIND)
        return request_page(
            self,
            request,
            form=OrganisationKindForm(posted(request), initial={"kind": organisation.kind}),
            submit=lambda data: administration.request_organisation_kind(
                user=request.user,
                organisation=organisation,
                kind=data["kind"],
                reason=data["reason"],
            ),
            title=_("Request a change of organisation type"),
            obj=organisation,
            intro=_(
                "The type decides what the organisation's users may see of other "
                "organisations' cases. The change takes effect when another administrator "
                "approves it."
            ),
        )


# --- Users --------------------------------------------------------------------------------


class AccountCreationForm(forms.ModelForm):
    """A new account: a name and an organisation. No password (the user sets their
    own through an approved link) and no role (roles are granted afterwards)."""

    class Meta:
        model = User
        fields = ["username", "organisation"]

    def save(self, commit=True):
        user = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
        return user


class AccountChangeForm(forms.ModelForm):
    """The account form: roles may be removed here, and roles that open nothing but
    statistics added; every other role needs an approved request."""

    class Meta:
        model = User
        fields = [
            "username",
            "first_name",
            "last_name",
            "email",
            "organisation",
            "groups",
            "is_active",
            "is_staff",
        ]

    def clean_groups(self):
        groups = self.cleaned_data.get("groups")
        if groups is None or "groups" not in self.fields:
            return groups
        before = (
            set(self.instance.groups.values_list("pk", flat=True)) if self.instance.pk else set()
        )
        guarded = [
            group.name
            for group in groups
            if group.pk not in before and policy.role_needs_four_eyes(group)
        ]
        if guarded:
            raise ValidationError(
                _(
                    "The role %(roles)s gives access to case data, the access log or "
                    "accounts: request it with “Request a role”, and another "
                    "administrator approves it."
                ),
                params={"roles": ", ".join(sorted(guarded))},
                code="four_eyes",
            )
        permissions = set()
        for group in groups:
            permissions |= policy.role_permissions(group)
        if policy.roles_conflict(permissions):
            raise ValidationError(
                _("An account cannot hold both a case role and the auditor role."),
                code="role_conflict",
            )
        return groups


class RoleRequestForm(ReasonForm):
    role = forms.ModelChoiceField(label=_("Role"), queryset=Group.objects.none())
    field_order = ["role", "reason"]

    def __init__(self, *args, target: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = Group.objects.exclude(
            pk__in=target.groups.values_list("pk", flat=True)
        ).order_by("name")


@admin.register(User)
class UserAdmin(RequestPages, DjangoUserAdmin):
    form = AccountChangeForm
    add_form = AccountCreationForm
    list_display = ["username", "first_name", "last_name", "organisation", "is_active", "is_staff"]
    list_filter = ["organisation", "groups", "is_active", "is_staff"]
    list_select_related = ["organisation"]
    fieldsets = (
        (None, {"fields": ("username", "password_status")}),
        (_("Personal details"), {"fields": ("first_name", "last_name", "email")}),
        (_("Organisation and roles"), {"fields": ("organisation", "groups", "four_eyes")}),
        (_("Status"), {"fields": ("is_active", "is_staff")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "description": _(
                    "The account gets no password and no role here: request a role and a "
                    "set-password link for it once it is created; another administrator "
                    "approves them."
                ),
                "fields": ("username", "organisation"),
            },
        ),
    )
    readonly_fields = ["last_login", "date_joined", "password_status", "four_eyes"]
    filter_horizontal = ["groups"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            # Deactivated or without a case role: it leaves its case teams, its open tasks
            # go back to their queues and the coordinators are told (ADR 0026).
            left = team_changes.account_changed(user=request.user, account_id=form.instance.pk)
            if left:
                self.message_user(
                    request,
                    ngettext(
                        "The account left the team of %(count)d case; its coordinators "
                        "have been reminded.",
                        "The account left the teams of %(count)d cases; their coordinators "
                        "have been reminded.",
                        len(left),
                    )
                    % {"count": len(left)},
                )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            fields += ["groups", "is_staff", "is_active", "organisation"]
        return fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not request.user.is_superuser:
            # A superuser account is out of an administrator's reach.
            queryset = queryset.filter(is_superuser=False)
        return queryset

    @admin.display(description=_("Password"))
    def password_status(self, obj):
        if obj is None or obj.pk is None:
            return NONE
        return _("Set") if obj.has_usable_password() else _("Not set")

    @admin.display(description=_("Requests (four eyes)"))
    def four_eyes(self, obj):
        return buttons(
            obj,
            ("casework_user_request_role", _("Request a role")),
            ("casework_user_request_password_link", _("Request a set-password link")),
        )

    def request_pages(self):
        return [
            ("<path:object_id>/begar-roll/", self.request_role_view, "casework_user_request_role"),
            (
                "<path:object_id>/begar-losenordslank/",
                self.request_password_link_view,
                "casework_user_request_password_link",
            ),
        ]

    def user_change_password(self, request, id, form_url=""):
        raise PermissionDenied(
            _(
                "An administrator never sets another user's password: request a "
                "set-password link, which another administrator approves."
            )
        )

    def request_role_view(self, request, object_id):
        target = requested_object(self, request, object_id, Kind.GRANT_ROLE)
        return request_page(
            self,
            request,
            form=RoleRequestForm(posted(request), target=target),
            submit=lambda data: administration.request_role_grant(
                user=request.user, target=target, group=data["role"], reason=data["reason"]
            ),
            title=_("Request a role"),
            obj=target,
            intro=_(
                "The role is granted when another administrator approves the request. An "
                "account never holds both a case role and the auditor role."
            ),
        )

    def request_password_link_view(self, request, object_id):
        return reason_request_page(
            self,
            request,
            object_id,
            Kind.PASSWORD_LINK,
            submit=lambda user, obj, reason: administration.request_password_link(
                user=user, target=obj, reason=reason
            ),
            title=_("Request a set-password link"),
            intro=_(
                "When another administrator approves, the user gets a link that works once "
                "and for a limited time, and sets their own password. The link is e-mailed "
                "to the account's address when e-mail is configured; otherwise it is shown "
                "once to the approving administrator, who hands it to the user."
            ),
        )


# Viewflow registers its Process and Task models in the admin; their data
# belongs to cases, which administrators must not see.
for _model_name in ("Process", "Task"):
    from viewflow.workflow import models as _viewflow_models

    _model = getattr(_viewflow_models, _model_name)
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


# django-otp registers its devices in the admin, with a page that shows a TOTP secret
# and its QR code: nobody but the account holder sees a second factor
# (docs/adr/0017-mfa-and-step-up.md).
def _unregister_otp_devices() -> None:
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (TOTPDevice, StaticDevice):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_otp_devices()
