"""The task inbox's filter drawer written as viewflow's form renderer writes it (ADR 0036,
session 21): ``{% render form %}`` (``viewflow.forms.renderers.FormLayout``) builds an
ElementTree of the fields and their options' JSON on every request; for the unbound drawer
(the inbox as people open it) the same markup is written here directly."""

from __future__ import annotations

import json

from django.forms import Select
from django.utils.safestring import mark_safe
from viewflow.forms.renderers import FormDataEncoder, FormLayout


def form_fields(form) -> str:
    """``form``'s fields as viewflow's ``FormLayout().render(form)`` writes them. An unbound
    form of plain optional selects is written here — each field a ``vf-field-select`` of its
    choices, the empty one chosen, the options listed as viewflow's ``SelectRenderer`` lists
    them; a bound form (a chosen value, an error) and any other field is viewflow's."""
    fields = form.visible_fields()
    # Each field's choices listed once (django-filter's iterator normalises them anew on
    # every pass).
    choices = [] if form.is_bound else [list(bound.field.widget.choices) for bound in fields]
    if form.is_bound or not fields or form.hidden_fields() or not all(map(_plain, fields, choices)):
        return mark_safe(FormLayout().render(form))  # noqa: S308 - viewflow's own markup
    cells = []
    for bound, listed in zip(fields, choices, strict=True):
        name = bound.html_name
        optgroups = json.dumps(
            [
                {
                    "name": "",
                    "options": {
                        "name": name,
                        "value": value,
                        "label": label,
                        "selected": index == 0,
                        "index": str(index),
                        "attrs": {"selected": True} if index == 0 else {},
                    },
                }
                for index, (value, label) in enumerate(listed)
            ],
            cls=FormDataEncoder,
        )
        cells.append(
            '<div class="mdc-layout-grid__cell mdc-layout-grid__cell--span-12">'
            f'<vf-field-select id="{_attribute(bound.auto_id)}" name="{_attribute(name)}" '
            f'value="" label="{_attribute(bound.label)}" optgroups="{_attribute(optgroups)}">'
            "</vf-field-select></div>"
        )
    return mark_safe(  # noqa: S308 - every value is escaped by _attribute
        '<div class="vf-form mdc-layout-grid"><div class="vf-form__visiblefields '
        f'mdc-layout-grid__inner">{"".join(cells)}</div></div>'
    )


def _plain(bound, choices: list) -> bool:
    """A field :func:`form_fields` writes itself, unbound: a plain select of flat
    ``choices``, the first of them empty (chosen when nothing is), optional, enabled, with
    no attributes, localisation or help text of its own and nothing initial."""
    field, widget = bound.field, bound.field.widget
    return (
        type(widget) is Select
        and not widget.attrs
        and not (field.required or field.disabled or field.localize or field.help_text)
        and bound.value() is None
        and bool(bound.auto_id)
        and bool(choices)
        and choices[0][0] == ""
        and all(isinstance(value, str) and value for value, _label in choices[1:])
        and not any(isinstance(label, (list, tuple)) for _value, label in choices)
    )


def _attribute(value) -> str:
    """``value`` escaped as ElementTree's HTML serialisation escapes an attribute (the
    renderer's ``ElementTree.tostring(..., method="html")``)."""
    return str(value).replace("&", "&amp;").replace(">", "&gt;").replace('"', "&quot;")
