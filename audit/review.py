"""Log review (loggkontroll): the rules that select access-log entries for an auditor.

Following IMY's checklist, entries are selected by rules *and* at random:

- access outside the user's own cases — the person is not in any case whose
  team the user belonged to during the period (``casework.policy.own_case_access``);
- off-hours access — outside ``AUDIT_WORKING_HOURS`` or at a weekend, in the
  local time zone (``TIME_ZONE``, Europe/Stockholm);
- unusual volume — a user with more person-data events in one local day than
  ``AUDIT_DAILY_VOLUME_THRESHOLD``;
- every access to a person with protected identity — all of them, never a sample;
- every break-the-glass event;
- every referral of a person who was already registered — the referral's creation event
  carries the flag ``person_registered`` (``casework.services.cases.open_case``): a
  referral is a way to a person's record, so each one of a known person is reviewed;
- bursts of failed sign-ins — an account name, or an address, with at least
  ``AUDIT_FAILED_LOGIN_BURST`` failed logins in one local hour (guessing, or a
  spray of one password over many names); the sign-in lock stops the guessing,
  this rule shows who was tried and from where;
- a random sample of person-data events (``AUDIT_REVIEW_SAMPLE_SIZE``), drawn
  from a seed shown in the report so the same sample can be drawn again.

Person-data events are the access-log events that name a person.
"""

# The SQL names the model's (quoted) table; every value is a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncHour
from django.utils import timezone

from audit import volumes
from audit.models import AccessEvent
from casework import policy

ROW_LIMIT = 200
# A rule's matches are counted up to this many; beyond it the page says "more than".
COUNT_LIMIT = 1000


@dataclass
class RuleResult:
    """The first ``ROW_LIMIT`` matches of a rule by id and how many there are: ``total``
    exactly up to ``COUNT_LIMIT``; ``more`` when there are more than ``COUNT_LIMIT`` (then
    ``total`` is ``COUNT_LIMIT``)."""

    events: list[AccessEvent] = field(default_factory=list)
    total: int = 0
    available: bool = True
    more: bool = False

    @property
    def truncated(self) -> bool:
        return self.more or self.total > len(self.events)


@dataclass
class VolumeRow:
    username: str
    organisation_name: str
    day: dt.date
    count: int


@dataclass
class BurstRow:
    """Failed logins of one account name or from one address within one local hour."""

    kind: str  # "account" or "address"
    name: str
    hour: dt.datetime
    count: int
    first: dt.datetime
    last: dt.datetime


@dataclass
class ReviewReport:
    start: dt.datetime
    end: dt.datetime
    working_hours: tuple[int, int]
    volume_threshold: int
    seed: int
    outside_own_cases: RuleResult
    off_hours: RuleResult
    high_volume: list[VolumeRow]
    protected_identity: RuleResult
    break_the_glass: RuleResult
    sample: list[AccessEvent]
    referrals_of_registered: RuleResult = field(default_factory=RuleResult)
    failed_login_bursts: list[BurstRow] = field(default_factory=list)
    burst_threshold: int = 0


def _local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _person_events(start: dt.datetime, end: dt.datetime) -> QuerySet[AccessEvent]:
    return AccessEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, person_id__isnull=False
    )


