"""Overdue reassessments: in the coordinators' list and in ``send_reminders``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from casework.models import Reminder
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import defector_case

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def test_overdue_reassessments_are_listed_and_reminded_once_a_day(users, client):
    overdue = defector_case(users, "reassessment_overdue")
    current = defector_case(users, "activate")
    client.force_login(users["alex.avhopp"])
    page = client.get("/arenden/avhoppare/").content.decode()
    section = page.split('id="samverkan-overdue"', 1)[1].split("</section>", 1)[0]
    assert overdue.reference in section
    assert current.reference not in section
    client.force_login(users["lisa.skola"])
    assert overdue.reference not in client.get("/arenden/avhoppare/").content.decode()
    client.force_login(users["alex.avhopp"])
    assert "samverkan-threat" in client.get(f"/arenden/fall/{overdue.pk}/").content.decode()

    out = io.StringIO()
    call_command("send_reminders", stdout=out)
    reminders = Reminder.objects.filter(kind=Reminder.Kind.REASSESSMENT_OVERDUE)
    assert list(reminders.values_list("case_id", flat=True)) == [overdue.pk]
    call_command("send_reminders", stdout=io.StringIO())
    assert reminders.count() == 1
    assert overdue.reference not in out.getvalue()
