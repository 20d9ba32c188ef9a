"""Four eyes on power: what an administrator could once do alone now needs a second one.

Finding 5 of issue 14: an administrator could give themselves case access by
creating an account with a case role, setting another user's password, widening a
legal basis or changing an organisation's kind. Each of those now waits for a
second administrator's approval (docs/adr/0014-four-eyes-on-power.md).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from casework import roles
from casework.models import LegalBasis, Organisation, User

NEW_PASSWORD = "ett-eget-lösenord-2026"


def _user_form(user, **overrides):
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
        _user_form(account, groups=[coordinator.pk]),
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