def _month_start(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC month of ``moment``: where the log's partition begins (ADR 0031)."""
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(moment: dt.datetime) -> dt.datetime:
    return (_month_start(moment) + dt.timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class _Piece:
    """The part of a period in one partition of the log (one UTC month): [since, until).

    ``late``: the piece starts later in its month than it lasts (the last hour of a month
    before a local month begins). Its first events by id are then found by reading the
    piece (the BRIN index of the moments) and sorting, not by walking the partition's
    primary key from the month's first event: that walk reads every event of the month
    before the piece (a month of index at national size), which the planner cannot see
    (it assumes the matches are spread evenly over the key)."""

    since: dt.datetime
    until: dt.datetime
    late: bool


def _pieces(start: dt.datetime, end: dt.datetime) -> list[_Piece]:
    """[start, end) cut at the UTC month starts, in time order."""
    pieces = []
    since = start
    while since < end:
        until = min(end, _next_month(since))
        pieces.append(_Piece(since, until, since - _month_start(since) > until - since))
        since = until
    return pieces


def _result(events: QuerySet[AccessEvent], start: dt.datetime, end: dt.datetime) -> RuleResult:
    """The first ``ROW_LIMIT`` matches and their number counted up to ``COUNT_LIMIT`` (a
    statement that stops at ``COUNT_LIMIT + 1`` matching rows), so that a rule reads a
    bounded part of the month however many events it holds.

    The first matches are read piece by piece of the period (``_pieces``: one per month of
    the log), each piece's first ``ROW_LIMIT`` by id, in one statement (``UNION ALL``),
    then the first ``ROW_LIMIT`` of them: the same rows as the period's first
    ``ROW_LIMIT`` by id, but a piece that starts late in its month is read by its moments
    instead of by walking its partition's key from the month's start."""
    shown = list(_first_by_id(events, start, end))
    if len(shown) < ROW_LIMIT:
        return RuleResult(events=shown, total=len(shown))
    counted = events.order_by().values("id")[: COUNT_LIMIT + 1].count()
    return RuleResult(events=shown, total=min(counted, COUNT_LIMIT), more=counted > COUNT_LIMIT)


def _first_by_id(
    events: QuerySet[AccessEvent], start: dt.datetime, end: dt.datetime
) -> QuerySet[AccessEvent]:
    """The first ``ROW_LIMIT`` of ``events`` (already limited to [start, end)) by id: the
    first ``ROW_LIMIT`` of each piece of the period, the first ``ROW_LIMIT`` of those."""
    pieces = []
    for piece in _pieces(start, end):
        part = events.filter(occurred_at__gte=piece.since, occurred_at__lt=piece.until)
        # ``id + 0`` is ``id`` for the order, but no index reads it: the piece is read by
        # its moments and its matches sorted (docs/adr/0037, session 17).
        pieces.append(part.order_by(F("id") + 0 if piece.late else "id")[:ROW_LIMIT])
    if len(pieces) == 1:
        return pieces[0]
    return pieces[0].union(*pieces[1:], all=True).order_by("id")[:ROW_LIMIT]


def outside_own_cases(start: dt.datetime, end: dt.datetime) -> RuleResult:
    events = _person_events(start, end).filter(user__isnull=False)
    return _result(events.filter(~policy.own_case_access(start, end)), start, end)


def off_hours(start: dt.datetime, end: dt.datetime, working_hours: tuple[int, int]) -> RuleResult:
    zone = _local_zone()
    first, last = working_hours
    events = (
        _person_events(start, end)
        .annotate(
            local_hour=ExtractHour("occurred_at", tzinfo=zone),
            local_weekday=ExtractIsoWeekDay("occurred_at", tzinfo=zone),
        )
        .filter(Q(local_hour__lt=first) | Q(local_hour__gte=last) | Q(local_weekday__gte=6))
    )
    return _result(events, start, end)


def high_volume(start: dt.datetime, end: dt.datetime, threshold: int) -> list[VolumeRow]:
    """The user-days of [start, end) with more than ``threshold`` person-data events.

    A whole local day that the summary holds (``DailyVolume``: days that ended, filled by
    ``audit.volumes.summarise``) is read from it, by an index range on the count; the rest of the
    period — a part of a day at either end, the days after the summary, a day of an
    archived month — is counted live from the access log. The rows are those the count
    over the whole period gives."""
    summarised, live = volumes.ranges(start, end)
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    parts, params = [], []
    if summarised:
        days = " OR ".join(["(day >= %s AND day < %s)"] * len(summarised))
        parts.append(
            "SELECT username, organisation_name, day, count FROM audit_dailyvolume"
            f" WHERE count > %s AND ({days})"
        )
        params += [threshold, *(day for pair in summarised for day in pair)]
    for since, until in live:
        parts.append(
            f"SELECT username, organisation_name, (occurred_at AT TIME ZONE %s)::date,"
            f" count(*) FROM {table} WHERE person_id IS NOT NULL"
            " AND occurred_at >= %s AND occurred_at < %s"
            " GROUP BY 1, 2, 3 HAVING count(*) > %s"
        )
        params += [settings.TIME_ZONE, since, until, threshold]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT username, organisation_name, day, count FROM ("
            + " UNION ALL ".join(parts)
            + ") AS volumes (username, organisation_name, day, count)"
            " ORDER BY count DESC, username, day LIMIT %s",
            [*params, ROW_LIMIT],
        )
        return [VolumeRow(*row) for row in cursor.fetchall()]


def protected_identity(start: dt.datetime, end: dt.datetime) -> RuleResult:
    try:
        person_model = apps.get_model("casework", "Person")
    except LookupError:  # the person register does not exist yet
        return RuleResult(available=False)
    protected = person_model.objects.filter(protected_identity__gt=0).values("pk")
    return _result(_person_events(start, end).filter(person_id__in=protected), start, end)


def break_the_glass(start: dt.datetime, end: dt.datetime) -> RuleResult:
    return _result(
        AccessEvent.objects.filter(
            occurred_at__gte=start, occurred_at__lt=end, action=AccessEvent.Action.BREAK_GLASS
        ),
        start,
        end,
    )


def referrals_of_registered_persons(start: dt.datetime, end: dt.datetime) -> RuleResult:
    """Every referral (SIG, SSPF concern, defector) of a person already in the register."""
    return _result(
        AccessEvent.objects.filter(
            occurred_at__gte=start,
            occurred_at__lt=end,
            action=AccessEvent.Action.CREATE,
            details__referral=True,
            details__person_registered=True,
        ),
        start,
        end,
    )


def failed_login_bursts(start: dt.datetime, end: dt.datetime, threshold: int) -> list[BurstRow]:
    """Account names and addresses with at least ``threshold`` failed logins in one hour."""
    failed = AccessEvent.objects.filter(
        occurred_at__gte=start, occurred_at__lt=end, action=AccessEvent.Action.LOGIN_FAILED
    ).annotate(hour=TruncHour("occurred_at", tzinfo=_local_zone()))
    rows: list[BurstRow] = []
    for kind, column, present in (
        ("account", "username", ~Q(username="")),
        ("address", "client_address", Q(client_address__isnull=False)),
    ):
        groups = (
            failed.filter(present)
            .values(column, "hour")
            .annotate(count=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
            .filter(count__gte=threshold)
            .order_by("-count", column, "hour")[:ROW_LIMIT]
        )
        rows += [
            BurstRow(
                kind=kind,
                name=str(group[column]),
                hour=group["hour"],
                count=group["count"],
                first=group["first"],
                last=group["last"],
            )
            for group in groups
        ]
    return rows


def random_sample(
    start: dt.datetime, end: dt.datetime, *, size: int, seed: int
) -> list[AccessEvent]:
    """``size`` distinct person-data events, drawn uniformly over the id range from ``seed``.

    Up to ``size * 4`` ids are drawn, in order, from the month's id range; each draw
    picks the first person-data event at or after it, until ``size`` distinct events are
    picked. The first event at or after every draw is found in one statement (an index
    probe each), the picking then replayed in order.
    """
    low, high = _person_event_id_bounds(start, end)
    if low is None or size <= 0:
        return []
    generator = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    draws = [generator.randint(low, high) for _attempt in range(size * 4)]
    first_at = _first_person_events_at(start, end, sorted(set(draws)))
    chosen: list[int] = []
    for draw in draws:
        if len(chosen) >= size:
            break
        event_id = first_at.get(draw)
        if event_id is not None and event_id not in chosen:
            chosen.append(event_id)
    return list(AccessEvent.objects.filter(id__in=chosen).order_by("id"))


def _person_event_id_bounds(start: dt.datetime, end: dt.datetime) -> tuple[int | None, int | None]:
    """The lowest and the highest id of the person-data events of [start, end), in one
    statement: the lowest and highest of each piece of the period (``_pieces``). A piece's
    lowest id is read from its partition's key, unless the piece starts late in its month
    (then walking the key from the month's first event would read the month before it: the
    piece is read by its moments instead, ``id + 0``); so is its highest, unless more of the
    month follows the piece than the piece lasts."""
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    now = timezone.now()
    where = f"FROM {table} WHERE occurred_at >= %s AND occurred_at < %s AND person_id IS NOT NULL"
    lows, highs, low_params, high_params = [], [], [], []
    for piece in _pieces(start, end):
        after = min(_next_month(piece.since), max(now, piece.until)) - piece.until
        lows.append(f"(SELECT min({'id + 0' if piece.late else 'id'}) {where})")
        highs.append(
            f"(SELECT max({'id + 0' if after > piece.until - piece.since else 'id'}) {where})"
        )
        low_params += [piece.since, piece.until]
        high_params += [piece.since, piece.until]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT least({', '.join(lows)}), greatest({', '.join(highs)})",
            [*low_params, *high_params],
        )
        return cursor.fetchone()


def _first_person_events_at(
    start: dt.datetime, end: dt.datetime, draws: list[int]
) -> dict[int, int]:
    """For each id in ``draws``: the id of the first person-data event of [start, end)
    at or after it (absent when there is none)."""
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT draw, (SELECT e.id FROM {table} e
                          WHERE e.occurred_at >= %s AND e.occurred_at < %s
                            AND e.person_id IS NOT NULL AND e.id >= draw
                          ORDER BY e.id LIMIT 1)
            FROM unnest(%s::bigint[]) AS draws(draw)
            """,
            [start, end, draws],
        )
        return {draw: event_id for draw, event_id in cursor.fetchall() if event_id is not None}


def build_report(
    *,
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
    working_hours: tuple[int, int] | None = None,
    volume_threshold: int | None = None,
    sample_size: int | None = None,
    burst_threshold: int | None = None,
) -> ReviewReport:
    working_hours = working_hours or tuple(settings.AUDIT_WORKING_HOURS)
    volume_threshold = (
        volume_threshold if volume_threshold is not None else settings.AUDIT_DAILY_VOLUME_THRESHOLD
    )
    sample_size = sample_size if sample_size is not None else settings.AUDIT_REVIEW_SAMPLE_SIZE
    burst_threshold = burst_threshold or settings.AUDIT_FAILED_LOGIN_BURST
    return ReviewReport(
        start=start,
        end=end,
        working_hours=working_hours,
        volume_threshold=volume_threshold,
        seed=seed,
        outside_own_cases=outside_own_cases(start, end),
        off_hours=off_hours(start, end, working_hours),
        high_volume=high_volume(start, end, volume_threshold),
        protected_identity=protected_identity(start, end),
        break_the_glass=break_the_glass(start, end),
        referrals_of_registered=referrals_of_registered_persons(start, end),
        failed_login_bursts=failed_login_bursts(start, end, burst_threshold),
        burst_threshold=burst_threshold,
        sample=random_sample(start, end, size=sample_size, seed=seed),
    )
