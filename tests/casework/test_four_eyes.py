"""Four eyes on power: what an administrator could once do alone now needs a second one.

Finding 5 of issue 14: an administrator could give themselves case access by
creating an account with a case role, setting another user's password, widening a
legal basis or changing an organisation's kind. Each of those now waits for a
second administrator's approval (docs/adr/0014-four-eyes-on-power.md).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from audit.models import AccessEvent
from casework import policy, roles
from casework.models import AdminChangeRequest, LegalBasis, Organisation, User
from casework.services import administration, password_links

# Refusals write their denied-access event on the second connection ("audit").
pytestmark = pytest.mark.django_db(databases=["default", "audit"])

NEW_PASSWORD = "ett-eget-lösenord-2026"


def account_form(user, **overrides):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "organisation": user.organisation_id or "",
        "groups": [g.pk for g in user.groups.all()],
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return data


# --- Finding 5: one administrator alone ------------------------------------------------


def test_finding5_admin_cannot_create_an_account_with_a_case_role(demo, client):
    client.force_login(demo["adam.admin"])
    client.post(
        "/admin/casework/user/add/",
        {
            "username": "adam.hemlig",
            "organisation": demo["sara.samordnare"].organisation_id,
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    account = User.objects.get(username="adam.hemlig")
    coordinator = Group.objects.get(name=roles.COORDINATOR)
    client.post(
        f"/admin/casework/user/{account.pk}/change/",
        account_form(account, groups=[coordinator.pk]),
    )
    account.refresh_from_db()
    # Neither a password the administrator knows nor the role.
    assert not account.check_password(NEW_PASSWORD)
    assert not account.has_usable_password()
    assert not account.groups.filter(pk=coordinator.pk).exists()


def test_finding5_admin_cannot_set_another_users_password(demo, client):
    client.force_login(demo["adam.admin"])
    target = demo["sara.samordnare"]
    response = client.post(
        f"/admin/casework/user/{target.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    target.refresh_from_db()
    assert not target.check_password(NEW_PASSWORD)
    assert response.status_code == 403


def test_finding5_admin_cannot_widen_a_legal_basis_alone(demo, client):
    client.force_login(demo["adam.admin"])
    basis = LegalBasis.objects.get(code="osl-10-18a")
    before = (basis.recipient_kinds, basis.max_age, basis.discloser_kinds)
    client.post(
        f"/admin/casework/legalbasis/{basis.pk}/change/",
        {
            "code": basis.code,
            "name": basis.name,
            "description": basis.description,
            "kind": basis.kind,
            "discloser_kinds": '["social_services"]',
            "recipient_kinds": '["police", "school", "leisure"]',
            "max_age": "",
            "is_active": "on",
        },
    )
    basis.refresh_from_db()
    assert (basis.recipient_kinds, basis.max_age, basis.discloser_kinds) == before
    count = LegalBasis.objects.count()
    client.post(
        "/admin/casework/legalbasis/add/",
        {
            "code": "allt-till-alla",
            "name": "Allt till alla",
            "kind": "statute",
            "discloser_kinds": "[]",
            "recipient_kinds": "[]",
            "is_active": "on",
        },
    )
    assert LegalBasis.objects.count() == count


def test_finding5_admin_cannot_change_an_organisations_kind_alone(demo, client):
    client.force_login(demo["adam.admin"])
    school = Organisation.objects.get(name="Vivallaskolan")
    client.post(
        f"/admin/casework/organisation/{school.pk}/change/",
        {"name": school.name, "kind": "social_services", "is_active": "on"},
    )
    school.refresh_from_db()
    assert school.kind == Organisation.Kind.SCHOOL


# --- The request/approve path (service) ---------------------------------------------------


REASON = "Ny samordnare enligt beslut 2026-12-01"


@pytest.fixture
def newcomer(db):
    return User.objects.create_user("ny.kollega", organisation=_org("Socialförvaltningen"))


def _org(prefix):
    return Organisation.objects.get(name__startswith=prefix)


def _group(name):
    return Group.objects.get(name=name)


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


def _steps(change_request):
    return [
        e.details["step"]
        for e in AccessEvent.objects.filter(
            object_type="casework.adminchangerequest", object_id=str(change_request.pk)
        ).order_by("id")
        if "step" in e.details
    ]


def test_a_role_is_granted_only_when_a_second_administrator_approves(adam, berit, newcomer):
    coordinator = _group(roles.COORDINATOR)
    request = administration.request_role_grant(
        user=adam, target=newcomer, group=coordinator, reason=REASON
    )
    assert not newcomer.groups.filter(pk=coordinator.pk).exists()
    assert request.decision == AdminChangeRequest.Decision.PENDING
    assert request.change == {"group": coordinator.pk, "role": roles.COORDINATOR}

    approval = administration.approve(user=berit, request_id=request.pk, reason="Kontrollerat")
    request.refresh_from_db()
    assert newcomer.groups.filter(pk=coordinator.pk).exists()
    assert approval.link == ""
    assert (request.decision, request.decided_by, request.applied_at is not None) == (
        "approved",
        berit,
        True,
    )
    assert _steps(request) == ["request", "approve"]
    approve_event = AccessEvent.objects.filter(
        object_type="casework.adminchangerequest", object_id=str(request.pk), user=berit
    ).get()
    assert approve_event.details["kind"] == "grant_role"
    # The role change itself names the approving administrator.
    assert AccessEvent.objects.filter(
        object_id=str(newcomer.pk), details__roles_added=[roles.COORDINATOR]
    ).exists()


def _social_worker_role_requested(adam, newcomer):
    return administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.SOCIAL_WORKER), reason=REASON
    )


def _assert_neither_decides(user, request, *, refused: str, reason: str) -> None:
    """``user`` may neither approve ``request`` (the refusal says ``refused``) nor reject it
    (with ``reason``); ``request`` is read again afterwards."""
    with pytest.raises(ValidationError) as approval:
        administration.approve(user=user, request_id=request.pk)
    assert refused in _messages(approval.value)
    with pytest.raises(ValidationError):
        administration.reject(user=user, request_id=request.pk, reason=reason)
    request.refresh_from_db()


def test_nobody_approves_or_rejects_their_own_request(adam, newcomer):
    request = _social_worker_role_requested(adam, newcomer)
    _assert_neither_decides(adam, request, refused="din egen begäran", reason="Ångrar mig")
    assert request.decision == "pending" and request.decided_by is None
    assert not newcomer.groups.exists()
    denied = AccessEvent.objects.filter(
        action="access_denied", user=adam, object_id=str(request.pk)
    )
    assert denied.count() == 2
    assert denied.first().details["own_request"] is True


def test_the_database_refuses_a_self_approved_request_too(adam, newcomer):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    request = administration.request_password_link(user=adam, target=newcomer, reason=REASON)
    with pytest.raises(IntegrityError), transaction.atomic():
        AdminChangeRequest.objects.filter(pk=request.pk).update(
            decision="approved", decided_by=adam, decided_at=timezone.now()
        )


def test_approving_twice_is_refused_and_changes_nothing(adam, berit, demo, newcomer):
    request = _social_worker_role_requested(adam, newcomer)
    administration.approve(user=berit, request_id=request.pk)
    events = AccessEvent.objects.count()
    _assert_neither_decides(berit, request, refused="redan avgjord", reason="För sent")
    assert request.decision == "approved"
    assert AccessEvent.objects.count() == events


def test_a_stale_request_is_refused_when_its_target_changed(adam, berit, newcomer):
    request = administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.SCHOOL), reason=REASON
    )
    newcomer.organisation = _org("Vivallaskolan")  # moved after the request
    newcomer.save()
    with pytest.raises(ValidationError) as refused:
        administration.approve(user=berit, request_id=request.pk)
    assert "inaktuell" in _messages(refused.value)
    request.refresh_from_db()
    assert request.decision == "pending"
    assert not newcomer.groups.exists()
    # Rejecting it is the way out.
    administration.reject(user=berit, request_id=request.pk, reason="Inaktuell")
    request.refresh_from_db()
    assert request.decision == "rejected" and request.applied_at is None


def test_rejecting_needs_a_reason_and_applies_nothing(adam, berit, newcomer):
    request = administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.COORDINATOR), reason=REASON
    )
    with pytest.raises(ValidationError) as refused:
        administration.reject(user=berit, request_id=request.pk, reason="   ")
    assert "skäl" in _messages(refused.value)
    request.refresh_from_db()
    assert request.decision == "pending"
    administration.reject(user=berit, request_id=request.pk, reason="Inget beslut finns")
    request.refresh_from_db()
    assert (request.decision, request.decision_reason) == ("rejected", "Inget beslut finns")
    assert not newcomer.groups.exists()
    assert _steps(request) == ["request", "reject"]


def test_requests_need_a_reason_and_an_administrator(adam, demo, newcomer):
    with pytest.raises(ValidationError):
        administration.request_role_grant(
            user=adam, target=newcomer, group=_group(roles.COORDINATOR), reason=""
        )
    for username in ("anna.social", "greta.granskare", "sara.samordnare"):
        with pytest.raises(PermissionDenied):
            administration.request_role_grant(
                user=demo[username], target=newcomer, group=_group(roles.COORDINATOR), reason=REASON
            )
    assert not AdminChangeRequest.objects.exists()


def test_no_administrator_asks_for_their_own_role_or_password(adam):
    with pytest.raises(ValidationError, match="eget konto"):
        administration.request_role_grant(
            user=adam, target=adam, group=_group(roles.COORDINATOR), reason=REASON
        )
    with pytest.raises(ValidationError, match="Byt lösenord"):
        administration.request_password_link(user=adam, target=adam, reason=REASON)
    assert not AdminChangeRequest.objects.exists()


def test_the_approver_cannot_approve_a_grant_to_themselves(adam, berit):
    request = administration.request_role_grant(
        user=adam, target=berit, group=_group(roles.STEERING_GROUP), reason=REASON
    )
    with pytest.raises(ValidationError, match="ditt eget konto"):
        administration.approve(user=berit, request_id=request.pk)
    assert not berit.groups.filter(name=roles.STEERING_GROUP).exists()


def test_one_account_never_holds_a_case_role_and_the_auditor_role(adam, berit, demo, newcomer):
    with pytest.raises(ValidationError, match="både en ärenderoll och granskarrollen"):
        administration.request_role_grant(
            user=adam, target=demo["anna.social"], group=_group(roles.AUDITOR), reason=REASON
        )
    with pytest.raises(ValidationError, match="granskarrollen"):
        administration.request_role_grant(
            user=adam, target=demo["greta.granskare"], group=_group(roles.SCHOOL), reason=REASON
        )
    # Two pending requests that together would conflict: the second is refused.
    first = administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.AUDITOR), reason=REASON
    )
    second = administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.LEISURE), reason=REASON
    )
    administration.approve(user=berit, request_id=first.pk)
    with pytest.raises(ValidationError):
        administration.approve(user=berit, request_id=second.pk)
    assert list(newcomer.groups.values_list("name", flat=True)) == [roles.AUDITOR]


def test_which_roles_need_four_eyes_is_decided_by_their_permissions(db):
    from django.contrib.auth.models import Permission

    def perm(codename):
        return Permission.objects.get(codename=codename)

    new_case_role = Group.objects.create(name="nytt-namn-utan-betydelse")
    new_case_role.permissions.add(perm("use_task_inbox"))
    statistics_only = Group.objects.create(name="rapportläsare")
    statistics_only.permissions.add(perm("view_statistics"))
    empty = Group.objects.create(name="tom")
    assert policy.role_needs_four_eyes(new_case_role)
    assert not policy.role_needs_four_eyes(statistics_only)
    assert not policy.role_needs_four_eyes(empty)
    for name in (*roles.CASE_ROLES, roles.AUDITOR, roles.ADMINISTRATOR, roles.DATA_PROTECTION):
        assert policy.role_needs_four_eyes(_group(name)), name
    assert not policy.role_needs_four_eyes(_group(roles.STEERING_GROUP))
    assert policy.gives_case_data(policy.role_permissions(new_case_role))
    assert policy.gives_case_data({"workflows.take_part_in_gvi"})
    assert policy.roles_conflict({"casework.break_glass", "casework.view_access_log"})
    assert not policy.roles_conflict({"casework.view_statistics", "casework.view_access_log"})


# --- Passwords: a link the user uses once ---------------------------------------------


def _use_link(link: str, password: str = NEW_PASSWORD):
    client = Client()
    path = link.removeprefix("http://127.0.0.1:8000")
    page = client.get(path, follow=True)
    return (
        client,
        page,
        client.post(
            page.redirect_chain[-1][0] if page.redirect_chain else path,
            {"new_password1": password, "new_password2": password},
        ),
    )


def test_a_password_link_is_approved_by_another_and_works_once(adam, berit, demo, settings):
    settings.EMAIL_ENABLED = False
    sara = demo["sara.samordnare"]
    request = administration.request_password_link(user=adam, target=sara, reason=REASON)
    assert request.change == {}
    approval = administration.approve(user=berit, request_id=request.pk)
    assert approval.link and not approval.emailed
    assert not sara.check_password(NEW_PASSWORD)  # nobody set it

    _client, page, done = _use_link(approval.link)
    assert page.status_code == 200 and b"new_password1" in page.content
    assert done.status_code == 302 and done["Location"] == "/konto/satt-losenord/klart/"
    sara.refresh_from_db()
    assert sara.check_password(NEW_PASSWORD)
    assert Client().login(username="sara.samordnare", password=NEW_PASSWORD)

    # Single use: the same link no longer works.
    _client, again, _refused = _use_link(approval.link, "ännu-ett-lösenord-99")
    assert b"new_password1" not in again.content
    assert "Länken är ogiltig".encode() in again.content
    sara.refresh_from_db()
    assert sara.check_password(NEW_PASSWORD)


def test_a_password_link_expires(adam, berit, demo, settings):
    settings.EMAIL_ENABLED = False
    sara = demo["sara.samordnare"]
    request = administration.request_password_link(user=adam, target=sara, reason=REASON)
    link = administration.approve(user=berit, request_id=request.pk).link
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert password_links.set_password_tokens.check_token(sara, token)
    settings.PASSWORD_RESET_TIMEOUT = -1  # the link's time is up
    assert not password_links.set_password_tokens.check_token(sara, token)
    _client, page, _done = _use_link(link)
    assert b"new_password1" not in page.content
    sara.refresh_from_db()
    assert not sara.check_password(NEW_PASSWORD)


def test_a_password_link_is_emailed_to_the_user_when_email_is_configured(
    adam, berit, demo, settings
):
    settings.EMAIL_ENABLED = True
    sara = demo["sara.samordnare"]
    request = administration.request_password_link(user=adam, target=sara, reason=REASON)
    approval = administration.approve(user=berit, request_id=request.pk)
    assert approval.emailed and approval.link == ""  # the approver does not see it
    assert [m.to for m in mail.outbox] == [[sara.email]]
    assert "/konto/satt-losenord/" in mail.outbox[0].body
    event = AccessEvent.objects.filter(user=berit, object_id=str(request.pk)).get()
    assert event.details["link_delivery"] == "email"
    assert "konto/satt-losenord" not in str(event.details)


def test_a_password_link_request_is_stale_once_the_password_changed(adam, berit, demo):
    sara = demo["sara.samordnare"]
    request = administration.request_password_link(user=adam, target=sara, reason=REASON)
    sara.set_password("hon-bytte-själv-1")
    sara.save()
    with pytest.raises(ValidationError, match="inaktuell"):
        administration.approve(user=berit, request_id=request.pk)


# --- Legal bases and organisation types -------------------------------------------------


def _basis_values(basis, **changes):
    values = {name: getattr(basis, name) for name in administration.LEGAL_BASIS_FIELDS}
    values.update(changes)
    return values


def test_a_legal_basis_is_widened_only_when_a_second_administrator_approves(adam, berit):
    basis = LegalBasis.objects.get(code="osl-10-18a")
    request = administration.request_legal_basis(
        user=adam,
        basis=basis,
        values=_basis_values(basis, recipient_kinds=["police", "school"], max_age=None),
        reason="Ny lagstiftning",
    )
    assert request.change["fields"]["recipient_kinds"] == {
        "from": ["police"],
        "to": ["police", "school"],
    }
    basis.refresh_from_db()
    assert (basis.recipient_kinds, basis.max_age) == (["police"], 21)
    administration.approve(user=berit, request_id=request.pk)
    basis.refresh_from_db()
    assert (basis.recipient_kinds, basis.max_age) == (["police", "school"], None)


def test_a_new_legal_basis_needs_approval_and_valid_values(adam, berit):
    count = LegalBasis.objects.count()
    values = {
        "code": "lvu-11",
        "name": "LVU 11 §",
        "description": "Synthetic test basis",
        "kind": "statute",
        "discloser_kinds": ["social_services"],
        "recipient_kinds": ["police"],
        "max_age": 18,
        "is_active": True,
    }
    for bad in (
        {"code": "osl-10-18a"},  # taken
        {"code": "mellan slag"},
        {"recipient_kinds": ["alla"]},
        {"max_age": 0},
        {"kind": "magic"},
    ):
        with pytest.raises(ValidationError):
            administration.request_legal_basis(
                user=adam, basis=None, values={**values, **bad}, reason=REASON
            )
    request = administration.request_legal_basis(
        user=adam, basis=None, values=values, reason=REASON
    )
    assert LegalBasis.objects.count() == count
    administration.approve(user=berit, request_id=request.pk)
    created = LegalBasis.objects.get(code="lvu-11")
    request.refresh_from_db()
    assert request.target_id == str(created.pk)
    assert (created.recipient_kinds, created.max_age) == (["police"], 18)


def test_a_legal_basis_request_that_changes_nothing_or_went_stale_is_refused(adam, berit):
    basis = LegalBasis.objects.get(code="osl-10-18a")
    with pytest.raises(ValidationError, match="ändrar ingenting"):
        administration.request_legal_basis(
            user=adam, basis=basis, values=_basis_values(basis), reason=REASON
        )
    first = administration.request_legal_basis(
        user=adam, basis=basis, values=_basis_values(basis, max_age=25), reason=REASON
    )
    second = administration.request_legal_basis(
        user=adam, basis=basis, values=_basis_values(basis, is_active=False), reason=REASON
    )
    administration.approve(user=berit, request_id=first.pk)
    with pytest.raises(ValidationError, match="inaktuell"):
        administration.approve(user=berit, request_id=second.pk)
    basis.refresh_from_db()
    assert (basis.max_age, basis.is_active) == (25, True)


def test_an_organisation_type_changes_only_when_a_second_administrator_approves(adam, berit):
    school = _org("Vivallaskolan")
    with pytest.raises(ValidationError):
        administration.request_organisation_kind(
            user=adam, organisation=school, kind="nonsense", reason=REASON
        )
    with pytest.raises(ValidationError, match="ändrar ingenting"):
        administration.request_organisation_kind(
            user=adam, organisation=school, kind="school", reason=REASON
        )
    request = administration.request_organisation_kind(
        user=adam, organisation=school, kind="social_services", reason=REASON
    )
    school.refresh_from_db()
    assert school.kind == "school"
    administration.approve(user=berit, request_id=request.pk)
    school.refresh_from_db()
    assert school.kind == "social_services"


# --- The admin pages ----------------------------------------------------------------------


def _request_url(change_request):
    return f"/admin/casework/adminchangerequest/{change_request.pk}/change/"


def test_the_admin_pages_request_and_approve_a_role(demo, client, newcomer):
    coordinator = _group(roles.COORDINATOR)
    client.force_login(demo["adam.admin"])
    page = client.get(f"/admin/casework/user/{newcomer.pk}/begar-roll/")
    assert page.status_code == 200 and "Begär en roll".encode() in page.content
    response = client.post(
        f"/admin/casework/user/{newcomer.pk}/begar-roll/",
        {"role": coordinator.pk, "reason": REASON},
    )
    change_request = AdminChangeRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == _request_url(change_request)
    own = client.get(_request_url(change_request))
    assert b"data-own-request" in own.content and b'value="approve"' not in own.content
    assert not newcomer.groups.exists()

    client.force_login(demo["berit.admin"])
    listing = client.get("/admin/casework/adminchangerequest/?decision__exact=pending")
    assert listing.status_code == 200 and _request_url(change_request).encode() in listing.content
    page = client.get(_request_url(change_request))
    assert b'value="approve"' in page.content and roles.COORDINATOR.encode() in page.content
    response = client.post(_request_url(change_request), {"decision": "approve", "reason": ""})
    assert response.status_code == 302
    assert newcomer.groups.filter(pk=coordinator.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "reject", "reason": ""}, "Ange ett skäl för avslaget."),
        ({"decision": "maybe", "reason": "x"}, "Välj godkänn eller avslå."),
        ({}, "Välj godkänn eller avslå."),
        ({"decision": "approve", "reason": "x" * 2001}, "2000 tecken"),
    ],
)
def test_bad_decisions_get_a_swedish_error_and_change_nothing(
    demo, client, newcomer, data, message
):
    change_request = administration.request_role_grant(
        user=demo["adam.admin"], target=newcomer, group=_group(roles.COORDINATOR), reason=REASON
    )
    client.force_login(demo["berit.admin"])
    response = client.post(_request_url(change_request), data)
    assert response.status_code == 400
    assert message.encode() in response.content
    change_request.refresh_from_db()
    assert change_request.decision == "pending" and not newcomer.groups.exists()


def test_the_admin_page_refuses_an_own_twice_decided_or_stale_request(demo, client, newcomer):
    adam, berit = demo["adam.admin"], demo["berit.admin"]
    change_request = administration.request_role_grant(
        user=adam, target=newcomer, group=_group(roles.SCHOOL), reason=REASON
    )
    client.force_login(berit)
    newcomer.organisation = _org("Navets")
    newcomer.save()
    response = client.post(_request_url(change_request), {"decision": "approve"})
    assert response.status_code == 400 and "Begäran är inaktuell".encode() in response.content
    client.post(_request_url(change_request), {"decision": "reject", "reason": "Inaktuell"})
    response = client.post(_request_url(change_request), {"decision": "approve"})
    assert response.status_code == 400 and b"redan avgjord" in response.content
    assert not newcomer.groups.exists()
    assert client.get("/admin/casework/adminchangerequest/999999/change/").status_code == 404


def test_the_admin_page_refuses_approving_your_own_request(demo, client, newcomer):
    change_request = administration.request_role_grant(
        user=demo["adam.admin"], target=newcomer, group=_group(roles.SCHOOL), reason=REASON
    )
    client.force_login(demo["adam.admin"])
    response = client.post(_request_url(change_request), {"decision": "approve"})
    assert response.status_code == 400
    assert "Du kan inte avgöra din egen begäran".encode() in response.content
    assert not newcomer.groups.exists()


def test_the_approver_sees_the_link_once_and_the_requester_never(demo, client, settings):
    settings.EMAIL_ENABLED = False
    sara = demo["sara.samordnare"]
    client.force_login(demo["adam.admin"])
    response = client.post(
        f"/admin/casework/user/{sara.pk}/begar-losenordslank/", {"reason": "Glömt lösenordet"}
    )
    change_request = AdminChangeRequest.objects.get()
    assert response.status_code == 302
    client.force_login(demo["berit.admin"])
    response = client.post(_request_url(change_request), {"decision": "approve"})
    assert response.status_code == 200 and b"data-set-password-link" in response.content
    assert "no-store" in response["Cache-Control"]
    assert b"/konto/satt-losenord/" in response.content
    for username in ("berit.admin", "adam.admin"):
        client.force_login(demo[username])
        assert b"/konto/satt-losenord/" not in client.get(_request_url(change_request)).content


@pytest.mark.parametrize(
    ("url", "data", "message"),
    [
        ("/admin/casework/user/{user}/begar-roll/", {"role": "", "reason": "x"}, "Detta fält"),
        (
            "/admin/casework/user/{user}/begar-roll/",
            {"role": "{auditor}", "reason": ""},
            "Detta fält",
        ),
        (
            "/admin/casework/user/{user}/begar-roll/",
            {"role": "{auditor}", "reason": "x"},
            "både en ärenderoll och granskarrollen",
        ),
        ("/admin/casework/user/{user}/begar-roll/", {"role": "99999", "reason": "x"}, "giltigt"),
        ("/admin/casework/user/{user}/begar-losenordslank/", {"reason": ""}, "Detta fält"),
        ("/admin/casework/user/{user}/begar-losenordslank/", {}, "Detta fält"),
        ("/admin/casework/legalbasis/begar-ny/", {}, "Detta fält"),
        ("/admin/casework/organisation/{org}/begar-typ/", {"kind": "x", "reason": "x"}, "giltigt"),
        (
            "/admin/casework/organisation/{org}/begar-typ/",
            {"kind": "social_services", "reason": "x"},
            "ändrar ingenting",
        ),
        (
            "/admin/casework/legalbasis/begar-ny/",
            {"code": "osl-10-18a", "name": "x", "kind": "statute", "reason": "x"},
            "har redan den här koden",
        ),
        (
            "/admin/casework/legalbasis/begar-ny/",
            {"code": "ny", "name": "x", "kind": "statute", "max_age": "-3", "reason": "x"},
            "större än eller lika med 1",
        ),
    ],
)
def test_bad_requests_get_a_swedish_error_and_write_nothing(demo, client, url, data, message):
    anna = demo["anna.social"]
    client.force_login(demo["adam.admin"])
    auditor = _group(roles.AUDITOR).pk
    data = {k: (str(auditor) if v == "{auditor}" else v) for k, v in data.items()}
    response = client.post(url.format(user=anna.pk, org=anna.organisation_id), data)
    assert response.status_code == 400
    assert message.encode() in response.content
    assert not AdminChangeRequest.objects.exists()


def test_the_admin_forms_no_longer_change_power_directly(demo, client):
    client.force_login(demo["adam.admin"])
    add = client.get("/admin/casework/user/add/").content
    assert b'name="password1"' not in add and b'name="groups"' not in add
    anna = demo["anna.social"]
    change = client.get(f"/admin/casework/user/{anna.pk}/change/").content
    assert b"../password/" not in change and b"begar-losenordslank" in change
    assert client.get(f"/admin/casework/user/{anna.pk}/password/").status_code == 403
    basis = LegalBasis.objects.get(code="osl-10-18a")
    page = client.get(f"/admin/casework/legalbasis/{basis.pk}/change/").content
    assert b'name="recipient_kinds"' not in page and b'name="max_age"' not in page
    assert b'name="name"' in page  # the wording stays editable
    assert b"begar-ny" in client.get("/admin/casework/legalbasis/").content
    assert client.get("/admin/casework/legalbasis/add/").status_code == 403
    school = _org("Vivallaskolan")
    page = client.get(f"/admin/casework/organisation/{school.pk}/change/").content
    assert b'name="kind"' not in page and b"begar-typ" in page
    # A new organisation still gets its type when it is added (it has no users yet).
    assert b'name="kind"' in client.get("/admin/casework/organisation/add/").content


def test_the_account_form_adds_only_unguarded_roles_and_refuses_conflicts(demo, client):
    client.force_login(demo["adam.admin"])
    anna = demo["anna.social"]
    steering = _group(roles.STEERING_GROUP)
    response = client.post(
        f"/admin/casework/user/{anna.pk}/change/",
        account_form(anna, groups=[_group(roles.SOCIAL_WORKER).pk, steering.pk]),
    )
    assert response.status_code == 302  # statistics only: no second administrator needed
    assert anna.groups.filter(pk=steering.pk).exists()
    # Removing a role needs nobody else.
    response = client.post(f"/admin/casework/user/{anna.pk}/change/", account_form(anna, groups=[]))
    assert response.status_code == 302 and not anna.groups.exists()
    # An account that somehow holds both (set outside the admin) cannot be saved so.
    greta = demo["greta.granskare"]
    greta.groups.add(_group(roles.SCHOOL))
    response = client.post(f"/admin/casework/user/{greta.pk}/change/", account_form(greta))
    assert response.status_code == 200
    assert "både en ärenderoll och granskarrollen".encode() in response.content


def test_case_workers_auditors_and_the_steering_group_cannot_reach_the_request_pages(demo, client):
    anna = demo["anna.social"]
    change_request = administration.request_password_link(
        user=demo["adam.admin"], target=anna, reason=REASON
    )
    for username in ("anna.social", "sara.samordnare", "greta.granskare", "stig.styrgrupp"):
        client.force_login(demo[username])
        for url in (
            f"/admin/casework/user/{anna.pk}/begar-roll/",
            "/admin/casework/adminchangerequest/",
            _request_url(change_request),
        ):
            assert client.get(url).status_code == 302, (username, url)  # the admin's login
            client.post(_request_url(change_request), {"decision": "approve"})
    change_request.refresh_from_db()
    assert change_request.decision == "pending"


def test_every_request_page_and_each_kind_of_request_page_renders(demo, client):
    adam, berit = demo["adam.admin"], demo["berit.admin"]
    basis = LegalBasis.objects.get(code="osl-10-18a")
    school = _org("Vivallaskolan")
    client.force_login(adam)
    for url in (
        "/admin/casework/legalbasis/begar-ny/",
        f"/admin/casework/legalbasis/{basis.pk}/begar-andring/",
        f"/admin/casework/organisation/{school.pk}/begar-typ/",
        f"/admin/casework/user/{demo['anna.social'].pk}/begar-losenordslank/",
        "/admin/casework/adminchangerequest/",
    ):
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/casework/legalbasis/999999/begar-andring/").status_code == 404
    made = [
        administration.request_legal_basis(
            user=adam, basis=basis, values=_basis_values(basis, max_age=20), reason=REASON
        ),
        administration.request_organisation_kind(
            user=adam, organisation=school, kind="leisure", reason=REASON
        ),
        administration.request_password_link(user=adam, target=demo["anna.social"], reason=REASON),
    ]
    client.force_login(berit)
    for change_request in made:
        response = client.get(_request_url(change_request))
        assert response.status_code == 200
        assert b'value="approve"' in response.content
    assert b"20" in client.get(_request_url(made[0])).content
