"""The national bench's loader (benchmarks/bench_national.py) at a tiny scale: the persons'
sealed fields are real ciphertext that the app's own services open, the blind index finds
them, the cases carry the statistics' moments and a task each when open, and the loaded
access-log events are in the log but not queued for sealing."""

from __future__ import annotations

import datetime

import pytest
from viewflow.workflow.models import Task

from audit.models import AccessEvent, ChainLink, PendingEntry
from benchmarks.national_data import DataSet
from casework import selectors
from casework.models import Case, Person

pytestmark = pytest.mark.django_db(databases=["default", "keystore"])


def test_the_loaded_data_opens_and_is_found_as_the_app_writes_it(demo):
    social = demo["anna.social"]
    data = DataSet(0.00003)  # 30 persons, 9 cases, 1,500 events

    data.load_to(0.00003, analyze=False)

    assert Person.objects.filter(id__in=[data.person_id(i) for i in range(30)]).count() == 30
    for index in (0, 17, 29):
        number = data.numbers[index]
        found = selectors.find_person(
            user=social, purpose="test", personnummer=f"{number[2:8]}-{number[8:]}"
        )
        assert found is not None and found.pk == data.person_id(index)
        details = selectors.get_person_details(
            user=social, purpose="test", person_id=found.pk, fields=["name", "birth_date"]
        )
        assert details.name == f"Provperson {index}"
        assert details.birth_date == datetime.date(
            int(number[:4]), int(number[4:6]), int(number[6:8])
        )
    stored = Person.objects.get(pk=data.person_id(3))
    assert b"Provperson 3" not in bytes(stored.name.blob)

    cases = Case.objects.filter(reference__contains="-N-")
    assert cases.count() == 9
    assert set(cases.values_list("programme", flat=True)) <= {"sig", "sspf", "defector"}
    loaded = AccessEvent.objects.filter(
        organisation_name=data.org_name, roles="socialsekreterare", username__startswith="bench.n"
    ).values_list("id", flat=True)
    assert len(loaded) == 1500
    # History from before the chain: neither queued for sealing nor sealed.
    assert not PendingEntry.objects.filter(source="access", entry_id__in=loaded).exists()
    assert not ChainLink.objects.filter(source="access", entry_id__in=loaded).exists()
    open_sig = cases.filter(programme="sig", closed_at__isnull=True)
    tasks = Task.objects.filter(process__id__gte=1_000_000_000)
    assert tasks.count() == open_sig.count()
    assert set(tasks.values_list("owner_id", flat=True)) <= {pk for pk, _name in data.users}
    assert {str(task.flow_task) for task in tasks} <= {"workflows/sig.flow.SigFlow.screen"}
    assert data.loaded == {"persons": 30, "cases": 9, "events": 1500}


def test_two_loads_give_event_ids_in_time_order_as_appends_do(demo):
    from audit.services import Action, record_event

    data = DataSet(0.00006)
    data.load_to(0.00003, analyze=False)  # the small data set's events over the 24 months
    data.load_to(0.00006, analyze=False)  # the national ones, over the same months

    loaded = list(
        AccessEvent.objects.filter(username__startswith="bench.n")
        .order_by("id")
        .values_list("occurred_at", flat=True)
    )
    assert len(loaded) == 3000
    assert loaded == sorted(loaded)  # one time order, not two id ranges a month
    appended = record_event(action=Action.LOGIN, user=demo["anna.social"])
    assert appended.pk > AccessEvent.objects.filter(username__startswith="bench.n").latest("id").pk
