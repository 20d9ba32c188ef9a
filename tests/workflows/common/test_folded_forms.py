"""The case page's step forms are folded away and fetched when unfolded (a Turbo frame)."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AccessEvent
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import sig_case
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

FRAME = {"HTTP_TURBO_FRAME": "samverkan-form-action"}


def _client(users, username):
    client = Client()
    client.force_login(users[username])
    return client


def test_the_page_holds_frames_not_forms(users):
    case = sig_case(users, Status.ACTIVE)
    html = _client(users, "anna.social").get(f"/arenden/fall/{case.pk}/").content.decode()
    for name in ("action", "legal_basis", "close"):
        assert f'<turbo-frame id="samverkan-form-{name}" src="?form={name}" loading="lazy">' in html
    assert 'name="note"' not in html  # the action form is not rendered


def test_an_unfolded_form_comes_alone_in_its_frame_and_reads_no_case_data(users):
    case = sig_case(users, Status.ACTIVE)
    consultations = AccessEvent.objects.filter(action="consult").count()
    response = _client(users, "anna.social").get(f"/arenden/fall/{case.pk}/?form=action", **FRAME)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<turbo-frame id="samverkan-form-action">')
    assert 'name="_action" value="action"' in html and 'name="note"' in html
    assert f'value="{case.version}"' in html
    assert AccessEvent.objects.filter(action="consult").count() == consultations


def test_without_javascript_the_link_opens_the_page_with_the_form_shown(users):
    case = sig_case(users, Status.ACTIVE)
    html = (
        _client(users, "anna.social").get(f"/arenden/fall/{case.pk}/?form=close").content.decode()
    )
    assert 'name="_action" value="close"' in html
    assert '<details class="samverkan-step" open>' in html


@pytest.mark.parametrize(
    ("username", "form", "status"),
    [
        ("anna.social", "nonsense", 404),
        ("per.polis", "legal_basis", 404),  # not the case's organisation
        ("per.polis", "action", 200),
        ("lisa.skola", "action", 404),  # not on the team: refused and logged
    ],
)
def test_a_form_only_for_whom_may_use_it(users, username, form, status):
    case = sig_case(users, Status.ACTIVE)
    denied = AccessEvent.objects.filter(action="access_denied").count()
    response = _client(users, username).get(
        f"/arenden/fall/{case.pk}/?form={form}", HTTP_TURBO_FRAME=f"samverkan-form-{form}"
    )
    assert response.status_code == status
    if username == "lisa.skola":
        assert AccessEvent.objects.filter(action="access_denied").count() == denied + 1


def test_a_form_posted_with_errors_is_shown_open_with_them(users):
    case = sig_case(users, Status.ACTIVE)
    response = _client(users, "anna.social").post(
        f"/arenden/fall/{case.pk}/", {"_action": "close", "version": case.version}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="_action" value="close"' in html and "errorlist" in html
