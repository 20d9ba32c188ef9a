"""The defector flow end to end: every routing path, through the flow and the services."""

from __future__ import annotations

import pytest

from workflows.defector import DefectorCase, Status
from workflows.defector_demo import SLOTS, build_case

from .conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.mark.parametrize("slot", SLOTS, ids=[s.key for s in SLOTS])
def test_demo_slot_builds(demo, slot):
    case = build_case(slot, index=SLOTS.index(slot))
    assert isinstance(case, DefectorCase)
    assert case.status in Status.values
