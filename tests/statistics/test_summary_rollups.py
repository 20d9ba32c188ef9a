"""The summary's roll-ups (ADR 0037, session 18): ``YearlyCount`` is always the sum of a
year's months in ``MonthlyCount`` (by the same breakdown) and ``MonthlyTotal`` a month's
rows without their breakdown — counted the first time, kept month by month by the timer
(across a year's end), and rebuilt; and the counts read through them are the counts made
straight from the case tables."""

from __future__ import annotations

import datetime
import io
from collections import defaultdict

from django.core.management import call_command

from casework.statistics import periods, summary
from casework.statistics.models import MonthlyCount, MonthlyTotal, SummaryState, YearlyCount
from casework.statistics.registry import get, programmes

from .conftest import local, random_specs
from .programme_data import defector_data, gvi_data, sspf_data
from .test_summary_refresh import direct_counts, from_summary

SIG = get("sig")


def _nonzero(counts: dict) -> dict:
    return {key: value for key, value in counts.items() if value}


def rolled_up_by_hand(code: str) -> tuple[dict, dict]:
    """The roll-ups worked out in Python from the months: (years, month totals)."""
    years, totals = defaultdict(int), defaultdict(int)
    for month, measure, detail, band, gender, area, count in MonthlyCount.objects.filter(
        programme=code
    ).values_list("month", "measure", "detail", "age_band", "gender", "area", "count"):
        years[(month.replace(month=1), measure, detail, band, gender, area)] += count
        totals[(month, measure)] += count
    return _nonzero(years), _nonzero(totals)


def rolled_up(code: str) -> tuple[dict, dict]:
    """The roll-ups as kept (each key once)."""
    years, totals = {}, {}
    for year, measure, detail, band, gender, area, count in YearlyCount.objects.filter(
        programme=code
    ).values_list("year", "measure", "detail", "age_band", "gender", "area", "count"):
        key = (year, measure, detail, band, gender, area)
        assert key not in years and year.month == year.day == 1
        years[key] = count
    for month, measure, count in MonthlyTotal.objects.filter(programme=code).values_list(
        "month", "measure", "count"
    ):
        assert (month, measure) not in totals
        totals[(month, measure)] = count
    return years, totals


def _data(make_cases) -> None:
    make_cases(random_specs(seed=1808, count=120, years=(2022, 2023, 2024)))
    defector_data(seed=81, count=40)
    sspf_data(seed=82, count=40, discussions=20)
    gvi_data(seed=83, groups=12)


def test_the_rollups_are_the_months_added_up_as_the_timer_runs_month_by_month(make_cases):
    """From a summary filled to the start of 2023, one month a run through the end of
    2024 (the year's end included): after every run the roll-ups are the months'
    sums; at the end they are what a rebuild gives, and a rebuild after it too."""
    _data(make_cases)
    specs = list(programmes().values())
    for spec in specs:
        assert summary.fill(spec, today=datetime.date(2023, 1, 15)) is None
        assert rolled_up(spec.code) == rolled_up_by_hand(spec.code)
    assert YearlyCount.objects.filter(programme="sig", year__lt=datetime.date(2023, 1, 1)).exists()
    for index in range(periods.month_index(datetime.date(2023, 2, 1)), 2025 * 12 + 2):
        for spec in specs:
            assert summary.fill(spec, today=periods.month_start(index)) == 1
            assert rolled_up(spec.code) == rolled_up_by_hand(spec.code), (spec.code, index)
    kept = {spec.code: rolled_up(spec.code) for spec in specs}
    assert kept["sig"][0] and kept["sig"][1]
    for spec in specs:
        summary.rebuild(spec)
        assert not YearlyCount.objects.filter(programme=spec.code).exists()
        assert not MonthlyTotal.objects.filter(programme=spec.code).exists()
        summary.fill(spec, today=datetime.date(2025, 2, 1))
        assert rolled_up(spec.code) == kept[spec.code]
    call_command("refresh_statistics", "--rebuild", stdout=io.StringIO())
    for spec in specs:
        assert rolled_up(spec.code) == rolled_up_by_hand(spec.code)


def test_counts_through_the_rollups_are_the_counts_without_them(make_cases):
    """With the summary filled to the middle of a year (its roll-up holds part of the
    year, the running month is counted live): every period, year, quarter or month,
    before, around and after the running month, counts what the case tables give."""
    _data(make_cases)
    now = local(2024, 7, 10, 15)
    keys = ["2022", "2023", "2024", "2023-Q4", "2024-Q1", "2024-Q2", "2024-Q3", "2024-06"]
    keys += ["2024-07", "2024-01", "2023-12", "2022-11"]
    wanted = [periods.parse(key) for key in keys]
    for spec in programmes().values():
        summary.fill(spec, today=datetime.date(2024, 5, 3))
        raw = summary.counts(spec, wanted, now=now)  # fills June
        assert SummaryState.objects.get(programme=spec.code).filled_until == datetime.date(
            2024, 7, 1
        )
        for period in wanted:
            assert from_summary(raw[period]) == direct_counts(spec, period, now), (
                spec.code,
                period,
            )
        # One by one (a year alone reads no month; a month alone no year).
        for period in wanted:
            alone = summary.counts(spec, [period], now=now)[period]
            assert from_summary(alone) == from_summary(raw[period]), (spec.code, period)


def test_monthly_totals_through_the_rollups_are_the_counts_without_them(make_cases):
    _data(make_cases)
    now = local(2024, 7, 10, 15)
    for spec in programmes().values():
        totals = summary.monthly_totals(spec, [2023, 2024], now=now)
        stocks = {s.key for s in spec.stocks}
        durations = {d.key for d in spec.durations}
        for index in range(2023 * 12, 2024 * 12 + 12):
            month = periods.Period(index, periods.MONTH)
            direct = direct_counts(spec, month, now)
            expected = defaultdict(int)
            for (measure, *_rest), count in direct["events"].items():
                if measure not in durations:
                    expected[measure] += count
            for measure in stocks:
                expected[measure] = 0
            for (measure, *_rest), count in direct["stocks_end"].items():
                expected[measure] += count
            assert _nonzero(totals[index]) == _nonzero(expected), (spec.code, index)
