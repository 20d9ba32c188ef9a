"""The rows' addresses reversed once a process (``casework.addresses``) are ``reverse``'s."""

from __future__ import annotations

import uuid

from django.test import override_settings
from django.urls import reverse, set_script_prefix
from django.utils import translation

from casework.addresses import SAMPLE_INT, SAMPLE_UUID, address_parts, row_address
from casework.programmes import flow_viewsets


def _case(case_id) -> str:
    return reverse("arenden:case", kwargs={"case_id": case_id})


def _nodes():
    for viewset in flow_viewsets():
        for node in viewset._flow_class.instance.nodes():
            if getattr(node, "task_type", None) == "HUMAN":
                yield node


def test_a_task_pages_and_a_case_pages_address_are_reverses():
    """In both languages and under two script prefixes, one after the other in one
    process: each is kept apart."""
    nodes = list(_nodes())
    assert nodes
    try:
        for prefix in ("/", "/samverkan/", "/"):
            set_script_prefix(prefix)
            for language in ("sv", "en"):
                with translation.override(language):
                    _check(nodes, prefix)
    finally:
        set_script_prefix("/")


def _check(nodes, prefix):
    for node in nodes:
        for process, task in ((1, 2), (SAMPLE_INT, 7), (40, 40), (123456, 9)):
            reversed_ = node.reverse("index", args=[process, task])
            assert reversed_.startswith(prefix)
            assert (
                row_address(
                    node,
                    lambda p, t, node=node: node.reverse("index", args=[p, t]),
                    (SAMPLE_INT, SAMPLE_INT + 1),
                    (process, task),
                )
                == reversed_
            )
    for case_id in (uuid.uuid4(), uuid.UUID(SAMPLE_UUID), uuid.UUID(int=0)):
        assert row_address("case", _case, (SAMPLE_UUID,), (case_id,)) == _case(case_id)


def test_an_address_without_its_sample_once_is_not_split():
    assert address_parts(lambda a: f"/{a}/{a}/", (5,)) is None
    assert address_parts(lambda a: "/fixed/", (5,)) is None
    assert address_parts(lambda a, b: f"/x/{a}/y/{b}/", (11, 12)) == ("/x/", "/y/", "/")
    # Not split, so reversed each time.
    calls = []

    def twice(a):
        calls.append(a)
        return f"/{a}/{a}/"

    assert row_address("twice", twice, (5,), (3,)) == "/3/3/"
    assert row_address("twice", twice, (5,), (4,)) == "/4/4/"
    assert calls[-2:] == [3, 4]


def test_a_changed_setting_drops_the_kept_parts():
    first = row_address("case", _case, (SAMPLE_UUID,), (uuid.UUID(int=1),))
    with override_settings(ROOT_URLCONF="config.urls"):
        assert row_address("case", _case, (SAMPLE_UUID,), (uuid.UUID(int=1),)) == first
    from casework import addresses

    with override_settings(SAMVERKAN_TEST_SETTING=1):
        assert not addresses._kept
