"""The summary the statistics are read from: counts by month, no person, no case."""

from __future__ import annotations

from django.db import models


class BreakdownCount(models.Model):
    """A programme's count of ``measure`` by age band, gender and area (``detail``: what
    a duration's count is of, its number of days), over a period the subclass names."""

    programme = models.CharField(max_length=20)
    measure = models.CharField(max_length=40)
    detail = models.CharField(max_length=40, blank=True)
    age_band = models.SmallIntegerField()
    gender = models.CharField(max_length=10, blank=True)
    area = models.CharField(max_length=30, blank=True)
    count = models.IntegerField()

    class Meta:
        abstract = True
        default_permissions = ()


class MonthlyCount(BreakdownCount):
    """How many cases of a programme had ``measure`` in ``month``, by age band, gender, area.

    Written only by ``casework.statistics.summary`` for months that have ended
    (the running month is counted live). Stocks are stored as +1/-1 changes,
    durations as a count per ``detail`` = number of days (without breakdown).
    """

    month = models.DateField()

    class Meta(BreakdownCount.Meta):
        indexes = [models.Index(fields=["programme", "measure", "month"])]

    def __str__(self) -> str:
        return f"{self.programme} {self.month} {self.measure}"


class YearlyCount(BreakdownCount):
    """``MonthlyCount`` added up by calendar year (``year``: its first day), by the same
    breakdown: what a year's tables and the stocks before a year are read from.

    Kept by ``casework.statistics.summary.fill`` with the months (a year's rows are
    counted again from its months whenever a month of it enters the summary), so it
    always equals the sum of the year's months in ``MonthlyCount``.
    """

    year = models.DateField()

    class Meta(BreakdownCount.Meta):
        indexes = [models.Index(fields=["programme", "measure", "year"])]

    def __str__(self) -> str:
        return f"{self.programme} {self.year.year} {self.measure}"


class MonthlyTotal(models.Model):
    """``MonthlyCount`` without its breakdown: a month's total of each measure (what the
    months and quarters of a year publish, and the trends). Kept with the months."""

    programme = models.CharField(max_length=20)
    month = models.DateField()
    measure = models.CharField(max_length=40)
    count = models.IntegerField()

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["programme", "measure", "month"])]

    def __str__(self) -> str:
        return f"{self.programme} {self.month} {self.measure}"


class SummaryState(models.Model):
    """Per programme: the first month not yet in the summary (``None``: nothing yet)."""

    programme = models.CharField(max_length=20, primary_key=True)
    filled_until = models.DateField(null=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.programme} until {self.filled_until}"
