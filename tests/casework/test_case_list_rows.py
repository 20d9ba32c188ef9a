"""The case list's row texts (``casework.selectors.cases.CaseRow``) are what the template's
filters and translation tags gave before they were made once a row in Python."""

from __future__ import annotations

import datetime

import pytest
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation

from casework.models import Case
from casework.selectors.cases import CaseRow


@pytest.mark.parametrize(
    "opened_at",
    [
        datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC),
        # 23:30 UTC is already the next day in Stockholm: the local day is shown.
        datetime.datetime(2026, 6, 30, 23, 30, tzinfo=datetime.UTC),
        datetime.datetime(2026, 12, 31, 23, 30, tzinfo=datetime.UTC),
    ],
)
def test_the_opening_day_is_the_date_filters(opened_at):
    row = CaseRow(case=Case(opened_at=opened_at), via="team")
    assert row.opened_on == date_filter(timezone.localtime(opened_at), "Y-m-d")


def test_the_review_day_or_a_dash():
    assert CaseRow(case=Case(review_date=None), via="team").review_on == "—"
    day = datetime.date(2027, 1, 5)
    assert CaseRow(case=Case(review_date=day), via="team").review_on == "2027-01-05"


@pytest.mark.parametrize(
    ("via", "english", "swedish"),
    [
        ("team", "Case team", "Ärendeteam"),
        ("coordinator", "Coordinator", "Samordnare"),
        ("break_glass", "Break-the-glass", "Nödåtkomst"),
    ],
)
def test_the_ground_is_named_in_the_users_language(via, english, swedish):
    row = CaseRow(case=Case(), via=via)
    with translation.override("en"):
        assert row.via_label == english
    with translation.override("sv"):
        assert row.via_label == swedish
