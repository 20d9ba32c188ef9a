"""The case page's and the case list's compiled reads (``casework.selectors.case_reads``)
give the rows the ORM's querysets give, with the related rows the page reads after them
already in place; the reads run together give what each gives alone; the case page's
consent lines (``casework.selectors.cases.consent_rows``) say what the template's filters
said."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from casework import policy
from casework.models import Case, CaseDecision, CaseEvent, CaseLegalBasis, CaseLink, Consent
from casework.selectors import case_reads
from casework.selectors.cases import consent_rows
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
            assert [c.person_id for c in compiled] == [c.person_id for c in expected]


def test_reads_run_together_give_what_each_gives_alone_in_one_execution(seeded):
    cases = list(Case.objects.select_related("person"))
    now = timezone.now()
    for case in cases:
        organisation_id = case.owner_organisation_id
        with CaptureQueriesContext(connection) as statements:
            team, consents = case_reads.parties(case, now=now)
        assert len(statements.captured_queries) == 1
        assert _fields(team) == _fields(case_reads.current_team(case, now=now))
        assert [m.case is case for m in team] == [True] * len(team)
        assert _fields(consents) == _fields(case_reads.consents(case))
        with CaptureQueriesContext(connection) as statements:
            covered = {c.pk: [o.pk for o in c.organisations.all()] for c in consents}
            guardians = sorted(g.pk for g in case.person.guardians.all())
        assert statements.captured_queries == []
        assert covered == {
            c.pk: [o.pk for o in c.organisations.all()] for c in case_reads.consents(case)
        }
        assert guardians == sorted(
            case.person.guardians.model.objects.filter(person=case.person).values_list(
                "pk", flat=True
            )
        )
        with CaptureQueriesContext(connection) as statements:
            rows = case_reads.case_rows(case, organisation_id, None, decided=True, legal=True)
        assert len(statements.captured_queries) == 1
        assert _fields(rows.actions) == _fields(
            case_reads.visible_actions(case, organisation_id, None)
        )
        assert _fields(rows.decisions) == _fields(case_reads.decisions(case))
        assert _fields(rows.legal_bases) == _fields(case_reads.legal_bases(case))
        assert _fields(rows.links) == _fields(case_reads.links(case))
        assert _fields(rows.events) == _fields(case_reads.events(case))
        assert [e.at for e in rows.events] == [e.at for e in case_reads.events(case)]
        # Parts not shown are not read; the ORM's actions for a user of no organisation.
        rows = case_reads.case_rows(case, None, None, decided=False, legal=False)
        assert rows.decisions == [] and rows.legal_bases == []
        assert _fields(rows.actions) == _fields(case_reads.visible_actions(case, None, None))


def test_a_case_read_with_its_parties_gives_what_the_reads_give_in_one_execution(seeded):
    """``case_and_parties``: a page's case read and ``parties`` (the guardians by the case's
    id) in one execution, the same rows; no case, no parties."""
    import uuid

    from workflows.common.case_page import _page_case_read

    now = timezone.now()
    cases = list(SigCase.objects.all())
    assert cases and any(case.person.guardians.exists() for case in cases)
    for case in cases:
        with CaptureQueriesContext(connection) as statements:
            read, parties = case_reads.case_and_parties(_page_case_read(SigCase), case.pk, now=now)
            guardians = [g.pk for g in read.person.guardians.all()]
            covered = {c.pk: [o.pk for o in c.organisations.all()] for c in parties.consents}
        assert len(statements.captured_queries) == 1
        assert (read.pk, read.person.pk, parties.case_id, parties.now) == (
            case.pk,
            case.person_id,
            case.pk,
            now,
        )
        team, consents = case_reads.parties(read, now=now)
        assert _fields(parties.team) == _fields(team)
        assert [m.case is read for m in parties.team] == [True] * len(team)
        assert _fields(parties.consents) == _fields(consents)
        assert covered == {c.pk: [o.pk for o in c.organisations.all()] for c in consents}
        assert guardians == list(
            read.person.guardians.model.objects.filter(person=case.person).values_list(
                "pk", flat=True
            )
        )
    missing = uuid.UUID("00000000-0000-0000-0000-000000000001")
    assert case_reads.case_and_parties(_page_case_read(SigCase), missing, now=now) == (
        None,
        None,
    )


def test_run_together_refuses_reads_of_two_databases():
    import uuid

    from casework.compiled import CompiledQuery, run_together
    from casework.models import DataKey

    stand_in = uuid.UUID(int=7)
    keys = CompiledQuery(
        lambda owner: DataKey.objects.using("keystore").filter(owner_id=owner), owner=stand_in
    )
    decisions = CompiledQuery(lambda case: CaseDecision.objects.filter(case_id=case), case=stand_in)
    with pytest.raises(ValueError, match="one database"):
        run_together((decisions, {"case": uuid.uuid4()}), (keys, {"owner": uuid.uuid4()}))


def test_a_raw_statement_runs_with_compiled_reads_in_one_execution(seeded):
    """``RawRows``: named parameters (one used twice) in a statement run with a compiled
    read, its rows as tuples, the compiled read's instances as it gives them alone."""
    from casework.compiled import CompiledQuery, RawRows, run_together

    case = Case.objects.first()
    raw = RawRows("SELECT %(a)s::int, %(b)s::text, %(a)s::int + 1, 100 %% 7")
    decisions = CompiledQuery(lambda case: CaseDecision.objects.filter(case_id=case), case=case.pk)
    with CaptureQueriesContext(connection) as statements:
        rows, found = run_together((raw, {"a": 5, "b": "x"}), (decisions, {"case": case.pk}))
    assert len(statements.captured_queries) == 1
    assert rows == [(5, "x", 6, 2)]
    assert _fields(found) == _fields(decisions.run(case=case.pk))
    assert run_together((raw, {"b": "y", "a": 1})) == [[(1, "y", 2, 2)]]


