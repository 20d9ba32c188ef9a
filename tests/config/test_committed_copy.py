"""A module's committed seed put back from a copy is the seed its build committed
(``tests.conftest.committed_seed`` with ``copy_as``; ``tests/demo_seed.py``'s ``committed``).

The seed here is ``seed_demo`` with three persons: rows in both databases (the persons'
data keys in the key store), access events, change records and the audit chain's seals,
as in the demo with cases that ``committed_demo_cases`` copies, at a fraction of its
cost. Three seeds of the same name and settings: a build (copied out), the copy put back,
and a build of its own (no copy) to compare with, its ids and moments aside.
"""

from __future__ import annotations

from collections import Counter

from django.db import connections

from audit import integrity
from audit.models import ChainBlock, ChainLink, PendingEntry
from casework.crypto.records import open_value
from casework.models import Person, User
from casework.selectors.persons import data_key_of
from tests import demo_seed
from tests.config.test_demo_copy import _demo
from tests.conftest import COMMITTED_DB, committed_seed, seed_demo

NAME = "tests/config/test_committed_copy.py: seed_demo with three persons"
SETTINGS = {"DEMO_PERSONS": 3}
ALIASES = ("default", "keystore")


def _rows(alias: str) -> dict[str, list[bytes]]:
    """Every row of every table of ``alias``'s database (the migrations' too), as COPY text,
    sorted: what a byte-for-byte copy must give back."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    tables = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(include_views=False)):
            with cursor.copy(f"COPY (SELECT * FROM {quote(table)}) TO STDOUT") as out:  # noqa: S608
                tables[table] = sorted(b"".join(bytes(chunk) for chunk in out).splitlines())
    return tables


def _sequences(alias: str) -> dict[str, int]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences")
        return dict(cursor.fetchall())


def _persons() -> list[tuple]:
    """The persons with their name, read through their data keys (the key store's rows
    unwrap under the worker's keyring)."""
    return sorted(
        (person.birth_year, open_value(person, "name", data_key_of(person)))
        for person in Person.objects.all()
    )


def _seed() -> dict:
    """The seed as a test sees it, ids and moments aside, and how far the sealing got: a
    commit seals what is queued unless another connection is sealing at that moment
    (``audit.integrity.chain.seal(wait=False)``), so one seed's entries are split between
    the chain and its queue otherwise than another's; their sum is the seed's."""
    with connections["keystore"].cursor() as cursor:
        cursor.execute("SELECT owner_type FROM casework_datakey")
        data_keys = Counter(owner_type for (owner_type,) in cursor.fetchall())
    seed = _demo()
    rows = dict(seed["rows"])
    rows["chained or queued"] = (
        rows.pop("audit_chainlink") + rows.pop("audit_chainblock") + rows.pop("audit_pendingentry")
    )
    del seed["queued for the chain"]
    chained_or_queued = Counter(ChainLink.objects.values_list("source", flat=True))
    for source, ids in ChainBlock.objects.values_list("source", "entry_ids"):
        chained_or_queued[source] += len(ids)
    chained_or_queued.update(PendingEntry.objects.values_list("source", flat=True))
    return {
        **seed,
        "rows": rows,
        "chained or queued": chained_or_queued,
        "persons": _persons(),
        "data keys": data_keys,
    }


# Committing (no wrapping transaction: the seeds commit, as a module's fixture's do).
@COMMITTED_DB
def test_a_committed_seed_put_back_is_the_seed_its_build_committed(django_db_blocker):
    demo_seed.forget_committed(NAME)
    counts = dict(demo_seed.committed_counts)

    # The worker's first: built, committed, copied out.
    first = committed_seed(django_db_blocker, seed_demo, copy_as=NAME, **SETTINGS)
    with first, django_db_blocker.unblock():
        built = {alias: _rows(alias) for alias in ALIASES}
        sequences = {alias: _sequences(alias) for alias in ALIASES}
        built_seed = _seed()
    assert demo_seed.committed_counts["seeded"] == counts["seeded"] + 1

    # The next: the copy put back, committed; the same rows in every table of both
    # databases, the chain whole, the data keys unwrapping, new rows past the copied ids.
    copied = committed_seed(django_db_blocker, seed_demo, copy_as=NAME, **SETTINGS)
    with copied, django_db_blocker.unblock():
        assert {alias: _rows(alias) for alias in ALIASES} == built
        for alias in ALIASES:
            after = _sequences(alias)
            assert all(after[name] >= value for name, value in sequences[alias].items())
        copied_seed = _seed()
        result = integrity.verify(directory=None)
        assert result.ok, result.finding
        assert result.entries > 0
        made = User.objects.create(username="efter.kopian")
        assert made.pk > max(User.objects.exclude(pk=made.pk).values_list("pk", flat=True))
    assert demo_seed.committed_counts["copied"] == counts["copied"] + 1
    assert copied_seed == built_seed
    assert len(copied_seed["persons"]) == 3
    assert copied_seed["data keys"] and copied_seed["access events"]

    # A build of its own (no copy) seeds what the copy gave, its ids and moments aside.
    own = committed_seed(django_db_blocker, seed_demo, **SETTINGS)
    with own, django_db_blocker.unblock():
        assert _seed() == copied_seed
    assert demo_seed.committed_counts["seeded"] == counts["seeded"] + 1

    # And each ends with the databases as the migrations left them.
    with django_db_blocker.unblock():
        assert not Person.objects.exists()
        assert not User.objects.exists()
