"""System check: the statistics threshold is never below 3 (``manage.py check``, startup)."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def check_threshold(app_configs=None, **kwargs):
    from casework.statistics.disclosure import threshold

    try:
        threshold()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="statistics.E001")]
    return []
