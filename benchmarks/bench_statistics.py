"""Statistics: the steering group's dashboard for a year with 1,000,000 SIG cases (and
the other three programmes with smaller volumes: every programme is on the page).

The cases are written set-based (``generate_series``) into a database of their
own, a copy of the benchmark's throw-away database made for this module and
dropped afterwards: persons with plain columns only (the encrypted columns are
empty — statistics never read them, so no data keys are needed) and SIG cases
opened evenly from 2016 to today, each with its stage moments (consent given
or refused, decision, plan, closing with a reason) — the case history the
statistics read. The audit-history triggers are off for the bulk load
(``session_replication_role = replica``), as for any bulk import of test data.

Figures: the summary's refresh by the timer (``refresh_statistics``: the first
run counts every ended month of all 1,000,000 cases, once; a second run finds
nothing new); the first render of the year's dashboard after it (empty cache:
the running month counted live, the history read from the summary; ADR 0033);
a render that recounts the running month live (what happens at most every
``STATS_LIVE_SECONDS``); and the median of renders in between (summary +
suppression of this year and the four before it for the trend + the page),
all through the Django test client as the steering group, including the
access-log event. ``--scale`` scales the number of cases (1 = 1,000,000).
"""

from __future__ import annotations

import statistics
import time

from django.db import connection, connections

FULL = CASES = 1_000_000  # FULL: the other programmes keep their share of it
RENDERS = 7


def _alone() -> None:
    """End this process's sessions on the database: the sealer thread's too (it keeps its
    own between seals, ADR 0032 session 18), which would keep the database from being
    copied (``CREATE DATABASE … TEMPLATE``) or dropped."""
    from audit.services import stop_sealer

    stop_sealer()
    connections.close_all()


def run(report, scale: float = 1.0) -> None:
    global CASES
    CASES = max(1000, int(1_000_000 * scale))
    original = connection.settings_dict["NAME"]
    copy = f"{original}_statistics"
    _alone()
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{copy}"')
        cursor.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{original}"')
    connection.settings_dict["NAME"] = copy
    try:
        label = f"{CASES:,}".replace(",", " ")
        build = _build()
        report(f"statistics: build {label} SIG cases (set-based)", build, "s", "(setup)")
        whole, again = _refresh()
        report("statistics: summary refresh, whole history (timer)", whole, "s", "(once)")
        report("statistics: summary refresh, nothing new (timer)", again * 1000, "ms", "")
        cold, live, warm = _renders()
        report("statistics: dashboard for a year, first render", cold, "s", "<= 10 s")
        report("statistics: year, running month recounted", live * 1000, "ms", "(every 5 min)")
        report(f"statistics: dashboard for a year, {label} cases", warm * 1000, "ms", "< 1000 ms")
    finally:
        _alone()
        connection.settings_dict["NAME"] = original
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{copy}"')


def _build() -> float:
    from django.contrib.auth.models import Group

    from casework import roles
    from casework.models import Organisation, User

    org = Organisation.objects.create(name="Socialtjänsten (bench)", kind="social_services")
    user = User.objects.create(username="bench.statistik", organisation=org)
    user.groups.add(Group.objects.get(name=roles.STEERING_GROUP))
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SELECT setseed(0.2024)")
        cursor.execute(
            """
            CREATE TEMP TABLE gen AS
            SELECT i, opened, r1, r2, r3,
                   opened + (r1 * 40 + 1) * interval '1 day' AS step1,
                   opened + (r1 * 40 + r2 * 30 + 2) * interval '1 day' AS step2,
                   opened + (r1 * 40 + r2 * 30 + r3 * 60 + 3) * interval '1 day' AS step3,
                   opened + (r1 * 40 + r2 * 30 + r3 * 60 + 4 + r1 * r2 * 400) * interval '1 day'
                       AS step4
            FROM (
                SELECT i,
                       timestamptz '2016-01-01' + (now() - timestamptz '2016-01-01')
                           * (i::float8 / %(n)s) AS opened,
                       random() AS r1, random() AS r2, random() AS r3
                FROM generate_series(1, %(n)s) AS i
            ) AS g
            """,
            {"n": CASES},
        )
        cursor.execute(
            """
            INSERT INTO casework_person (id, birth_year, gender, area, protected_identity,
                                         created_at)
            SELECT md5('p' || i)::uuid,
                   extract(year FROM opened)::int - 14 - (r3 * 11)::int,
                   (ARRAY['female', 'male', 'male', 'other'])[1 + floor(r2 * 4)::int],
                   (ARRAY['vivalla_baronbackarna', 'varberga_oxhagen', 'brickebacken',
                          'other'])[1 + floor(r1 * 4)::int],
                   CASE WHEN mod(i, 97) = 0 THEN 2 ELSE 0 END,
                   opened
            FROM gen
            """
        )
        cursor.execute(
            """
            INSERT INTO casework_case (id, reference, programme, opened_at, closed_at,
                close_reason, version, owner_organisation_id, person_id, referred_by_id,
                referring_organisation_id)
            SELECT md5('c' || i)::uuid, 'SIG-B-' || i, 'sig', opened,
                   CASE WHEN r1 < 0.15 THEN step2
                        WHEN r1 < 0.25 THEN step2
                        WHEN step4 < now() THEN step4 END,
                   CASE WHEN r1 < 0.15 THEN 'consent_refused'
                        WHEN r1 < 0.25 THEN 'not_started'
                        WHEN step4 < now() THEN (ARRAY['goals_met', 'moved', 'ended_by_person',
                            'age_limit'])[1 + floor(r3 * 4)::int]
                        ELSE '' END,
                   1, %(org)s, md5('p' || i)::uuid, %(user)s, %(org)s
            FROM gen
            """,
            {"org": org.pk, "user": user.pk},
        )
        cursor.execute(
            """
            INSERT INTO workflows_sigcase (case_ptr_id, status, consented_at, consent_refused_at,
                decided_at, started_at, plan_approved_at)
            SELECT md5('c' || i)::uuid,
                   CASE WHEN r1 < 0.25 OR step4 < now() THEN 'closed' ELSE 'active' END,
                   CASE WHEN r1 >= 0.15 THEN step1 END,
                   CASE WHEN r1 < 0.15 THEN step1 END,
                   CASE WHEN r1 >= 0.15 THEN step2 END,
                   CASE WHEN r1 >= 0.25 THEN step2 END,
                   CASE WHEN r1 >= 0.25 THEN step3 END
            FROM gen
            """
        )
        _other_programmes(cursor, org=org.pk, user=user.pk)
        cursor.execute("SET session_replication_role = origin")
        cursor.execute("DROP TABLE gen")
        cursor.execute(
            "ANALYZE casework_person, casework_case, casework_caseevent, workflows_sigcase,"
            " workflows_defectorcase, workflows_sspfcase, workflows_anonymiseddiscussion,"
            " workflows_group, workflows_gvievent, workflows_incident, workflows_callin"
        )
    return time.perf_counter() - start


