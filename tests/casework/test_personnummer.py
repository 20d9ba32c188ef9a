"""Personnummer validation and normalisation (python-stdnum, plus what it lacks)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from casework import personnummer as pnr
from casework.forms import PersonForm

TODAY = datetime.date(2026, 11, 27)
FORM_DATA = {"name": "Test Testsson", "gender": "unknown", "area": "other", "protected_identity": 0}


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("880320-0016", "198803200016"),
        ("8803200016", "198803200016"),
        ("198803200016", "198803200016"),
        ("19880320-0016", "198803200016"),
        ("19880320+0016", "198803200016"),  # a separator in the 12-digit form changes nothing
        (" 880320 0016 ", "198803200016"),  # surrounding and inner spaces
        ("\t8803200016\n", "198803200016"),  # surrounding whitespace of any kind
        ("880320\u20130016", "198803200016"),  # an en dash, as word processors write it
        ("\uff11\uff19\uff18\uff180320-0016", "198803200016"),  # full-width digits (stdnum)
        ("991231+1231", "189912311231"),  # "+": 100 years or older
        ("991231-1231", "199912311231"),
        ("000229-1235", "200002291235"),  # a leap day
        ("900161-1236", "199001611236"),  # samordningsnummer: day + 60
        ("19900161-1236", "199001611236"),
        ("251231-0000", "202512310000"),
        ("280101-1236", "192801011236"),  # 2028 is in the future: the century before
    ],
)
def test_accepted_forms_are_normalised_to_twelve_digits(raw, normalised):
    assert pnr.normalise(raw, today=TODAY) == normalised


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("880320-0018", "invalid_checksum"),  # wrong check digit
        ("198803200017", "invalid_checksum"),
        ("88032O-0016", "invalid"),  # a letter O for a zero
        ("abcdefghij", "invalid"),
        ("880320-001", "invalid"),  # too short
        ("8803200016123", "invalid"),  # 13 digits
        ("1" * 1000, "invalid"),
        ("8803200016" * 100, "invalid"),
        ("", "required"),
        ("   ", "required"),
        (None, "required"),
        (8803200016, "invalid"),  # not text
        ("880320\n0016", "invalid"),  # inner newline/tab are not separators
        ("880320\t0016", "invalid"),
        ("٨٨٠٣٢٠-٠٠١٦", "invalid"),  # Arabic-Indic digits
        ("880320/0016", "invalid"),
        ("900230-1233", "invalid_date"),  # 30 February
        ("900192-1239", "invalid_date"),  # samordningsnummer day 92 = 32nd
        ("18300101-1232", "invalid_date"),  # before 1840
        ("20991231-1231", "future_date"),
        ("20270101-0000", "future_date"),
    ],
)
def test_invalid_input_is_a_validation_error(raw, code):
    with pytest.raises(ValidationError) as info:
        pnr.normalise(raw, today=TODAY)
    assert info.value.code == code


def test_future_dates_use_today_by_default():
    next_year = datetime.date.today().year + 1
    with pytest.raises(ValidationError) as info:
        pnr.normalise(f"{next_year}0101-0000")
    assert info.value.code in {"future_date", "invalid_checksum"}


def test_the_message_is_translatable_and_carries_no_input():
    with translation.override("en"):
        with pytest.raises(ValidationError) as info:
            pnr.normalise("880320-0018", today=TODAY)
        message = info.value.messages[0]
    assert "check digit" in message
    assert "880320" not in message


def test_helpers_of_a_normalised_number():
    assert pnr.birth_date("199001611236") == datetime.date(1990, 1, 1)
    assert pnr.is_coordination_number("199001611236")
    assert not pnr.is_coordination_number("198803200016")
    assert pnr.legal_gender("198803200016") == "M"
    assert pnr.display("198803200016") == "19880320-0016"
    # The check digit comes from stdnum, never from code of our own.
    assert pnr.with_check_digit("880320001") == "8803200016"


@pytest.mark.parametrize(
    "raw", ["880320-0018", "1" * 1000, "", "abc", "20991231-1231", "880320\x000016"]
)
def test_an_invalid_number_is_a_form_error_not_an_exception(raw):
    with translation.override("en"):
        form = PersonForm(data={**FORM_DATA, "personnummer": raw})
        assert not form.is_valid()
    assert "personnummer" in form.errors
    assert raw.strip() == "" or raw not in str(form.errors)


def test_a_valid_number_is_normalised_by_the_form():
    form = PersonForm(data={**FORM_DATA, "personnummer": "880320-0016"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["personnummer"] == "198803200016"
