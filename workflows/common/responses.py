"""What every programme's pages answer with: a refusal, the way back to a case, a service's
errors on the form; and a form's action run in one savepoint."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse

from casework.forms import put_errors
from casework.services.cases import CaseConflict, CaseDenied


def denied(request) -> TemplateResponse:
    return TemplateResponse(request, "403.html", status=403)


def case_url(case) -> str:
    return reverse("arenden:case", kwargs={"case_id": case.pk})


def perform(request, case, action, form):
    """Run ``action(form)`` (a page's ``do_<name>``) in one savepoint and return its result.

    A service's ``ValidationError`` goes on the form and a conflict is shown as a banner
    (the case re-read: in its new state the form may be gone), and ``None`` is returned;
    a refusal returns the 403 page.
    """
    try:
        with transaction.atomic():
            return action(form)
    except ValidationError as error:
        put_errors(form, error)
    except CaseConflict as conflict:
        messages.error(request, conflict.message)
        case.refresh_from_db()
    except CaseDenied:
        return denied(request)
    return None
