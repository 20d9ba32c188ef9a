"""The API's case read: its two reads compiled once a process (``casework.compiled``)
give the ORM's instances, and keep nothing of one read for the next."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AccessEvent
from casework.compiled import CompiledQuery
from casework.models import CaseMembership
from casework.selectors.case_status import current_team, find_case
from casework.services import teams
from tests.workflows.sig.factories import PURPOSE, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])


def _values(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def test_find_case_gives_the_orm_instance(demo):
    case = sig_case(demo, Status.ACTIVE)
    expected = SigCase.objects.select_related("person", "owner_organisation").get(pk=case.pk)
    for case_id in (case.pk, str(case.pk)):
        found = find_case(case_id)
        assert type(found) is SigCase
        assert _values(found) == _values(expected)
        assert found._state.db == "default" and not found._state.adding
        # The person and the organisation came with it, as select_related's.
        assert SigCase.person.is_cached(found) and SigCase.owner_organisation.is_cached(found)
        assert _values(found.person) == _values(expected.person)
        assert found.owner_organisation == expected.owner_organisation
    assert find_case(uuid.uuid4()) is None


def test_current_team_gives_the_orm_instances_and_sees_every_change(demo):
    case = sig_case(demo, Status.ACTIVE)
    sara = demo["sara.samordnare"]

    def expected():
        now = timezone.now()
        return list(
            case.memberships.filter(valid_from__lte=now)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
            .select_related("user", "user__organisation")
            .order_by("role", "valid_from")
        )

    team = current_team(case)
    assert [_values(m) for m in team] == [_values(m) for m in expected()]
    assert {m.user.username for m in team} == {"anna.social", "per.polis"}
    for membership in team:
        assert membership.case is case
        assert CaseMembership.user.is_cached(membership)
        assert membership.user.organisation.name
    # A seat ended and a seat added count at the next read: only the SQL is kept.
    police = next(m for m in team if m.user.username == "per.polis")
    teams.end_membership(
        user=sara, case=case, purpose=PURPOSE, membership=police, expected_version=None
    )
    case.refresh_from_db()
    teams.add_member(
        user=sara,
        case=case,
        purpose=PURPOSE,
        member=sara,
        role=CaseMembership.Role.SOCIAL_WORKER,
    )
    team = current_team(case)
    assert {m.user.username for m in team} == {"anna.social", "sara.samordnare"}
    assert [m.pk for m in team] == [m.pk for m in expected()]


def test_the_api_read_sees_a_team_change_at_once(social_api, demo):
    case = sig_case(demo, Status.ACTIVE)
    sara = demo["sara.samordnare"]
    path = f"/api/v1/cases/{case.pk}/"
    first = social_api.get(path, acting="anna.social")
    assert first.status_code == 200, first.content
    assert {m["username"] for m in first.json()["team"]} == {"anna.social", "per.polis"}
    lead = CaseMembership.objects.get(case=case, user=demo["anna.social"], valid_to=None)
    teams.end_membership(
        user=sara, case=case, purpose=PURPOSE, membership=lead, expected_version=None
    )
    # anna.social left the team: her next read is refused (a 404, a denial event) …
    refused = social_api.get(path, acting="anna.social")
    assert refused.status_code == 404
    assert AccessEvent.objects.filter(
        action="access_denied", username="anna.social", object_id=str(case.pk)
    ).exists()
    # … and the coordinator's answer no longer lists her, with the new version.
    read = social_api.get(path, acting="sara.samordnare")
    assert read.status_code == 200
    assert {m["username"] for m in read.json()["team"]} == {"per.polis"}
    case.refresh_from_db()
    assert read["ETag"] == f'"v{case.version}"' != first["ETag"]


def test_a_read_is_four_statements(social_api, demo):
    from django.db import connection

    case = sig_case(demo, Status.ACTIVE)
    social_api.get(f"/api/v1/cases/{case.pk}/", acting="sara.samordnare")
    with CaptureQueriesContext(connection) as statements:
        read = social_api.get(f"/api/v1/cases/{case.pk}/", acting="sara.samordnare")
    assert read.status_code == 200
    # The access generation, the case, its team, the access-log event.
    assert len(statements.captured_queries) == 4, statements.captured_queries


def test_a_stand_in_missing_from_the_statement_is_refused(db):
    query = CompiledQuery(
        lambda case_id: CaseMembership.objects.filter(role="lead"), case_id=uuid.uuid4()
    )
    with pytest.raises(ValueError, match="case_id"):
        query.run(case_id=uuid.uuid4())
