"""The retention arithmetic (casework.retention): pure, no database."""

from __future__ import annotations

import datetime
import itertools

import pytest

from casework import retention
from casework.retention import Terms

D = datetime.date
SOCIAL = Terms("last_entry", 5, end_of_following_year=True, research_exception=True)
POLICE = Terms("closed", 3)


def test_last_entry_is_the_latest_day_of_any_entry():
    moments = [
        datetime.datetime(2020, 3, 1, 9, 0),
        None,
        D(2020, 11, 30),
        datetime.datetime(2020, 12, 31, 23, 59),
        D(2019, 1, 1),
    ]
    assert retention.last_entry(*moments) == D(2020, 12, 31)
    assert retention.last_entry(None, None) is None


@pytest.mark.parametrize(
    ("last", "due", "deadline"),
    [
        (D(2020, 1, 1), D(2026, 1, 1), D(2026, 12, 31)),
        (D(2020, 12, 31), D(2026, 1, 1), D(2026, 12, 31)),
        (D(2021, 6, 15), D(2027, 1, 1), D(2027, 12, 31)),
    ],
)
def test_social_services_five_years_then_culled_by_the_end_of_the_following_year(
    last, due, deadline
):
    result = retention.due_dates(SOCIAL, last_entry=last, closed=None, birth_date=D(2004, 3, 4))
    assert (result.start, result.due, result.deadline) == (last, due, deadline)
    # Kept at least the full five years: the first day it may go is after them.
    assert result.due > retention.add_years(last, 5)
    assert not retention.is_due(result, today=due - datetime.timedelta(days=1))
    assert retention.is_due(result, today=due)


@pytest.mark.parametrize("day", [5, 15, 25])
def test_persons_born_on_the_5th_15th_or_25th_are_kept(day):
    assert (
        retention.due_dates(
            SOCIAL, last_entry=D(2010, 1, 1), closed=None, birth_date=D(2001, 7, day)
        )
        is None
    )
    # The same rule without the exception culls them.
    plain = Terms("last_entry", 5, end_of_following_year=True)
    assert retention.due_dates(
        plain, last_entry=D(2010, 1, 1), closed=None, birth_date=D(2001, 7, day)
    )


@pytest.mark.parametrize("day", [1, 4, 6, 14, 16, 24, 26, 31])
def test_other_birth_days_are_not_kept(day):
    assert retention.due_dates(
        SOCIAL, last_entry=D(2010, 1, 1), closed=None, birth_date=D(2001, 1, day)
    )


def test_an_unknown_birth_date_is_not_kept():
    assert not retention.research_kept(None)
    assert retention.due_dates(SOCIAL, last_entry=D(2010, 1, 1), closed=None, birth_date=None)


def test_police_rule_counts_from_the_close_day_to_the_day():
    result = retention.due_dates(POLICE, last_entry=D(2024, 5, 1), closed=D(2023, 4, 10))
    assert (result.start, result.due, result.deadline) == (
        D(2023, 4, 10),
        D(2026, 4, 10),
        D(2026, 4, 10),
    )
    # An open case is never due under a rule counted from the close.
    assert retention.due_dates(POLICE, last_entry=D(2010, 1, 1), closed=None) is None
    # The research exception is the social services' rule, not the police's.
    assert retention.due_dates(
        POLICE, last_entry=None, closed=D(2020, 1, 1), birth_date=D(2000, 1, 5)
    )


def test_leap_day():
    assert retention.add_years(D(2024, 2, 29), 3) == D(2027, 2, 28)
    assert retention.add_years(D(2024, 2, 29), 4) == D(2028, 2, 29)


def test_due_before_agrees_with_due_dates():
    """The query's cut-off selects exactly the starts that are due (exhaustive over days)."""
    starts = [D(2019, 12, 25) + datetime.timedelta(days=n) for n in range(3 * 366 + 60)]
    todays = [D(2023, 2, 27), D(2023, 2, 28), D(2024, 2, 28), D(2024, 2, 29), D(2025, 12, 31)]
    for terms, today in itertools.product(
        [POLICE, Terms("closed", 4), Terms("last_entry", 2, end_of_following_year=True)], todays
    ):
        cut = retention.due_before(terms, today=today)
        for start in starts:
            due = retention.due_dates(terms, last_entry=start, closed=start)
            assert retention.is_due(due, today=today) == (start <= cut), (terms, today, start)


def test_bad_terms_are_refused():
    with pytest.raises(ValueError, match="at least one year"):
        retention.due_dates(Terms("closed", 0), last_entry=None, closed=D(2020, 1, 1))
    with pytest.raises(ValueError, match="unknown retention event"):
        retention.due_dates(Terms("opened", 1), last_entry=None, closed=D(2020, 1, 1))
