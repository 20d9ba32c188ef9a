"""The summary kept by ``refresh_statistics`` (ADR 0033): the dashboard's numbers are the
same with the summary built ahead by the timer as counted straight from the case tables,
and the summary follows new cases and transitions (live in the running month, counted
into the summary once the month has ended, incrementally)."""

from __future__ import annotations

import datetime
import io
from collections import defaultdict

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from casework.statistics import periods, summary, tables
from casework.statistics.models import MonthlyCount, SummaryState
from casework.statistics.registry import get, programmes
from workflows.sig.models import Status

from .conftest import Spec, random_specs
from .programme_data import defector_data, gvi_data, sspf_data
from .test_statistics import counts_shown

SIG = get("sig")


def direct_counts(spec, period: periods.Period, now: datetime.datetime) -> dict:
    """The raw counts of ``period`` straight from the case tables, without the summary:
    every event of the period and every stock change before its end, in one query."""
    until = min(summary._aware(period.end), now)
    stocks = {s.key for s in spec.stocks}
    durations = {d.key for d in spec.durations}
    result = {"e": defaultdict(int), "z": defaultdict(int), "a": defaultdict(int)}
    result["d"] = defaultdict(lambda: defaultdict(int))
    with connection.cursor() as cursor:
        cursor.execute(summary._select(spec), summary._params(summary.EARLIEST, until))
        rows = cursor.fetchall()
    for month, measure, detail, band, gender, area, n in rows:
        key = (measure, detail, band, gender, area)
        if measure in stocks:
            result["z"][key] += n
            if month < period.start:
                result["a"][key] += n
        elif month >= period.start:
            if measure in durations:
                result["d"][measure][int(detail)] += n
            else:
                result["e"][key] += n
    return _plain(result["e"], result["z"], result["a"], result["d"])


def _plain(events, end, start, durations) -> dict:
    def nonzero(counts):
        return {k: v for k, v in counts.items() if v}

    return {
        "events": nonzero(events),
        "stocks_end": nonzero(end),
        "stocks_start": nonzero(start),
        "durations": {k: nonzero(v) for k, v in durations.items() if nonzero(v)},
    }


def from_summary(raw: summary.PeriodCounts) -> dict:
    return _plain(raw.events, raw.stocks_end, raw.stocks_start, raw.durations)


@pytest.fixture
def everything(make_cases):
    """Every programme with years of history, and SIG cases in the running month."""
    now = timezone.now()
    specs = random_specs(seed=3303, count=140, years=(2023, 2024, now.year - 1))
    specs += [Spec(now.year - 15, "female", "brickebacken", 0, now) for _ in range(6)]
    make_cases(specs)
    defector_data(seed=71, count=60)
    sspf_data(seed=72, count=60, discussions=30)
    gvi_data(seed=73, groups=20)
    return specs


def _periods(now: datetime.datetime) -> list[periods.Period]:
    keys = ["2023", "2024", "2024-Q3", "2023-11", str(now.year - 1)]
    return [periods.parse(k) for k in keys] + [
        periods.current(periods.YEAR),
        periods.current(periods.MONTH),
    ]


def test_the_summary_gives_the_numbers_counted_without_it(everything):
    now = timezone.now()
    out = io.StringIO()
    call_command("refresh_statistics", stdout=out)
    assert "sig: " in out.getvalue()
    assert SummaryState.objects.count() == len(programmes())
    wanted = _periods(now)
    compared = 0
    for spec in programmes().values():
        raw = summary.counts(spec, wanted, now=now)
        for period in wanted:
            assert from_summary(raw[period]) == direct_counts(spec, period, now), (
                spec.code,
                period,
            )
            compared += len(raw[period].events) + len(raw[period].stocks_end)
    assert compared > 200


@pytest.mark.parametrize("key", ["2024", "2023-Q4", None])
def test_the_dashboard_is_the_same_built_by_the_timer_or_on_the_first_view(
    everything, steering, client, key
):
    """What the dashboard shows (every programme, every table, suppression included) is
    the same whether its first view counted the history (as before) or the timer did."""
    params = {"period": key} if key else {}
    on_view = client.get("/statistik/", params)
    assert on_view.status_code == 200
    counted_on_view = list(MonthlyCount.objects.values_list().order_by("pk"))
    for spec in programmes().values():
        summary.rebuild(spec)
    call_command("refresh_statistics", stdout=io.StringIO())
    by_timer = client.get("/statistik/", params)
    assert by_timer.status_code == 200
    shown = counts_shown(by_timer.content.decode())
    assert len(shown) > 20
    assert counts_shown(on_view.content.decode()) == shown
    rows = sorted(row[1:] for row in MonthlyCount.objects.values_list().order_by("pk"))
    assert sorted(row[1:] for row in counted_on_view) == rows


def test_a_refresh_counts_only_what_ended_since_the_last_run(make_cases):
    make_cases(random_specs(seed=11, count=40, years=(2024,)))
    first = io.StringIO()
    call_command("refresh_statistics", "--programme", "sig", stdout=first)
    assert "whole history" in first.getvalue() or "hela historiken" in first.getvalue()
    again = io.StringIO()
    call_command("refresh_statistics", "--programme", "sig", stdout=again)
    assert "up to date" in again.getvalue() or "aktuell" in again.getvalue()
    next_month = periods.month_start(periods.month_index(timezone.localdate()) + 1)
    assert summary.fill(SIG, today=next_month) == 1
    assert summary.fill(SIG, today=next_month) == 0


def test_an_unknown_programme_is_refused_with_a_message(db):
    with pytest.raises(CommandError, match="nosuch"):
        call_command("refresh_statistics", "--programme", "nosuch", stdout=io.StringIO())
    assert not SummaryState.objects.exists()


@pytest.mark.django_db(databases=["default", "keystore"])
def test_the_summary_follows_a_new_case_and_its_transitions(demo, make_cases):
    """After the timer's run, a case opened and moved through the real services shows
    in the running month at once; when the month has ended, the next run counts that
    month (and only it) into the summary, with the same figures."""
    from tests.workflows.sig.factories import sig_case

    make_cases(random_specs(seed=12, count=60, years=(2024,)))
    call_command("refresh_statistics", stdout=io.StringIO())
    month = periods.current(periods.MONTH)
    history = sorted(
        MonthlyCount.objects.filter(programme="sig").values_list(
            "month", "measure", "detail", "age_band", "gender", "area", "count"
        )
    )

    def totals(now=None):
        raw = summary.counts(SIG, [month], now=now)[month]
        return {k: c.value for k, c in tables.publication(SIG, raw, 5).totals.items()}

    before = totals()
    sig_case(demo, Status.ACTIVE)
    sig_case(demo, Status.CONSENT_REFUSED)
    after = totals()
    assert after["referred"] == before["referred"] + 2
    assert after["consent_refused"] == before["consent_refused"] + 1
    assert after["active"] == before["active"] + 1

    next_month = periods.month_start(month.first + 1)
    assert summary.fill(SIG, today=next_month) == 1  # the month that ended, nothing else
    later = timezone.make_aware(datetime.datetime.combine(next_month, datetime.time(9)))
    assert totals(now=later) == after  # now read from the summary
    month_start = periods.month_start(month.first)
    rows = MonthlyCount.objects.filter(programme="sig")
    assert (
        sorted(
            rows.exclude(month=month_start).values_list(
                "month", "measure", "detail", "age_band", "gender", "area", "count"
            )
        )
        == history
    )
    assert rows.filter(month=month_start, measure="referred").exists()
