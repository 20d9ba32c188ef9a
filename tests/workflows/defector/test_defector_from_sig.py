"""A SIG case closed as "handed to the defector programme" opens the linked defector referral
in the same transaction, or is not closed at all."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.exceptions import ValidationError

from casework import programmes
from casework.models import Case, CaseLink
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver, sig_case
from workflows.defector import intake
from workflows.defector.flow import DefectorFlow
from workflows.defector.models import DefectorCase
from workflows.defector.models import Status as DefectorStatus
from workflows.sig.models import Status as SigStatus

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

NOTE = "Vill lämna gänget; hotad efter avhoppet."


def _close(client, user, case, **overrides):
    client.force_login(user)
    data = {
        "_action": "close",
        "close_reason": Case.CloseReason.DEFECTOR_PROGRAMME,
        "note": NOTE,
        "version": case.version,
        **overrides,
    }
    return client.post(f"/arenden/fall/{case.pk}/", data)


def test_closing_to_the_defector_programme_opens_a_linked_referral(users, client):
    sig = sig_case(users, SigStatus.ACTIVE, years=17)
    response = _close(client, users["anna.social"], sig)
    assert response.status_code == 302
    sig.refresh_from_db()
    assert sig.status == SigStatus.CLOSED
    assert sig.close_reason == Case.CloseReason.DEFECTOR_PROGRAMME
    referral = DefectorCase.objects.get(person=sig.person)
    assert referral.status == DefectorStatus.REFERRED
    link = CaseLink.objects.get(from_case=sig, to_case=referral)
    assert link.kind == CaseLink.Kind.HANDED_OVER
    # The defector coordinators have the initial check in their queue.
    process = referral.processes.get()
    assert process.task_set.filter(flow_task=DefectorFlow.check, owner__isnull=True).exists()
    # Both cases show the link: the SIG team on the SIG case, the coordinator on the referral.
    sig_page = client.get(f"/arenden/fall/{sig.pk}/").content.decode()
    assert referral.reference in sig_page
    client.force_login(users["alex.avhopp"])
    defector_page = client.get(f"/arenden/fall/{referral.pk}/").content.decode()
    assert sig.reference in defector_page


def test_closing_at_the_follow_up_step_opens_the_referral_too(users):
    driver = FlowDriver(users)
    flow_case = driver.build("follow_up:begun")
    driver._run(
        flow_case,
        "follow_up",
        "anna.social",
        {
            "_action": "follow_up",
            "outcome": "close",
            "close_reason": Case.CloseReason.DEFECTOR_PROGRAMME,
            "note": NOTE,
        },
    )
    sig = flow_case.case
    assert sig.status == SigStatus.CLOSED
    referral = DefectorCase.objects.get(person=sig.person)
    assert CaseLink.objects.filter(
        from_case=sig, to_case=referral, kind=CaseLink.Kind.HANDED_OVER
    ).exists()


def test_the_referral_needs_a_reason(users, client):
    sig = sig_case(users, SigStatus.ACTIVE, years=17)
    response = _close(client, users["anna.social"], sig, note="")
    assert response.status_code == 200
    assert "note" in response.context["forms"]["close"].errors
    sig.refresh_from_db()
    assert sig.status == SigStatus.ACTIVE
    assert not DefectorCase.objects.filter(person=sig.person).exists()
    # The service refuses it too (a caller without the form).
    with pytest.raises(ValidationError):
        from workflows.sig.services import close

        close(
            user=users["anna.social"],
            case=sig,
            purpose="Test",
            reason=Case.CloseReason.DEFECTOR_PROGRAMME,
            note="  ",
        )


def test_the_close_is_refused_whole_if_the_referral_cannot_be_opened(users, client, monkeypatch):
    sig = sig_case(users, SigStatus.ACTIVE, years=17)
    real = intake.refer_linked

    def refused_after_opening(**kwargs):
        real(**kwargs)  # the referral and the link are written …
        raise ValidationError("Avhopparverksamheten kan inte ta emot remissen.")  # … then refused

    # The SIG close reaches the defector programme through the registry.
    registered = programmes.get(Case.Programme.DEFECTOR)
    monkeypatch.setitem(
        programmes._registry,
        Case.Programme.DEFECTOR,
        dataclasses.replace(registered, refer_linked=refused_after_opening),
    )
    response = _close(client, users["anna.social"], sig)
    assert response.status_code == 200
    assert "Avhopparverksamheten kan inte ta emot remissen." in response.content.decode()
    sig.refresh_from_db()
    assert sig.status == SigStatus.ACTIVE
    assert sig.close_reason == ""
    assert not DefectorCase.objects.filter(person=sig.person).exists()
    assert not CaseLink.objects.filter(from_case=sig).exists()


def test_other_close_reasons_open_no_referral(users, client):
    sig = sig_case(users, SigStatus.ACTIVE, years=17)
    response = _close(client, users["sara.samordnare"], sig, close_reason="goals_met")
    assert response.status_code == 302
    assert not DefectorCase.objects.filter(person=sig.person).exists()
    assert not CaseLink.objects.filter(from_case=sig).exists()
