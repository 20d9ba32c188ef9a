"""Single sign-on and sign-in locks in the admin.

Identity providers and linked identities are edited here (each save an access-log
event), but used for sign-in only once a second administrator approved exactly what is
saved: any later change waits for a new approval (docs/adr/0018-single-sign-on.md).
Counted failed sign-ins (django-axes) are only read and lifted here
(docs/adr/0016-lockout-sessions-and-headers.md).
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.admin.four_eyes import (
    Kind,
    NoWrites,
    RequestPages,
    approval_cell,
    reason_request_page,
)
from casework.models import ExternalIdentity, IdentityProvider, IdentityProviderOrganisation, User
from casework.services import administration, signin, sso


class SsoAdmin(RequestPages, admin.ModelAdmin):
    """Shared: audited saves, the approval column and the request-approval page."""

    sso_kind: str
    sso_url_name: str
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ["approval"]

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

    @admin.display(description=_("Approval"))
    def approval(self, obj):
        approved = obj is not None and obj.pk is not None and administration.sso_approved(obj)
        return approval_cell(obj, approved, self.sso_url_name)

    def request_pages(self):
        return [
            ("<path:object_id>/begar-godkannande/", self.request_approval_view, self.sso_url_name),
        ]

    def request_approval_view(self, request, object_id):
        return reason_request_page(
            self,
            request,
            object_id,
            self.sso_kind,
            submit=lambda user, obj, reason: self.request_approval(user, obj, reason),
            title=_("Request approval for single sign-on"),
            intro=_(
                "Who may sign in as whom is decided here. The configuration as it is now "
                "is used for sign-in when another administrator approves it; any later "
                "change waits for a new approval."
            ),
        )


class IdentityProviderOrganisationInline(admin.TabularInline):
    model = IdentityProviderOrganisation
    extra = 0


@admin.register(IdentityProvider)
class IdentityProviderAdmin(SsoAdmin):
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

    def request_approval(self, user, obj, reason):
        return administration.request_identity_provider(user=user, provider=obj, reason=reason)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(SsoAdmin):
    sso_kind = Kind.EXTERNAL_IDENTITY
    sso_url_name = "casework_externalidentity_request_approval"
    list_display = ["user", "provider", "subject", "approval"]
    list_filter = ["provider"]
    list_select_related = ["user", "provider"]
    search_fields = ["subject", "user__username"]
    fields = ["user", "provider", "subject", "approval"]

    def get_queryset(self, request):
        # Superuser accounts are made by the operator only and are never linked here.
        return super().get_queryset(request).filter(user__is_superuser=False)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def request_approval(self, user, obj, reason):
        return administration.request_external_identity(user=user, identity=obj, reason=reason)


# --- Sign-in locks (django-axes; docs/adr/0016-lockout-sessions-and-headers.md) ------------


@admin.register(AccessAttempt)
class SignInLockAdmin(NoWrites, admin.ModelAdmin):
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
    actions = ["lift_locks"]  # the only way a lock goes: "Lift the lock", which is logged

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