def _by_filters(consent: Consent) -> dict:
    """What ``_consents.html`` rendered before the rows, for one consent."""
    withdrawn = consent.withdrawn_at
    return {
        "giver": consent.get_giver_display(),
        "decision": consent.get_decision_display(),
        "form": consent.get_form_display(),
        "covers": ", ".join(str(org) for org in consent.organisations.order_by("name")),
        "purposes": ", ".join(consent.purpose_labels) or "—",
        "valid_until": consent.valid_until.strftime("%Y-%m-%d") if consent.valid_until else "—",
        "withdrawn_on": timezone.localtime(withdrawn).strftime("%Y-%m-%d") if withdrawn else "",
        "withdrawable": not withdrawn and consent.decision == "given",
    }


@pytest.mark.parametrize("language", ["sv", "en"])
def test_consent_rows_say_what_the_filters_said(demo_cases, language):
    consents = list(Consent.objects.select_related("case").order_by("given_at"))
    assert consents
    # A withdrawn consent late in the evening (UTC): its local day is the next one.
    late = consents[0]
    late.withdrawn_at = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)
    late.valid_until = None
    late.purposes = []
    late.save(update_fields=["withdrawn_at", "valid_until", "purposes"])
    with translation.override(language):
        for case in {consent.case for consent in consents}:
            read = case_reads.consents(case)
            rows = consent_rows(read)
            assert [row.consent.pk for row in rows] == [consent.pk for consent in read]
            for row in rows:
                consent = Consent.objects.get(pk=row.consent.pk)
                expected = _by_filters(consent)
                assert {name: getattr(row, name) for name in expected} == expected
    assert consent_rows([]) == []
    late_row = consent_rows(case_reads.consents(late.case))
    assert [row.withdrawn_on for row in late_row if row.consent.pk == late.pk] == ["2026-03-02"]
