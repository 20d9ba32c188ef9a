"""The set-password link: how a user sets their own password after a second
administrator approved a ``password_link`` request (``casework.services.administration``).

The link is single use (the password hash and the last login are in its token), void
once the account is deactivated, and valid for ``PASSWORD_RESET_TIMEOUT`` seconds
(docs/adr/0014-four-eyes-on-power.md).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from casework.models import User


class SetPasswordTokenGenerator(PasswordResetTokenGenerator):
    """Tokens of the set-password link: single use (the password hash and the last
    login are in the hash), void when the account is deactivated, and valid for
    ``PASSWORD_RESET_TIMEOUT`` seconds."""

    # The salt names the module the class was first written in: links already sent
    # stay valid.
    key_salt = "casework.services.administration.SetPasswordTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{super()._make_hash_value(user, timestamp)}{int(user.is_active)}"


set_password_tokens = SetPasswordTokenGenerator()


def set_password_link(user: User) -> str:
    """The path of ``user``'s set-password link (absolute with ``SITE_URL`` when set)."""
    path = reverse(
        "password_set",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": set_password_tokens.make_token(user),
        },
    )
    return getattr(settings, "SITE_URL", "").rstrip("/") + path


def send_link(user: User, link: str) -> None:
    """E-mail ``link`` to the account's address (``smtplib``'s errors pass through)."""
    hours = settings.PASSWORD_RESET_TIMEOUT // 3600
    send_mail(
        subject=_("Samverkan: set your password"),
        message=_(
            "Set your password for Samverkan (account %(username)s) at this link. "
            "It works once and for %(hours)d hours:\n\n%(link)s\n"
        )
        % {"username": user.get_username(), "hours": hours, "link": link},
        from_email=None,
        recipient_list=[user.email],
    )
