"""The site shell's template helpers: choice labels and the side menu's cache key."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.template import Context, Template
from django.utils import translation

from casework import roles
from casework.models import Action, CaseMembership, Consent, User
from casework.templatetags.samverkan import label, menu_key

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (Action, "kind"),
        (Action, "status"),
        (Action, "visibility"),
        (Consent, "giver"),
        (Consent, "decision"),
        (Consent, "form"),
        (CaseMembership, "role"),
    ],
)
@pytest.mark.parametrize("language", ["sv", "en"])
def test_label_is_what_get_display_gives(model, field, language):
    with translation.override(language):
        for value, _text in model._meta.get_field(field).flatchoices:
            obj = model(**{field: value})
            assert label(obj, field) == getattr(obj, f"get_{field}_display")()


def test_label_of_a_value_outside_the_choices_is_the_value():
    assert label(Action(kind="no-such-kind"), "kind") == "no-such-kind"


def test_label_follows_the_language():
    action = Action(status=Action.Status.DONE)
    template = Template('{% load samverkan %}{{ action|label:"status" }}')
    with translation.override("sv"):
        swedish = template.render(Context({"action": action}))
    with translation.override("en"):
        english = template.render(Context({"action": action}))
        assert english == str(Action.Status.DONE.label)
    assert swedish != english


def test_the_menu_key_changes_with_the_role(demo):
    anna = User.objects.get(username="anna.social")
    before = menu_key(anna)
    assert menu_key(User.objects.get(username="anna.social")) == before
    anna.groups.add(Group.objects.get(name=roles.COORDINATOR))
    after = menu_key(User.objects.get(username="anna.social"))
    assert after != before
    assert menu_key(User.objects.get(username="per.polis")) not in {before, after}


@pytest.mark.parametrize(
    "case_id",
    [
        "7e287596-b7e8-4512-b8a4-0a0f86544f0a",
        "00000000-0000-4000-8000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ],
)
def test_case_url_is_the_case_pages_reversed_address(case_id):
    import uuid

    from django.urls import reverse

    pk = uuid.UUID(case_id)
    rendered = Template("{% load samverkan %}{% case_url a %} {% case_url b %}").render(
        Context({"a": pk, "b": uuid.UUID(int=pk.int ^ 1)})
    )
    assert rendered == " ".join(
        reverse("arenden:case", kwargs={"case_id": value})
        for value in (pk, uuid.UUID(int=pk.int ^ 1))
    )
