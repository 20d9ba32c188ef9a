"""What the admin's request pages share: a change of power is asked for on a form with a
reason, recorded as a change request, and applied once another administrator approves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.forms import put_errors
from casework.models import AdminChangeRequest
from casework.services import administration

Kind = AdminChangeRequest.Kind
NONE = "\u2013"  # an en dash: no value


def posted(request) -> Any:
    """The posted data, or ``None`` for a form shown the first time."""
    return request.POST if request.method == "POST" else None


def requested_object(model_admin, request, object_id, kind):
    """The object a change of ``kind`` is requested for; refused to users who may not
    request it, 404 where there is none."""
    if not policy.can_request_admin_change(request.user, kind):
        raise PermissionDenied
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404
    return obj


def request_page(
    model_admin,
    request,
    *,
    form: forms.Form,
    submit: Callable[[dict], AdminChangeRequest],
    title,
    intro,
    obj=None,
):
    """The request form: on a valid post ``submit(cleaned_data)`` records the request and
    the administrator goes to its page; otherwise the form again, with the refusal."""
    if request.method == "POST" and form.is_valid():
        try:
            change_request = submit(form.cleaned_data)
        except ValidationError as error:
            put_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "The request is recorded. It takes effect when another administrator "
                    "approves it."
                ),
            )
            return HttpResponseRedirect(
                reverse("admin:casework_adminchangerequest_change", args=[change_request.pk])
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "intro": intro,
        "opts": model_admin.opts,
        "original": obj,
        "subtitle": str(obj) if obj is not None else None,
    }
    return TemplateResponse(
        request,
        "admin/casework/four_eyes_form.html",
        context,
        status=400 if form.errors else 200,
    )


def reason_request_page(
    model_admin, request, object_id, kind: str, *, submit: Callable, title, intro
):
    """The request page of an object that asks for a reason only: on a valid post
    ``submit(user=…, obj=…, reason=…)`` records the request."""
    obj = requested_object(model_admin, request, object_id, kind)
    return request_page(
        model_admin,
        request,
        form=ReasonForm(posted(request)),
        submit=lambda data: submit(user=request.user, obj=obj, reason=data["reason"]),
        title=title,
        obj=obj,
        intro=intro,
    )


def buttons(obj, *links: tuple[str, Any]):
    """Links styled as buttons to an object's request pages ({URL name: label}), or a dash
    on a form for a new object."""
    if obj is None or obj.pk is None:
        return NONE
    return format_html(
        " ".join(['<a class="button" href="{}">{}</a>'] * len(links)),
        *(
            part
            for url_name, label in links
            for part in (reverse(f"admin:{url_name}", args=[obj.pk]), label)
        ),
    )


def approval_cell(obj, approved: bool, url_name: str):
    """An object's approval: approved, or not in use with a button to request approval (a
    dash on a form for a new object)."""
    if obj is None or obj.pk is None:
        return NONE
    if approved:
        return _("Approved by a second administrator")
    return format_html(
        '{} <a class="button" href="{}">{}</a>',
        _("Not in use: waits for a second administrator's approval."),
        reverse(f"admin:{url_name}", args=[obj.pk]),
        _("Request approval"),
    )


class NoWrites:
    """A model admin that shows its objects and never adds, changes or deletes them here:
    they change only through the services (and their requests), which log every change."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RequestPages:
    """A model admin with request pages: :meth:`request_pages` lists them as
    (route, view, URL name), served before the model admin's own URLs."""

    def request_pages(self) -> list[tuple[str, Callable, str]]:
        return []

    def get_urls(self):
        return [
            *(
                path(route, self.admin_site.admin_view(view), name=name)
                for route, view, name in self.request_pages()
            ),
            *super().get_urls(),
        ]


class RequestedRegister(RequestPages):
    """A register changed only by request (legal bases, retention rules): no add or
    delete here; a page to request a new entry and one per entry to request a change
    (URL names ``<app>_<model>_request_new``/``_request_change``), both served by
    :meth:`request_view`; the list tells its template ``can_request``.

    A register names its request form (a :class:`ReasonForm` with ``values()``), the
    initial values of a new entry, the titles and the intro, and :meth:`submit_request`.
    Its list offers the request for a new entry (``request_new_title``) to those who may
    request; :meth:`change_button` is an entry's button to request a change.
    """

    request_kind: str = ""
    request_form: type[forms.Form]
    new_entry_initial: dict[str, Any] = {}
    request_new_title: Any = ""
    request_intro: Any = ""
    change_list_template = "admin/casework/requested_register_change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def request_url_name(self, page: str) -> str:
        """The URL name of the register's request page ``page`` (``new``, ``change``)."""
        return f"{self.opts.app_label}_{self.opts.model_name}_request_{page}"

    def changelist_view(self, request, extra_context=None):
        can_request = policy.can_request_admin_change(request.user, self.request_kind)
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "can_request": can_request,
                "request_new_url": reverse(f"admin:{self.request_url_name('new')}"),
                "request_new_title": self.request_new_title,
            },
        )

    def change_button(self, obj):
        """An entry's button to request a change (a dash on a form for a new entry)."""
        return buttons(obj, (self.request_url_name("change"), _("Request a change")))

    def request_pages(self):
        return [
            ("begar-ny/", self.request_view, self.request_url_name("new")),
            ("<path:object_id>/begar-andring/", self.request_view, self.request_url_name("change")),
        ]

    def requested_entry(self, request, object_id):
        """The entry a change is requested for, ``None`` for a new one; refused to users
        who may not request, 404 where there is none."""
        if object_id is None:
            if not policy.can_request_admin_change(request.user, self.request_kind):
                raise PermissionDenied
            return None
        return requested_object(self, request, object_id, self.request_kind)

    def entry_values(self, entry) -> dict[str, Any]:
        """An existing entry's values, the form's initial values for a change."""
        return {
            name: getattr(entry, name) for name in self.request_form.base_fields if name != "reason"
        }

    def submit_request(self, *, user, entry, values: dict, reason: str) -> AdminChangeRequest:
        raise NotImplementedError

    def request_view(self, request, object_id=None):
        entry = self.requested_entry(request, object_id)
        initial = self.new_entry_initial if entry is None else self.entry_values(entry)
        form = self.request_form(posted(request), initial=initial)
        return request_page(
            self,
            request,
            form=form,
            submit=lambda data: self.submit_request(
                user=request.user, entry=entry, values=form.values(), reason=data["reason"]
            ),
            title=self.request_new_title if entry is None else _("Request a change"),
            obj=entry,
            intro=self.request_intro,
        )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=administration.REASON_MAX_LENGTH,
    )
