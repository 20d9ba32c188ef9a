"""Every model's state machine, as django-fsm holds it: each transition's source, target,
permission, conditions, ``on_error`` and ``custom`` (the label, lazily translated).

``state_machines.json`` is the declared machines written down: a change to a flow changes it
on purpose (regenerate it with ``python tests/workflows/common/test_state_machines.py``
under the test settings and read the diff); a change to how the steps are declared
(``casework.fsm.step``) must leave it as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import translation
from django.utils.functional import Promise
from django_fsm import FSMFieldMixin

from casework.fsm import step, when

SNAPSHOT = Path(__file__).with_name("state_machines.json")


def _callable(func) -> dict | None:
    if func is None:
        return None
    described = {"name": f"{func.__module__}.{func.__qualname__}"}
    if hasattr(func, "message"):
        described["message"] = _text(func.message)
    return described


def _text(value):
    """A label as its message id and Swedish text; a lazy one marked so."""
    if not isinstance(value, Promise):
        return {"plain": value}
    with translation.override("sv"):
        swedish = str(value)
    with translation.override("en"):
        return {"lazy": str(value), "sv": swedish}


def describe_state_machines() -> dict:
    """``{model: {field: {method: {source: transition}}}}`` for every model with an FSM field."""
    machines: dict = {}
    for model in sorted(apps.get_models(), key=lambda model: model._meta.label):
        for field in model._meta.fields:
            if not isinstance(field, FSMFieldMixin):
                continue
            methods = {}
            for name in sorted(dir(model)):
                meta = getattr(getattr(model, name, None), "_django_fsm", None)
                if meta is None or meta.field not in (field, field.name):
                    continue
                methods[name] = {
                    str(source): {
                        "target": transition.target,
                        "on_error": transition.on_error,
                        "permission": _callable(transition.permission),
                        "conditions": [_callable(c) for c in transition.conditions],
                        "custom": {k: _text(v) for k, v in sorted(transition.custom.items())},
                        "method": transition.method.__qualname__,
                    }
                    for source, transition in sorted(meta.transitions.items())
                }
            machines.setdefault(model._meta.label, {})[field.name] = methods
    return machines


def test_the_declared_state_machines_are_unchanged():
    assert describe_state_machines() == json.loads(SNAPSHOT.read_text())


def test_every_transition_is_bound_to_its_field():
    """A step names its field (``"status"``); django-fsm binds the name to the field when
    the model class is ready, as a transition has to run."""
    for model in apps.get_models():
        for name in dir(model):
            meta = getattr(getattr(model, name, None), "_django_fsm", None)
            if meta is not None:
                assert isinstance(meta.field, FSMFieldMixin), (model, name)
                assert meta.field.model is model or issubclass(model, meta.field.model)


def test_when_above_its_step_is_refused():
    """``@when`` goes under the ``@step``: above it, its guards would be dropped."""
    with pytest.raises(TypeError):

        @when(lambda obj: True)
        @step("a", "b", "A to B", by=lambda obj, user: True)
        def move(self) -> None:
            pass


if __name__ == "__main__":
    import django

    django.setup()
    SNAPSHOT.write_text(json.dumps(describe_state_machines(), indent=1, ensure_ascii=False) + "\n")
