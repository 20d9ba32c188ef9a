"""Numbers of new objects (``next_reference``) under concurrency, on PostgreSQL (real
threads, committed): the lock and the look-up of the last number go in one round trip
(ADR 0035, session 11), and a second numberer that waited for the lock still sees the
number the first one committed."""

from __future__ import annotations

import threading
import time

from django.db import connection, connections, transaction
from django.utils import timezone

from casework.services.transitions import next_reference
from tests.conftest import COMMITTED_DB
from workflows.gvi.models import CallIn

pytestmark = COMMITTED_DB

PREFIX = "TST"


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_numberer_that_waited_for_the_lock_takes_the_next_number(users):
    user = users["sara.samordnare"]
    holding, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first():
        try:
            with transaction.atomic():
                reference = next_reference(CallIn, PREFIX)
                CallIn.objects.create(
                    reference=reference, date=timezone.localdate(), created_by=user
                )
                holding.set()
                release.wait(30)
            results["first"] = reference
        except BaseException as error:
            results["first"] = error
        finally:
            holding.set()
            connections.close_all()

    def second():
        try:
            holding.wait(30)
            with transaction.atomic():
                results["second"] = next_reference(CallIn, PREFIX)
        except BaseException as error:
            results["second"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(30)
    deadline = time.monotonic() + 20
    while not _waiting_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = _waiting_for_a_lock()
    release.set()
    for thread in threads:
        thread.join(60)

    year = timezone.localdate().year
    assert waited, "the second numberer never waited for the lock"
    assert results == {"first": f"{PREFIX}-{year}-0001", "second": f"{PREFIX}-{year}-0002"}


def test_the_number_follows_the_highest_of_the_year(users):
    user = users["sara.samordnare"]
    year = timezone.localdate().year
    for number in ("0007", "0012"):
        CallIn.objects.create(
            reference=f"{PREFIX}-{year}-{number}", date=timezone.localdate(), created_by=user
        )
    # Another prefix sharing the start, and a wildcard of LIKE in the prefix, count not.
    CallIn.objects.create(
        reference=f"{PREFIX}X-{year}-0099", date=timezone.localdate(), created_by=user
    )
    with transaction.atomic():
        assert next_reference(CallIn, PREFIX) == f"{PREFIX}-{year}-0013"
        assert next_reference(CallIn, "TS_") == f"TS_-{year}-0001"
