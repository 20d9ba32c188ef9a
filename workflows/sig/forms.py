"""SIG's own forms (screening, plan, approval, legal basis); the shared ones are in
``workflows/common/forms.py``. Input validation with Swedish messages, no business rules.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models import Case, LegalBasis
from casework.roles import POLICE_CONTACT, SOCIAL_WORKER
from workflows.common.forms import LONG_TEXT, VersionedForm, choice_buttons, text_field


class ScreeningForm(VersionedForm):
    ACCEPT = "accept"
    REJECT = "reject"

    outcome = choice_buttons(
        _("Outcome"),
        [(ACCEPT, _("Accept: form the team and ask for consent")), (REJECT, _("Reject"))],
    )
    lead = forms.ModelChoiceField(label=_("Lead social worker"), queryset=None, required=False)
    police_contact = forms.ModelChoiceField(
        label=_("Police contact officer"), queryset=None, required=False
    )
    note = text_field(_("Screening note"), rows=4, required=False)
    close_reason = forms.ChoiceField(
        label=_("Reason for rejecting"),
        choices=[("", "—")]
        + [
            (value, label)
            for value, label in Case.CloseReason.choices
            if value in ("not_eligible", "age_limit", "moved", "other")
        ],
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from casework.models import User

        active = User.objects.filter(is_active=True).select_related("organisation")
        self.fields["lead"].queryset = active.filter(groups__name=SOCIAL_WORKER)
        self.fields["police_contact"].queryset = active.filter(groups__name=POLICE_CONTACT)
        for name in ("lead", "police_contact"):
            self.fields[name].label_from_instance = lambda u: (
                f"{u.get_full_name() or u.username} ({u.organisation})"
            )

    def clean(self):
        data = super().clean()
        if data.get("outcome") == self.ACCEPT and not data.get("lead"):
            self.add_error("lead", _("Choose the lead social worker."))
        # The police decision is the police contact's step: accepted without one, it
        # would have no owner (issue 14, finding 6).
        if data.get("outcome") == self.ACCEPT and not data.get("police_contact"):
            self.add_error("police_contact", _("Choose the police contact officer."))
        if data.get("outcome") == self.REJECT and not data.get("close_reason"):
            self.add_error("close_reason", _("Choose the reason for rejecting."))
        if data.get("close_reason") == "other" and not data.get("note"):
            self.add_error("note", _("Describe the reason."))
        return data


class PlanForm(VersionedForm):
    plan = text_field(_("Plan: goals and each agency's contribution"), rows=8, max_length=LONG_TEXT)
    review_date = forms.DateField(
        label=_("Review date"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean_review_date(self):
        value = self.cleaned_data["review_date"]
        if value <= timezone.localdate():
            raise ValidationError(_("The review date must be in the future."))
        return value


class ApprovalForm(VersionedForm):
    APPROVE = "approve"
    RETURN = "return"

    outcome = choice_buttons(
        _("Outcome"), [(APPROVE, _("Approve the plan")), (RETURN, _("Return for changes"))]
    )
    comment = text_field(_("Comment"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == self.RETURN and not data.get("comment"):
            self.add_error("comment", _("Say what needs to change."))
        return data


class LegalBasisForm(VersionedForm):
    legal_basis = forms.ModelChoiceField(
        label=_("Legal basis"),
        queryset=LegalBasis.objects.filter(is_active=True, kind=LegalBasis.Kind.STATUTE),
    )
    justification = text_field(_("Justification"))
    valid_until = forms.DateField(
        label=_("Valid until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
