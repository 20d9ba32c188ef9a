"""Display labels of choice fields, looked up once a language (pages and selectors alike)."""

from __future__ import annotations

import functools

from django.utils.translation import get_language


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
