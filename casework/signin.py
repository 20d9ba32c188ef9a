"""Guessing is stopped: django-axes counts failed sign-ins per account name and per address.

``AXES_FAILURE_LIMIT`` failures for one account name (whether or not such an account
exists) or ``LOGIN_ADDRESS_FAILURE_LIMIT`` from one address lock sign-in for
``AXES_COOLOFF_TIME``; a locked sign-in is refused before any password is checked
(``axes.backends.AxesStandaloneBackend``), with the same answer for every name
(:func:`locked_response`). An administrator lifts a lock in the admin
(``casework.services.signin.lift_locks``). docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

LOCKED_STATUS = 429


def _failures(attempts) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class SignInAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit of its own for an address.

    One address (an office behind one NAT address) sees the typing errors of many
    people, so it gets a higher limit than one account name; reaching it locks the
    address like an account. A sign-in without a name (single sign-on) is counted by
    its address only: attempts without a name are not one account.
    """

    def get_failures(self, request, credentials=None) -> int:
        by_account, by_address = self.get_user_attempts(request, credentials)
        account = _failures(by_account) if get_client_username(request, credentials) else 0
        if _failures(by_address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(account, settings.AXES_FAILURE_LIMIT)
        return account

    def reset_user_attempts(self, request, credentials=None) -> int:
        """A successful sign-in clears the account's count, not its address's."""
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _deleted = AccessAttempt.objects.filter(username=username).delete()
        return count


class SignInLockBackend(AxesStandaloneBackend):
    """Axes' backend (first in ``AUTHENTICATION_BACKENDS``): refuses a locked name or
    address before any password is checked.

    Every sign-in over the web passes its request (Django's login form, django-otp's,
    the OIDC callback). Without one — Django's test client's ``login()``, a shell —
    there is no address to count or lock, and axes would raise; here the check is
    skipped and the next backends decide as before.
    """

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lock_message() -> str:
    return _(
        "Too many failed sign-in attempts: sign-in is locked for %(minutes)d minutes. "
        "Try again later, or ask an administrator to lift the lock."
    ) % {"minutes": settings.LOGIN_LOCK_MINUTES}


def locked_response(request, original_response=None, credentials=None):
    """The login page with one message, whatever the name tried (``AXES_LOCKOUT_CALLABLE``):
    nothing tells whether the account exists or whether its password was right."""
    response = TemplateResponse(
        request,
        "registration/login.html",
        {"form": AuthenticationForm(request), "sign_in_locked": lock_message()},
        status=LOCKED_STATUS,
    )
    return response.render()  # a middleware's answer is not rendered by the handler
