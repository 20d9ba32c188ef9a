from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AccessEvent
from casework.crypto.keystore import PERSON, create_data_key
from casework.models import DataKey, Organisation, Person, User
from casework.selectors import get_person_details
from tests.casework.conftest import persons_db


def test_seed_demo_is_idempotent(demo):
    counts = (Organisation.objects.count(), User.objects.count())
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert (Organisation.objects.count(), User.objects.count()) == counts
    # one per role, a police defector coordinator and a second administrator (four eyes)
    assert counts[1] == 12
    assert all(user.groups.count() == 1 for user in User.objects.all())


def test_seed_demo_creates_the_agreements_organisations(demo):
    kinds = sorted(Organisation.objects.values_list("kind", flat=True))
    assert kinds.count("school") == 2
    assert kinds.count("leisure") == 2
    assert {"police", "social_services"} <= set(kinds)


def test_seed_demo_uses_the_demo_password(db, settings, client):
    settings.DEMO_PASSWORD = "ett-annat-lösenord"
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert client.login(username="per.polis", password="ett-annat-lösenord")


def test_demo_administrator_is_staff_but_not_superuser(demo):
    admin = demo["adam.admin"]
    assert admin.is_staff and not admin.is_superuser
    admins = {"adam.admin", "berit.admin"}  # two: one requests, the other approves
    assert demo["berit.admin"].is_staff and not demo["berit.admin"].is_superuser
    assert not any(u.is_staff for name, u in demo.items() if name not in admins)


def test_seed_demo_refuses_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="produktion"):
        call_command("seed_demo")
    assert not User.objects.exists()


# --- A fresh main database over the key store of an earlier run ------------------------------


def _seed(persons: int) -> str:
    out = StringIO()
    call_command("seed_demo", persons=persons, stdout=out)
    return out.getvalue()


@persons_db
def test_seed_demo_goes_on_over_the_keys_of_an_earlier_run(demo):
    """``make demo`` on a dropped and re-created main database whose key store still holds
    the earlier run's keys: the demo persons' ids are uuid5 of their numbers, so the same
    ids come again and met their old keys (IntegrityError ``datakey_one_per_owner``)."""
    _seed(3)
    earlier = set(DataKey.objects.filter(owner_type=PERSON).values_list("id", flat=True))
    ids = set(Person.objects.values_list("pk", flat=True))
    assert len(earlier) == len(ids) == 3
    # The main database starts afresh; the key store is kept.
    Person.objects.all().delete()

    output = _seed(3)

    assert set(Person.objects.values_list("pk", flat=True)) == ids
    now = set(DataKey.objects.filter(owner_type=PERSON).values_list("id", flat=True))
    assert len(now) == 3 and not now & earlier  # new keys, the stale ones gone
    worker = User.objects.get(username="anna.social")
    for person_id in ids:  # every person opens with their new key
        assert get_person_details(user=worker, purpose="Test", person_id=person_id).name
    event = AccessEvent.objects.get(action="erase", object_type="casework.datakey")
    assert event.details["stale_demo_data_keys_deleted"] == 3
    assert "3" in output


@persons_db
def test_seed_demo_never_discards_the_key_of_a_person_that_exists(demo, make_person):
    """Only keys of demo persons (uuid5 ids) whose row is missing are stale: the key of a
    person in the main database stays, and so does any other orphan (``keys sweep``)."""
    _seed(2)
    registered = make_person()  # a uuid4 id, as every registration
    orphan = uuid.uuid4()  # an interrupted registration: for `keys sweep`, after its grace
    create_data_key(owner_type=PERSON, owner_id=orphan)
    kept = set(DataKey.objects.values_list("id", flat=True))

    _seed(2)

    assert set(DataKey.objects.values_list("id", flat=True)) == kept
    assert DataKey.objects.filter(owner_id=registered.pk).exists()
    assert DataKey.objects.filter(owner_id=orphan).exists()
