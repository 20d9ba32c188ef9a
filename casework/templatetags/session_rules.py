"""``{% session_rules %}``: what ``static/samverkan/session.js`` needs to warn before the
idle timeout and the absolute end of the session (docs/adr/0016)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from casework import sessions

register = template.Library()


@register.inclusion_tag("samverkan/session_rules.html", takes_context=True)
def session_rules(context):
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
