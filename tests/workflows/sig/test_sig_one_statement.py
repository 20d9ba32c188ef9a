"""A SIG transition is one statement (docs/adr/0032-one-statement-transition.md): the
row lock, the version and state checks, the case's two tables, the timeline entry and
the access-log event in one data-modifying CTE, with the same rows the transition
wrote before, and nothing at all written when a check fails."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AccessEvent
from casework.crypto.records import open_value
from casework.models import CaseEvent, CaseMembership
from casework.services import cases as services
from casework.services.case_keys import case_data_key
from casework.services.cases import CaseConflict
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig import prepared
from tests.workflows.sig.factories import PURPOSE, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)
REASON = "Screeningen påbörjas: bedömning av behov."


def _statements(captured) -> list[str]:
    """The statements of a capture, without the test transaction's savepoints."""
    return [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def _written(case) -> tuple[int, int]:
    return (
        CaseEvent.objects.filter(case_id=case.pk).count(),
        AccessEvent.objects.filter(object_id=str(case.pk)).count(),
    )


def test_a_transition_is_one_statement_with_the_same_rows(users):
    sara = users["sara.samordnare"]
    case = sig_case(users, Status.REFERRED)
    version = SigCase.objects.get(pk=case.pk).version
    # The user's permissions, roles and organisation are read once per request (kept on
    # the user object): a first transition reads them, the second counts only its own.
    services.transition(
        user=sara, case=sig_case(users, Status.REFERRED), name="begin_screening", purpose=PURPOSE
    )
    with CaptureQueriesContext(connection) as captured:
        services.transition(
            user=sara, case=case, name="begin_screening", purpose=PURPOSE, reason=REASON
        )
    statements = _statements(captured)
    assert len(statements) == 1, statements
    # Prepared once per session (docs/adr/0032, Session 17): the statement it runs.
    assert prepared.statement(statements[0]).startswith("WITH moved_0 AS (UPDATE")

    saved = SigCase.objects.get(pk=case.pk)
    assert saved.status == Status.SCREENING
    assert saved.version == case.version == version + 1
    entry = CaseEvent.objects.get(case_id=case.pk, transition="begin_screening")
    assert (entry.actor, entry.transition, entry.from_state, entry.to_state) == (
        sara,
        "begin_screening",
        Status.REFERRED,
        Status.SCREENING,
    )
    assert open_value(entry, "reason", case_data_key(saved)) == REASON
    event = AccessEvent.objects.get(
        object_id=str(case.pk),
        action=AccessEvent.Action.TRANSITION,
        details__transition="begin_screening",
    )
    assert event.user == sara
    assert event.username == sara.username
    assert event.object_type == "workflows.sigcase"
    assert event.person_id == case.person_id
    assert event.fields == ["reason"]
    assert event.purpose == PURPOSE
    assert event.outcome == AccessEvent.Outcome.ALLOWED
    assert event.details == {
        "transition": "begin_screening",
        "source": Status.REFERRED,
        "target": Status.SCREENING,
    }
    # Written as the queue of the seal expects it: the trigger queued the new row.
    assert event.pk is not None


def test_the_object_saves_again_after_a_one_statement_transition(users):
    """django-fsm's record of the state the object was loaded in follows the statement:
    a later save of the same object is not taken for a concurrent transition."""
    case = sig_case(users, Status.REFERRED)
    services.transition(
        user=users["sara.samordnare"], case=case, name="begin_screening", purpose=PURPOSE
    )
    case.save()
    assert SigCase.objects.get(pk=case.pk).status == Status.SCREENING


def test_a_stale_version_writes_nothing(users):
    case = sig_case(users, Status.REFERRED)
    before = _written(case)
    version = case.version
    with pytest.raises(CaseConflict):
        services.transition(
            user=users["sara.samordnare"],
            case=case,
            name="begin_screening",
            purpose=PURPOSE,
            reason=REASON,
            expected_version=version - 1,
        )
    saved = SigCase.objects.get(pk=case.pk)
    assert (saved.status, saved.version) == (Status.REFERRED, version)
    assert _written(case) == before
    assert case.status == Status.REFERRED  # the object is the row again


def test_a_state_moved_behind_the_objects_back_writes_nothing(users):
    """Another transaction moved the state (not the version): django-fsm's optimistic
    check in the statement refuses, as ``ConcurrentTransitionMixin``'s save did."""
    case = sig_case(users, Status.REFERRED)
    before = _written(case)
    SigCase.objects.filter(pk=case.pk).update(status=Status.CLOSED)
    with pytest.raises(CaseConflict):
        services.transition(
            user=users["sara.samordnare"], case=case, name="begin_screening", purpose=PURPOSE
        )
    saved = SigCase.objects.get(pk=case.pk)
    assert (saved.status, saved.version) == (Status.CLOSED, case.version)
    assert _written(case) == before
    assert case.status == Status.CLOSED


def test_a_close_ends_the_team_and_the_event_says_how_many(users):
    """A close has work whose outcome the event names: the case's change first, then the
    team's end, then the timeline entry and the event (two statements, still no
    SELECT ... FOR UPDATE)."""
    case = sig_case(users, Status.ACTIVE)
    team = CaseMembership.objects.filter(case_id=case.pk, valid_to__isnull=True).count()
    assert team >= 2
    with CaptureQueriesContext(connection) as captured:
        services.close_case(
            user=users["sara.samordnare"],
            case=case,
            purpose=PURPOSE,
            reason="goals_met",
        )
    assert not any("FOR UPDATE" in sql for sql in _statements(captured))
    saved = SigCase.objects.get(pk=case.pk)
    assert saved.status == Status.CLOSED
    assert not CaseMembership.objects.filter(case_id=case.pk, valid_to__isnull=True).exists()
    event = AccessEvent.objects.filter(
        object_id=str(case.pk), action=AccessEvent.Action.TRANSITION
    ).latest("id")
    assert event.details == {
        "transition": "close",
        "source": Status.ACTIVE,
        "target": Status.CLOSED,
        "memberships_ended": team,
    }
    entry = CaseEvent.objects.filter(case_id=case.pk, transition="close").get()
    assert (entry.from_state, entry.to_state) == (Status.ACTIVE, Status.CLOSED)


def test_values_and_nulls_reach_the_row_as_a_save_writes_them(users):
    """A column's value or its NULL (written in the statement, not as a parameter), on
    the case's tables and in the event's row (a request's client address or none)."""
    import datetime

    from audit import context

    sara = users["sara.samordnare"]
    case = sig_case(users, Status.REFERRED)
    case.review_date = datetime.date(2027, 3, 1)
    token = context._current.set(
        context.RequestContext(request_id="r-one-statement", client_address="192.0.2.7")
    )
    try:
        services.transition(user=sara, case=case, name="begin_screening", purpose=PURPOSE)
    finally:
        context._current.reset(token)
    saved = SigCase.objects.get(pk=case.pk)
    assert (saved.status, saved.review_date, saved.screening_note) == (
        Status.SCREENING,
        datetime.date(2027, 3, 1),
        None,
    )
    first = AccessEvent.objects.filter(
        object_id=str(case.pk), details__transition="begin_screening"
    )
    assert [(e.request_id, e.client_address) for e in first] == [("r-one-statement", "192.0.2.7")]

    # A value in the row, cleared in memory: the statement writes the NULL.
    other = sig_case(users, Status.REFERRED)
    SigCase.objects.filter(pk=other.pk).update(review_date=datetime.date(2027, 3, 1))
    other = SigCase.objects.select_related("person").get(pk=other.pk)
    other.review_date = None
    services.transition(
        user=sara, case=other, name="begin_screening", purpose=PURPOSE, reason=REASON
    )
    saved = SigCase.objects.get(pk=other.pk)
    assert (saved.status, saved.review_date, saved.version) == (
        Status.SCREENING,
        None,
        other.version,
    )
    second = AccessEvent.objects.get(object_id=str(other.pk), details__transition="begin_screening")
    assert (second.request_id, second.client_address, second.fields) == ("", None, ["reason"])
    entry = CaseEvent.objects.get(case_id=other.pk, transition="begin_screening")
    assert open_value(entry, "reason", case_data_key(saved)) == REASON
