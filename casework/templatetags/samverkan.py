"""Template helpers of the site shell."""

from __future__ import annotations

import hashlib

from django import template

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
