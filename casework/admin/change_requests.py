"""Change requests in the admin: the ones waiting for a second administrator, who
approves or rejects them here, and the decided ones (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.admin.four_eyes import NoWrites, posted
from casework.forms import put_errors
from casework.mfa import require_step_up
from casework.models import AdminChangeRequest
from casework.selectors.administration import describe_change
from casework.services import administration


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
class AdminChangeRequestAdmin(NoWrites, admin.ModelAdmin):
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
        form = DecisionForm(posted(request))
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
                    put_errors(form, error)
                    status = 400
                else:
                    if approval is None or not (approval.link or approval.secret):
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
        if approval is not None and (approval.link or approval.secret):
            response["Cache-Control"] = "no-store"
        return response
