"""A property-based test over random SSPF sequences (hypothesis, a modest number of runs).

After every step: school and leisure users never reach a case they are not members of; no
one outside the owning organisation gets personal data without valid consent covering
them; every state change is in the access log as a transition.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AccessEvent
from casework import policy
from casework.models import CaseMembership
from casework.services import cases as services
from casework.services.cases import CaseConflict, CaseDenied
from tests.conftest import COMMITTED_DB
from tests.workflows.sspf.factories import (
    PURPOSE,
    TRANSITIONS,
    consent_everyone,
    sspf_case,
    write_plan,
)
from workflows.sspf import services as sspf_services
from workflows.sspf.models import SspfCase

# Refusals write their event on the separate ``audit`` connection (committed on its own):
# a transactional test, as the SIG state machine's. Each example works on a case of its own.
pytestmark = COMMITTED_DB

DOINGS = ["risk", "consent", "withdraw", "mapping", "plan", "police", "leisure"]
STEPS = st.lists(
    st.one_of(
        st.sampled_from(TRANSITIONS).map(lambda name: ("transition", name)),
        st.sampled_from(
            ["risk", "consent", "withdraw", "mapping", "plan", "police", "leisure"]
        ).map(lambda name: ("do", name)),
        st.sampled_from(["lisa.skola", "fredrik.fritid", "sara.samordnare", "per.polis"]).map(
            lambda name: ("actor", name)
        ),
    ),
    min_size=1,
    max_size=14,
)


def _do(users, case, name, actor):
    sara = users["sara.samordnare"]
    if name == "risk":
        sspf_services.record_risk_assessment(
            user=actor, case=case, purpose=PURPOSE, level="low", risk_factors="Frånvaro."
        )
    elif name == "consent":
        consent_everyone(users, case)
    elif name == "withdraw":
        consent = case.consents.filter(withdrawn_at__isnull=True).first()
        if consent:
            services.withdraw_consent(user=actor, case=case, purpose=PURPOSE, consent=consent)
    elif name == "mapping":
        from django.utils import timezone

        sspf_services.record_mapping(
            user=actor, case=case, purpose=PURPOSE, held_on=timezone.localdate(), note="Samtal."
        )
    elif name == "plan":
        write_plan(users, case)
    elif name == "police":
        sspf_services.record_police_participation(
            user=actor, case=case, purpose=PURPOSE, participates=True, reason="Behövs."
        )
    elif name == "leisure":
        sspf_services.add_sspf_member(
            user=sara,
            case=case,
            purpose=PURPOSE,
            member=users["fredrik.fritid"],
            role=CaseMembership.Role.LEISURE,
        )


def _check(users, case):
    case = SspfCase.objects.get(pk=case.pk)
    consent = policy.consent_state(case)
    for name in ("lisa.skola", "fredrik.fritid", "per.polis", "anna.social"):
        user = users[name]
        access = policy.case_access(user, case)
        member = policy.team_membership(user, case)
        if name in ("lisa.skola", "fredrik.fritid") and not member:
            assert not access
        if user.organisation_id != case.owner_organisation_id and access:
            assert consent.complete and user.organisation_id in consent.organisations
    changes = case.events.filter(kind="transition").exclude(transition="refer").count()
    logged = AccessEvent.objects.filter(action="transition", object_id=str(case.pk)).count()
    assert changes == logged


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_random_sspf_sequences_keep_the_invariants(users, steps):
    case = sspf_case(users)
    actor = users["sara.samordnare"]
    for kind, name in steps:
        if kind == "actor":
            actor = users[name]
            continue
        case = SspfCase.objects.get(pk=case.pk)
        try:
            with transaction.atomic():
                if kind == "transition":
                    extra = {"adopted_by": actor} if name == "adopt_plan" else {}
                    services.transition(user=actor, case=case, name=name, purpose=PURPOSE, **extra)
                else:
                    _do(users, case, name, actor)
        except (ValidationError, CaseDenied, CaseConflict):
            pass
        _check(users, case)
