"""Session rules: the idle timeout, the absolute lifetime and the keep-alive answer.

- **Idle timeout**: Django's own session expiry. ``SESSION_COOKIE_AGE`` is the idle
  time and ``SESSION_SAVE_EVERY_REQUEST`` renews it with every request, so a session
  nobody used for that long is gone from the session store (the next request is
  anonymous and goes to the login page). :class:`SessionStore` writes a renewal only
  when it moves the stored idle end by more than ``SESSION_RENEW_SECONDS``: the session
  ends at most that much *before* ``SESSION_COOKIE_AGE`` after the last request, never
  after it. Each page tells ``static/samverkan/session.js`` the idle time it has left
  (:meth:`SessionStore.idle_seconds_left`); the script warns
  ``SESSION_WARNING_SECONDS`` before that end, and the user's answer posts to
  :func:`keep_alive`, which always renews the session in full.
- **Absolute lifetime**: :class:`SessionRulesMiddleware` signs a user out
  ``SESSION_MAX_AGE`` seconds after the sign-in (stamped on ``user_logged_in``), used or
  not; a session without the stamp is signed out too.

Signing out everywhere when an account's power changes: ``casework.services.sessions``.
docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connections, router
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


_UNCHANGING = (str, int, float, bool, type(None))


class SessionStore(DatabaseSessionStore):
    """Django's database sessions (``SESSION_ENGINE = "casework.sessions"``), whose
    renewal is written only when it moves the idle end by more than
    ``SESSION_RENEW_SECONDS``.

    ``SESSION_SAVE_EVERY_REQUEST`` calls :meth:`save` at the end of every request; a
    session that was not changed, whose stored idle end is still within
    ``SESSION_RENEW_SECONDS`` of a full ``SESSION_COOKIE_AGE`` from now, is not written
    again. A changed session (a sign-in, a sign-out, a value set anew) is always written.
    The decision is taken once a request (the first time it is asked), so the page and
    the write agree.
    """

    _idle_end: datetime | None = None
    _renew: bool | None = None

    # The read of every request, as one statement of fixed text (the ORM's ``get`` with
    # the same conditions, without compiling it each time), with the access generation
    # (``casework.access_cache``), which reading the signed-in user needs next: one round
    # trip instead of two (``casework.auth.AuthenticationMiddleware``).
    _READ = (
        "SELECT session_data, expire_date,"
        " (SELECT value FROM casework_accessgeneration WHERE id = 1)"
        " FROM {table} WHERE session_key = %s AND expire_date > %s LIMIT 1"
    )

    # The access generation read with the session (``None``: its row is missing), or
    # ``UNREAD`` when the session was not read from the database.
    UNREAD = object()
    access_generation: object = UNREAD

    def load(self):
        key = self.session_key
        row = None
        if key is not None:
            model = self.model
            database = router.db_for_read(model)
            with connections[database].cursor() as cursor:
                cursor.execute(self._READ.format(table=model._meta.db_table), [key, timezone.now()])
                row = cursor.fetchone()
        if row is None:
            self._session_key = None
            self._idle_end = None
            return {}
        data, self._idle_end, self.access_generation = row
        return self.decode(data)

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        self._idle_end = instance.expire_date
        return instance

    def __setitem__(self, key, value):
        # viewflow's task pages set the same "vf-pin-location" on every visit: setting a
        # value (of an immutable kind) a key already holds changes nothing to write. A
        # mutable value may have been changed in place, so it always counts as a change.
        if (
            isinstance(value, _UNCHANGING)
            and key in self._session
            and type(self._session[key]) is type(value)
            and self._session[key] == value
        ):
            return
        super().__setitem__(key, value)

    def renewal_due(self) -> bool:
        """Whether this request's save writes the session: changed, new, or its stored
        idle end more than ``SESSION_RENEW_SECONDS`` short of a full idle time."""
        if self.modified or self.session_key is None:
            return True
        if self._renew is None:
            self._get_session()  # the stored idle end comes with the session's data
            end = self._idle_end
            self._renew = end is None or (end - timezone.now()).total_seconds() < (
                self.get_session_cookie_age() - settings.SESSION_RENEW_SECONDS
            )
        return self._renew

    def idle_seconds_left(self) -> int:
        """Seconds until the idle end, as this request leaves it (a full idle time when
        the request renews the session)."""
        if self.renewal_due() or self._idle_end is None:
            return self.get_session_cookie_age()
        return max(0, int((self._idle_end - timezone.now()).total_seconds()))

    def save(self, must_create=False):
        if must_create or self.renewal_due():
            super().save(must_create=must_create)
            self._renew = None


def idle_seconds_left(request) -> int:
    """The idle time the session of ``request`` has left after this request (the full
    ``SESSION_COOKIE_AGE`` with a session store that renews on every request)."""
    left = getattr(request.session, "idle_seconds_left", None)
    return settings.SESSION_COOKIE_AGE if left is None else left()


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
    """The answer to the idle warning: renews the session's idle time in full."""
    request.session.modified = True
    end = ends_at(request) or _now()
    return JsonResponse(
        {
            "idle_seconds": settings.SESSION_COOKIE_AGE,
            "ends_in_seconds": max(0, int(end - _now())),
        }
    )
