"""Two-step verification (TOTP and recovery codes, django-otp) and step-up before grave
actions (docs/adr/0017-mfa-and-step-up.md).

Time is moved, never slept: the ``clock`` fixture moves both the TOTP clock of django-otp
and Django's ``timezone.now`` (the step-up's freshness).
"""

from __future__ import annotations

import re
import types
from binascii import unhexlify
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AccessEvent
from casework import policy, roles
from casework.models import AdminChangeRequest, BreakGlassAccess, DataKey, User
from casework.services import administration
from casework.services import mfa as services
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

LOGIN = "/konto/logga-in/"
ENROL = "/konto/tvasteg/aktivera/"
VERIFY = "/konto/tvasteg/verifiera/"
STEP_UP = "/konto/tvasteg/bekrafta/"
MANAGE = "/konto/tvasteg/"
BREAK_GLASS = "/arenden/bryt-glaset/"
REASON = "Akut hot mot personen, måste ringa nu."


class Clock:
    """A wall clock for django-otp's TOTP and Django's ``timezone.now``, moved by tests."""

    def __init__(self, monkeypatch):
        import time

        import django_otp.oath
        import django_otp.plugins.otp_totp.models as totp_models

        self.offset = 0.0
        fake = types.SimpleNamespace(time=lambda: time.time() + self.offset)
        monkeypatch.setattr(django_otp.oath, "time", fake.time)
        monkeypatch.setattr(totp_models, "time", fake)
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=self.offset))
        self._time = fake.time

    def advance(self, *, minutes: float = 0, seconds: float = 0) -> None:
        self.offset += minutes * 60 + seconds

    def code(self, key: str, *, steps_ahead: int = 0) -> str:
        """The authenticator app's code now (or ``steps_ahead`` steps of 30 s later)."""
        totp = TOTP(unhexlify(key))
        totp.time = self._time() + 30 * steps_ahead
        return f"{totp.token():06d}"


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def required(settings):
    settings.MFA_REQUIRED = True


def enrol(user, clock) -> tuple[str, list[str]]:
    """Enrol ``user`` through the service; returns the secret (hex) and the recovery codes."""
    key = services.new_totp_key()
    _device, codes = services.enrol_totp(user=user, key=key, code=clock.code(key))
    clock.advance(seconds=31)  # the app shows the next code
    return key, codes


def sign_in(client, username) -> None:
    client.post(LOGIN, {"username": username, "password": DEMO_PASSWORD})


def verified_client(user, key, clock) -> Client:
    client = Client()
    sign_in(client, user.username)
    response = client.post(VERIFY, {"code": clock.code(key)})
    assert response.status_code == 302, response.content.decode()[:500]
    clock.advance(seconds=31)
    return client


# --- Enrolment ------------------------------------------------------------------------------


def test_enrolment_shows_the_secret_once_and_needs_a_code_from_the_app(demo, client, clock):
    anna = demo["anna.social"]
    client.force_login(anna)
    page = client.get(ENROL)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    content = page.content.decode()
    assert "<svg" in content and "<script" not in content.split("<svg", 1)[1].split("</svg>")[0]
    key = client.session["samverkan_mfa_pending_key"]
    secret = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", content).group(1).replace(" ", "")
    from base64 import b32decode

    assert b32decode(secret) == unhexlify(key)
    # A second visit shows another secret: the first is worth nothing now.
    client.get(ENROL)
    assert client.session["samverkan_mfa_pending_key"] != key
    key = client.session["samverkan_mfa_pending_key"]

    wrong = client.post(ENROL, {"code": "000000" if clock.code(key) != "000000" else "111111"})
    assert wrong.status_code == 400
    assert "Koden stämmer inte" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=anna).exists()
    assert AccessEvent.objects.filter(
        user=anna, action="account_change", outcome="denied", details__second_factor="enrol"
    ).exists()

    done = client.post(ENROL, {"code": clock.code(key)})
    assert done.status_code == 200 and done["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", done.content.decode())
    assert len(codes) == services.RECOVERY_CODE_COUNT
    device = TOTPDevice.objects.get(user=anna)
    assert device.confirmed and device.key == key
    # The recovery codes are stored as keyed digests, not as the codes.
    stored = set(StaticToken.objects.filter(device__user=anna).values_list("token", flat=True))
    assert len(stored) == len(codes)
    assert not stored & {code.replace("-", "") for code in codes}
    event = AccessEvent.objects.get(user=anna, action="account_change", outcome="allowed")
    assert event.details == {
        "second_factor": "enrol",
        "device": "totp",
        "recovery_codes": len(codes),
    }
    # The enrolment passed the second factor for this session, and the page is gone.
    assert client.get("/").status_code in {200, 302}
    assert client.get(ENROL)["Location"] == MANAGE
    assert "samverkan_mfa_pending_key" not in client.session


