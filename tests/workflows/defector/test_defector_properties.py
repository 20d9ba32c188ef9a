"""Property: over random sequences of reassessments, approvals and actions on a protected
person's case, a case above LOW is never in the local programme, local users never read a
handed-over case, protected fields never reach a non-handler, every routing step is
audited, no case rests in ``threat_assessed``, and the threat review always waits for
the right thing (the approval of a pending lowering, or the next review date)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AccessEvent
from casework.models import CaseEvent, Person
from casework.services import cases as case_services
from casework.services.cases import CaseDenied
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import ADDRESS, PHONE, PURPOSE, assessment, defector_case
from tests.workflows.sig.factories import PERSON_NAME
from workflows.defector import models as defector
from workflows.defector import services
from workflows.defector.flow import ThreatReviewFlow
from workflows.defector.models import (
    LOCAL_STATES,
    DefectorCase,
    DefectorProcess,
    Level,
    Route,
    Status,
)

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

STEP = st.one_of(
    st.tuples(
        st.just("assess"),
        st.sampled_from(["per.polis", "maja.avhopp"]),
        st.sampled_from(list(Level.values)),
        st.booleans(),
    ),
    st.tuples(st.just("decide"), st.just("maja.avhopp"), st.booleans(), st.just(False)),
    st.tuples(
        st.just("action"),
        st.sampled_from(["anna.social", "alex.avhopp"]),
        st.just(""),
        st.just(False),
    ),
)


def _check(users, case, client):
    case = DefectorCase.objects.get(pk=case.pk)
    current = defector.current_assessment(case)
    route = defector.route_of(current)
    if route != Route.LOCAL:
        assert case.status not in LOCAL_STATES
    # ``threat_assessed`` is passed through in the assessment's transaction (ADR 0008).
    assert case.status != Status.THREAT_ASSESSED
    # The threat review follows the assessments: one open cycle, waiting for the approval
    # of a pending lowering, or for the next review date of the assessment in force.
    review = DefectorProcess.objects.filter(
        case=case, flow_class=ThreatReviewFlow, finished__isnull=True
    )
    assert review.count() == 1
    open_tasks = review.get().task_set.exclude(status__in=["DONE", "CANCELED"])
    (task,) = open_tasks
    if defector.pending_lowering(case) is not None:
        assert task.flow_task == ThreatReviewFlow.approve_lowering
    else:
        assert task.flow_task == ThreatReviewFlow.wait_for_reassessment
        assert timezone.localtime(task.scheduled).date() == current.next_review
    url = f"/arenden/fall/{case.pk}/"
    for username in ("anna.social", "alex.avhopp"):
        client.force_login(users[username])
        content = client.get(url).content.decode()
        # A non-handler never sees the protected person's location.
        if username == "alex.avhopp":
            assert ADDRESS not in content and PHONE not in content
        if case.handed_over_at is not None:
            # A local user keeps the fact only.
            assert PERSON_NAME not in content
            assert "Hot från" not in content
    # Every routing step (and every other transition) is in the access log.
    transitions = CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.TRANSITION).exclude(
        transition="refer"
    )
    audited = AccessEvent.objects.filter(
        action=AccessEvent.Action.TRANSITION, object_id=str(case.pk)
    )
    assert transitions.count() == audited.count()
    hand_overs = CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.HAND_OVER).count()
    disclosures = AccessEvent.objects.filter(
        action=AccessEvent.Action.DISCLOSE, object_id=str(case.pk), details__has_key="hand_over"
    ).count()
    assert hand_overs == disclosures


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=5))
def test_random_sequences_keep_the_invariants(users, steps):
    client = Client()
    case = defector_case(
        users, "activate", protected=Person.ProtectedIdentity.PROTECTED_REGISTRATION
    )
    for kind, username, value, flag in steps:
        user = users[username]
        try:
            if kind == "assess":
                services.reassess_threat(
                    user=user,
                    case=case,
                    purpose=PURPOSE,
                    **assessment(value, evidence_person=flag),
                )
            elif kind == "decide":
                services.decide_lowering(
                    user=user, case=case, purpose=PURPOSE, approve=value, note="Prövat."
                )
            else:
                case_services.add_action(
                    user=user,
                    case=case,
                    purpose=PURPOSE,
                    kind="housing",
                    status="planned",
                    date=timezone.localdate() + datetime.timedelta(days=3),
                )
        except (ValidationError, CaseDenied):
            pass
        case = DefectorCase.objects.get(pk=case.pk)
        _check(users, case, client)
