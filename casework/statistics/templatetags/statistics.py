from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (the charts of one programme)."""
    return mapping.get(key, ()) if mapping else ()
