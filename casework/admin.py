"""The administrator's side: users and organisations, never case data.

Administrators (Django staff without superuser rights) manage accounts. They
cannot grant superuser rights or single permissions, and cannot change the
roles of their own account: the separation of duties between the people who
hand out access and the people who use it or audit it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from casework.models import LegalBasis, Organisation, User


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "first_name", "last_name", "organisation", "is_active", "is_staff"]
    list_filter = ["organisation", "groups", "is_active", "is_staff"]
    list_select_related = ["organisation"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal details"), {"fields": ("first_name", "last_name", "email")}),
        (_("Organisation and roles"), {"fields": ("organisation", "groups")}),
        (_("Status"), {"fields": ("is_active", "is_staff")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "organisation", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ["last_login", "date_joined"]
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


# Viewflow registers its Process and Task models in the admin; their data
# belongs to cases, which administrators must not see.
for _model_name in ("Process", "Task"):
    from viewflow.workflow import models as _viewflow_models

    _model = getattr(_viewflow_models, _model_name)
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(LegalBasis)
class LegalBasisAdmin(admin.ModelAdmin):
    """The register of legal bases: data, maintained by administrators (no case data)."""

    list_display = ["name", "code", "kind", "max_age", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]

    def has_delete_permission(self, request, obj=None):
        # Recorded decisions refer to their basis: deactivate instead.
        return False
