"""SIG's own forms (screening, plan, approval, legal basis); the shared ones are in
``workflows/common/forms.py``. Input validation with Swedish messages, no business rules.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from casework.models import LegalBasis
from workflows.common.forms import (
    LONG_TEXT,
    FutureDateField,
    TeamForm,
    VersionedForm,
    When,
    choice_buttons,
    date_field,
    rejection_reason_field,
    require_rejection_reason,
    text_field,
)


class ScreeningForm(TeamForm):
    REJECT = "reject"

    outcome = choice_buttons(
        _("Outcome"),
        [(TeamForm.ACCEPT, _("Accept: form the team and ask for consent")), (REJECT, _("Reject"))],
    )
    note = text_field(_("Screening note"), rows=4, required=False)
    close_reason = rejection_reason_field()

    def clean(self):
        data = super().clean()
        require_rejection_reason(self, data)
        return data


class PlanForm(VersionedForm):
    plan = text_field(_("Plan: goals and each agency's contribution"), rows=8, max_length=LONG_TEXT)
    review_date = FutureDateField(label=_("Review date"))


class ApprovalForm(VersionedForm):
    APPROVE = "approve"
    RETURN = "return"

    outcome = choice_buttons(
        _("Outcome"), [(APPROVE, _("Approve the plan")), (RETURN, _("Return for changes"))]
    )
    comment = text_field(_("Comment"), required=False)
    required_when = {"comment": When("outcome", RETURN, _("Say what needs to change."))}


class LegalBasisForm(VersionedForm):
    legal_basis = forms.ModelChoiceField(
        label=_("Legal basis"),
        queryset=LegalBasis.objects.filter(is_active=True, kind=LegalBasis.Kind.STATUTE),
    )
    justification = text_field(_("Justification"))
    valid_until = date_field(_("Valid until"), required=False)
