"""The ``demo`` fixture's copied seed is the seed ``seed_demo`` makes (tests/demo_seed.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from audit.models import AccessEvent, ChangeRecord, PendingEntry
from casework.models import AccessGeneration, Organisation, User
from tests import demo_seed
from tests.conftest import COMMITTED_DB, DEMO_PASSWORD, DEMO_USERS, migrations_rows, seed_demo


def _row_counts() -> dict[str, int]:
    tables = sorted(connection.introspection.django_table_names(only_existing=True))
    quote = connection.ops.quote_name
    # The chain's blocks (format 3) by the entries they hold: how many blocks a seed's
    # entries make depends on how its seals happened to fall, their entries do not.
    counts = ", ".join(
        "(SELECT coalesce(sum(cardinality(entry_ids)), 0) FROM audit_chainblock)"
        if table == "audit_chainblock"
        else f"(SELECT count(*) FROM {quote(table)})"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


def _demo() -> dict:
    """What the demo is, its ids and moments aside (they differ from one seed to another)."""
    usernames = {str(pk): name for pk, name in User.objects.values_list("pk", "username")}
    return {
        "rows": _row_counts(),
        "organisations": sorted(Organisation.objects.values_list("name", "kind", "is_active")),
        "users": sorted(
            (
                user.username,
                user.first_name,
                user.last_name,
                user.email,
                user.organisation.name,
                user.is_staff,
                user.is_superuser,
                user.is_active,
                tuple(user.groups.values_list("name", flat=True)),
                user.password.split("$")[0],
                user.check_password(DEMO_PASSWORD),
            )
            for user in User.objects.select_related("organisation")
        ),
        "access events": Counter(
            (
                event.action,
                event.outcome,
                event.object_type,
                usernames.get(event.object_id),
                event.details.get("account"),
                tuple(sorted(event.details)),
                tuple(event.details.get("roles_added", ())),
            )
            for event in AccessEvent.objects.all()
        ),
        "change records": Counter(
            (record.table_name, record.operation, tuple(sorted(record.changed_fields)))
            for record in ChangeRecord.objects.all()
        ),
        "queued for the chain": Counter(PendingEntry.objects.values_list("source", flat=True)),
        "access generation": list(AccessGeneration.objects.values_list("value", flat=True)),
        "roles": sorted(Group.objects.values_list("name", flat=True)),
    }


@pytest.mark.django_db
def test_the_copied_demo_is_the_demo_seed_demo_makes(settings):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    copy = demo_seed.copy_of_seed(seed_demo, migrations_rows=migrations_rows)
    before = _row_counts()
    with transaction.atomic():
        seed_demo()
        seeded = _demo()
        transaction.set_rollback(True)
    assert _row_counts() == before
    with transaction.atomic():
        demo_seed.put_back(copy)
        copied = _demo()
        transaction.set_rollback(True)

    assert copied == seeded
    assert {user[0] for user in seeded["users"]} >= set(DEMO_USERS)
    assert seeded["access events"] and seeded["change records"]
    # A user made after the copy gets an id of its own.
    with transaction.atomic():
        demo_seed.put_back(copy)
        made = User.objects.create(username="efter.kopian")
        assert made.pk > max(User.objects.exclude(pk=made.pk).values_list("pk", flat=True))
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_rolled_back_test_gets_the_copy_after_the_first_seed(settings):
    """A rolled-back test's ``demo`` is the copy; the first of a worker (under these
    settings) seeds and leaves the copy."""
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    first = not demo_seed.has_copy()
    before = dict(demo_seed.counts)
    demo_seed.seed(seed_demo, migrations_rows=migrations_rows)
    made = "seeded" if first else "copied"
    assert demo_seed.counts == {**before, made: before[made] + 1}
    assert demo_seed.has_copy()
    assert set(User.objects.values_list("username", flat=True)) >= set(DEMO_USERS)


@COMMITTED_DB
def test_a_committing_test_seeds(settings):
    """A committing test's ``demo`` runs ``seed_demo`` (its seal after the commit)."""
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    before = dict(demo_seed.counts)
    demo_seed.seed(seed_demo, migrations_rows=migrations_rows)
    assert demo_seed.counts == {**before, "seeded": before["seeded"] + 1}
    assert set(User.objects.values_list("username", flat=True)) >= set(DEMO_USERS)
