"""``seed_demo`` creates SSPF cases in every state, a meeting and anonymised discussions."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from workflows.sspf import AnonymisedDiscussion, OperationalMeeting, SspfCase, Status

from .conftest import BOTH_DATABASES


@pytest.mark.django_db(databases=BOTH_DATABASES)
def test_seed_demo_makes_sspf_cases_in_every_state(demo, settings):
    settings.DEMO_SIG_CASES = True
    from workflows import sig_demo

    settings_slots = sig_demo.SLOTS
    sig_demo.SLOTS = []  # only the SSPF part here (SIG's demo has its own test)
    try:
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    finally:
        sig_demo.SLOTS = settings_slots
    states = set(SspfCase.objects.values_list("status", flat=True))
    assert states == set(Status.values)
    assert SspfCase.objects.count() == 8  # idempotent
    assert OperationalMeeting.objects.count() == 1
    assert AnonymisedDiscussion.objects.count() == 2
    assert SspfCase.objects.get(status=Status.CONCERN_RAISED).process.task_set.exists()