def test_a_password_alone_cannot_add_a_phone_to_an_enrolled_account(demo, clock):
    anna = demo["anna.social"]
    key, _codes = enrol(anna, clock)
    thief = Client()
    sign_in(thief, "anna.social")
    response = thief.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    response = thief.post(ENROL, {"code": "123456"})
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=anna).get().key == key


# --- Signing in -----------------------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_refuses_a_wrong_one(demo, client, clock):
    anna = demo["anna.social"]
    key, _codes = enrol(anna, clock)
    response = client.post(LOGIN, {"username": "anna.social", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    # Every page sends the session to the second step first, and back afterwards.
    for path in ("/", "/arenden/fall/", f"/admin/casework/user/{anna.pk}/change/", MANAGE):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(VERIFY), path
    response = client.get("/arenden/fall/")
    assert response["Location"] == f"{VERIFY}?next=%2Farenden%2Ffall%2F"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Tvåstegsverifiering" in page.content.decode()

    good = clock.code(key)
    wrong = "000000" if good != "000000" else "111111"
    response = client.post(VERIFY, {"code": wrong, "next": "/arenden/fall/"})
    assert response.status_code == 400 and "Koden stämmer inte" in response.content.decode()
    assert client.get("/arenden/fall/").status_code == 302
    failed = AccessEvent.objects.get(user=anna, action="login_failed")
    assert failed.outcome == "denied"
    assert failed.details == {"second_factor": "totp", "step": "sign_in", "reason": "wrong_code"}

    clock.advance(seconds=2)  # django-otp's wait after a wrong code
    accepted = clock.code(key)
    response = client.post(VERIFY, {"code": accepted, "next": "/arenden/fall/"})
    assert response.status_code == 302 and response["Location"] == "/arenden/fall/"
    assert client.get("/arenden/fall/").status_code == 200
    assert AccessEvent.objects.filter(
        user=anna, action="login", details__second_factor="totp", details__step="sign_in"
    ).exists()
    # The same code does not work twice (django-otp keeps the last time step).
    again = Client()
    sign_in(again, "anna.social")
    assert again.post(VERIFY, {"code": accepted}).status_code == 400


def test_an_unsafe_next_is_not_followed(demo, client, clock):
    key, _codes = enrol(demo["anna.social"], clock)
    sign_in(client, "anna.social")
    response = client.post(VERIFY, {"code": clock.code(key), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_recovery_code_works_once(demo, client, clock):
    anna = demo["anna.social"]
    _key, codes = enrol(anna, clock)
    sign_in(client, "anna.social")
    response = client.post(VERIFY, {"code": codes[3].upper().replace("-", " ")})
    assert response.status_code == 302
    assert client.get("/arenden/fall/").status_code == 200
    assert services.recovery_codes_left(anna) == len(codes) - 1
    event = AccessEvent.objects.get(user=anna, action="login", details__step="sign_in")
    assert event.details["second_factor"] == "recovery_code"

    other = Client()
    sign_in(other, "anna.social")
    response = other.post(VERIFY, {"code": codes[3]})
    assert response.status_code == 400
    assert other.get("/arenden/fall/").status_code == 302
    # Nothing the user typed or was shown is in the log.
    for value in AccessEvent.objects.filter(user=anna).values_list("details", flat=True):
        text = str(value)
        assert not any(code in text or code.replace("-", "") in text for code in codes)


def test_wrong_codes_are_throttled(demo, client, clock):
    anna = demo["anna.social"]
    key, _codes = enrol(anna, clock)
    sign_in(client, "anna.social")
    good = clock.code(key)
    wrong = "000000" if good != "000000" else "111111"
    client.post(VERIFY, {"code": wrong})
    # Right after a failure even the right code waits (django-otp's growing delay).
    response = client.post(VERIFY, {"code": good})
    assert response.status_code == 400 and "Vänta" in response.content.decode()
    assert AccessEvent.objects.filter(user=anna, details__reason="throttled").exists()


# --- Enforcement ----------------------------------------------------------------------------


def test_where_mfa_is_required_a_password_account_must_enrol_before_any_page(
    demo, client, clock, required
):
    sign_in(client, "sara.samordnare")
    for path in ("/", "/arenden/fall/", "/gvi/", "/statistik/", "/admin/", MANAGE, VERIFY, STEP_UP):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(ENROL), path
    # POSTs too, to any page with data.
    assert client.post(BREAK_GLASS, {"reference": "x", "reason": REASON})["Location"].startswith(
        ENROL
    )
    # Only the sign-in pages stay open.
    assert client.get("/healthz").status_code == 200
    assert client.post("/i18n/setlang/", {"language": "sv", "next": "/"}).status_code == 302
    assert client.get(ENROL).status_code == 200
    key = client.session["samverkan_mfa_pending_key"]
    response = client.post(ENROL, {"code": clock.code(key)})
    assert response.status_code == 200
    assert client.get("/arenden/fall/").status_code == 200
    # Signing out closes it; signing in again asks for the code.
    client.post("/konto/logga-ut/")
    sign_in(client, "sara.samordnare")
    assert client.get("/arenden/fall/")["Location"].startswith(VERIFY)


def test_without_the_setting_an_account_without_a_device_signs_in_with_its_password(demo, client):
    sign_in(client, "sara.samordnare")
    assert client.get("/arenden/fall/").status_code == 200


def test_a_session_signed_in_through_sso_is_exempt(demo, client, required):
    client.force_login(demo["sara.samordnare"])
    assert client.get("/arenden/fall/")["Location"].startswith(ENROL)
    session = client.session
    session[policy.SSO_SESSION_KEY] = {"acr": "http://id.elegnamnden.se/loa/1.0/loa3", "amr": []}
    session.save()
    assert client.get("/arenden/fall/").status_code == 200
    request = RequestFactory().get("/")
    request.user = demo["sara.samordnare"]
    request.user.is_verified = lambda: False
    request.session = client.session
    assert policy.second_factor_satisfied(request)
    request.session = {}
    assert not policy.second_factor_satisfied(request)


# --- Step-up --------------------------------------------------------------------------------


def _sig_case(demo, state):
    from tests.workflows.sig.factories import sig_case

    return sig_case(demo, state)


def test_step_up_before_break_the_glass_and_its_expiry(demo, clock, required):
    from workflows.sig.models import Status

    case = _sig_case(demo, Status.CONSENT_PENDING)
    alex = demo["alex.avhopp"]
    key, _codes = enrol(alex, clock)
    client = verified_client(alex, key, clock)
    # Fresh from the sign-in's code: the page opens.
    assert client.get(BREAK_GLASS).status_code == 200
    clock.advance(minutes=6)
    response = client.get(BREAK_GLASS)
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Farenden%2Fbryt-glaset%2F"
    response = client.post(BREAK_GLASS, {"reference": case.reference, "reason": REASON})
    assert response.status_code == 302 and response["Location"].startswith(STEP_UP)
    assert not BreakGlassAccess.objects.exists()
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "inom de senaste 5 minuterna" in page.content.decode()

    wrong = "000000" if clock.code(key) != "000000" else "111111"
    response = client.post(STEP_UP, {"code": wrong, "next": BREAK_GLASS})
    assert response.status_code == 400
    assert AccessEvent.objects.filter(
        user=alex, action="login_failed", details__step="step_up"
    ).exists()
    clock.advance(seconds=31)  # past the throttle's wait, and the next code
    response = client.post(STEP_UP, {"code": clock.code(key), "next": BREAK_GLASS})
    assert response.status_code == 302 and response["Location"] == BREAK_GLASS
    assert AccessEvent.objects.filter(
        user=alex, action="login", details__step="step_up", details__second_factor="totp"
    ).exists()
    response = client.post(BREAK_GLASS, {"reference": case.reference, "reason": REASON})
    assert response.status_code == 302
    assert BreakGlassAccess.objects.filter(user=alex, case=case).exists()
    # The freshness ends after the configured minutes.
    clock.advance(minutes=5, seconds=1)
    assert client.get(BREAK_GLASS)["Location"].startswith(STEP_UP)


def test_step_up_minutes_are_a_setting(demo, clock, settings):
    settings.STEP_UP_MINUTES = 15
    client = Client()
    client.force_login(demo["alex.avhopp"])
    clock.advance(minutes=14)
    assert client.get(BREAK_GLASS).status_code == 200
    clock.advance(minutes=2)
    assert client.get(BREAK_GLASS).status_code == 302


def test_without_mfa_and_a_device_step_up_asks_for_the_password(demo, clock):
    """Development: the password sign-in is fresh for the minutes; then the password again,
    checked (a wrong one refused and logged as a failed sign-in)."""
    alex = demo["alex.avhopp"]
    client = Client()
    sign_in(client, "alex.avhopp")
    assert client.get(BREAK_GLASS).status_code == 200
    clock.advance(minutes=6)
    response = client.get(BREAK_GLASS)
    assert response["Location"].startswith(STEP_UP)
    page = client.get(response["Location"])
    assert 'type="password"' in page.content.decode()
    response = client.post(STEP_UP, {"password": "fel-losenord", "next": BREAK_GLASS})
    assert response.status_code == 400 and "Lösenordet stämmer inte" in response.content.decode()
    assert AccessEvent.objects.filter(action="login_failed", username="alex.avhopp").exists()
    assert client.get(BREAK_GLASS).status_code == 302
    response = client.post(STEP_UP, {"password": DEMO_PASSWORD, "next": BREAK_GLASS})
    assert response.status_code == 302 and response["Location"] == BREAK_GLASS
    assert client.get(BREAK_GLASS).status_code == 200
    assert AccessEvent.objects.filter(
        user=alex, action="login", details__second_factor="password", details__step="step_up"
    ).exists()


def test_with_a_device_step_up_wants_the_code_even_without_the_setting(demo, clock):
    alex = demo["alex.avhopp"]
    key, _codes = enrol(alex, clock)
    client = verified_client(alex, key, clock)
    clock.advance(minutes=6)
    response = client.post(STEP_UP, {"password": DEMO_PASSWORD, "next": BREAK_GLASS})
    assert response.status_code == 400
    assert client.get(BREAK_GLASS).status_code == 302


def test_an_sso_session_is_fresh_from_the_providers_authentication_time(demo, clock, required):
    client = Client()
    client.force_login(demo["alex.avhopp"])
    session = client.session
    session[policy.SSO_SESSION_KEY] = {
        "acr": "loa3",
        "amr": ["mfa"],
        "auth_time": int(timezone.now().timestamp()),
    }
    session.save()
    assert client.get(BREAK_GLASS).status_code == 200
    clock.advance(minutes=6)
    response = client.get(BREAK_GLASS)
    assert response["Location"].startswith(STEP_UP)
    page = client.get(response["Location"])
    assert b"data-step-up-sso" in page.content
    assert client.post(STEP_UP, {"password": DEMO_PASSWORD}).status_code == 400


def test_step_up_before_erasing_a_gvi_group(demo, clock):
    from tests.workflows.gvi.test_group_erasure import REASON as ERASE_REASON
    from tests.workflows.gvi.test_group_erasure import dormant

    group, _member = dormant(demo)
    sara = demo["sara.samordnare"]
    key, _codes = enrol(sara, clock)
    client = verified_client(sara, key, clock)
    url = f"/gvi/grupper/{group.pk}/"
    data = {"_action": "erase", "reason": ERASE_REASON, "confirmed": "on", "version": group.version}
    clock.advance(minutes=6)
    # The page itself opens; the erasure waits for a fresh code.
    assert client.get(url).status_code == 200
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Fgvi%2Fgrupper%2F{group.pk}%2F"
    group.refresh_from_db()
    assert group.erased_at is None
    assert DataKey.objects.using("keystore").filter(owner_id=group.pk).exists()
    response = client.post(STEP_UP, {"code": clock.code(key), "next": url})
    assert response["Location"] == url
    response = client.post(url, data)
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.erased_at is not None


def _coordinator_role_requested(demo):
    """adam.admin asks for the coordinator role for a newcomer: the newcomer and the
    request, waiting for another administrator."""
    newcomer = User.objects.create_user("ny.kollega", organisation=demo["anna.social"].organisation)
    change_request = administration.request_role_grant(
        user=demo["adam.admin"],
        target=newcomer,
        group=Group.objects.get(name=roles.COORDINATOR),
        reason="Ny samordnare från januari.",
    )
    return newcomer, change_request


def test_step_up_before_approving_an_administrator_request(demo, clock):
    newcomer, change_request = _coordinator_role_requested(demo)
    berit = demo["berit.admin"]
    key, _codes = enrol(berit, clock)
    client = verified_client(berit, key, clock)
    url = f"/admin/casework/adminchangerequest/{change_request.pk}/change/"
    clock.advance(minutes=6)
    assert client.get(url).status_code == 200
    response = client.post(url, {"decision": "approve", "reason": ""})
    assert response.status_code == 302 and response["Location"].startswith(STEP_UP)
    change_request.refresh_from_db()
    assert change_request.decision == AdminChangeRequest.Decision.PENDING
    assert not newcomer.groups.exists()
    response = client.post(STEP_UP, {"code": clock.code(key), "next": url})
    assert response["Location"] == url
    response = client.post(url, {"decision": "approve", "reason": ""})
    assert response.status_code == 302 and response["Location"] == url
    change_request.refresh_from_db()
    assert change_request.decision == AdminChangeRequest.Decision.APPROVED
    assert newcomer.groups.filter(name=roles.COORDINATOR).exists()


def test_rejecting_needs_no_step_up(demo, clock):
    _, change_request = _coordinator_role_requested(demo)
    client = Client()
    client.force_login(demo["berit.admin"])
    clock.advance(minutes=6)
    url = f"/admin/casework/adminchangerequest/{change_request.pk}/change/"
    response = client.post(url, {"decision": "reject", "reason": "Fel person."})
    assert response.status_code == 302 and response["Location"] == url
    change_request.refresh_from_db()
    assert change_request.decision == AdminChangeRequest.Decision.REJECTED


# --- Managing one's own second factor -------------------------------------------------------


def test_new_recovery_codes_and_removal_need_a_fresh_code(demo, clock):
    anna = demo["anna.social"]
    key, old_codes = enrol(anna, clock)
    client = verified_client(anna, key, clock)
    page = client.get(MANAGE)
    assert page.status_code == 200 and b"data-mfa-enrolled" in page.content
    clock.advance(minutes=6)
    response = client.post(MANAGE, {"action": "recovery_codes"})
    assert response["Location"].startswith(STEP_UP)
    client.post(STEP_UP, {"code": clock.code(key), "next": MANAGE})
    response = client.post(MANAGE, {"action": "recovery_codes"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    new_codes = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", response.content.decode())
    assert len(new_codes) == services.RECOVERY_CODE_COUNT
    assert not set(new_codes) & set(old_codes)
    assert AccessEvent.objects.filter(
        user=anna, action="account_change", details__second_factor="recovery_codes"
    ).exists()

    clock.advance(minutes=6)
    response = client.post(MANAGE, {"action": "remove"})
    assert response["Location"].startswith(STEP_UP)
    assert TOTPDevice.objects.filter(user=anna).exists()
    clock.advance(seconds=31)
    client.post(STEP_UP, {"code": new_codes[0], "next": MANAGE})
    response = client.post(MANAGE, {"action": "remove"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=anna).exists()
    assert not StaticDevice.objects.filter(user=anna).exists()
    assert AccessEvent.objects.filter(
        user=anna, action="account_change", details__second_factor="remove"
    ).exists()
    assert b"data-mfa-off" in client.get(MANAGE).content


def test_after_removal_where_required_the_account_must_enrol_again(demo, clock, required):
    anna = demo["anna.social"]
    key, _codes = enrol(anna, clock)
    client = verified_client(anna, key, clock)
    response = client.post(MANAGE, {"action": "remove"})
    assert response.status_code == 302
    assert client.get("/arenden/fall/")["Location"].startswith(ENROL)


def test_no_secret_in_the_log(demo, client, clock):
    anna = demo["anna.social"]
    client.force_login(anna)
    client.get(ENROL)
    key = client.session["samverkan_mfa_pending_key"]
    code = clock.code(key)
    response = client.post(ENROL, {"code": code})
    codes = re.findall(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>", response.content.decode())
    secret = TOTPDevice.objects.get(user=anna).key
    for event in AccessEvent.objects.all():
        text = f"{event.details} {event.purpose} {event.object_id}"
        assert key not in text and secret not in text and code not in text
        assert not any(c in text or c.replace("-", "") in text for c in codes)


def test_the_admin_shows_nobody_a_second_factor(demo, client, clock):
    """django-otp's admin pages (a device's secret and QR code) are not mounted."""
    key, _codes = enrol(demo["anna.social"], clock)
    device = TOTPDevice.objects.get(user=demo["anna.social"])
    root = User.objects.create_superuser("rot", password=DEMO_PASSWORD)
    client.force_login(root)
    for path in (
        "/admin/otp_totp/totpdevice/",
        f"/admin/otp_totp/totpdevice/{device.pk}/config/",
        f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/",
        "/admin/otp_static/staticdevice/",
    ):
        response = client.get(path, follow=True)
        assert response.status_code == 404, path
        assert key not in response.content.decode()
