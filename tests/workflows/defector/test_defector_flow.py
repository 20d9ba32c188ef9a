"""The defector flow end to end: every routing path, through the flow and the services."""

from __future__ import annotations

import pytest

from tests.workflows.conftest import BOTH_DATABASES
from workflows.defector.demo import SLOTS, build_case
from workflows.defector.models import DefectorCase, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.mark.parametrize("slot", SLOTS, ids=[s.key for s in SLOTS])
def test_demo_slot_builds(demo, slot):
    case = build_case(slot, index=SLOTS.index(slot))
    assert isinstance(case, DefectorCase)
    assert case.status in Status.values


def test_refer_linked_opens_a_defector_case_from_another_programme(users):
    from casework.models import CaseLink
    from tests.workflows.sig.factories import sig_case
    from workflows.defector import intake
    from workflows.defector.flow import DefectorFlow
    from workflows.sig.models import Status as SigStatus

    sig = sig_case(users, SigStatus.ACTIVE, years=19)
    case = intake.refer_linked(
        user=users["anna.social"],
        from_case=sig,
        kind=CaseLink.Kind.OFFER_ACCEPTED,
        reason="Vill lämna gänget.",
        purpose="Test av avhopparprocessen",
    )
    assert case.status == Status.REFERRED
    assert case.person_id == sig.person_id
    assert CaseLink.objects.filter(from_case=sig, to_case=case).exists()
    process = case.processes.get()
    assert process.task_set.filter(flow_task=DefectorFlow.check).exists()
