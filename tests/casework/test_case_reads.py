"""The case page's and the case list's compiled reads (``casework.selectors.case_reads``)
give the rows the ORM's querysets give, with the related rows the page reads after them
already in place."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework import policy
from casework.models import Case, CaseDecision, CaseEvent, CaseLegalBasis, CaseLink, Consent
from casework.selectors import case_reads
from tests.workflows.conftest import BOTH_DATABASES
from workflows.sig.models import SigCase
from workflows.sspf.models import SspfCase

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.fixture
def seeded(demo_cases):
    return demo_cases


def _fields(rows) -> list[dict]:
    """Each row's columns, by id (rows equal in their ordering come in either order)."""
    return sorted(
        ({f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields} for row in rows),
        key=lambda columns: str(columns["id"]),
    )


def test_each_read_gives_the_querysets_rows(seeded):
    cases = list(Case.objects.all())
    assert len(cases) >= 5
    assert any(CaseLink.objects.filter(from_case=case).exists() for case in cases)
    for case in cases:
        assert _fields(case_reads.decisions(case)) == _fields(
            CaseDecision.objects.filter(case=case)
        )
        assert _fields(case_reads.legal_bases(case)) == _fields(
            CaseLegalBasis.objects.filter(case=case)
        )
        events = case_reads.events(case)
        assert _fields(events) == _fields(CaseEvent.objects.filter(case=case))
        assert [event.at for event in events] == sorted(event.at for event in events)
        links = case_reads.links(case)
        assert _fields(links) == _fields(
            CaseLink.objects.filter(Q(from_case=case) | Q(to_case=case))
        )
        assert [link.from_case.person.pk for link in links] == [
            link.from_case.person_id for link in links
        ]
        assert {m.pk for m in case_reads.current_team(case)} == {
            m.pk
            for m in case.memberships.filter(valid_from__lte=timezone.now()).filter(
                Q(valid_to__isnull=True) | Q(valid_to__gt=timezone.now())
            )
        }
        for organisation_id in {case.owner_organisation_id, -1}:
            expected = case.actions.filter(
                Q(visibility="team") | Q(organisation_id=organisation_id)
            )
            assert _fields(case_reads.visible_actions(case, organisation_id, None)) == _fields(
                expected
            )


def test_consents_come_with_their_organisations_and_guardians_with_the_person(seeded):
    cases = [case for case in Case.objects.all() if case.consents.exists()]
    assert cases
    for case in cases:
        consents = case_reads.consents(case)
        with CaptureQueriesContext(connection) as statements:
            covered = [[org.pk for org in consent.organisations.all()] for consent in consents]
            givers = [consent.guardian_id and consent.guardian.pk for consent in consents]
        assert statements.captured_queries == []
        expected = {
            c.pk: c for c in Consent.objects.filter(case=case).prefetch_related("organisations")
        }
        assert sorted(map(str, expected)) == sorted(str(c.pk) for c in consents)
        assert [c.given_at for c in consents] == sorted(c.given_at for c in consents)
        assert covered == [[org.pk for org in expected[c.pk].organisations.all()] for c in consents]
        assert givers == [expected[c.pk].guardian_id for c in consents]
        person = case.person
        case_reads.guardians(person)
        with CaptureQueriesContext(connection) as statements:
            read = sorted(g.pk for g in person.guardians.all())
        assert statements.captured_queries == []
        assert read == sorted(
            person.guardians.model.objects.filter(person=person).values_list("pk", flat=True)
        )


@pytest.mark.parametrize("days", [0, 30])
def test_the_compiled_case_list_is_the_querysets(seeded, settings, days):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "CLOSED_CASE_LEAD_READ_DAYS": days}
    now = timezone.now()
    for user in seeded.values():
        if not policy.can_use_task_inbox(user):
            continue
        for model in (SigCase, SspfCase):
            compiled = case_reads.cases_in_reach(model, user, now=now)
            reach = policy.cases_in_reach(user, now=now, absent=frozenset()).values("pk")
            expected = list(case_reads.listed_cases(model, reach)[: case_reads.LISTED])
            assert compiled is not None
            assert [c.pk for c in compiled] == [c.pk for c in expected], user.username
            assert [c.person.pk for c in compiled] == [c.person.pk for c in expected]
