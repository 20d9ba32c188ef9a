"""The second factor on the web side: the gate before every page, and step-up.

``SecondFactorMiddleware`` (after django-otp's ``OTPMiddleware``) sends a signed-in
session that still owes its second factor to the verification page (or, where MFA is
required and the account has none, to enrolment); only the sign-in pages stay open.
:func:`require_step_up` guards the grave actions (break-the-glass, erasure, approving an
administrator request). The decisions are ``casework.policy``'s; see
docs/adr/0017-mfa-and-step-up.md.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import LazyObject, empty
from django.utils.translation import gettext as _

from casework import policy

# Pages a session that owes its second factor may still open (URL names, root namespace).
OPEN_URL_NAMES = frozenset(
    {"login", "logout", "set_language", "healthz", "password_set", "password_set_done"}
)
# The single sign-on's own pages (mozilla-django-oidc names them oidc_*).
OPEN_URL_PREFIX = "oidc_"
PAGE_FOR = {"verify": "mfa_verify", "enrol": "mfa_enrol"}


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        pending = policy.second_factor_pending(request)
        _unwrap_user(request)
        if pending is None:
            return None
        match = request.resolver_match
        name = match.url_name if match is not None and not match.namespaces else None
        if name is not None and (
            name in OPEN_URL_NAMES or name.startswith(OPEN_URL_PREFIX) or name == PAGE_FOR[pending]
        ):
            return None
        if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return None
        next_url = request.get_full_path() if request.method == "GET" else "/"
        return HttpResponseRedirect(_with_next(PAGE_FOR[pending], next_url))


def _unwrap_user(request) -> None:
    """Put the user object itself in ``request.user`` once it has been read.

    ``AuthenticationMiddleware`` and django-otp's ``OTPMiddleware`` each wrap it in a
    ``SimpleLazyObject`` (django-otp's around Django's), which forwards every attribute
    read through both — hundreds a page (templates, menus, policy). The object read is
    the same one (with django-otp's ``otp_device`` and ``is_verified``); a user not yet
    read stays lazy.
    """
    user = getattr(request, "user", None)
    while isinstance(user, LazyObject) and user._wrapped is not empty:
        user = user._wrapped
    if user is not None and not isinstance(user, LazyObject):
        request.user = user


def require_step_up(request, *, next_url: str | None = None):
    """``None`` when the session passed a strong check within ``STEP_UP_MINUTES``;
    otherwise a redirect to the step-up page, which sends the user back to ``next_url``
    (default: this page) with the Swedish reason."""
    if policy.step_up_fresh(request):
        return None
    messages.warning(
        request,
        _(
            "Confirm who you are again before you continue: this action needs a check "
            "made within the last %(minutes)s minutes."
        )
        % {"minutes": settings.STEP_UP_MINUTES},
    )
    return HttpResponseRedirect(_with_next("mfa_step_up", next_url or request.path))


@receiver(user_logged_in, dispatch_uid="samverkan_mfa_login")
def _signed_in(sender, request, user, **kwargs) -> None:
    """At sign-in: remember whether the account has a second factor. An account without
    one, where MFA is not required, just passed the strongest check it has (its password,
    or the identity provider): that counts as fresh for step-up."""
    if request is None or not hasattr(request, "session"):
        return
    from casework.services.mfa import has_confirmed_device, stamp

    has_device = has_confirmed_device(user)
    request.session[policy.HAS_DEVICE_SESSION_KEY] = has_device
    if not has_device and not policy.mfa_required():
        request.session[policy.STEP_UP_SESSION_KEY] = stamp()
