"""The transition engine (``casework.services.transitions``): every versioned model is
described to it once, and its refusals and conflicts name what was refused."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.utils import translation
from django_fsm import FSMFieldMixin

from casework.models import Case, Person
from casework.services import transitions
from casework.services.cases import CaseConflict, CaseDenied
from casework.services.transitions import Conflict, Denied


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _versioned_models() -> list:
    """Every concrete model with a django-fsm state field and a ``version`` column."""
    found = []
    for model in apps.get_models():
        names = {field.name for field in model._meta.concrete_fields}
        fsm = any(isinstance(field, FSMFieldMixin) for field in model._meta.concrete_fields)
        if fsm and "version" in names:
            found.append(model)
    return found


def test_every_versioned_model_is_described_once():
    models = _versioned_models()
    labels = {model._meta.label for model in models}
    # The programme cases and GVI's groups, members, call-ins, notifications and levers.
    assert {
        "workflows.SigCase",
        "workflows.Group",
        "workflows.GroupMember",
        "workflows.CallIn",
        "workflows.CustomNotification",
        "workflows.Sanction",
    } <= labels
    for model in models:
        description = transitions.described(model())
        assert issubclass(model, description.model)
        assert description.operation.format(name="x", model=model._meta.model_name)


def test_a_programme_case_is_described_as_a_case():
    case_model = apps.get_model("workflows", "SigCase")
    description = transitions.described(case_model())
    assert description.model is Case
    assert type(description.denied()) is CaseDenied
    assert description.conflict is CaseConflict


@pytest.mark.parametrize(
    "name", ["Group", "GroupMember", "CallIn", "CustomNotification", "Sanction"]
)
def test_a_gvi_object_is_refused_with_the_general_errors(name):
    model = apps.get_model("workflows", name)
    description = transitions.described(model())
    assert description.model is model
    refusal = description.denied()
    assert type(refusal) is Denied
    assert str(refusal.message) == "You do not take part in GVI."
    assert description.conflict is Conflict
    assert description.operation.format(name="close", model=model._meta.model_name) == (
        f"gvi:{model._meta.model_name}:close"
    )


def test_the_case_errors_are_the_general_errors_of_a_case():
    assert issubclass(CaseDenied, Denied)
    assert issubclass(CaseConflict, Conflict)
    assert str(CaseDenied().message) == "You do not have access to this case."
    assert str(CaseConflict.message) != str(Conflict.message)
    assert str(Denied("Nope.").message) == "Nope."


def test_a_model_that_is_not_versioned_is_not_described():
    with pytest.raises(LookupError, match="Person is not a registered versioned model"):
        transitions.described(Person())
