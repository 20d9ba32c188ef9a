"""The dashboard's choices: a whole period and, optionally, one selection."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from casework.statistics import periods, tables
from casework.statistics.registry import programmes


def _period_choices():
    groups = []
    for kind, count in ((periods.YEAR, 5), (periods.QUARTER, 8), (periods.MONTH, 12)):
        options = [(each.key, each.label) for each in periods.choices(kind, count=count)]
        groups.append((periods.KINDS[kind], options))
    return groups


def _selection_choices():
    seen = {}
    for spec in programmes().values():
        for value, label in tables.selection_choices(spec):
            seen.setdefault(value, label)
    return [("", _("All cases")), *seen.items()]


class StatisticsForm(forms.Form):
    period = forms.CharField(label=_("Period"), widget=forms.Select)
    selection = forms.ChoiceField(label=_("Selection"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["period"].widget.choices = _period_choices()
        self.fields["selection"].choices = _selection_choices()

    def clean_period(self) -> periods.Period:
        try:
            return periods.parse(self.cleaned_data["period"])
        except periods.PeriodError as exc:
            raise forms.ValidationError(str(exc), code="period") from None

    @staticmethod
    def default_period() -> str:
        return periods.current(periods.YEAR).key
