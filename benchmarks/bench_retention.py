"""Retention: ``cull`` of 100,000 due cases (target < 60 s).

Set-up (reported apart): 100,000 persons of a social-services organisation, each with a
data key in the key store and a sealed date of birth (the research exception decrypts
it; no one is born on the 5th, 15th or 25th, so every case is due), and one closed SIG
case each with a data key of its own and two timeline entries, last entry in 2018 — all
written set-based (COPY, ``generate_series``), the audit-history triggers off for the
bulk load. The timed run is the service the daily command calls
(``casework.services.retention.cull``): find the due cases (the last-entry query over the
timeline), decrypt the dates of birth, destroy 100,000 case keys, mark the cases and
write 100,000 ``cull`` events, and erase the 100,000 persons left with nothing — two
batches at a time on their own connections (``BENCH_WORKERS``, ``cull --workers``).
Besides the wall time it reports CPU per case (this process, the database sessions) and
round trips (``benchmarks.measure``): the machine is shared.
"""

from __future__ import annotations

import datetime
import os
import random
import time
import uuid

from django.db import connection, connections
from django.utils import timezone

from benchmarks.bench_crypto import _analyze, _copy_rows
from benchmarks.measure import Measured

CASES = int(os.environ.get("BENCH_CULL_CASES", "100000"))
# Batches at a time, each on its own connection (``cull --workers``): two cores.
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PERSON_COLUMNS = [
    "id",
    "birth_year",
    "gender",
    "area",
    "protected_identity",
    "created_at",
    "birth_date",
]


def run(report) -> None:
    setup = _build()
    report("retention: build the due cases (COPY)", setup, "s", "(setup)")
    from casework.services.retention import cull

    with Measured() as measured:
        result = cull(today=datetime.date(2025, 1, 1), workers=WORKERS)
    seconds = measured.wall
    assert len(result.culled) == CASES, len(result.culled)
    assert result.persons_erased == CASES, result.persons_erased
    label = f"{CASES:,}".replace(",", " ")
    report(f"retention: cull {label} due cases", seconds, "s", "< 60 s")
    report("retention: cull throughput", CASES / seconds, "cases/s", "")
    for phase, spent in result.timings.items():
        report(f"retention: cull, {phase}", spent, "s", "(part)")
    batches = -(-CASES // 2000)
    measured.report(report, "retention: cull", CASES, "case", batches=batches)


def _key_rows(keyring, owner_type: str, owner_ids, now, keys: dict):
    from casework.crypto import envelope

    for owner_id in owner_ids:
        key_id, key = envelope.new_data_key()
        version, wrapped = envelope.wrap_data_key(
            keyring, key_id=key_id, owner_type=owner_type, owner_id=owner_id, key=key
        )
        keys[owner_id] = envelope.DataKeyMaterial(key_id, key)
        yield (key_id, owner_type, owner_id, version, wrapped, now)


def _person_rows(person_ids, keys: dict, now):
    from casework.crypto.records import seal_value
    from casework.models import Person

    rng = random.Random(2018)
    days = [d for d in range(1, 29) if d not in (5, 15, 25)]
    for person_id in person_ids:
        born = datetime.date(rng.randint(1995, 2003), rng.randint(1, 12), rng.choice(days))
        person = Person(id=person_id)
        seal_value(person, "birth_date", born, keys[person_id])
        yield (person_id, born.year, "male", "other", 0, now, person.birth_date.blob)


def _build() -> float:
    from casework.crypto.keystore import CASE, PERSON, current_keyring
    from casework.models import Case, CaseEvent, DataKey, Organisation, Person, User

    org = Organisation.objects.create(
        name="Socialtjänsten (gallring, bench)", kind="social_services"
    )
    user = User.objects.create(username="bench.gallring", organisation=org)
    start = time.perf_counter()
    now = timezone.now()
    keyring = current_keyring()
    person_ids = [uuid.uuid4() for _ in range(CASES)]
    case_ids = [uuid.uuid4() for _ in range(CASES)]
    key_columns = ["id", "owner_type", "owner_id", "kek_version", "wrapped_key", "created_at"]
    person_keys: dict = {}
    _copy_rows(
        "keystore",
        DataKey._meta.db_table,
        key_columns,
        _key_rows(keyring, PERSON, person_ids, now, person_keys),
    )
    _copy_rows(
        "keystore", DataKey._meta.db_table, key_columns, _key_rows(keyring, CASE, case_ids, now, {})
    )
    _analyze("keystore", DataKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        _copy_rows(
            "default",
            Person._meta.db_table,
            PERSON_COLUMNS,
            _person_rows(person_ids, person_keys, now),
        )
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_cull (i int, person_id uuid, case_id uuid)")
        _copy_rows(
            "default",
            "bench_cull",
            ["i", "person_id", "case_id"],
            ((i, p, c) for i, (p, c) in enumerate(zip(person_ids, case_ids, strict=True))),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Case._meta.db_table} (id, reference, programme, opened_at,
                    closed_at, close_reason, version, owner_organisation_id, person_id,
                    referred_by_id, referring_organisation_id, keyed_at)
                SELECT case_id, 'SIG-G-' || i, 'sig',
                       timestamptz '2017-01-01' + mod(i, 300) * interval '1 day',
                       timestamptz '2018-01-01' + mod(i, 300) * interval '1 day',
                       'goals_met', 1, %(org)s, person_id, %(user)s, %(org)s,
                       timestamptz '2017-01-01'
                FROM bench_cull
                """,  # noqa: S608 - fixed table names
                {"org": org.pk, "user": user.pk},
            )
            cursor.execute(
                f"""
                INSERT INTO {CaseEvent._meta.db_table} (id, case_id, at, kind, transition,
                    from_state, to_state)
                SELECT gen_random_uuid(), case_id,
                       timestamptz '2017-06-01' + mod(i, 300) * interval '1 day'
                           + e * interval '1 hour',
                       'transition', '', '', ''
                FROM bench_cull, generate_series(1, 2) AS e
                """  # noqa: S608 - fixed table names
            )
            cursor.execute("DROP TABLE bench_cull")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = origin")
    for model in (Person, Case, CaseEvent):
        _analyze("default", model._meta.db_table)
    connections["keystore"].close()
    return time.perf_counter() - start
