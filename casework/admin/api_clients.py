"""The integration API's clients in the admin (docs/adr/0022-integration-api.md).

Administrators make and change clients here (name, organisation, scopes, rate limit;
each save an access-log event through ``casework.services.api_clients``); a client is
used only once another administrator approved exactly what is saved ("Request approval",
decided on the change request's page, which then shows the new client's secret once, to
the approver). A new secret is a request too. Deactivating is immediate (the list's
action, or "active" on the form): taking power away needs no second administrator.

django-oauth-toolkit registers its own models (applications, tokens, grants) in the
admin; they are taken out: an administrator who could make an application or a token
there would give a system access without a second administrator's approval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from casework import policy
from casework.admin.four_eyes import (
    NONE,
    Kind,
    RequestPages,
    approval_cell,
    buttons,
    reason_request_page,
)
from casework.forms import put_errors
from casework.models import ApiClient
from casework.services import api_clients

for _model in (
    get_application_model(),
    get_access_token_model(),
    get_grant_model(),
    get_id_token_model(),
    get_refresh_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

CONFIGURATION_FIELDS = ("name", "organisation", "scopes", "rate_limit")


class ReasonRequest(NamedTuple):
    """A request page of a client that asks for a reason only, at ``route``:
    ``service(user=…, client=…, reason=…)`` records the request; the page shows ``title``
    and ``intro``."""

    route: str
    service: Callable[..., Any]
    title: Any
    intro: Any


def _scope_choices():
    return [(scope, f"{scope}: {label}") for scope, label in settings.API_SCOPES.items()]


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=_scope_choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiClient
        fields = [*CONFIGURATION_FIELDS, "is_active"]
        help_texts = {
            "rate_limit": _("Requests per period, e.g. 600/min; empty: the site's default."),
            "is_active": _(
                "Switching a client off is immediate and deletes its tokens; switching it "
                "on again restores the approved configuration."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["scopes"] = sorted(self.instance.scope_set)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            values = api_clients.clean_client_values(
                **{name: cleaned.get(name) for name in CONFIGURATION_FIELDS},
                client=self.instance if self.instance.pk is not None else None,
            )
        except ValidationError as error:
            put_errors(self, error)
        else:
            cleaned.update(values)  # the scopes as the model keeps them
        return cleaned


@admin.register(ApiClient)
class ApiClientAdmin(RequestPages, admin.ModelAdmin):
    """API clients: their configuration, its approval and the requests waiting for one."""

    form = ApiClientForm
    list_display = ["name", "organisation", "scopes", "is_active", "approval", "pending"]
    list_filter = ["is_active", "organisation"]
    list_select_related = ["organisation", "application"]
    search_fields = ["name"]
    readonly_fields = ["approval", "pending", "client_id", "secret"]
    credential_fields = readonly_fields
    actions = ["deactivate"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": list(CONFIGURATION_FIELDS)})]
        return [
            (None, {"fields": [*CONFIGURATION_FIELDS, "is_active"]}),
            (_("Approval and credentials"), {"fields": self.credential_fields}),
        ]

    def _may_request(self, request) -> bool:
        return policy.can_request_admin_change(request.user, Kind.API_CLIENT)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self._may_request(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_request(request)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the access log and the requests refer to it

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        values = {name: data[name] for name in CONFIGURATION_FIELDS}
        if not change:
            saved = api_clients.create_client(user=request.user, **values)
            obj.pk, obj.created_at = saved.pk, saved.created_at  # for the admin's redirect
            obj._state.adding = False
        else:
            api_clients.change_client(user=request.user, client=obj, **values)
            if "is_active" in form.changed_data and data["is_active"]:
                api_clients.activate_client(user=request.user, client=obj)
            elif "is_active" in form.changed_data:
                api_clients.deactivate_client(user=request.user, client=obj)
        obj.refresh_from_db()
        if not api_clients.api_client_approved(obj):
            messages.warning(
                request,
                _(
                    "The client is not in use until another administrator approves its "
                    "configuration: request approval on its page."
                ),
            )

    @admin.display(description=_("Approval"))
    def approval(self, obj):
        approved = obj is not None and obj.pk is not None and api_clients.api_client_approved(obj)
        return approval_cell(obj, approved, "casework_apiclient_request_approval")

    @admin.display(description=_("Waiting requests"))
    def pending(self, obj):
        if obj is None or obj.pk is None:
            return NONE
        requests = list(api_clients.pending_requests(obj))
        if not requests:
            return NONE
        return format_html_join(
            ", ",
            '<a href="{}">#{}</a>',
            (
                (reverse("admin:casework_adminchangerequest_change", args=[r.pk]), r.pk)
                for r in requests
            ),
        )

    @admin.display(description=_("Client id"))
    def client_id(self, obj):
        if obj is None or obj.application_id is None:
            return _("Made when the client is first approved.")
        return obj.application.client_id

    @admin.display(description=_("Secret"))
    def secret(self, obj):
        if obj is None or obj.application_id is None:
            return _("Shown once, to the administrator who approves the client.")
        return format_html(
            "{} {}",
            _("Only a hash is kept."),
            buttons(obj, ("casework_apiclient_request_secret", _("Request a new secret"))),
        )

    @admin.action(description=_("Deactivate (at once, tokens deleted)"), permissions=["change"])
    def deactivate(self, request, queryset):
        for client in queryset:
            api_clients.deactivate_client(user=request.user, client=client)
        messages.success(request, _("Deactivated: the clients' tokens no longer work."))

    # The client's requests that ask for a reason only, by URL name.
    reason_requests = {
        "casework_apiclient_request_approval": ReasonRequest(
            "<path:object_id>/begar-godkannande/",
            api_clients.request_approval,
            _("Request approval of an API client"),
            _(
                "A client system acts for the people of its organisation as far as its "
                "scopes reach. Its configuration as it is now is used when another "
                "administrator approves it; a new client's secret is then shown once, to "
                "that administrator. Any later change waits for a new approval."
            ),
        ),
        "casework_apiclient_request_secret": ReasonRequest(
            "<path:object_id>/begar-ny-hemlighet/",
            api_clients.request_new_secret,
            _("Request a new secret for an API client"),
            _(
                "When another administrator approves, the client gets a new secret, shown "
                "once to that administrator, and the old secret and its tokens stop working. "
                "Until then the old secret works: if it has leaked, deactivate the client "
                "first."
            ),
        ),
    }

    def request_pages(self):
        return [
            (page.route, self.reason_request_view, url_name)
            for url_name, page in self.reason_requests.items()
        ]

    def reason_request_view(self, request, object_id):
        """The page of one of :attr:`reason_requests` (the one its URL names)."""
        page = self.reason_requests[request.resolver_match.url_name]
        return reason_request_page(
            self,
            request,
            object_id,
            Kind.API_CLIENT,
            submit=lambda user, obj, reason: page.service(user=user, client=obj, reason=reason),
            title=page.title,
            intro=page.intro,
        )
