"""The national bench's data set (``bench_national``): what it loads and how, set-based.

Persons by ``COPY`` with real envelope ciphertext and blind index, cases by ``INSERT …
SELECT generate_series`` across the programmes, access-log events by ``COPY`` into the
partitioned log (``bench_national``'s docstring has the volumes and the details).
"""

from __future__ import annotations

import datetime
import random
import time
import uuid

from django.db import connections

PERSONS, CASES, EVENTS = 1_000_000, 300_000, 50_000_000
BENCH_USERS = 5_000
EVENT_DAYS = 730
PERSON_ID = "5a0e0000-0000-4000-8000-{:012x}"  # person i: a fixed, recognisable id
_PERSON_ID_SQL = "('5a0e0000-0000-4000-8000-' || lpad(to_hex({}), 12, '0'))::uuid"


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
