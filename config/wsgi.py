"""WSGI entry point (gunicorn config.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Requests a worker serves before it freezes what it holds (docs/adr/0036-fast-pages.md,
# session 16): by then its templates are compiled, its URL patterns, translations and
# compiled reads loaded.
WARM_UP_REQUESTS = 20


class FreezeAfterWarmUp:
    """The application, which after ``requests`` requests moves every object the worker
    holds then into the collector's permanent generation (``gc.freeze``): the full
    collections a request's garbage sets off no longer walk the long-lived modules,
    templates and caches. Once a process, at the start of a request (the previous
    request's response is closed by then); what a later request frees is collected as
    before."""

    def __init__(self, application, requests: int = WARM_UP_REQUESTS) -> None:
        self.application = application
        self.remaining = requests

    def __call__(self, environ, start_response):
        if self.remaining >= 0:
            if self.remaining == 0:
                gc.collect()
                gc.freeze()
            self.remaining -= 1
        return self.application(environ, start_response)


application = FreezeAfterWarmUp(get_wsgi_application())
