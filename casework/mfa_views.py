"""The second factor's pages: enrol, verify after the password, step-up, manage.

Thin: the checks are ``casework.services.mfa``'s (which also log), the decisions
``casework.policy``'s. docs/adr/0017-mfa-and-step-up.md.
"""

from __future__ import annotations

import django_otp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import View

from casework import policy
from casework.mfa import require_step_up
from casework.services import mfa as services

# The secret of an enrolment not yet confirmed: in the (server-side) session only.
PENDING_KEY = "samverkan_mfa_pending_key"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        help_text=_("Six digits from the authenticator app, or a recovery code."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


class EnrolForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class PasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _put_errors(form, error: ValidationError) -> None:
    form.add_error(None, error)


def _passed(request, device) -> None:
    """The session passed its second factor: bind the device, renew the session key."""
    request.session.cycle_key()
    django_otp.login(request, device)
    request.session[policy.HAS_DEVICE_SESSION_KEY] = True
    request.session[policy.STEP_UP_SESSION_KEY] = services.stamp()


class VerifyView(View):
    """The second step of signing in, for an account that has a second factor."""

    template_name = "registration/mfa_verify.html"

    def dispatch(self, request, *args, **kwargs):
        if policy.second_factor_satisfied(request):
            return HttpResponseRedirect(_next_url(request))
        if not policy.has_second_factor_device(request, refresh=True):
            page = "mfa_enrol" if policy.mfa_required() else settings.LOGIN_REDIRECT_URL
            return HttpResponseRedirect(resolve_url(page))
        return super().dispatch(request, *args, **kwargs)

    def _render(self, request, form, status=200):
        context = {"form": form, "next": _next_url(request)}
        return TemplateResponse(request, self.template_name, context, status=status)

    def get(self, request):
        return self._render(request, CodeForm())

    def post(self, request):
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                device = services.verify_second_factor(
                    user=request.user, code=form.cleaned_data["code"], step=services.SIGN_IN
                )
            except ValidationError as error:
                _put_errors(form, error)
            else:
                _passed(request, device)
                return HttpResponseRedirect(_next_url(request))
        return self._render(request, form, status=400)


class EnrolView(View):
    """Turn on two-step verification: the secret and QR code once, confirmed by a code;
    then the recovery codes, once."""

    template_name = "registration/mfa_enrol.html"

    def dispatch(self, request, *args, **kwargs):
        if policy.has_second_factor_device(request, refresh=True):
            # A second device only after removing the first (which needs a fresh check):
            # a stolen password must not add the thief's phone.
            if policy.second_factor_satisfied(request):
                return HttpResponseRedirect(reverse("mfa_manage"))
            return HttpResponseRedirect(f"{reverse('mfa_verify')}?next={reverse('mfa_manage')}")
        return super().dispatch(request, *args, **kwargs)

    def _render(self, request, form, key, status=200):
        context = {
            "form": form,
            "enrolment": services.enrolment(user=request.user, key=key),
            "next": _next_url(request),
        }
        response = TemplateResponse(request, self.template_name, context, status=status)
        response["Cache-Control"] = "no-store"
        return response

    def get(self, request):
        # A new secret every time the page is shown: a secret seen earlier is worth nothing.
        key = services.new_totp_key()
        request.session[PENDING_KEY] = key
        return self._render(request, EnrolForm(), key)

    def post(self, request):
        key = request.session.get(PENDING_KEY)
        if not key:
            messages.warning(request, _("The enrolment had expired: scan the new code."))
            return HttpResponseRedirect(request.get_full_path())
        form = EnrolForm(request.POST)
        if form.is_valid():
            try:
                device, codes = services.enrol_totp(
                    user=request.user, key=key, code=form.cleaned_data["code"]
                )
            except ValidationError as error:
                _put_errors(form, error)
            else:
                del request.session[PENDING_KEY]
                _passed(request, device)
                return _recovery_codes_page(request, codes, _next_url(request))
        return self._render(request, form, key, status=400)


def _recovery_codes_page(request, codes, next_url):
    response = TemplateResponse(
        request, "registration/mfa_recovery_codes.html", {"codes": codes, "next": next_url}
    )
    response["Cache-Control"] = "no-store"
    return response


class StepUpView(View):
    """Confirm who you are again before a grave action, then back to it (``next``)."""

    template_name = "registration/mfa_step_up.html"

    def _form(self, method, data=None):
        if method == "code":
            return CodeForm(data)
        if method == "password":
            return PasswordForm(data)
        return None

    def _render(self, request, method, form, status=200):
        context = {
            "form": form,
            "method": method,
            "next": _next_url(request),
            "minutes": settings.STEP_UP_MINUTES,
        }
        return TemplateResponse(request, self.template_name, context, status=status)

    def get(self, request):
        method = policy.step_up_method(request)
        return self._render(request, method, self._form(method))

    def post(self, request):
        method = policy.step_up_method(request)
        form = self._form(method, request.POST)
        if form is None:
            return self._render(request, method, None, status=400)
        if form.is_valid():
            try:
                if method == "code":
                    device = services.verify_second_factor(
                        user=request.user, code=form.cleaned_data["code"], step=services.STEP_UP
                    )
                    django_otp.login(request, device)
                else:
                    services.step_up_with_password(
                        request=request, password=form.cleaned_data["password"]
                    )
            except ValidationError as error:
                _put_errors(form, error)
            else:
                request.session[policy.STEP_UP_SESSION_KEY] = services.stamp()
                return HttpResponseRedirect(_next_url(request))
        return self._render(request, method, form, status=400)


class ManageView(View):
    """Two-step verification of one's own account: new recovery codes, removal.

    Both need a fresh check (step-up): a session left open must not replace them."""

    template_name = "samverkan/mfa_manage.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        # The site shell's menu (sign-out included), as viewflow's SiteMiddleware gives the
        # site's own pages: this page is mounted outside the site. The site is the root
        # URLconf's (the project's, as Django finds it), never a programme's import.
        from importlib import import_module

        from django.conf import settings

        if request.resolver_match is not None:
            request.resolver_match.site = import_module(settings.ROOT_URLCONF).site

    def get(self, request):
        user = request.user
        enrolled = policy.has_second_factor_device(request, refresh=True)
        context = {
            "enrolled": enrolled,
            "recovery_codes_left": services.recovery_codes_left(user) if enrolled else 0,
            "required": policy.mfa_required(),
            "sso": policy.sso_assertion(request) is not None,
        }
        return TemplateResponse(request, self.template_name, context)

    def post(self, request):
        action = request.POST.get("action")
        if action not in {"recovery_codes", "remove"}:
            messages.error(request, _("Choose what to do."))
            return HttpResponseRedirect(request.path)
        if (stale := require_step_up(request)) is not None:
            return stale
        try:
            if action == "recovery_codes":
                codes = services.regenerate_recovery_codes(user=request.user)
                return _recovery_codes_page(request, codes, request.path)
            services.remove_second_factor(user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(request.path)
        request.session[policy.HAS_DEVICE_SESSION_KEY] = False
        messages.success(request, _("Two-step verification is turned off for your account."))
        return HttpResponseRedirect(request.path)
