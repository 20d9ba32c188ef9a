"""Forms of the SSPF steps and pages: input validation with Swedish messages, no rules.

The rules live in ``workflows/sspf/services.py`` and ``workflows/sspf/models.py``; a
``ValidationError`` they raise is put back on the form.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from casework.models import CaseMembership, Organisation, Person, User
from casework.roles import LEISURE, POLICE_CONTACT, SCHOOL, SOCIAL_WORKER
from workflows.common.forms import (
    LONG_TEXT,
    ActionForm,
    FutureDateField,
    PastDateField,
    ReferralForm,
    VersionedForm,
    choice_buttons,
    date_field,
    rejection_reason_field,
    require_rejection_reason,
    text_field,
)
from workflows.sspf.models import AgeBand, AnonymisedDiscussion, RiskAssessment


class ConcernForm(ReferralForm):
    """Who the concern is about, and what it is (the personnummer is checked as for SIG)."""

    phone = None
    address = None
    reason = text_field(
        _("The concern"),
        rows=5,
        help_text=_("What you have seen: absence, substances, company, rule-breaking."),
    )


class RiskAssessmentForm(VersionedForm):
    level = choice_buttons(_("Risk level"), RiskAssessment.Level.choices)
    risk_factors = text_field(_("Risk factors"), rows=4, max_length=LONG_TEXT)
    protective_factors = text_field(_("Protective factors"), max_length=LONG_TEXT, required=False)


MEMBER_ROLES = [
    (CaseMembership.Role.SCHOOL, CaseMembership.Role.SCHOOL.label),
    (CaseMembership.Role.LEISURE, CaseMembership.Role.LEISURE.label),
    (CaseMembership.Role.SOCIAL_WORKER, CaseMembership.Role.SOCIAL_WORKER.label),
    (CaseMembership.Role.POLICE_CONTACT, CaseMembership.Role.POLICE_CONTACT.label),
]


class MemberForm(VersionedForm):
    user = forms.ModelChoiceField(label=_("Team member"), queryset=None)
    role = forms.ChoiceField(label=_("Role"), choices=MEMBER_ROLES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            User.objects.filter(
                is_active=True, groups__name__in=[SCHOOL, LEISURE, SOCIAL_WORKER, POLICE_CONTACT]
            )
            .select_related("organisation")
            .distinct()
            .order_by("first_name", "last_name")
        )
        self.fields["user"].label_from_instance = lambda u: (
            f"{u.get_full_name() or u.username} ({u.organisation})"
        )


class AssessmentOutcomeForm(VersionedForm):
    ACCEPT = "accept"
    REJECT = "reject"

    outcome = choice_buttons(
        _("Outcome"), [(ACCEPT, _("Accept: ask for consent")), (REJECT, _("Reject"))]
    )
    close_reason = rejection_reason_field()
    note = text_field(_("Note"), required=False)

    def clean(self):
        data = super().clean()
        require_rejection_reason(self, data)
        return data


class MappingForm(VersionedForm):
    held_on = PastDateField(
        label=_("Held on"),
        error_messages={"future": _("The conversation cannot be dated in the future.")},
    )
    mapping_note = text_field(
        _("The family's view, needs and strengths"), rows=6, max_length=LONG_TEXT
    )


class PoliceParticipationForm(VersionedForm):
    participates = forms.TypedChoiceField(
        label=_("Do the police take part in this case?"),
        choices=[("yes", _("Yes")), ("no", _("No"))],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    reason = text_field(_("Reason"))


class GoalsForm(VersionedForm):
    plan_goals = text_field(_("Goals of the commitment plan"), rows=6, max_length=LONG_TEXT)
    review_date = FutureDateField(label=_("Follow-up date"))


class EscalateForm(VersionedForm):
    reason = text_field(_("Why SIG is needed"))


def _parties():
    return Organisation.objects.filter(is_active=True).exclude(kind=Organisation.Kind.OTHER)


class MeetingForm(forms.Form):
    date = date_field(_("Date"))
    organisations = forms.ModelMultipleChoiceField(
        label=_("Participating organisations"),
        queryset=_parties(),
        widget=forms.CheckboxSelectMultiple,
    )


class AgendaForm(forms.Form):
    reference = forms.CharField(label=_("Case number"), max_length=20)


class AgendaDecisionForm(forms.Form):
    item = forms.UUIDField(widget=forms.HiddenInput)
    decision = text_field(_("Decision"), rows=2, max_length=LONG_TEXT)


class DiscussionForm(forms.Form):
    date = date_field(_("Date"))
    organisation = forms.ModelChoiceField(label=_("Raised by"), queryset=_parties())
    topic = forms.ChoiceField(label=_("Topic"), choices=AnonymisedDiscussion.Topic.choices)
    age_band = forms.ChoiceField(
        label=_("Age band"), choices=[("", "—"), *AgeBand.choices], required=False
    )
    area = forms.ChoiceField(
        label=_("Area"), choices=[("", "—"), *Person.Area.choices], required=False
    )
    summary = text_field(_("The situation, without names or personal identity numbers"), rows=4)
    outcome = text_field(_("Advice or outcome"), required=False)


class OwnActionForm(ActionForm):
    """An action of the user's own organisation (a school or leisure member's part)."""

    organisation = None


class PartReportForm(VersionedForm):
    report = text_field(
        _("How your part of the plan is going"),
        rows=4,
        help_text=_("For the follow-up meeting. Write only what the plan needs."),
    )
