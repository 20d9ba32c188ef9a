"""GVI form widgets: dates and the visit's time through the browser's own pickers."""

from __future__ import annotations

from django.utils import timezone

from workflows.gvi import forms


def test_the_visit_time_is_a_date_and_time_picker_whose_value_is_read_as_local_time():
    form = forms.ScheduleForm(data={"version": 1, "scheduled_for": "2026-11-28T18:30"})
    assert 'type="datetime-local"' in str(form["scheduled_for"])
    assert form.is_valid(), form.errors
    visit = timezone.localtime(form.cleaned_data["scheduled_for"])
    assert visit.strftime("%Y-%m-%d %H:%M") == "2026-11-28 18:30"


def test_an_incident_s_and_a_call_in_s_dates_are_date_pickers():
    assert 'type="date"' in str(forms.CallInForm()["date"])
    assert forms.IncidentForm.base_fields["date"].widget.input_type == "date"
