"""Session rules: the idle timeout, the absolute lifetime and the keep-alive answer.

- **Idle timeout**: Django's own session expiry. ``SESSION_COOKIE_AGE`` is the idle
  time and ``SESSION_SAVE_EVERY_REQUEST`` renews it with every request, so a session
  nobody used for that long is gone from the session store (the next request is
  anonymous and goes to the login page). ``static/samverkan/session.js`` warns
  ``SESSION_WARNING_SECONDS`` before the end; the user's answer posts to
  :func:`keep_alive`, which is a request and so renews the session.
- **Absolute lifetime**: :class:`SessionRulesMiddleware` signs a user out
  ``SESSION_MAX_AGE`` seconds after the sign-in (stamped on ``user_logged_in``), used or
  not; a session without the stamp is signed out too.

Signing out everywhere when an account's power changes: ``casework.services.sessions``.
docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

SIGNED_IN_AT = "samverkan_signed_in_at"


def _now() -> float:
    return timezone.now().timestamp()


@receiver(user_logged_in, dispatch_uid="casework_session_signed_in_at")
def stamp_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = _now()


def ends_at(request) -> float | None:
    """When the session reaches its absolute lifetime (epoch seconds)."""
    started = request.session.get(SIGNED_IN_AT)
    return None if started is None else float(started) + settings.SESSION_MAX_AGE


class SessionRulesMiddleware:
    """Signs out a session past its absolute lifetime, before any view sees the user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            end = ends_at(request)
            if end is None or _now() >= end:
                logout(request)
                messages.info(
                    request,
                    _("You have been signed out: a session lasts at most %(hours)s hours.")
                    % {"hours": f"{settings.SESSION_MAX_AGE / 3600:g}"},
                )
        return self.get_response(request)


@never_cache
@require_POST
def keep_alive(request):
    """The answer to the idle warning: the request itself renews the session."""
    end = ends_at(request) or _now()
    return JsonResponse(
        {
            "idle_seconds": settings.SESSION_COOKIE_AGE,
            "ends_in_seconds": max(0, int(end - _now())),
        }
    )
