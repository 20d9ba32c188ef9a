"""Log review: every referral of a person who was already registered is listed (ADR 0012).

A referral form is a way to a person's record: registering one for a known person is
reviewed like break-the-glass. The rule reads the referral's creation event, whose
``person_registered`` flag is written by ``casework.services.cases.open_case`` —
identifiers and flags only, never a value.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from audit import review
from audit.models import AccessEvent
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import PERSON_NAME, PURPOSE, REASON, make_person
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase
from workflows.sig.services import refer
from workflows.sspf import services as sspf_services

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _window():
    now = timezone.now()
    return now - dt.timedelta(minutes=5), now + dt.timedelta(minutes=5)


def test_referrals_of_registered_persons_are_listed_and_new_ones_are_not(demo):
    anna, lisa = demo["anna.social"], demo["lisa.skola"]
    known = make_person(user=demo["sara.samordnare"], years=15)
    earlier = sspf_services.raise_concern(user=lisa, person=known, concern="Oro.", purpose=PURPOSE)
    new = make_person(user=anna, years=16)
    fishing = refer(user=anna, person=known, reason=REASON, purpose=PURPOSE)
    fresh = refer(user=anna, person=new, reason=REASON, purpose=PURPOSE)

    listed = review.referrals_of_registered_persons(*_window()).events
    assert [(e.object_id, e.username, e.person_id) for e in listed] == [
        (str(fishing.pk), "anna.social", known.pk)
    ]
    # The first case of each person is no referral of a registered person.
    assert str(earlier.pk) not in {e.object_id for e in listed}
    assert str(fresh.pk) not in {e.object_id for e in listed}
    # Flags and identifiers only: no name, no text of the referral.
    stored = json.dumps(listed[0].details) + " ".join(listed[0].fields)
    assert PERSON_NAME not in stored and REASON not in stored
    assert listed[0].details["person_registered"] is True
    fresh_event = AccessEvent.objects.get(action=AccessEvent.Action.CREATE, object_id=str(fresh.pk))
    assert fresh_event.details["person_registered"] is False


def test_the_referral_form_feeds_the_rule_and_the_auditor_sees_it(demo, client):
    from tests.workflows.sig.factories import fresh_personnummer

    anna = demo["anna.social"]
    pnr = fresh_personnummer(16)
    client.force_login(anna)
    data = {
        "personnummer": pnr,
        "name": "Någon Alls",
        "area": "other",
        "phone": "",
        "address": "",
        "reason": "Första anmälan.",
    }
    assert client.post(SigFlow.start.reverse("execute"), data).status_code == 200
    assert client.post(SigFlow.start.reverse("execute"), data).status_code == 200
    _first, second = SigCase.objects.order_by("reference")
    listed = review.referrals_of_registered_persons(*_window()).events
    assert [e.object_id for e in listed] == [str(second.pk)]

    client.force_login(demo["greta.granskare"])
    today = timezone.localdate()
    response = client.get(
        "/granskning/loggkontroll/",
        {"date_from": today.isoformat(), "date_to": today.isoformat(), "seed": 1},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-rule="referrals-of-registered"' in page
    assert response.context["report"].referrals_of_registered.total == 1
    assert "Någon Alls" not in page
