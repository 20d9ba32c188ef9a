"""What the programmes share: the screening service and the referrals from another
programme (``workflows.common.services``), a case programme's registration
(``workflows.common.registration``) and the core's checks of a service's arguments
(``casework.services.case_changes``: ``past_date``, ``FieldErrors.choices``)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from casework import programmes
from casework.models import Case, Person
from casework.services.case_changes import FieldErrors, past_date
from workflows.common import services as common_services
from workflows.common.registration import register_case_programme


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


class TestChoices:
    """``FieldErrors.choices``: each value one of its choices, each field's error kept."""

    def test_each_fields_error_is_kept_in_order(self):
        errors = FieldErrors()
        errors.choices(("area", "moon", Person.Area), ("kind", "north", Person.Area))
        assert list(errors.errors) == ["area", "kind"]
        [error] = errors.errors["area"]
        assert (error.code, str(error.message)) == ("invalid", "Select a valid choice.")

    def test_valid_values_add_no_error(self):
        errors = FieldErrors()
        errors.choices(("area", Person.Area.values[0], Person.Area))
        assert not errors

    def test_an_empty_value_passes_only_when_optional(self):
        errors = FieldErrors()
        errors.choices(("area", "", Person.Area), ("kind", None, Person.Area), optional=True)
        assert not errors
        errors.choices(("area", "", Person.Area))
        assert list(errors.errors) == ["area"]


# The case a screening works on, as the step view passes it (stand-ins: the core's services
# are replaced here).
CASE = {"user": "u", "case": "c", "purpose": "p"}


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
            **CASE,
            accept=True,
            note="fits",
            expected_version=3,
            lead="lead",
            police_contact="officer",
            close_reason=None,
        )
        assert result == "accepted"
        assert calls == [
            ("update_case", {**CASE, "texts": {"screening_note": "fits"}, "expected_version": 3}),
            ("accept_with_team", {**CASE, "lead": "lead", "police_contact": "officer"}),
        ]

    def test_rejecting_passes_the_note_and_the_programmes_arguments(self, calls):
        record = common_services.screening("check_note", reject=self.reject(calls))
        result = record(**CASE, accept=False, note="", close_reason="other")
        assert result == "rejected"
        assert calls == [
            ("update_case", {**CASE, "texts": {"check_note": None}, "expected_version": None}),
            ("reject", {**CASE, "note": "", "close_reason": "other"}),
        ]


@pytest.mark.django_db
class TestReferrals:
    """``referrals(open_referral, start)``: a programme's ``refer_linked`` and ``refer_from``
    (the core's link and source writers stand in for themselves here: the programmes' tests
    run them)."""

    @pytest.fixture
    def calls(self, monkeypatch):
        calls = []

        def stand_in(name):
            return lambda *args, **kwargs: calls.append(name)

        for name in ("link_cases", "record_source", "reload_version"):
            monkeypatch.setattr(common_services, name, stand_in(name))
        return calls

    def hooks(self, calls):
        def open_referral(**kwargs):
            calls.append(("open", kwargs))
            return "new case"

        return common_services.referrals(open_referral, lambda case: calls.append(("start", case)))

    def test_refer_linked_opens_starts_then_links(self, calls):
        source = type("Source", (), {"person": "person"})()
        case = self.hooks(calls).refer_linked(
            user="u", from_case=source, kind="escalated", reason="why", purpose="p"
        )
        assert case == "new case"
        assert calls == [
            ("open", {"user": "u", "person": "person", "reason": "why", "purpose": "p"}),
            ("start", "new case"),
            "link_cases",
            "reload_version",
        ]

    def test_refer_from_writes_the_source_only_if_given(self, calls):
        hooks = self.hooks(calls)
        hooks.refer_from(user="u", person="person", reason="why", purpose="p")
        assert "record_source" not in calls
        hooks.refer_from(user="u", person="person", reason="why", purpose="p", source="gvi")
        assert calls[-3:] == [("start", "new case"), "record_source", "reload_version"]


class TestRegisterCaseProgramme:
    """``register_case_programme``: the hooks a case programme's registration derives."""

    @pytest.fixture
    def registry(self, monkeypatch):
        monkeypatch.setattr(programmes, "_registry", {})
        monkeypatch.setattr(programmes, "_viewsets", [])
        return programmes._registry

    def test_the_derived_hooks(self, registry):
        from workflows.defector.flow import DefectorFlow, ThreatReviewFlow
        from workflows.defector.models import DefectorProcess, ThreatAssessment

        programme = register_case_programme(
            Case.Programme.DEFECTOR,
            flows={DefectorFlow: "shield", ThreatReviewFlow: "gpp_maybe"},
            process=DefectorProcess,
            menu_position=20,
            extract_models=(ThreatAssessment,),
        )
        assert registry == {"defector": programme}
        assert programme.label == Case.Programme.DEFECTOR.label
        assert programme.menu_position == 20
        assert programmes.flow_classes() == [DefectorFlow, ThreatReviewFlow]
        assert programme.task_cases is not None
        assert programme.extract_rows is not None
        assert programme.extract_models == (ThreatAssessment,)

    def test_no_extract_rows_without_extract_models(self, registry):
        from workflows.sig.flow import SigFlow
        from workflows.sig.models import SigProcess

        programme = register_case_programme(
            Case.Programme.SIG, flows={SigFlow: "groups"}, process=SigProcess
        )
        assert programme.extract_rows is None
        assert programme.label == Case.Programme.SIG.label

    @pytest.mark.django_db
    def test_its_tasks_work_on_the_process_case(self, registry):
        from workflows.sig.flow import SigFlow
        from workflows.sig.models import SigProcess

        programme = register_case_programme(
            Case.Programme.SIG, flows={SigFlow: "groups"}, process=SigProcess
        )
        assert programme.task_cases([]) == {}
