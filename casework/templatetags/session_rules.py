"""``{% session_rules %}``: what ``static/samverkan/session.js`` needs to warn before the
idle timeout and the absolute end of the session (docs/adr/0016).

Every page of the shell carries it. The markup is made here, in Python, with the same
filters and translations ``samverkan/session_rules.html`` applied (the template stays: it
is the markup's reference, and ``tests/casework/test_session_rules.py`` holds the two to
the same output). The addresses, the texts and the script's address are made once a process
for each language and script prefix; the times, the idle seconds and the CSRF token per
request. An inclusion tag's context, template, two ``reverse`` and nine variable lookups
cost ~500 function calls a page, this ~100 (docs/adr/0036-fast-pages.md, session 17).
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.defaultfilters import time as time_filter
from django.templatetags.static import static
from django.templatetags.tz import localtime
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext

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


def session_rules_context(context, *, urls: bool = True) -> dict:
    """The values the markup shows (``{"active": False}`` without a signed-in user);
    ``urls=False`` leaves out the two addresses (kept with the texts)."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"active": False}
    end = sessions.ends_at(request) or timezone.now().timestamp()
    values = {
        "active": True,
        "idle_seconds": sessions.idle_seconds_left(request),
        "warning_seconds": settings.SESSION_WARNING_SECONDS,
        "ends_at_ms": int(end * 1000),
        "ends_at": dt.datetime.fromtimestamp(end, tz=dt.UTC),
        "max_hours": f"{settings.SESSION_MAX_AGE / 3600:g}",
        "csrf_token": context.get("csrf_token"),
    }
    if urls:
        values["keep_alive_url"] = reverse("session_keep_alive")
        values["login_url"] = reverse("login")
    return values


# The parts that change only with the language and the script prefix (addresses, texts,
# the script's static address): made once a process for each, emptied when a setting
# changes (tests). Nothing of a user or a session is kept.
_constants: dict[tuple[str, str], dict[str, str]] = {}


@receiver(setting_changed)
def _forget_constants(**kwargs) -> None:
    _constants.clear()


def _constant_parts() -> dict[str, str]:
    key = (get_language(), get_script_prefix())
    parts = _constants.get(key)
    if parts is None:
        parts = _constants[key] = {
            "keep_alive_url": _value(reverse("session_keep_alive")),
            "login_url": _value(reverse("login")),
            "idle": conditional_escape(gettext(_IDLE)),
            "end": gettext(_END),
            "stay": conditional_escape(gettext(_STAY)),
            "ok": conditional_escape(gettext(_OK)),
            "script": (
                f'<script src="{conditional_escape(static("samverkan/session.js"))}" defer>'
                "</script>\n"
            ),
        }
    return parts


def _value(value) -> str:
    """``{{ value }}`` with autoescaping: localised, then escaped."""
    return conditional_escape(localize(value))


@register.simple_tag(takes_context=True)
def session_rules(context):
    parts = _constant_parts()
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return mark_safe(parts["script"])  # noqa: S308 - an escaped static address
    values = session_rules_context(context, urls=False)
    ending = parts["end"] % {
        "time": _value(time_filter(localtime(values["ends_at"]), "H:i")),
        "hours": _value(values["max_hours"]),
    }
    meta = (
        '\n<meta name="samverkan-session"\n'
        f'      data-idle-seconds="{_value(values["idle_seconds"])}"'
        f' data-warning-seconds="{_value(values["warning_seconds"])}"\n'
        f'      data-ends-at="{_value(values["ends_at_ms"])}"'
        f' data-keep-alive-url="{parts["keep_alive_url"]}"\n'
        f'      data-login-url="{parts["login_url"]}"'
        f' data-csrf-token="{_value(values["csrf_token"])}"\n'
        f'      data-text-idle="{parts["idle"]}"\n'
        f'      data-text-end="{ending}"\n'
        f'      data-text-stay="{parts["stay"]}" data-text-ok="{parts["ok"]}">\n'
    )
    # Every value above is escaped; the texts are the catalogue's, as the template's
    # ``{% translate %}`` and ``{% blocktranslate %}`` gave them.
    return mark_safe(meta + parts["script"])  # noqa: S308
