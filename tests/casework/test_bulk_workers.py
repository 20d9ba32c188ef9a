"""Bulk commands on several connections at once (``reseal_case_keys --workers``,
``cull --workers``; ``casework.services.batches``): the same outcome as one batch after
the other — every case moved or culled once, one event per culled case, the persons left
with nothing erased, a second run does nothing."""

from __future__ import annotations

import threading

import pytest

from audit.models import AccessEvent
from casework.crypto.keystore import CASE, PERSON, PERSON_PREVIOUS
from casework.models import Case, DataKey, Person
from casework.services.batches import run_batches
from casework.services.case_reseal import reseal_case_keys
from casework.services.retention import cull
from tests.audit.helpers import assert_one_verified_chain
from tests.casework.test_case_keys import _back_to_person_key
from tests.casework.test_retention import DUE_DAY, closed_case, person_born
from tests.conftest import COMMITTED_DB
from tests.workflows.sig.factories import sig_case


def test_batches_run_on_several_threads_and_an_error_comes_through():
    seen = set()

    def work(batch):
        seen.add(threading.current_thread().name)
        return sum(batch)

    batches = [[i, i] for i in range(20)]
    assert sorted(run_batches(batches, work, workers=2)) == sorted(2 * i for i in range(20))
    assert all(name.startswith("samverkan-batch") for name in seen)
    assert list(run_batches(batches, work, workers=1)) == [2 * i for i in range(20)]

    def fails(batch):
        if batch[0] == 3:
            raise RuntimeError("batch 3")
        return batch[0]

    with pytest.raises(RuntimeError, match="batch 3"):
        list(run_batches(batches, fails, workers=2))
    with pytest.raises(ValueError):
        list(run_batches(batches, fails, workers=0))


@COMMITTED_DB
def test_reseal_and_cull_with_two_workers(demo):
    persons = [person_born(demo) for _ in range(4)]
    culled = [closed_case(demo, person=person) for person in persons]
    kept_person = person_born(demo)
    culled.append(closed_case(demo, person=kept_person))
    open_case = sig_case(demo, person=kept_person)
    for case in (*culled[:3], open_case):
        _back_to_person_key(case)

    result = reseal_case_keys(purpose="Test av nycklar per ärende", batch_size=1, workers=2)
    assert result.cases == 4 and result.remaining == 0 and result.batches == 4
    assert result.persons_rekeyed == 4
    assert not Case.objects.filter(keyed_at__isnull=True).exists()

    done = cull(today=DUE_DAY, batch_size=2, workers=2)
    assert sorted(d.case_id for d in done.culled) == sorted(c.pk for c in culled)
    assert done.keys_destroyed == 5 and done.persons_erased == 4
    assert AccessEvent.objects.filter(action="cull").count() == 5
    assert set(AccessEvent.objects.filter(action="cull").values_list("object_id", flat=True)) == {
        str(c.pk) for c in culled
    }
    assert not DataKey.objects.filter(owner_type=CASE, owner_id__in=[c.pk for c in culled])
    assert not DataKey.objects.filter(owner_type=PERSON_PREVIOUS).exists()
    assert (
        Person.objects.filter(pk__in=[p.pk for p in persons], erased_at__isnull=False).count() == 4
    )
    assert Person.objects.get(pk=kept_person.pk).erased_at is None
    assert DataKey.objects.filter(owner_type=PERSON, owner_id=kept_person.pk).exists()
    assert DataKey.objects.filter(owner_type=CASE, owner_id=open_case.pk).exists()

    again = cull(today=DUE_DAY, batch_size=2, workers=2)
    assert again.culled == [] and again.persons_erased == 0
    assert AccessEvent.objects.filter(action="cull").count() == 5


@COMMITTED_DB
def test_reseal_in_processes_resumes_and_ends_as_one_worker_would(demo):
    """``--workers 2`` re-seals in forked processes: interrupted (``max_batches``) it has
    moved whole batches only, and a second run finishes; every value then opens under its
    own case's key to the same text as before, each case and its person re-keyed once, one
    event per batch, every queued entry sealed and the chain verified."""
    from casework.crypto.envelope import Sealed, open_sealed
    from casework.crypto.keystore import load_data_key
    from tests.casework.test_case_keys import _key_id, _key_ids, _sealed_of

    persons = [person_born(demo) for _ in range(3)]
    cases = [sig_case(demo, person=person) for person in persons for _ in range(2)]
    texts = {}
    for case in cases:
        key = load_data_key(owner_type=CASE, owner_id=case.pk)
        for (table, column, row_id), blob in _sealed_of(case.pk).items():
            where = {"table": table, "column": column, "row_id": row_id}
            texts[(table, column, row_id)] = open_sealed(key, Sealed(blob), **where)
        _back_to_person_key(case)
    events = AccessEvent.objects.filter(action="key_rotation", object_type=CASE)

    first = reseal_case_keys(purpose="Test", batch_size=2, max_batches=2, workers=2)
    assert first.cases == 4 and first.batches == 2 and first.remaining == 2
    assert Case.objects.filter(keyed_at__isnull=True).count() == 2
    rest = reseal_case_keys(purpose="Test", batch_size=2, workers=2)
    assert rest.cases == 2 and rest.remaining == 0
    assert first.persons_rekeyed + rest.persons_rekeyed == 3
    assert events.count() == 3

    for case in cases:
        sealed = _sealed_of(case.pk)
        assert _key_ids(sealed) == {_key_id(CASE, case.pk)}
        key = load_data_key(owner_type=CASE, owner_id=case.pk)
        for (table, column, row_id), blob in sealed.items():
            where = {"table": table, "column": column, "row_id": row_id}
            assert open_sealed(key, Sealed(blob), **where) == texts[(table, column, row_id)]
    assert DataKey.objects.filter(owner_type=PERSON_PREVIOUS).count() == 3
    assert_one_verified_chain()  # the workers' queued entries sealed by the parent
    assert reseal_case_keys(purpose="Test", batch_size=2, workers=2).cases == 0
