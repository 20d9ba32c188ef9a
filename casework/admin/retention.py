"""Retention rules (gallring) in the admin: read here, changed only through a request
another administrator approves (docs/adr/0024-retention.md)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from casework.admin.four_eyes import Kind, ReasonForm, RequestedRegister
from casework.models import Organisation, RetentionRule
from casework.services import retention
from casework.services.retention_rules import RULE_FIELDS, programme_codes, rule_values


class RetentionRuleRequestForm(ReasonForm):
    organisation = forms.ModelChoiceField(
        label=_("organisation"),
        queryset=Organisation.objects.all(),
        required=False,
        help_text=_("Empty: every organisation of the type below."),
    )
    organisation_kind = forms.ChoiceField(
        label=_("organisation type"),
        choices=[("", "—"), *Organisation.Kind.choices],
        required=False,
    )
    programme = forms.ChoiceField(label=_("programme"), required=False)
    controller = forms.ModelChoiceField(
        label=_("controller (personuppgiftsansvarig)"),
        queryset=Organisation.objects.all(),
        required=False,
        help_text=_("Empty: the case's responsible organisation."),
    )
    event = forms.ChoiceField(label=_("counted from"), choices=RetentionRule.Event.choices)
    years = forms.IntegerField(label=_("years kept"), min_value=1, max_value=100)
    end_of_following_year = forms.BooleanField(
        label=_("culled during the following year"), required=False
    )
    research_exception = forms.BooleanField(
        label=_("keep persons born on the 5th, 15th or 25th"), required=False
    )
    is_active = forms.BooleanField(label=_("active"), required=False)
    field_order = [*RULE_FIELDS, "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].choices = [
            ("", _("Every programme")),
            *((code, code) for code in programme_codes()),
        ]

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in RULE_FIELDS}


@admin.register(RetentionRule)
class RetentionRuleAdmin(RequestedRegister, admin.ModelAdmin):
    """The retention rules: every field is read-only here; a change or a new rule is a
    request another administrator approves."""

    # What a rule covers (its name), then every other field.
    list_display = ["__str__", *RULE_FIELDS[2:]]
    list_filter = ["organisation_kind", "event", "is_active"]
    list_select_related = ["organisation", "controller"]
    fields = [*RULE_FIELDS, "four_eyes"]
    readonly_fields = [*RULE_FIELDS, "four_eyes"]
    request_kind = Kind.RETENTION_RULE

    @admin.display(description=_("Change (four eyes)"))
    def four_eyes(self, obj):
        return self.change_button(obj)

    request_form = RetentionRuleRequestForm
    new_entry_initial = {"is_active": True, "event": RetentionRule.Event.CLOSED}
    request_new_title = _("Request a new retention rule")
    request_intro = _(
        "A retention rule decides when the cases it covers are culled: their data "
        "key is destroyed and they can never be read again. The change takes effect "
        "when another administrator approves it."
    )

    def entry_values(self, entry):
        return rule_values(entry)

    def submit_request(self, *, user, entry, values, reason):
        return retention.request_rule_change(user=user, rule=entry, values=values, reason=reason)
