"""The second factor: TOTP enrolment, recovery codes, verification and removal.

Built on django-otp (docs/adr/0017-mfa-and-step-up.md): a ``TOTPDevice`` holds the
authenticator app's secret, a ``StaticDevice`` the recovery codes. django-otp keeps a
static token as it is given; we give it a keyed digest of the code (``salted_hmac``
under ``SECRET_KEY``), so the database holds no usable recovery code, and the code the
user types is digested the same way before django-otp looks it up and deletes it
(a recovery code works once). Both devices throttle wrong codes (django-otp's
``ThrottlingMixin``: an exponentially growing wait after each failure).

Every step is an access-log event naming the account and the kind of factor, never a
secret, a code or a digest: ``account_change`` for enrolment, new recovery codes and
removal (``details.second_factor`` = ``enrol`` | ``recovery_codes`` | ``remove``);
``login`` / ``login_failed`` for a verification (``details.step`` = ``sign_in`` |
``step_up``), the failure written independently of the request's transaction.
"""

from __future__ import annotations

import io
import re
from base64 import b32encode
from binascii import unhexlify
from dataclasses import dataclass

import qrcode
import qrcode.image.svg
from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django_otp import verify_token
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from audit.services import Action, Outcome, record_event

RECOVERY_CODE_COUNT = 10
_DIGEST_SALT = "samverkan.mfa.recovery-code"
_TOTP_CODE = re.compile(r"^\d{6}$")
SIGN_IN = "sign_in"
STEP_UP = "step_up"


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows once: the secret for typing, the QR code (SVG)."""

    secret: str  # base32, in groups of four
    config_url: str
    qr_svg: str


def new_totp_key() -> str:
    """A fresh TOTP secret (20 random bytes, hex), kept in the session until confirmed."""
    return random_hex(20)


def enrolment(*, user, key: str) -> Enrolment:
    device = TOTPDevice(user=user, key=key, name="app")
    secret = b32encode(unhexlify(key)).decode()
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    return Enrolment(
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        config_url=device.config_url,
        qr_svg=svg,
    )


def _digest(code: str) -> str:
    """The stored form of a recovery code (fits django-otp's 16-character token)."""
    normalized = re.sub(r"[\s-]", "", code).lower()
    return salted_hmac(_DIGEST_SALT, normalized, algorithm="sha256").hexdigest()[:16]


def _new_recovery_codes(device: StaticDevice) -> list[str]:
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=_digest(code)) for code in codes
    )
    return [f"{code[:4]}-{code[4:]}" for code in codes]


def _account_event(user, step: str, **details) -> None:
    record_event(
        action=Action.ACCOUNT_CHANGE,
        user=user,
        obj=user,
        details={"second_factor": step, **details},
    )


def has_confirmed_device(user) -> bool:
    from django_otp import user_has_device

    return user_has_device(user)


def enrol_totp(*, user, key: str, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator app with a code from it; make the recovery codes.

    Refused (``ValidationError``) when the code is wrong or the account already has a
    second factor (a second one is added only after removing the first, which needs a
    fresh check). Returns the device and the recovery codes, to be shown once.
    """
    code = (code or "").strip().replace(" ", "")
    totp = TOTP(unhexlify(key))
    if not _TOTP_CODE.match(code) or not totp.verify(int(code), tolerance=1):
        record_event(
            action=Action.ACCOUNT_CHANGE,
            user=user,
            obj=user,
            outcome=Outcome.DENIED,
            details={"second_factor": "enrol", "reason": "wrong_code"},
            independent=True,
        )
        raise ValidationError(
            _("The code is not right. Check the time on your phone and try the next code."),
            code="wrong_code",
        )
    with transaction.atomic():
        # One enrolment at a time per account: the row lock makes a second one wait.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if has_confirmed_device(user):
            raise ValidationError(
                _("Your account already has two-step verification."), code="enrolled"
            )
        StaticDevice.objects.filter(user=user).delete()
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(
            user=user, key=key, name="app", confirmed=True, last_t=totp.t()
        )
        device.set_last_used_timestamp(commit=True)
        static = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
        codes = _new_recovery_codes(static)
        _account_event(user, "enrol", device="totp", recovery_codes=len(codes))
    return device, codes


def regenerate_recovery_codes(*, user) -> list[str]:
    """New recovery codes (the old ones stop working), to be shown once."""
    with transaction.atomic():
        if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise ValidationError(_("Turn on two-step verification first."), code="not_enrolled")
        static, _created = StaticDevice.objects.get_or_create(
            user=user, defaults={"name": "recovery", "confirmed": True}
        )
        codes = _new_recovery_codes(static)
        _account_event(user, "recovery_codes", recovery_codes=len(codes))
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def remove_second_factor(*, user) -> int:
    """Remove the authenticator app and the recovery codes; returns how many devices."""
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[1].get(TOTPDevice._meta.label, 0)
        removed += (
            StaticDevice.objects.filter(user=user).delete()[1].get(StaticDevice._meta.label, 0)
        )
        _account_event(user, "remove", devices=removed)
    return removed


def _throttled(devices) -> bool:
    return any(not device.verify_is_allowed()[0] for device in devices)


def verify_second_factor(*, user, code: str, step: str = SIGN_IN):
    """The device that accepts ``code`` (a TOTP code or a recovery code), or a
    ``ValidationError`` with a Swedish message; each outcome is logged."""
    code = (code or "").strip()
    compact = code.replace(" ", "")
    if _TOTP_CODE.match(compact):
        kind, token = "totp", compact
        devices = list(TOTPDevice.objects.devices_for_user(user, confirmed=True))
    else:
        kind, token = "recovery_code", _digest(code)
        devices = list(StaticDevice.objects.devices_for_user(user, confirmed=True))
    throttled = _throttled(devices)
    verified = None
    if not throttled:
        for device in devices:
            verified = verify_token(user, device.persistent_id, token)
            if verified is not None:
                break
    if verified is None:
        record_event(
            action=Action.LOGIN_FAILED,
            user=user,
            obj=user,
            outcome=Outcome.DENIED,
            details={
                "second_factor": kind,
                "step": step,
                "reason": "throttled" if throttled else "wrong_code",
            },
            independent=True,
        )
        if throttled:
            raise ValidationError(
                _("Too many wrong codes. Wait a minute and try again."), code="throttled"
            )
        raise ValidationError(_("The code is not right."), code="wrong_code")
    details = {"second_factor": kind, "step": step}
    if kind == "recovery_code":
        details["recovery_codes_left"] = recovery_codes_left(user)
    record_event(action=Action.LOGIN, user=user, obj=user, details=details)
    return verified


def step_up_with_password(*, request, password: str) -> None:
    """Step-up where MFA is off and the account has no second factor: the password again.

    Through ``authenticate``, so a wrong password is a failed sign-in like any other
    (logged, and counted by the lockout)."""
    user = request.user
    checked = authenticate(request, username=user.get_username(), password=password or "")
    if checked is None or checked.pk != user.pk:
        raise ValidationError(_("The password is not right."), code="wrong_password")
    record_event(
        action=Action.LOGIN,
        user=user,
        obj=user,
        details={"second_factor": "password", "step": STEP_UP},
    )


def stamp() -> int:
    """The time a strong check passed, as the session keeps it."""
    return int(timezone.now().timestamp())
