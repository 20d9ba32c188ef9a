"""Validating and normalising Swedish personal identity numbers with python-stdnum.

Accepted input: 10 or 12 digits, with or without the ``-`` separator, ``+`` for
people aged 100 or more (10-digit form), spaces, and samordningsnummer
(coordination numbers: day of birth + 60). The normalised form is the 12 digits
``YYYYMMDDNNNC`` (a samordningsnummer keeps its day + 60).

What ``stdnum.se.personnummer`` does and what is added here:

* stdnum strips separators and checks length, digits, date and the Luhn check
  digit; the check digit is always checked with ``stdnum.luhn`` here too;
* stdnum rejects samordningsnummer (day 61-91 is no date): the day is reduced by
  60 before the date check;
* stdnum accepts birth dates in the future (12-digit input) and picks the century
  of a 10-digit number by the year alone: here the century is the latest one
  that puts the birth date in the past, ``+`` goes back a further century, and a
  future date or one before 1840 is refused;
* input is bounded in length and must be ASCII digits before stdnum sees it.

Every invalid input is a :class:`~django.core.exceptions.ValidationError` with a
translatable message; nothing here raises anything else on bad input.
"""

from __future__ import annotations

import datetime
import re

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.se import personnummer as stdnum_personnummer

MAX_INPUT_LENGTH = 20
COORDINATION_DAY_OFFSET = 60
EARLIEST_BIRTH_YEAR = 1840

_SHAPE = re.compile(r"(?P<date>\d{6}|\d{8})(?P<sep>[-+])(?P<serial>\d{3})(?P<check>\d)", re.ASCII)

INVALID = _("Enter a valid personal identity number.")
MESSAGES = {
    "required": _("Enter a personal identity number."),
    "invalid": INVALID,
    "invalid_checksum": _(
        "The check digit of the personal identity number is wrong: check the number."
    ),
    "invalid_date": _("The personal identity number does not contain a valid date of birth."),
    "future_date": _("The personal identity number has a date of birth in the future."),
}


def _error(code: str) -> ValidationError:
    return ValidationError(MESSAGES[code], code=code)


def normalise(value: object, *, today: datetime.date | None = None) -> str:
    """The 12-digit form of a valid personnummer or samordningsnummer.

    Raises :class:`ValidationError` (never anything else) for invalid input.
    """
    if value is None:
        raise _error("required")
    if not isinstance(value, str):
        raise _error("invalid")
    text = value.strip()
    if not text:
        raise _error("required")
    if len(text) > MAX_INPUT_LENGTH:
        raise _error("invalid")
    try:
        compact = stdnum_personnummer.compact(text)
    except Exception:
        raise _error("invalid") from None
    match = _SHAPE.fullmatch(compact)
    if match is None:
        raise _error("invalid")
    date_digits, separator = match["date"], match["sep"]
    serial, check = match["serial"], match["check"]
    today = today or timezone.localdate()

    month, day = int(date_digits[-4:-2]), int(date_digits[-2:])
    birth_day = day - COORDINATION_DAY_OFFSET if day > COORDINATION_DAY_OFFSET else day
    if len(date_digits) == 8:
        year = int(date_digits[:4])
    else:
        year = _year_of_short_form(int(date_digits[:2]), month, birth_day, separator, today)
    try:
        birth_date = datetime.date(year, month, birth_day)
    except ValueError:
        raise _error("invalid_date") from None
    if birth_date > today:
        raise _error("future_date")
    if year < EARLIEST_BIRTH_YEAR:
        raise _error("invalid_date")

    ten_digits = date_digits[-6:] + serial + check
    try:
        luhn.validate(ten_digits)
    except StdnumValidationError:
        raise _error("invalid_checksum") from None
    return f"{year:04d}{date_digits[-4:]}{serial}{check}"


def _year_of_short_form(yy: int, month: int, day: int, separator: str, today: datetime.date) -> int:
    """The year of a 10-digit number: the latest century that puts the date in the past."""
    year = (today.year // 100) * 100 + yy
    try:
        in_future = datetime.date(year, month, day) > today
    except ValueError:
        in_future = year > today.year
    if in_future:
        year -= 100
    if separator == "+":
        year -= 100
    return year


def birth_date(normalised: str) -> datetime.date:
    """The date of birth in a normalised number (samordningsnummer: day - 60)."""
    day = int(normalised[6:8])
    if day > COORDINATION_DAY_OFFSET:
        day -= COORDINATION_DAY_OFFSET
    return datetime.date(int(normalised[:4]), int(normalised[4:6]), day)


def is_coordination_number(normalised: str) -> bool:
    return int(normalised[6:8]) > COORDINATION_DAY_OFFSET


def legal_gender(normalised: str) -> str:
    """``"M"`` or ``"F"`` from the birth number (odd: male), via stdnum."""
    return stdnum_personnummer.get_gender(normalised)


def display(normalised: str) -> str:
    """The usual written form ``YYYYMMDD-NNNC``."""
    return f"{normalised[:8]}-{normalised[8:]}"


def with_check_digit(first_nine_of_ten: str) -> str:
    """Append the Luhn check digit (stdnum) to ``YYMMDDNNN``: used for synthetic demo numbers."""
    return first_nine_of_ten + luhn.calc_check_digit(first_nine_of_ten)
