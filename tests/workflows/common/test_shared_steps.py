"""The shared service steps the programmes build on (``workflows.common.services``) and the
core's date check of a service's argument (``casework.services.case_changes.past_date``)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from casework.services.case_changes import FieldErrors, past_date
from workflows.common import services as common_services


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


class TestPastDate:
    def test_today_and_earlier_pass(self):
        today = timezone.localdate()
        assert past_date(today, "date") == today
        assert past_date(today - datetime.timedelta(days=400), "date") < today

    def test_a_later_day_is_the_fields_future_error(self):
        tomorrow = timezone.localdate() + datetime.timedelta(days=1)
        with pytest.raises(ValidationError) as raised:
            past_date(tomorrow, "held_on")
        [error] = raised.value.error_dict["held_on"]
        assert error.code == "future"
        assert str(error.message) == "The date cannot be in the future."

    @pytest.mark.parametrize("value", [None, "2026-01-01", datetime.time(12)])
    def test_what_is_not_a_date_is_invalid(self, value):
        with pytest.raises(ValidationError) as raised:
            past_date(value, "date")
        [error] = raised.value.error_dict["date"]
        assert error.code == "invalid"
        assert str(error.message) == "Enter a valid date."

    def test_a_programmes_own_messages(self):
        errors = FieldErrors()
        with errors.check():
            past_date(None, "date", invalid="not a day", future="too late")
        with pytest.raises(ValidationError) as raised:
            past_date(timezone.localdate() + datetime.timedelta(days=2), "date", future="too late")
        assert [e.message for e in errors.errors["date"]] == ["not a day"]
        assert raised.value.error_dict["date"][0].message == "too late"


@pytest.mark.django_db
class TestScreening:
    """``screening(note_field, reject)``: the note, then the team or the rejection, in one
    transaction (the core's services stand in for themselves here: the programmes' tests
    run them)."""

    @pytest.fixture
    def calls(self, monkeypatch):
        calls = []

        def update_case(**kwargs):
            calls.append(("update_case", kwargs))

        def accept_with_team(**kwargs):
            calls.append(("accept_with_team", kwargs))
            return "accepted"

        monkeypatch.setattr(common_services, "update_case", update_case)
        monkeypatch.setattr(common_services, "accept_with_team", accept_with_team)
        return calls

    def reject(self, calls):
        def reject(**kwargs):
            calls.append(("reject", kwargs))
            return "rejected"

        return reject

    def test_accepting_seals_the_note_then_forms_the_team(self, calls):
        record = common_services.screening("screening_note", reject=self.reject(calls))
        result = record(
            user="u",
            case="c",
            purpose="p",
            accept=True,
            note="fits",
            expected_version=3,
            lead="lead",
            police_contact="officer",
            close_reason=None,
        )
        assert result == "accepted"
        assert calls == [
            (
                "update_case",
                {
                    "user": "u",
                    "case": "c",
                    "purpose": "p",
                    "texts": {"screening_note": "fits"},
                    "expected_version": 3,
                },
            ),
            (
                "accept_with_team",
                {
                    "user": "u",
                    "case": "c",
                    "purpose": "p",
                    "lead": "lead",
                    "police_contact": "officer",
                },
            ),
        ]

    def test_rejecting_passes_the_note_and_the_programmes_arguments(self, calls):
        record = common_services.screening("check_note", reject=self.reject(calls))
        result = record(
            user="u", case="c", purpose="p", accept=False, note="", close_reason="other"
        )
        assert result == "rejected"
        assert calls == [
            (
                "update_case",
                {
                    "user": "u",
                    "case": "c",
                    "purpose": "p",
                    "texts": {"check_note": None},
                    "expected_version": None,
                },
            ),
            (
                "reject",
                {"user": "u", "case": "c", "purpose": "p", "note": "", "close_reason": "other"},
            ),
        ]
