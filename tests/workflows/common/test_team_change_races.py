"""Team changes and absences posted at once, on PostgreSQL (real threads, committed).

Two coordinators give the lead seat to two different people against the same version of
the case: one wins, the other is told the case changed, and the team has one lead, one
timeline entry. Two overlapping absences of one user posted at once: one is written, the
other is a form error (ADR 0026)."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from casework.models import Absence, CaseEvent, CaseMembership
from casework.services import absences, team_changes
from casework.services.cases import CaseConflict
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import colleague
from tests.workflows.racing import race
from tests.workflows.sig.factories import PURPOSE, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = COMMITTED_DB


def test_two_coordinators_replace_the_lead_at_once(staff, meet_at_the_lock):
    case = sig_case(staff, Status.ACTIVE)
    ebba = colleague(staff, "anna.social", "ebba.social")
    olga = colleague(staff, "anna.social", "olga.social")
    version = SigCase.objects.get(pk=case.pk).version
    meet_at_the_lock(2)

    def replace(coordinator, member):
        def run():
            mine = SigCase.objects.get(pk=case.pk)
            return team_changes.replace_member(
                user=staff[coordinator],
                case=mine,
                purpose=PURPOSE,
                role="lead",
                member=member,
                reason="Byte av ansvarig.",
                expected_version=version,
            )

        return run

    results = race(sara=replace("sara.samordnare", ebba), sven=replace("sven.samordnare", olga))
    lost = [name for name, result in results.items() if isinstance(result, CaseConflict)]
    won = [name for name, result in results.items() if isinstance(result, CaseMembership)]
    assert len(lost) == 1 and len(won) == 1, results
    leads = CaseMembership.objects.filter(case=case, role="lead", valid_to__isnull=True)
    assert leads.count() == 1
    assert CaseEvent.objects.filter(case=case, transition="replace:lead").count() == 1
    assert SigCase.objects.get(pk=case.pk).version == version + 1


def test_two_overlapping_absences_posted_at_once(staff):
    anna = staff["anna.social"]
    ebba = colleague(staff, "anna.social", "ebba.social")
    today = timezone.localdate()

    def name(first, last):
        return lambda: absences.name_deputy(
            user=anna,
            deputy=ebba,
            starts_on=today + datetime.timedelta(days=first),
            ends_on=today + datetime.timedelta(days=last),
        )

    results = race(one=name(0, 5), two=name(3, 9))
    refused = [r for r in results.values() if isinstance(r, ValidationError)]
    assert len(refused) == 1, results
    assert Absence.objects.filter(user=anna).count() == 1
