"""A national-size data set: 1,000,000 persons, 300,000 cases, 50,000,000 access-log events.

``make bench-national`` (``python -m benchmarks bench_national [--scale S]``; S = 1 is
the national size, ``--scale 0.01`` a hundredth of it for development).

The same operations are measured twice in one run, side by side: first on the small
data set (the demo data plus a thousandth of the national volumes: 1,000 persons, 300
cases, 50,000 events), then after the rest of the national data set has been loaded
into the same database; each figure is reported for both with the ratio (target: within
2x). The operations: the case page and the task inbox (a social worker), a personnummer
lookup (``selectors.find_person``, with its access-log event), the auditor's search by
person and by user over a month, the log review of a month, and the statistics
dashboard (its first render after the timer's summary refresh, and a render after it).
Every figure is the median of several runs: wall time, CPU time of this process
(``time.process_time``) and database round trips (statements sent, all aliases).

Loading (set-based):

* persons: ``COPY`` (psycopg ``cursor.copy``) of rows with real ciphertext, envelope
  encryption as the app does it: a data key of each person wrapped under the keyring's
  KEK into the key store (``COPY`` too), name, personnummer and date of birth sealed
  under it (AES-256-GCM, associated data = table | column | row id), and the blind
  index of the personnummer under the keyring's index key, so that the lookup finds
  them; valid synthetic personnummer (born 1930-2019) that belong to no one;
* cases: ``INSERT … SELECT generate_series`` across the four programmes (SIG 70 %,
  SSPF 18 %, the defector programme 12 %, and GVI groups, one per 100 cases), with the
  stage moments the statistics read, spread over ten years; opened before keys per case
  (``keyed_at`` empty: no sealed value of their own); each open SIG case has a viewflow
  process with an assigned task in one of the bench users' inboxes;
* access-log events: ``COPY`` into ``AccessEvent._meta.db_table`` with an explicit
  column list (so a partitioned table takes them as a plain one), spread evenly over the
  last 24 months, by 5,000 bench users about the loaded persons. They are loaded as
  history from before the chain: the enqueue trigger is off for the load
  (``session_replication_role = replica``), so they are neither queued for sealing nor
  verified (verifying 50 M rows is not part of this bench; ``bench_audit`` measures it).
  Their ids follow their moments (as appends' do), so the two loads interleave in time.

After each load, before measuring, what the timers and the sealer do after an import: the
statistics summary is refreshed (rebuilt after the national load), the queued change
history of the loaded persons is sealed (the sealer thread would otherwise seal it in this
process while the first operations are measured: 100,000 change records at SCALE=0.1,
which made every figure after the load cost several times the CPU, the personnummer
lookup 2 → 14 ms), and the log review's volume summary is counted (``manage.py audit
summarise``, ``--rebuild`` after the national load). The seal and the summaries are
reported as setup.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import connections

PERSONS, CASES, EVENTS = 1_000_000, 300_000, 50_000_000
SMALL = 0.001
BENCH_USERS = 5_000
RUNS = 7
EVENT_DAYS = 730
PERSON_ID = "5a0e0000-0000-4000-8000-{:012x}"  # person i: a fixed, recognisable id
STATE = "national.json"  # in the --keep directory: the data set's state, the small figures
_PERSON_ID_SQL = "('5a0e0000-0000-4000-8000-' || lpad(to_hex({}), 12, '0'))::uuid"


def run(report, scale: float = 1.0, kept: Path | None = None, reuse: bool = False) -> None:
    """``kept`` (``--keep``): save the data set's state and the small data set's figures
    there (``national.json``), for a later ``reuse`` (``--reuse``) that measures the
    national data set again against the kept databases, without loading anything."""
    if scale <= 0:
        raise ValueError("--scale must be positive")
    if reuse:
        state = json.loads((kept / STATE).read_text())
        data = DataSet.restore(state["data"])
        before = {name: Figure(**figure) for name, figure in state["small"].items()}
        report("national: data set (kept)", data.scale, "x", data.describe())
    else:
        data, before = _load(report, scale, kept)
    after = Measurements(data).all()
    _report(report, before, after)
    report("national: database size", data.database_bytes() / 2**30, "GiB", "")


def _load(report, scale: float, kept: Path | None) -> tuple[DataSet, dict[str, Figure]]:
    """The small data set, measured; then the national one loaded and settled."""
    from django.core.management import call_command

    small = min(SMALL, scale / 10)
    call_command("seed_demo", persons=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    data = DataSet(scale)
    report("national: data set", scale, "x", data.describe())
    timings = data.load_to(small)
    _refresh_statistics()
    _settle()
    before = Measurements(data).all()
    started = time.perf_counter()
    timings = data.load_to(scale)
    for what, seconds in timings.items():
        report(f"national: load {what}", seconds, "s", "(setup)")
    report("national: load, total", time.perf_counter() - started, "s", "(setup)")
    # The load wrote history into months the summary had already counted: as after any
    # import of history, the summary is rebuilt (refresh_statistics --rebuild).
    seconds = _refresh_statistics(rebuild=True)
    report("national: summary rebuild (timer), whole history", seconds, "s", "")
    sealed, volumes = _settle(rebuild=True)
    report("national: seal of the load's change history", sealed, "s", "(setup)")
    report("national: review's volume summary rebuild (timer), whole history", volumes, "s", "")
    if kept is not None:
        state = {"data": data.state(), "small": {k: asdict(v) for k, v in before.items()}}
        (kept / STATE).write_text(json.dumps(state, indent=1))
    return data, before


def _report(report, before: dict[str, Figure], after: dict[str, Figure]) -> None:
    for name, small_figure in before.items():
        large = after[name]
        report(f"national: {name}, small data set", small_figure.wall_ms, "ms", "")
        report(f"national: {name}, national", large.wall_ms, "ms", "")
        report(f"national: {name}, ratio", large.wall_ms / small_figure.wall_ms, "x", "<= 2x")
        # CPU time of this process: what a loaded machine distorts least.
        report(f"national: {name}, CPU, small data set", small_figure.cpu_ms, "ms", "")
        report(f"national: {name}, CPU, national", large.cpu_ms, "ms", "")
        report(
            f"national: {name}, CPU ratio", large.cpu_ms / max(small_figure.cpu_ms, 0.001), "x", ""
        )
        report(f"national: {name}, round trips, small data set", small_figure.round_trips, "", "")
        report(f"national: {name}, round trips, national", large.round_trips, "", "")


def _refresh_statistics(*, rebuild: bool = False) -> float:
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("refresh_statistics", *(["--rebuild"] if rebuild else []), stdout=io.StringIO())
    return time.perf_counter() - start


def _settle(*, rebuild: bool = False) -> tuple[float, float]:
    """After a load, what the timers and the sealer do with an import before the next day's
    work: seal the queued change history of the loaded persons (a seal of 100,000s of
    entries, which the sealer thread would otherwise run while the operations are
    measured, in this process), then count the log review's volume summary (``manage.py
    audit summarise``; ``--rebuild`` after an import of past events). The seconds of each."""
    from django.core.management import call_command

    from audit.services import seal_now

    start = time.perf_counter()
    seal_now()
    sealed = time.perf_counter() - start
    start = time.perf_counter()
    call_command("audit", "summarise", *(["--rebuild"] if rebuild else []), stdout=io.StringIO())
    return sealed, time.perf_counter() - start


# --- Loading ----------------------------------------------------------------------------------


class DataSet:
    """The national data set at ``scale``, loaded in steps (``load_to``), each step adding
    the persons, cases and events from where the last one stopped."""

    def __init__(self, scale: float) -> None:
        from casework.personnummer import with_check_digit  # noqa: F401 - fail early

        self.scale = scale
        self.persons = max(10, int(PERSONS * scale))
        self.cases = max(3, int(CASES * scale))
        self.events = max(100, int(EVENTS * scale))
        self.loaded = {"persons": 0, "cases": 0, "events": 0}
        self.numbers = _synthetic_numbers(self.persons)
        self.now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self.users: list[tuple[int, str]] = []
        self.org_name = ""
        self._event_loads = 0

    def describe(self) -> str:
        return f"{self.persons:,} persons, {self.cases:,} cases, {self.events:,} events".replace(
            ",", " "
        )

    def state(self) -> dict:
        """What ``restore`` needs to measure this data set again (``--keep``/``--reuse``)."""
        return {
            "scale": self.scale,
            "loaded": self.loaded,
            "now": self.now.isoformat(),
            "users": self.users,
            "org_name": self.org_name,
            "event_loads": self._event_loads,
        }

    @classmethod
    def restore(cls, state: dict) -> DataSet:
        data = cls(state["scale"])
        data.loaded = state["loaded"]
        data.now = datetime.datetime.fromisoformat(state["now"])
        data.users = [tuple(user) for user in state["users"]]
        data.org_name = state["org_name"]
        data._event_loads = state["event_loads"]
        return data

    def person_id(self, index: int) -> uuid.UUID:
        return uuid.UUID(PERSON_ID.format(index))

    def load_to(self, fraction: float, *, analyze: bool = True) -> dict[str, float]:
        """Load up to ``fraction`` of the national volumes (never more than ``scale``),
        then ``VACUUM (ANALYZE)`` (not inside a test's transaction: it waits on its locks)."""
        timings = {}
        persons = min(self.persons, max(10, int(PERSONS * fraction)))
        cases = min(self.cases, max(3, int(CASES * fraction)), persons * 3 // 10)
        events = min(self.events, max(100, int(EVENTS * fraction)))
        if not self.users:
            self._users()
        for what, target, load in (
            ("persons", persons, self._persons),
            ("cases", cases, self._cases),
            ("events", events, self._events),
        ):
            start = time.perf_counter()
            if target > self.loaded[what]:
                load(self.loaded[what], target)
                self.loaded[what] = target
            timings[f"{what} ({target:,})".replace(",", " ")] = time.perf_counter() - start
        if analyze:
            # What autovacuum does after a load (PostgreSQL's default; this machine's server
            # runs without it): the statistics, the visibility map (an index-only scan of
            # the persons with protected identity otherwise visits every row's page) and
            # the summaries of the log's BRIN ranges (docs/adr/0037, session 17).
            start = time.perf_counter()
            for alias in ("default", "keystore"):
                with connections[alias].cursor() as cursor:
                    cursor.execute("VACUUM (ANALYZE)")
            timings["vacuum and analyze"] = time.perf_counter() - start
        return timings

    def _users(self) -> None:
        from django.contrib.auth.models import Group

        from casework import roles
        from casework.models import Organisation, User

        org = Organisation.objects.create(
            name="Socialtjänsten (nationell bench)", kind="social_services"
        )
        self.org_name = org.name
        User.objects.bulk_create(
            [User(username=f"bench.n{n:05d}", organisation=org) for n in range(BENCH_USERS)]
        )
        users = User.objects.filter(username__startswith="bench.n").order_by("username")
        group = Group.objects.get(name=roles.SOCIAL_WORKER)
        group.user_set.add(*users)
        self.users = list(users.values_list("id", "username"))

    def _persons(self, first: int, last: int) -> None:
        from casework.crypto import envelope
        from casework.crypto.blind_index import personnummer_index
        from casework.crypto.keystore import PERSON, current_keyring
        from casework.models import DataKey, Person

        keyring = current_keyring()
        now = self.now
        person_columns = [
            "id", "name", "personnummer", "birth_date", "personnummer_index", "birth_year",
            "gender", "area", "protected_identity", "created_at",
        ]  # fmt: skip
        key_columns = ["id", "owner_type", "owner_id", "kek_version", "wrapped_key", "created_at"]
        genders = ["female", "male", "male", "other"]
        areas = ["vivalla_baronbackarna", "varberga_oxhagen", "brickebacken", "other"]
        seal = envelope.seal
        with (
            connections["default"].cursor() as persons_cursor,
            connections["keystore"].cursor() as keys_cursor,
            persons_cursor.cursor.copy(_copy(Person._meta.db_table, person_columns)) as persons,
            keys_cursor.cursor.copy(_copy(DataKey._meta.db_table, key_columns)) as keys,
        ):
            for index in range(first, last):
                number = self.numbers[index]
                person_id = self.person_id(index)
                key_id, key = envelope.new_data_key()
                version, wrapped = envelope.wrap_data_key(
                    keyring, key_id=key_id, owner_type=PERSON, owner_id=person_id, key=key
                )
                dek = envelope.DataKeyMaterial(key_id, key)
                where = {"table": "casework_person", "row_id": person_id}
                born = f"{number[:4]}-{number[4:6]}-{number[6:8]}"
                persons.write_row(
                    (
                        person_id,
                        seal(dek, f"Provperson {index}".encode(), column="name", **where).blob,
                        seal(dek, number.encode(), column="personnummer", **where).blob,
                        seal(dek, born.encode(), column="birth_date", **where).blob,
                        personnummer_index(keyring, number),
                        int(number[:4]),
                        genders[index % 4],
                        areas[index // 4 % 4],
                        2 if index % 97 == 0 else 0,
                        now,
                    )
                )
                keys.write_row((key_id, PERSON, person_id, version, wrapped, now))

    def _cases(self, first: int, last: int) -> None:
        """Cases ``first`` … ``last - 1``: case i is of person i * 10 // 3, opened at a
        moment of the last ten years in the order of i (set-based)."""
        from casework.models import Organisation

        org = Organisation.objects.get(name=self.org_name)
        user = self.users[0][0]
        person = _PERSON_ID_SQL.format("(i * 10 / 3)")
        params = {"first": first, "last": last, "n": self.cases, "org": org.pk, "user": user}
        with connections["default"].cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # no history triggers
            cursor.execute("SELECT setseed(0.2026)")
            cursor.execute(
                """
                CREATE TEMP TABLE gen AS
                SELECT i, opened, r1, r2, r3,
                       CASE WHEN mod(i, 50) < 35 THEN 'sig' WHEN mod(i, 50) < 44 THEN 'sspf'
                            ELSE 'defector' END AS programme,
                       opened + (r1 * 40 + 1) * interval '1 day' AS step1,
                       opened + (r1 * 40 + r2 * 30 + 2) * interval '1 day' AS step2,
                       opened + (r1 * 40 + r2 * 30 + r3 * 60 + 3) * interval '1 day' AS step3,
                       opened + (r1 * 40 + r2 * 30 + r3 * 60 + 4 + r1 * r2 * 400)
                           * interval '1 day' AS step4
                FROM (SELECT i, now() - interval '3650 days' * (1 - i::float8 / %(n)s) AS opened,
                             random() AS r1, random() AS r2, random() AS r3
                      FROM generate_series(%(first)s, %(last)s - 1) AS i) AS g
                """,
                params,
            )
            cursor.execute(
                f"""
                INSERT INTO casework_case (id, reference, programme, opened_at, closed_at,
                    close_reason, close_note, version, owner_organisation_id, person_id,
                    referred_by_id, referring_organisation_id, keyed_at)
                SELECT md5('nc' || i)::uuid, upper(programme) || '-N-' || i, programme, opened,
                       CASE WHEN step4 < now() THEN step4 END,
                       CASE WHEN step4 >= now() THEN ''
                            WHEN programme = 'sig' THEN (ARRAY['goals_met', 'moved',
                                'ended_by_person', 'age_limit'])[1 + floor(r3 * 4)::int]
                            ELSE (ARRAY['completed', 'moved', 'left_voluntarily',
                                'goals_met'])[1 + floor(r3 * 4)::int] END,
                       NULL, 1, %(org)s, {person}, %(user)s, %(org)s, NULL
                FROM gen
                """,  # noqa: S608 - {person} is a constant expression; values are parameters
                params,
            )
            cursor.execute(
                """
                INSERT INTO workflows_sigcase (case_ptr_id, status, consented_at,
                    consent_refused_at, decided_at, started_at, plan_approved_at)
                SELECT md5('nc' || i)::uuid,
                       CASE WHEN step4 < now() THEN 'closed' ELSE 'active' END,
                       CASE WHEN r1 >= 0.15 THEN step1 END, CASE WHEN r1 < 0.15 THEN step1 END,
                       CASE WHEN r1 >= 0.15 THEN step2 END, CASE WHEN r1 >= 0.25 THEN step2 END,
                       CASE WHEN r1 >= 0.25 THEN step3 END
                FROM gen WHERE programme = 'sig'
                """
            )
            self._tasks(cursor, params)
            cursor.execute(
                """
                INSERT INTO workflows_sspfcase (case_ptr_id, status, consented_at,
                    consent_refused_at, plan_adopted_at)
                SELECT md5('nc' || i)::uuid, 'plan_active',
                       CASE WHEN r1 >= 0.15 THEN step1 END, CASE WHEN r1 < 0.15 THEN step1 END,
                       CASE WHEN r1 >= 0.25 THEN step2 END
                FROM gen WHERE programme = 'sspf'
                """
            )
            cursor.execute(
                """
                INSERT INTO workflows_defectorcase (case_ptr_id, status, referral_source,
                    handed_over_to, consented_at, consent_refused_at, assessed_at,
                    assessed_level, routed_at, routed_to, started_at)
                SELECT md5('nc' || i)::uuid, 'active', 'police', '',
                       CASE WHEN r1 >= 0.15 THEN step1 END, CASE WHEN r1 < 0.15 THEN step1 END,
                       CASE WHEN r1 >= 0.15 THEN step2 END,
                       CASE WHEN r1 >= 0.15 THEN (ARRAY['low', 'elevated', 'high'])
                            [1 + floor(r2 * 3)::int] ELSE '' END,
                       step2, CASE WHEN r1 < 0.15 THEN 'not_eligible' WHEN r2 < 0.34 THEN 'local'
                                   ELSE 'regional' END,
                       CASE WHEN r1 >= 0.15 AND r2 < 0.34 THEN step3 END
                FROM gen WHERE programme = 'defector'
                """
            )
            cursor.execute(
                """
                INSERT INTO workflows_group (id, reference, area, size_band, status,
                    created_by_id, created_at, version)
                SELECT md5('ng' || i)::uuid, 'GVI-N-' || i, 'other', '6-15', 'monitored',
                       %(user)s, opened, 1
                FROM gen WHERE mod(i, 100) = 0
                """,
                params,
            )
            cursor.execute("DROP TABLE gen")
            cursor.execute("SET session_replication_role = origin")

    def _tasks(self, cursor, params: dict) -> None:
        """A viewflow process for each open SIG case of the step, with one assigned task
        (the shape of a demo SIG task) in the inbox of one of the bench users: the task
        table grows as the cases do, while a social worker's own inbox stays small."""
        cursor.execute(
            """
            SELECT p.flow_class, t.flow_task, t.flow_task_type, t.owner_permission
            FROM viewflow_task t JOIN viewflow_process p ON p.id = t.process_id
            JOIN workflows_sigprocess s ON s.process_ptr_id = p.id
            WHERE t.flow_task_type = 'HUMAN' ORDER BY t.status <> 'ASSIGNED', t.id LIMIT 1
            """
        )
        # Without a demo SIG case (DEMO_SIG_CASES off): the screening task's shape.
        flow_class, flow_task, flow_task_type, permission = cursor.fetchone() or (
            "workflows/sig.flow.SigFlow",
            "workflows/sig.flow.SigFlow.screen",
            "HUMAN",
            "casework.coordinate_cases",
        )
        values = {
            **params,
            "flow_class": flow_class,
            "flow_task": flow_task,
            "flow_task_type": flow_task_type,
            "permission": permission,
            "users": [pk for pk, _name in self.users],
            "base": 1_000_000_000,
        }
        open_sig = "FROM gen WHERE programme = 'sig' AND step4 >= now()"
        cursor.execute(
            "INSERT INTO viewflow_process (id, flow_class, status, created, data)"
            f" SELECT %(base)s + i, %(flow_class)s, 'NEW', opened, '{{}}' {open_sig}",
            values,
        )
        cursor.execute(
            "INSERT INTO workflows_sigprocess (process_ptr_id, case_id)"
            f" SELECT %(base)s + i, md5('nc' || i)::uuid {open_sig}",
            values,
        )
        cursor.execute(
            "INSERT INTO viewflow_task (id, flow_task, flow_task_type, status, created,"
            " assigned, token, owner_id, owner_permission, process_id, data)"
            " SELECT %(base)s + i, %(flow_task)s, %(flow_task_type)s, 'ASSIGNED', step3, step3,"
            " 'start',"
            " (%(users)s::bigint[])[1 + mod(i::bigint * 7919, cardinality(%(users)s::bigint[]))],"
            f" %(permission)s, %(base)s + i, '{{}}' {open_sig}",
            values,
        )

    def _events(self, first: int, last: int) -> None:
        """Events ``first`` … ``last - 1`` by ``COPY``, evenly over the last 24 months,
        each in its month's partition (ADR 0031: created first, as before any bulk load of
        past events; a month without one would land in the DEFAULT partition).

        Their ids follow their moments, as the log's own appends do: an event's id is its
        microsecond since the first day, times four, plus the number of this load (so that
        the small data set's events and the national ones, loaded one after the other over
        the same months, interleave in one time order instead of being two id ranges per
        month); the sequence then continues after the highest."""
        from audit.integrity.partitions import create_partitions
        from audit.models import AccessEvent

        create_partitions(since=(self.now - datetime.timedelta(days=EVENT_DAYS)).date())

        columns = [
            "id", "occurred_at", "user_id", "username", "organisation_name", "roles", "action",
            "object_type", "object_id", "person_id", "fields", "purpose", "legal_basis",
            "outcome", "request_id", "client_address", "details",
        ]  # fmt: skip
        rng = random.Random(first)
        users = [(str(pk), name) for pk, name in self.users]
        org = self.org_name.replace("\\", "\\\\")
        loaded_persons = self.loaded["persons"]
        span = EVENT_DAYS * 86400
        start = self.now.timestamp() - span
        step = span / (last - first)
        fromtimestamp, utc = datetime.datetime.fromtimestamp, datetime.UTC
        actions = ["consult"] * 16 + ["change", "change", "transition", "login"]
        phase = 1 + self._event_loads % 4
        self._event_loads += 1
        with connections["default"].cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # not queued for sealing
            with cursor.cursor.copy(_copy(AccessEvent._meta.db_table, columns)) as copy:
                lines = []
                for n in range(last - first):
                    at = fromtimestamp(start + n * step, utc).isoformat()
                    at = f"{round(n * step * 1e6) * 4 + phase}\t{at}"
                    user_id, username = users[int(rng.random() * len(users))]
                    person = PERSON_ID.format(int(rng.random() * loaded_persons))
                    action = actions[n % 20]
                    if action == "login":
                        lines.append(
                            f"{at}\t{user_id}\t{username}\t{org}\tsocialsekreterare\tlogin"
                            "\t\t\t\\N\t[]\t\t\tallowed\t\t\\N\t{}\n"
                        )
                    else:
                        outcome = "denied" if n % 211 == 0 else "allowed"
                        lines.append(
                            f"{at}\t{user_id}\t{username}\t{org}\tsocialsekreterare\t{action}"
                            f'\tcasework.person\t{person}\t{person}\t["name"]\thandläggning'
                            f"\t\t{outcome}\t\t\\N\t{{}}\n"
                        )
                    if len(lines) == 20_000:
                        copy.write("".join(lines))
                        lines = []
                if lines:
                    copy.write("".join(lines))
            cursor.execute("SET session_replication_role = origin")
            table = AccessEvent._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - the model's
                f" (SELECT max(id) FROM {table}))"
            )

    def database_bytes(self) -> int:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0]


def _copy(table: str, columns: list[str]):
    from psycopg import sql

    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _synthetic_numbers(count: int) -> list[str]:
    """``count`` distinct valid 12-digit personnummer, born 1930-2019, spread over the days
    (a day's serial numbers counted up from 000)."""
    from casework.personnummer import with_check_digit

    first = datetime.date(1930, 1, 1)
    days = (datetime.date(2019, 12, 31) - first).days
    per_day = -(-count // days)
    numbers = []
    for serial in range(per_day):
        for offset in range(days):
            born = first + datetime.timedelta(days=(offset * 7919) % days)
            numbers.append(f"{born.year // 100}" + with_check_digit(f"{born:%y%m%d}{serial:03d}"))
            if len(numbers) == count:
                return numbers
    return numbers


# --- Measuring --------------------------------------------------------------------------------


@dataclass
class Figure:
    wall_ms: float
    cpu_ms: float
    round_trips: float


class _RoundTrips:
    """Counts the statements sent on every database alias."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _figure(func: Callable[[], object], runs: int = RUNS, *, warm: bool = True) -> Figure:
    walls, cpus, trips = [], [], []
    if warm:
        func()  # warm: connections, caches of compiled templates
    for _ in range(runs):
        counter = _RoundTrips()
        wrappers = [c.execute_wrapper(counter) for c in connections.all()]
        for wrapper in wrappers:
            wrapper.__enter__()
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            func()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
        trips.append(counter.count)
    return Figure(
        statistics.median(walls) * 1000, statistics.median(cpus) * 1000, statistics.median(trips)
    )


@dataclass
class Operation:
    """One measured operation: ``func`` run ``runs`` times (after one unmeasured run when
    ``warm``)."""

    func: Callable[[], object]
    runs: int = RUNS
    warm: bool = True


class Measurements:
    def __init__(self, data: DataSet) -> None:
        self.data = data

    def all(self) -> dict[str, Figure]:
        return {
            name: _figure(operation.func, operation.runs, warm=operation.warm)
            for name, operation in self.operations().items()
        }

    def operations(self) -> dict[str, Operation]:
        """The operations in the order they are measured (``all``; ``benchmarks.explain_national``
        runs them once each to show their statements' plans)."""
        from django.core.cache import cache
        from django.test import Client

        from casework import selectors
        from casework.models import User

        social = User.objects.get(username="anna.social")
        auditor = User.objects.get(username="greta.granskare")
        steering = User.objects.get(username="stig.styrgrupp")
        case_id = _a_case_of(social)
        operations = {}

        client = Client()
        client.force_login(social)
        operations["case page"] = Operation(lambda: _ok(client.get(f"/arenden/fall/{case_id}/")))
        operations["task inbox"] = Operation(lambda: _ok(client.get("/arenden/inbox/")))

        rng = random.Random(20)
        loaded = self.data.loaded["persons"]
        present = [self.data.numbers[rng.randrange(loaded)] for _ in range(RUNS + 1)]
        wanted = iter(present * 2)

        def lookup():
            number = next(wanted)
            found = selectors.find_person(
                user=social, purpose="benchmark", personnummer=f"{number[2:8]}-{number[8:]}"
            )
            assert found is not None

        operations["personnummer lookup"] = Operation(lookup)

        audit = Client()
        audit.force_login(auditor)
        month_end = self.data.now.date().replace(day=1)
        month_start = (month_end - datetime.timedelta(days=1)).replace(day=1)
        period = {"date_from": month_start.isoformat(), "date_to": month_end.isoformat()}
        person = PERSON_ID.format(rng.randrange(loaded))
        username = self.data.users[rng.randrange(len(self.data.users))][1]
        operations["auditor search by person, a month"] = Operation(
            lambda: _ok(audit.get("/granskning/", {**period, "person": person}))
        )
        operations["auditor search by user, a month"] = Operation(
            lambda: _ok(audit.get("/granskning/", {**period, "username": username}))
        )
        # The first review of the month (cold: the month's pages not yet read since the
        # load), then the median of three after it, as the other operations.
        review = lambda: _ok(audit.get("/granskning/loggkontroll/", period))  # noqa: E731
        operations["log review, a month, first run"] = Operation(review, runs=1, warm=False)
        operations["log review, a month"] = Operation(review, runs=3, warm=False)

        dashboard = Client()
        dashboard.force_login(steering)
        year = {"period": str(self.data.now.year)}

        def first_render():
            cache.clear()
            _ok(dashboard.get("/statistik/", year))

        operations["statistics, first render"] = Operation(first_render, runs=3)
        operations["statistics dashboard"] = Operation(
            lambda: _ok(dashboard.get("/statistik/", year))
        )
        return operations


def _a_case_of(user) -> str:
    """An open demo SIG case on ``user``'s team (the page a social worker opens)."""
    from casework.models import Case

    case = (
        Case.objects.filter(memberships__user=user, programme="sig", closed_at__isnull=True)
        .order_by("opened_at")
        .first()
    )
    assert case is not None, "seed_demo made no SIG case for the social worker"
    return str(case.pk)


def _ok(response) -> None:
    assert response.status_code == 200, (response.status_code, response.get("Location"))
