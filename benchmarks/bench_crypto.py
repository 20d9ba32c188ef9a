"""Field encryption: per-field cost, personnummer lookup among 1 M persons, KEK rotation.

* seal + open of one field through ``casework.crypto.records`` (the path the
  services and selectors take) against raw ``AESGCM`` encrypt + decrypt of the
  same value with the same key, measured alternately in the same run;
* rotation of 100 000 data keys (``services.rotate_data_keys``);
* ``selectors.find_person`` in a table of 1 000 000 persons, each with its own
  data key in the key store, bulk-loaded with ``COPY``; the access-log event
  of every lookup included.
"""

from __future__ import annotations

import datetime
import os
import random
import statistics
import time
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from benchmarks.__main__ import median_of

FIELD_OPS = 20_000
ROTATION_KEYS = 100_000
LOOKUP_PERSONS = 1_000_000
LOOKUPS = 200
RUNS = 5


def run(report) -> None:
    _field_overhead(report)
    _rotation(report)
    _lookup(report)


# --- Per field ----------------------------------------------------------------------------


def _field_overhead(report) -> None:
    from casework.crypto import envelope
    from casework.crypto.records import open_value, seal_value
    from casework.models import Person

    value = "Zelmira Kvastbinder"
    key_id, key = envelope.new_data_key()
    dek = envelope.DataKeyMaterial(key_id, key)
    person = Person(id=uuid.uuid4())
    raw = AESGCM(key)
    data = value.encode()
    aad = b"casework_person|name|" + str(person.pk).encode()

    def ours():
        for _ in range(FIELD_OPS):
            seal_value(person, "name", value, dek)
            assert open_value(person, "name", dek) == value

    def baseline():
        for _ in range(FIELD_OPS):
            nonce = os.urandom(12)
            ciphertext = raw.encrypt(nonce, data, aad)
            assert raw.decrypt(nonce, ciphertext, aad).decode() == value

    ours_times, raw_times = [], []
    for _ in range(RUNS):  # alternate, so both see the same machine state
        ours_times.append(median_of(ours, runs=1))
        raw_times.append(median_of(baseline, runs=1))
    ours_us = statistics.median(ours_times) / FIELD_OPS * 1e6
    raw_us = statistics.median(raw_times) / FIELD_OPS * 1e6
    report("crypto: seal+open one field (records)", ours_us, "µs", "")
    report("crypto: raw AESGCM encrypt+decrypt", raw_us, "µs", "(baseline)")
    report("crypto: field overhead vs raw AESGCM", ours_us / raw_us, "x", "<= 3x")


# --- Rotation -------------------------------------------------------------------------------


