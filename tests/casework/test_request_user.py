"""The request's user after the middleware: the user object itself once it has been read
(``casework.mfa._unwrap_user``), with django-otp's fields, for every kind of request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.utils.functional import LazyObject

from casework.models import User

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])


def test_a_signed_in_page_sees_the_user_object_with_its_second_factor_fields(demo):
    anna = demo["anna.social"]
    client = Client()
    client.force_login(anna)
    response = client.get("/arenden/inbox/")
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert type(user) is User
    assert user.pk == anna.pk
    assert user.otp_device is None  # no device: django-otp's field, set on this object
    assert user.is_verified() is False
    assert response.context["user"] is user


def test_an_anonymous_request_sees_the_anonymous_user(demo):
    response = Client().get("/konto/logga-in/")
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert isinstance(user, AnonymousUser)
    assert not isinstance(user, LazyObject)
    assert user.is_verified() is False


def test_signing_out_in_a_request_leaves_the_anonymous_user(demo):
    client = Client()
    client.force_login(demo["anna.social"])
    response = client.post("/konto/logga-ut/")
    assert response.status_code == 302
    assert not response.wsgi_request.user.is_authenticated
