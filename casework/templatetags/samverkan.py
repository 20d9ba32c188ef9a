"""Template helpers of the site shell."""

from __future__ import annotations

import functools
import hashlib

from django import template
from django.utils.translation import get_language

register = template.Library()


@register.filter
def menu_key(user) -> str:
    """What a side menu depends on besides the language: who, for which organisation,
    with which permissions (a changed role gives a new key, so a new menu)."""
    if not getattr(user, "is_authenticated", False):
        return "anonymous"
    permissions = "\n".join(sorted(user.get_all_permissions()))
    digest = hashlib.blake2b(permissions.encode(), digest_size=12).hexdigest()
    return f"{user.pk}:{user.organisation_id}:{digest}"


@register.filter
def uses_task_inbox(user) -> bool:
    """A case worker (``casework.policy.can_use_task_inbox``): the absence page's link."""
    from casework import policy

    return policy.can_use_task_inbox(user)


@register.filter
def label(obj, field_name: str) -> str:
    """The display label of a choice field: ``{{ action|label:"kind" }}``.

    What ``get_kind_display`` gives, with the field's labels looked up once per
    language rather than translating every choice of the field at each call (a case
    page shows dozens of them).
    """
    value = getattr(obj, field_name)
    return _labels(type(obj), field_name, get_language()).get(value, value)


@functools.lru_cache(maxsize=512)
def _labels(model, field_name: str, language: str | None) -> dict:
    field = model._meta.get_field(field_name)
    return {value: str(text) for value, text in field.flatchoices}


# Any UUID: the case page's address is the same for every case but this part.
_SAMPLE_CASE = "00000000-0000-4000-8000-000000000000"


@register.simple_tag(takes_context=True)
def case_url(context, case_id) -> str:
    """``{% url 'arenden:case' case_id %}`` for the rows of a list: the address is
    reversed once a template render (a ``<uuid:case_id>`` path: each case's is the same
    text with its own id), not once a row."""
    prefix = context.render_context.get("samverkan_case_url")
    if prefix is None:
        from django.urls import reverse

        sample = reverse("arenden:case", kwargs={"case_id": _SAMPLE_CASE})
        prefix = context.render_context["samverkan_case_url"] = sample.split(_SAMPLE_CASE)
    return f"{prefix[0]}{case_id}{prefix[1]}"
