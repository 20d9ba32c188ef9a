"""``{% session_rules %}``: what ``static/samverkan/session.js`` needs to warn before the
idle timeout and the absolute end of the session (docs/adr/0016).

Every page of the shell carries it. The markup is made here, in Python, with the same
filters and translations ``samverkan/session_rules.html`` applied (the template stays: it
is the markup's reference, and ``tests/casework/test_session_rules.py`` holds the two to
the same output): an inclusion tag's context, template and nine variable lookups cost
~550 function calls a page (docs/adr/0036-fast-pages.md, session 17).
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.conf import settings
from django.template.defaultfilters import time as time_filter
from django.templatetags.static import static
from django.templatetags.tz import localtime
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from casework import sessions

register = template.Library()

# The template's msgids (``samverkan/session_rules.html``), unchanged.
_IDLE = "You will soon be signed out because nothing has happened for a while."
_END = (
    "Your session ends at %(time)s: a session lasts at most %(hours)s hours. Save your "
    "work; then sign in again."
)
_STAY = "Stay signed in"
_OK = "OK"


def session_rules_context(context) -> dict:
    """The values the markup shows (``{"active": False}`` without a signed-in user)."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"active": False}
    end = sessions.ends_at(request) or timezone.now().timestamp()
    return {
        "active": True,
        "idle_seconds": sessions.idle_seconds_left(request),
        "warning_seconds": settings.SESSION_WARNING_SECONDS,
        "ends_at_ms": int(end * 1000),
        "ends_at": dt.datetime.fromtimestamp(end, tz=dt.UTC),
        "max_hours": f"{settings.SESSION_MAX_AGE / 3600:g}",
        "keep_alive_url": reverse("session_keep_alive"),
        "login_url": reverse("login"),
        "csrf_token": context.get("csrf_token"),
    }


def _value(value) -> str:
    """``{{ value }}`` with autoescaping: localised, then escaped."""
    return conditional_escape(localize(value))


@register.simple_tag(takes_context=True)
def session_rules(context):
    values = session_rules_context(context)
    script = f'<script src="{conditional_escape(static("samverkan/session.js"))}" defer></script>\n'
    if not values["active"]:
        return mark_safe(script)  # noqa: S308 - an escaped static address
    ending = gettext(_END) % {
        "time": _value(time_filter(localtime(values["ends_at"]), "H:i")),
        "hours": _value(values["max_hours"]),
    }
    meta = (
        '\n<meta name="samverkan-session"\n'
        f'      data-idle-seconds="{_value(values["idle_seconds"])}"'
        f' data-warning-seconds="{_value(values["warning_seconds"])}"\n'
        f'      data-ends-at="{_value(values["ends_at_ms"])}"'
        f' data-keep-alive-url="{_value(values["keep_alive_url"])}"\n'
        f'      data-login-url="{_value(values["login_url"])}"'
        f' data-csrf-token="{_value(values["csrf_token"])}"\n'
        f'      data-text-idle="{conditional_escape(gettext(_IDLE))}"\n'
        f'      data-text-end="{ending}"\n'
        f'      data-text-stay="{conditional_escape(gettext(_STAY))}"'
        f' data-text-ok="{conditional_escape(gettext(_OK))}">\n'
    )
    # Every value above is escaped; the texts are the catalogue's, as the template's
    # ``{% translate %}`` and ``{% blocktranslate %}`` gave them.
    return mark_safe(meta + script)  # noqa: S308