# The other programmes are far smaller than SIG; these volumes put every one of them on
# the page with years of history (the dashboard shows all four programmes).
# (at --scale, each the same share of the SIG cases: one every FULL // volume)
DEFECTOR_CASES, SSPF_CASES, DISCUSSIONS, GROUPS, INCIDENTS = 20_000, 50_000, 20_000, 1_000, 5_000


def _other_programmes(cursor, *, org: int, user: int) -> None:
    """Defector and SSPF cases (with their stage moments and re-routings), anonymised
    discussions, GVI groups with their state history, incidents and call-ins (set-based)."""
    for code, count, prefix in (("defector", DEFECTOR_CASES, "d"), ("sspf", SSPF_CASES, "s")):
        cursor.execute(
            """
            INSERT INTO casework_person (id, birth_year, gender, area, protected_identity,
                                         created_at)
            SELECT md5(%(prefix)s || 'p' || i)::uuid,
                   extract(year FROM opened)::int - 12 - (r3 * 14)::int,
                   (ARRAY['female', 'male', 'male', 'other'])[1 + floor(r2 * 4)::int],
                   (ARRAY['vivalla_baronbackarna', 'varberga_oxhagen', 'brickebacken',
                          'other'])[1 + floor(r1 * 4)::int],
                   CASE WHEN mod(i, 89) = 0 THEN 2 ELSE 0 END, opened
            FROM gen WHERE mod(i, %(step)s) = 0
            """,
            {"step": FULL // count, "prefix": prefix},
        )
        cursor.execute(
            """
            INSERT INTO casework_case (id, reference, programme, opened_at, closed_at,
                close_reason, version, owner_organisation_id, person_id, referred_by_id,
                referring_organisation_id)
            SELECT md5(%(prefix)s || 'c' || i)::uuid, upper(%(prefix)s) || '-B-' || i, %(code)s,
                   opened,
                   CASE WHEN step4 < now() THEN step4 END,
                   CASE WHEN step4 < now() THEN
                       (ARRAY['completed', 'moved', 'left_voluntarily', 'goals_met'])
                       [1 + floor(r3 * 4)::int] ELSE '' END,
                   1, %(org)s, md5(%(prefix)s || 'p' || i)::uuid, %(user)s, %(org)s
            FROM gen WHERE mod(i, %(step)s) = 0
            """,
            {"step": FULL // count, "org": org, "user": user, "prefix": prefix, "code": code},
        )
    cursor.execute(
        """
        INSERT INTO workflows_defectorcase (case_ptr_id, status, referral_source, handed_over_to,
            consented_at, consent_refused_at, assessed_at, assessed_level, routed_at, routed_to,
            started_at)
        SELECT md5('dc' || i)::uuid, 'active', 'police', '',
               CASE WHEN r1 >= 0.15 THEN step1 END, CASE WHEN r1 < 0.15 THEN step1 END,
               CASE WHEN r1 >= 0.15 THEN step2 END,
               CASE WHEN r1 >= 0.15 THEN (ARRAY['low', 'elevated', 'high'])[1 + floor(r2 * 3)::int]
                    ELSE '' END,
               step2, CASE WHEN r1 < 0.15 THEN 'not_eligible' WHEN r2 < 0.34 THEN 'local'
                           ELSE 'regional' END,
               CASE WHEN r1 >= 0.15 AND r2 < 0.34 THEN step3 END
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // DEFECTOR_CASES},
    )
    cursor.execute(
        """
        INSERT INTO casework_caseevent (id, case_id, at, kind, transition, from_state, to_state)
        SELECT md5('de' || i)::uuid, md5('dc' || i)::uuid, step3, 'transition',
               'hand_over_regional', 'active', 'handed_over_regional'
        FROM gen WHERE mod(i, %(step)s) = 0 AND r1 >= 0.15 AND r2 < 0.34 AND r3 < 0.3
        """,
        {"step": FULL // DEFECTOR_CASES},
    )
    cursor.execute(
        """
        INSERT INTO workflows_sspfcase (case_ptr_id, status, consented_at, consent_refused_at,
            plan_adopted_at)
        SELECT md5('sc' || i)::uuid, 'plan_active',
               CASE WHEN r1 >= 0.15 THEN step1 END, CASE WHEN r1 < 0.15 THEN step1 END,
               CASE WHEN r1 >= 0.25 THEN step2 END
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // SSPF_CASES},
    )
    cursor.execute(
        """
        INSERT INTO workflows_anonymiseddiscussion (id, date, organisation_id, topic, age_band,
            area, summary, outcome, recorded_by_id, created_at)
        SELECT md5('ad' || i)::uuid, opened::date, %(org)s,
               (ARRAY['absence', 'substances', 'crime', 'violence', 'company', 'other'])
               [1 + floor(r1 * 6)::int],
               (ARRAY['10-12', '13-15', '16-18', ''])[1 + floor(r2 * 4)::int],
               (ARRAY['vivalla_baronbackarna', 'brickebacken', 'other', ''])
               [1 + floor(r3 * 4)::int],
               'Syntetisk', '', %(user)s, opened
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // DISCUSSIONS, "org": org, "user": user},
    )
    cursor.execute(
        """
        INSERT INTO workflows_group (id, reference, area, size_band, status, created_by_id,
            created_at, version)
        SELECT md5('g' || i)::uuid, 'GVI-B-' || i, 'other', '6-15', 'monitored', %(user)s,
               opened, 1
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // GROUPS, "user": user},
    )
    cursor.execute(
        """
        INSERT INTO workflows_gvievent (id, group_id, object_type, object_id, at, actor_id,
            transition, from_state, to_state)
        SELECT md5('ge' || i || s.state)::uuid, md5('g' || i)::uuid, 'workflows.group',
               md5('g' || i)::uuid, opened + s.n * interval '40 days', %(user)s, 'move', '',
               s.state
        FROM gen, (VALUES (0, 'identified'), (1, 'mapped'), (2, 'message_delivered'),
                          (3, 'monitored')) AS s(n, state)
        WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // GROUPS, "user": user},
    )
    cursor.execute(
        """
        INSERT INTO workflows_incident (id, date, area, kind, recorded_by_id, organisation_id,
            recorded_at)
        SELECT md5('i' || i)::uuid, step1::date, 'other',
               (ARRAY['shooting', 'explosion', 'serious_assault', 'other'])[1 + floor(r2 * 4)::int],
               %(user)s, %(org)s, step1
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // INCIDENTS, "user": user, "org": org},
    )
    cursor.execute(
        """
        INSERT INTO workflows_callin (id, reference, date, status, cancel_reason, held_at,
            created_by_id, created_at, version)
        SELECT md5('ci' || i)::uuid, 'KALL-B-' || i, step1::date, 'held', '', step1, %(user)s,
               opened, 1
        FROM gen WHERE mod(i, %(step)s) = 0
        """,
        {"step": FULL // GROUPS, "user": user},
    )


def _refresh() -> tuple[float, float]:
    """The timer's job: ``refresh_statistics`` (the whole history), then once more."""
    import io

    from django.core.management import call_command

    times = []
    for _ in range(2):
        start = time.perf_counter()
        call_command("refresh_statistics", stdout=io.StringIO())
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def _renders() -> tuple[float, float, float]:
    from django.core.cache import cache
    from django.test import Client
    from django.utils import timezone

    from casework.models import User

    client = Client()
    client.force_login(User.objects.get(username="bench.statistik"))
    year = str(timezone.localdate().year)

    def render() -> float:
        start = time.perf_counter()
        response = client.get("/statistik/", {"period": year})
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.status_code
        return elapsed

    cache.clear()
    cold = render()
    live = []
    for _ in range(3):
        cache.clear()
        live.append(render())
    warm = statistics.median(render() for _ in range(RENDERS))
    return cold, statistics.median(live), warm
