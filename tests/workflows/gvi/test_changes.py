"""The write every GVI service's change of a versioned object goes through
(``workflows.gvi.services.access.changing``): the row locked at the version the user saw
(and in one of the given states), then the change and its one record — or nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AccessEvent
from casework.services.transitions import Conflict
from tests.workflows.gvi import factories as f
from workflows.gvi import models as gvi
from workflows.gvi import services
from workflows.gvi.services.access import changing

pytestmark = f.IN_ENGLISH


def _events(obj, name: str) -> int:
    return gvi.GviEvent.objects.filter(object_id=obj.pk, transition=name).count()


def _call_in(users) -> gvi.CallIn:
    sara = users["sara.samordnare"]
    return services.create_call_in(user=sara, purpose=f.PURPOSE, date=timezone.localdate())


def _speaker(users, call_in, role: str, version: int | None = None) -> None:
    services.set_speaker(
        user=users["sara.samordnare"],
        purpose=f.PURPOSE,
        call_in=call_in,
        role=role,
        speaker="Synt. talare",
        expected_version=version,
    )


def test_a_change_raises_the_version_once_with_its_timeline_entry_and_event(users):
    call_in = _call_in(users)
    version = call_in.version
    _speaker(users, call_in, "moral", version)
    call_in.refresh_from_db()
    assert call_in.version == version + 1
    assert _events(call_in, "speaker") == 1
    event = AccessEvent.objects.get(action="change", object_id=str(call_in.pk))
    assert event.details["role"] == "moral"


def test_a_stale_version_writes_nothing(users):
    call_in = _call_in(users)
    stale = call_in.version
    _speaker(users, call_in, "moral")
    with pytest.raises(Conflict):
        _speaker(users, call_in, "law_enforcement", stale)
    assert not call_in.speakers.filter(role="law_enforcement").exists()
    assert _events(call_in, "speaker") == 1


def test_a_change_outside_its_states_is_refused_before_the_lock(users):
    _, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    notification = f.notification(users, member, until=gvi.NotificationStatus.REQUESTED)
    with pytest.raises(ValidationError) as error:
        services.add_messenger(
            user=users["per.polis"],
            purpose=f.PURPOSE,
            notification=notification,
            kind="community",
            description="Imam",
        )
    assert error.value.code == "invalid_state"
    assert not notification.messengers.exists()


def test_an_error_inside_the_change_rolls_it_back(users):
    sara = users["sara.samordnare"]
    group, _ = f.group(users)
    version = group.version
    with pytest.raises(RuntimeError), changing(group, version, user=sara, purpose=f.PURPOSE) as c:
        c.store(message_delivered_at=timezone.now())
        c.record("notes")
        raise RuntimeError("the rest of the write failed")
    group.refresh_from_db()
    assert group.version == version
    assert group.message_delivered_at is None
    assert _events(group, "notes") == 0


def test_each_new_object_starts_its_timeline_in_its_first_state_with_its_create_event(users):
    """``record_created``: a registered group and member, a planned call-in and a requested
    notification each have one timeline entry into the state it starts in, and one
    ``CREATE`` event."""
    group, (member,) = f.group(users)
    created = {
        "register": group,
        "add_member": member,
        "plan": _call_in(users),
        "request": f.notification(users, member, until=gvi.NotificationStatus.REQUESTED),
    }
    for name, obj in created.items():
        entry = gvi.GviEvent.objects.get(object_id=obj.pk, transition=name)
        assert (entry.from_state, entry.to_state) == ("", obj.status)
        events = AccessEvent.objects.filter(action="create", object_id=str(obj.pk))
        assert events.count() == 1, name