def _copy_rows(alias: str, table: str, columns: list[str], rows) -> None:
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connections[alias].cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _analyze(alias: str, table: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def _data_key_rows(count: int, keyring, owner_type: str, now):
    from casework.crypto import envelope

    for _ in range(count):
        key_id, key = envelope.new_data_key()
        owner_id = uuid.uuid4()
        version, wrapped = envelope.wrap_data_key(
            keyring, key_id=key_id, owner_type=owner_type, owner_id=owner_id, key=key
        )
        yield (key_id, owner_type, owner_id, version, wrapped, now)


def _rotation(report) -> None:
    from casework import services
    from casework.crypto.keystore import PERSON, current_keyring
    from casework.models import DataKey

    columns = ["id", "owner_type", "owner_id", "kek_version", "wrapped_key", "created_at"]
    _copy_rows(
        "keystore",
        DataKey._meta.db_table,
        columns,
        _data_key_rows(ROTATION_KEYS, current_keyring(), PERSON, timezone.now()),
    )
    _analyze("keystore", DataKey._meta.db_table)
    rotate = lambda: services.rotate_data_keys(purpose="benchmark", batch_size=1000)  # noqa: E731
    seconds = median_of(rotate, runs=3)
    report(f"crypto: rotate {ROTATION_KEYS:,} data keys".replace(",", " "), seconds, "s", "< 60 s")
    report(
        "crypto: rotation throughput", ROTATION_KEYS / seconds, "keys/s", f"{os.cpu_count()} cores"
    )
    with connections["keystore"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {DataKey._meta.db_table}")


# --- Lookup ---------------------------------------------------------------------------------


def _synthetic_numbers(count: int) -> list[str]:
    """``count`` distinct valid 12-digit numbers, birth dates 1930-2019 (stdnum check digits)."""
    from casework.personnummer import with_check_digit

    numbers = []
    first = datetime.date(1930, 1, 1)
    days = (datetime.date(2019, 12, 31) - first).days
    per_day = -(-count // days)
    step = 1000 // per_day
    for offset in range(days):
        born = first + datetime.timedelta(days=offset)
        for serial in range(0, per_day * step, step):
            numbers.append(f"{born.year // 100}" + with_check_digit(f"{born:%y%m%d}{serial:03d}"))
            if len(numbers) == count:
                return numbers
    return numbers


def _person_rows(numbers, keyring, now):
    """Person rows and their data-key rows: real envelope encryption, one data key each."""
    from casework.crypto import envelope
    from casework.crypto.blind_index import personnummer_index
    from casework.crypto.keystore import PERSON

    for number in numbers:
        person_id = uuid.uuid4()
        key_id, key = envelope.new_data_key()
        version, wrapped = envelope.wrap_data_key(
            keyring, key_id=key_id, owner_type=PERSON, owner_id=person_id, key=key
        )
        dek = envelope.DataKeyMaterial(key_id, key)
        where = {"table": "casework_person", "row_id": person_id}
        sealed_number = envelope.seal(dek, number.encode(), column="personnummer", **where)
        sealed_name = envelope.seal(dek, b"Benchmark Provsson", column="name", **where)
        person = (
            person_id,
            sealed_name.blob,
            sealed_number.blob,
            personnummer_index(keyring, number),
            int(number[:4]),
            "unknown",
            "other",
            0,
            now,
        )
        yield person, (key_id, PERSON, person_id, version, wrapped, now)


def _lookup(report) -> None:
    from audit.models import AccessEvent
    from casework import selectors
    from casework.crypto.keystore import current_keyring
    from casework.models import DataKey, Person, User
    from casework.personnummer import with_check_digit

    call_command("seed_demo", persons=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.get(username="anna.social")
    numbers = _synthetic_numbers(LOOKUP_PERSONS)
    keyring, now = current_keyring(), timezone.now()

    started = time.perf_counter()
    person_columns = [
        "id",
        "name",
        "personnummer",
        "personnummer_index",
        "birth_year",
        "gender",
        "area",
        "protected_identity",
        "created_at",
    ]
    key_columns = ["id", "owner_type", "owner_id", "kek_version", "wrapped_key", "created_at"]
    person_table, key_table = Person._meta.db_table, DataKey._meta.db_table
    from psycopg import sql

    def copy_statement(table, columns):
        return sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    with (
        connections["default"].cursor() as persons_cursor,
        connections["keystore"].cursor() as keys_cursor,
        persons_cursor.cursor.copy(copy_statement(person_table, person_columns)) as persons,
        keys_cursor.cursor.copy(copy_statement(key_table, key_columns)) as keys,
    ):
        for person, data_key in _person_rows(numbers, keyring, now):
            persons.write_row(person)
            keys.write_row(data_key)
    _analyze("default", person_table)
    _analyze("keystore", key_table)
    load_seconds = time.perf_counter() - started
    report(
        f"crypto: bulk-load {LOOKUP_PERSONS:,} persons".replace(",", " "),
        load_seconds,
        "s",
        "(setup)",
    )

    rng = random.Random(3)
    present = [f"{n[2:8]}-{n[8:]}" for n in rng.sample(numbers, LOOKUPS)]
    # Born in 2021: outside the loaded range (1930-2019), so certainly absent.
    absent = [
        "20" + with_check_digit(f"21{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{n:03d}")
        for n in range(LOOKUPS // 4)
    ]

    def timed(numbers_to_find, expect_found):
        times = []
        for number in numbers_to_find:
            start = time.perf_counter()
            person = selectors.find_person(user=user, purpose="benchmark", personnummer=number)
            times.append(time.perf_counter() - start)
            assert (person is not None) == expect_found
        return times

    found_times, missing_times = [], []
    for _ in range(RUNS):
        found_times.append(statistics.median(timed(present, True)))
        missing_times.append(statistics.median(timed(absent, False)))
    label = f"{LOOKUP_PERSONS:,}".replace(",", " ")
    report(
        f"crypto: find_person among {label} (found)",
        statistics.median(found_times) * 1000,
        "ms",
        "< 5 ms",
    )
    report(
        f"crypto: find_person among {label} (absent)",
        statistics.median(missing_times) * 1000,
        "ms",
        "< 5 ms",
    )
    candidates = [
        d["candidates"]
        for d in AccessEvent.objects.filter(
            action="consult", details__lookup="personnummer"
        ).values_list("details", flat=True)
    ]
    false_candidates = statistics.mean(c - 1 if c else 0 for c in candidates[:LOOKUPS])
    report(
        "crypto: false candidates per lookup (found)",
        false_candidates,
        "rows",
        f"~{LOOKUP_PERSONS / 2**22:.2f} expected (22-bit index)",
    )
