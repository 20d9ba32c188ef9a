"""Two-step verification in Chromium, in Swedish (docs/adr/0017-mfa-and-step-up.md).

A password account turns on TOTP (the secret and QR code once, confirmed by a code the
test computes from the secret as an authenticator app would), sees its recovery codes
once, signs out, and signs in with password + code; a wrong code is refused first.
Screenshots of the key steps are written to /tmp/mfa-*.png.
"""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from tests.browser.journey import log_in, log_out, sv
from tests.browser.journey import shot as _shot
from tests.conftest import COMMITTED_DB

pytestmark = COMMITTED_DB


def shot(page, name: str) -> None:
    _shot(page, "mfa", name)


def app_code(secret: str, *, steps_ahead: int = 0) -> str:
    """What the authenticator app shows for ``secret`` (base32, as the page shows it)."""
    totp = TOTP(b32decode(secret.replace(" ", "")))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


@pytest.fixture
def no_throttle(settings):
    """The wrong code's throttling (a growing wait) is tested in tests/casework/test_mfa.py;
    here the right code may follow the wrong one at once."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_enrol_totp_sign_out_and_sign_in_with_password_and_code(no_throttle, page, problems):
    page.goto("/")
    log_in(page, "anna.social")

    # --- Turning it on -------------------------------------------------------------------------
    page.goto("/konto/tvasteg/")
    expect(page.locator("[data-mfa-off]")).to_have_text(
        sv("Two-step verification is off for your account.")
    )
    page.get_by_role("link", name=sv("Turn on two-step verification")).click()
    expect(page.locator(".samverkan-mfa-qr svg")).to_be_visible()
    secret = page.locator("[data-totp-secret]").inner_text()
    shot(page, "01-enrol")
    page.get_by_label(sv("Code from the app")).fill(app_code(secret))
    page.get_by_role("button", name=sv("Turn on"), exact=True).click()

    expect(page.get_by_text(sv("Your recovery codes"))).to_be_visible()
    expect(page.locator(".samverkan-recovery-codes li")).to_have_count(10)
    shot(page, "02-recovery-codes")
    page.get_by_role("link", name=sv("I have saved the codes")).click()
    expect(page.locator("[data-mfa-enrolled]")).to_be_visible()

    # --- Signing out, and in again with password + code -----------------------------------------
    log_out(page)
    log_in(page, "anna.social")
    expect(page.get_by_role("button", name=sv("Verify"))).to_be_visible()
    # Nothing else opens before the code.
    page.goto("/arenden/fall/")
    expect(page.get_by_role("button", name=sv("Verify"))).to_be_visible()
    right = app_code(secret, steps_ahead=1)
    wrong = "000000" if right != "000000" else "111111"
    page.get_by_label(sv("Code"), exact=True).fill(wrong)
    page.get_by_role("button", name=sv("Verify")).click()
    expect(page.get_by_text(sv("The code is not right."))).to_be_visible()
    shot(page, "03-wrong-code")

    page.get_by_label(sv("Code"), exact=True).fill(right)
    page.get_by_role("button", name=sv("Verify")).click()
    expect(page.get_by_role("button", name=sv("Verify"))).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/arenden/fall/$"))
    expect(page.get_by_role("heading", name=sv("SIG cases"), level=1)).to_be_visible()
    shot(page, "04-signed-in")
    problems.assert_none()
