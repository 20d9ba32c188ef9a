"""Break-the-glass: opens a case outside the team, never past the secrecy between agencies."""

from __future__ import annotations

import pytest

from audit.models import AccessEvent
from casework.models import BreakGlassAccess
from casework.services import cases as services
from casework.services.cases import CaseDenied
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import sig_case
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

REASON = "Akut hot mot personen, behöver kontaktuppgifter nu."


def test_police_cannot_break_the_glass_without_a_legal_basis(users, client):
    case = sig_case(users, Status.REFERRED)
    per = users["per.polis"]
    with pytest.raises(CaseDenied):
        services.break_glass(user=per, case=case, reason=REASON)
    assert not BreakGlassAccess.objects.exists()
    assert AccessEvent.objects.filter(
        user=per, action="access_denied", details__operation="break_glass"
    ).exists()
    client.force_login(per)
    response = client.post("/arenden/bryt-glaset/", {"reference": case.reference, "reason": REASON})
    assert response.status_code == 200
    assert b"errorlist" in response.content or b"vf-form__error" in response.content
    assert client.get(f"/arenden/fall/{case.pk}/").status_code == 404


def test_a_user_without_the_right_cannot_break_the_glass(users, client):
    case = sig_case(users, Status.REFERRED)
    client.force_login(users["lisa.skola"])
    response = client.post("/arenden/bryt-glaset/", {"reference": case.reference, "reason": REASON})
    assert response.status_code == 403
    assert not BreakGlassAccess.objects.exists()


def test_break_the_glass_needs_a_real_reason(users):
    case = sig_case(users, Status.REFERRED)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.break_glass(user=users["sara.samordnare"], case=case, reason="akut")
    assert not BreakGlassAccess.objects.exists()
