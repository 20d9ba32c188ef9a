"""The login page's single sign-on buttons (docs/adr/0018-single-sign-on.md)."""

from __future__ import annotations

from django import template

from casework.selectors.sso import sign_in_providers

register = template.Library()


@register.simple_tag
def sso_providers():
    return sign_in_providers()
