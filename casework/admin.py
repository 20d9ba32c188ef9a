"""The administrator's side: users and organisations, never case data.

Administrators (Django staff without superuser rights) manage accounts. They
cannot grant superuser rights or single permissions, and cannot change the
roles of their own account: the separation of duties between the people who
hand out access and the people who use it or audit it.

Four eyes on power (docs/adr/0014-four-eyes-on-power.md): the admin's own
forms cannot grant a role that opens case data, the access log or account
management, set a password, change the disclosure fields of a legal basis, add
a legal basis or change an organisation's type — for anyone, superusers
included. Those go through a change request (``casework.services.administration``)
that another administrator approves on the request's page.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.mfa import require_step_up
from casework.models import (
    AdminChangeRequest,
    ExternalIdentity,
    IdentityProvider,
    IdentityProviderOrganisation,
    LegalBasis,
    Organisation,
    User,
)
from casework.selectors.administration import describe_change
from casework.services import administration, signin, sso

Kind = AdminChangeRequest.Kind
NONE = "\u2013"  # an en dash: no value


def _form_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's refusal on the form (per field where it names one)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _request_page(model_admin, request, *, title, form, intro, obj=None, status=200):
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "intro": intro,
        "opts": model_admin.opts,
        "original": obj,
        "subtitle": str(obj) if obj is not None else None,
    }
    return TemplateResponse(request, "admin/casework/four_eyes_form.html", context, status=status)


def _created(request, change_request) -> HttpResponseRedirect:
    messages.success(
        request,
        _("The request is recorded. It takes effect when another administrator approves it."),
    )
    return HttpResponseRedirect(
        reverse("admin:casework_adminchangerequest_change", args=[change_request.pk])
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=administration.REASON_MAX_LENGTH,
    )


# --- Organisations ------------------------------------------------------------------------


class OrganisationKindForm(ReasonForm):
    kind = forms.ChoiceField(label=_("New type"), choices=Organisation.Kind.choices)
    field_order = ["kind", "reason"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
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
        url = reverse("admin:casework_organisation_request_kind", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Request a change of type"))

    def get_urls(self):
        return [
            path(
                "<path:object_id>/begar-typ/",
                self.admin_site.admin_view(self.request_kind_view),
                name="casework_organisation_request_kind",
            ),
            *super().get_urls(),
        ]

    def request_kind_view(self, request, object_id):
        if not policy.can_request_admin_change(request.user, Kind.ORGANISATION_KIND):
            raise PermissionDenied
        organisation = self.get_object(request, unquote(object_id))
        if organisation is None:
            raise Http404
        form = OrganisationKindForm(
            request.POST if request.method == "POST" else None, initial={"kind": organisation.kind}
        )
        if request.method == "POST" and form.is_valid():
            try:
                change_request = administration.request_organisation_kind(
                    user=request.user,
                    organisation=organisation,
                    kind=form.cleaned_data["kind"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                return _created(request, change_request)
        return _request_page(
            self,
            request,
            title=_("Request a change of organisation type"),
            form=form,
            obj=organisation,
            intro=_(
                "The type decides what the organisation's users may see of other "
                "organisations' cases. The change takes effect when another administrator "
                "approves it."
            ),
            status=400 if form.errors else 200,
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
class UserAdmin(DjangoUserAdmin):
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
        if obj is None or obj.pk is None:
            return NONE
        return format_html(
            '<a class="button" href="{}">{}</a> <a class="button" href="{}">{}</a>',
            reverse("admin:casework_user_request_role", args=[obj.pk]),
            _("Request a role"),
            reverse("admin:casework_user_request_password_link", args=[obj.pk]),
            _("Request a set-password link"),
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/begar-roll/",
                self.admin_site.admin_view(self.request_role_view),
                name="casework_user_request_role",
            ),
            path(
                "<path:object_id>/begar-losenordslank/",
                self.admin_site.admin_view(self.request_password_link_view),
                name="casework_user_request_password_link",
            ),
            *super().get_urls(),
        ]

    def user_change_password(self, request, id, form_url=""):
        raise PermissionDenied(
            _(
                "An administrator never sets another user's password: request a "
                "set-password link, which another administrator approves."
            )
        )

    def _target(self, request, object_id, kind):
        if not policy.can_request_admin_change(request.user, kind):
            raise PermissionDenied
        target = self.get_object(request, unquote(object_id))
        if target is None:
            raise Http404
        return target

    def request_role_view(self, request, object_id):
        target = self._target(request, object_id, Kind.GRANT_ROLE)
        form = RoleRequestForm(request.POST if request.method == "POST" else None, target=target)
        if request.method == "POST" and form.is_valid():
            try:
                change_request = administration.request_role_grant(
                    user=request.user,
                    target=target,
                    group=form.cleaned_data["role"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                return _created(request, change_request)
        return _request_page(
            self,
            request,
            title=_("Request a role"),
            form=form,
            obj=target,
            intro=_(
                "The role is granted when another administrator approves the request. An "
                "account never holds both a case role and the auditor role."
            ),
            status=400 if form.errors else 200,
        )

    def request_password_link_view(self, request, object_id):
        target = self._target(request, object_id, Kind.PASSWORD_LINK)
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                change_request = administration.request_password_link(
                    user=request.user, target=target, reason=form.cleaned_data["reason"]
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                return _created(request, change_request)
        return _request_page(
            self,
            request,
            title=_("Request a set-password link"),
            form=form,
            obj=target,
            intro=_(
                "When another administrator approves, the user gets a link that works once "
                "and for a limited time, and sets their own password. The link is e-mailed "
                "to the account's address when e-mail is configured; otherwise it is shown "
                "once to the approving administrator, who hands it to the user."
            ),
            status=400 if form.errors else 200,
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


# --- Legal bases --------------------------------------------------------------------------


class LegalBasisRequestForm(ReasonForm):
    code = forms.SlugField(label=_("code"), max_length=50)
    name = forms.CharField(label=_("name"), max_length=200)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    kind = forms.ChoiceField(label=_("kind"), choices=LegalBasis.Kind.choices)
    discloser_kinds = forms.MultipleChoiceField(
        label=_("may be disclosed by"),
        choices=Organisation.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: any organisation."),
    )
    recipient_kinds = forms.MultipleChoiceField(
        label=_("may be disclosed to"),
        choices=Organisation.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: any organisation."),
    )
    max_age = forms.IntegerField(
        label=_("only for persons younger than"), required=False, min_value=1, max_value=150
    )
    is_active = forms.BooleanField(label=_("active"), required=False)
    field_order = [*administration.LEGAL_BASIS_FIELDS, "reason"]

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in administration.LEGAL_BASIS_FIELDS}


@admin.register(LegalBasis)
class LegalBasisAdmin(admin.ModelAdmin):
    """The register of legal bases: data, maintained by administrators (no case data).

    Name and description are edited here; every field that decides disclosure,
    and a new legal basis, needs a request another administrator approves.
    """

    list_display = ["name", "code", "kind", "max_age", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]
    fields = [
        "code",
        "name",
        "description",
        "kind",
        "discloser_kinds",
        "recipient_kinds",
        "max_age",
        "is_active",
        "four_eyes",
    ]
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
        if obj is None or obj.pk is None:
            return NONE
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:casework_legalbasis_request_change", args=[obj.pk]),
            _("Request a change"),
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_request_legal_basis": policy.can_request_admin_change(
                request.user, Kind.LEGAL_BASIS
            ),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path(
                "begar-ny/",
                self.admin_site.admin_view(self.request_view),
                name="casework_legalbasis_request_new",
            ),
            path(
                "<path:object_id>/begar-andring/",
                self.admin_site.admin_view(self.request_view),
                name="casework_legalbasis_request_change",
            ),
            *super().get_urls(),
        ]

    def request_view(self, request, object_id=None):
        if not policy.can_request_admin_change(request.user, Kind.LEGAL_BASIS):
            raise PermissionDenied
        basis = None
        initial = {"is_active": True}
        if object_id is not None:
            basis = self.get_object(request, unquote(object_id))
            if basis is None:
                raise Http404
            initial = {name: getattr(basis, name) for name in administration.LEGAL_BASIS_FIELDS}
        form = LegalBasisRequestForm(
            request.POST if request.method == "POST" else None, initial=initial
        )
        if request.method == "POST" and form.is_valid():
            try:
                change_request = administration.request_legal_basis(
                    user=request.user,
                    basis=basis,
                    values=form.values(),
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                return _created(request, change_request)
        return _request_page(
            self,
            request,
            title=_("Request a new legal basis") if basis is None else _("Request a change"),
            form=form,
            obj=basis,
            intro=_(
                "A legal basis decides what one organisation may see of another's cases, on "
                "every case that recorded it. The change takes effect when another "
                "administrator approves it."
            ),
            status=400 if form.errors else 200,
        )


# --- Change requests ----------------------------------------------------------------------


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", _("Approve")), ("reject", _("Reject"))],
        error_messages={
            "invalid_choice": _("Choose approve or reject."),
            "required": _("Choose approve or reject."),
        },
    )
    reason = forms.CharField(
        label=_("Reason (required to reject)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=administration.REASON_MAX_LENGTH,
    )


@admin.register(AdminChangeRequest)
class AdminChangeRequestAdmin(admin.ModelAdmin):
    """Requests waiting for a second administrator, and the decided ones (read-only)."""

    list_display = [
        "id",
        "kind",
        "target_type",
        "target_id",
        "decision",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["decision", "kind"]
    list_select_related = ["requested_by", "decided_by"]
    ordering = ["-requested_at", "-id"]

    def has_view_permission(self, request, obj=None):
        return policy.can_manage_users(request.user) and policy.can_view_change_requests(
            request.user
        )

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        change_request = self.get_object(request, unquote(object_id))
        if change_request is None:
            raise Http404
        # Approving needs a fresh second factor first (docs/adr/0017-mfa-and-step-up.md).
        if (
            request.method == "POST"
            and request.POST.get("decision") == "approve"
            and (step_up := require_step_up(request)) is not None
        ):
            return step_up
        form = DecisionForm(request.POST if request.method == "POST" else None)
        approval = None
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    if form.cleaned_data["decision"] == "approve":
                        approval = administration.approve(
                            user=request.user,
                            request_id=change_request.pk,
                            reason=form.cleaned_data["reason"],
                        )
                    else:
                        administration.reject(
                            user=request.user,
                            request_id=change_request.pk,
                            reason=form.cleaned_data["reason"],
                        )
                except ValidationError as error:
                    _form_errors(form, error)
                    status = 400
                else:
                    if approval is None or not approval.link:
                        messages.success(request, _("The decision is recorded."))
                        return HttpResponseRedirect(request.path)
                    change_request.refresh_from_db()
            else:
                status = 400
        can_decide = (
            change_request.decision == AdminChangeRequest.Decision.PENDING
            and change_request.requested_by_id != request.user.pk
            and policy.can_decide_admin_change(request.user, change_request.kind)
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change request %(id)s") % {"id": change_request.pk},
            "opts": self.opts,
            "original": change_request,
            "change_request": change_request,
            "change_rows": describe_change(change_request),
            "form": form,
            "can_decide": can_decide,
            "own_request": change_request.requested_by_id == request.user.pk,
            "approval": approval,
        }
        response = TemplateResponse(
            request, "admin/casework/four_eyes_decide.html", context, status=status
        )
        if approval is not None and approval.link:
            response["Cache-Control"] = "no-store"
        return response


# --- Single sign-on (docs/adr/0018-single-sign-on.md) -------------------------------------
#
# Providers and linked identities are edited here (each save an access-log event), but
# used for sign-in only once a second administrator approved exactly what is saved: any
# later change waits for a new approval.


def _sso_status(obj, kind, url_name):
    if obj is None or obj.pk is None:
        return NONE
    if administration.sso_approved(obj):
        return _("Approved by a second administrator")
    url = reverse(f"admin:{url_name}", args=[obj.pk])
    return format_html(
        '{} <a class="button" href="{}">{}</a>',
        _("Not in use: waits for a second administrator's approval."),
        url,
        _("Request approval"),
    )


class _SsoAdmin(admin.ModelAdmin):
    """Shared: audited saves and the request-approval page."""

    sso_kind: str
    sso_url_name: str
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_delete_permission(self, request, obj=None):
        return False  # switch a provider off instead; links are history

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        changed = list(form.changed_data)
        for formset in formsets:
            if formset.has_changed():
                changed.append(formset.prefix)
        sso.record_configuration_change(
            user=request.user, obj=form.instance, fields=changed, created=not change
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/begar-godkannande/",
                self.admin_site.admin_view(self.request_approval_view),
                name=self.sso_url_name,
            ),
            *super().get_urls(),
        ]

    def request_approval_view(self, request, object_id):
        if not policy.can_request_admin_change(request.user, self.sso_kind):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                change_request = self.request_approval(
                    request.user, obj, form.cleaned_data["reason"]
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                return _created(request, change_request)
        return _request_page(
            self,
            request,
            title=_("Request approval for single sign-on"),
            form=form,
            obj=obj,
            intro=_(
                "Who may sign in as whom is decided here. The configuration as it is now "
                "is used for sign-in when another administrator approves it; any later "
                "change waits for a new approval."
            ),
            status=400 if form.errors else 200,
        )


class IdentityProviderOrganisationInline(admin.TabularInline):
    model = IdentityProviderOrganisation
    extra = 0


@admin.register(IdentityProvider)
class IdentityProviderAdmin(_SsoAdmin):
    sso_kind = Kind.IDENTITY_PROVIDER
    sso_url_name = "casework_identityprovider_request_approval"
    list_display = ["name", "slug", "issuer", "is_active", "approval"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "issuer"]
    inlines = [IdentityProviderOrganisationInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "approval"]}),
        (
            _("Provider"),
            {
                "fields": [
                    "issuer",
                    "client_id",
                    "client_secret_env",
                    "scopes",
                    "authorization_endpoint",
                    "token_endpoint",
                    "userinfo_endpoint",
                    "jwks_uri",
                ],
                "description": _(
                    "Leave the endpoints empty to read them from the provider's discovery document."
                ),
            },
        ),
        (_("Matching and assurance"), {"fields": ["match_claim", "account_field", "acr_levels"]}),
    ]
    readonly_fields = ["approval"]

    @admin.display(description=_("Approval"))
    def approval(self, obj):
        return _sso_status(obj, self.sso_kind, self.sso_url_name)

    def request_approval(self, user, obj, reason):
        return administration.request_identity_provider(user=user, provider=obj, reason=reason)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(_SsoAdmin):
    sso_kind = Kind.EXTERNAL_IDENTITY
    sso_url_name = "casework_externalidentity_request_approval"
    list_display = ["user", "provider", "subject", "approval"]
    list_filter = ["provider"]
    list_select_related = ["user", "provider"]
    search_fields = ["subject", "user__username"]
    fields = ["user", "provider", "subject", "approval"]
    readonly_fields = ["approval"]

    def get_queryset(self, request):
        # Superuser accounts are made by the operator only and are never linked here.
        return super().get_queryset(request).filter(user__is_superuser=False)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("Approval"))
    def approval(self, obj):
        return _sso_status(obj, self.sso_kind, self.sso_url_name)

    def request_approval(self, user, obj, reason):
        return administration.request_external_identity(user=user, identity=obj, reason=reason)


# --- Sign-in locks (django-axes; docs/adr/0016-lockout-sessions-and-headers.md) ------------


@admin.register(AccessAttempt)
class SignInLockAdmin(admin.ModelAdmin):
    """Counted failed sign-ins per account name and address. "Lift the lock" deletes them
    (through ``casework.services.signin``, an access-log event each); nothing else changes
    here, and the form data axes keeps is not shown."""

    list_display = [
        "username",
        "ip_address",
        "failures_since_start",
        "attempt_time",
        "counted_until",
    ]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    fields = ["username", "ip_address", "user_agent", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    actions = ["lift_locks"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # only through "Lift the lock", which is logged

    def has_lift_permission(self, request):
        return policy.can_lift_sign_in_locks(request.user)

    @admin.display(description=_("Counted until"))
    def counted_until(self, obj):
        return obj.attempt_time + settings.AXES_COOLOFF_TIME

    @admin.action(description=_("Lift the lock"), permissions=["lift"])
    def lift_locks(self, request, queryset):
        count = signin.lift_locks(
            user=request.user, attempt_ids=queryset.values_list("pk", flat=True)
        )
        messages.success(
            request, _("Lock lifted: %(count)d counted failures removed.") % {"count": count}
        )
