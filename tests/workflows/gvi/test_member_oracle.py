"""Finding 4: the GVI member form is no registry oracle, and its lookup leaves a trace.

A GVI coordinator or police officer adds a member to a group by personnummer. Whether
that number belongs to a person registered before (in any programme) must not show in
the answer: not by the status, not by the message, not by the order in which the form's
checks run (docs/adr/0015-lookups-leave-a-trace.md). Every lookup is in the access log,
even when the request that made it fails afterwards.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from audit.models import AccessEvent
from audit.services import Action
from casework.services import create_person
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from tests.workflows.sig.factories import fresh_personnummer
from workflows.gvi import models as gvi

pytestmark = COMMITTED_DB

# The name the registrar types: never the stored one.
TYPED_NAME = "Inskriven Provsson"


@pytest.fixture
def group(users):
    group, _members = f.group(users, status=gvi.GroupStatus.MAPPED)
    return group


@pytest.fixture
def registered(users):
    """The personnummer of a person registered elsewhere (a SIG worker registered them)."""
    number = fresh_personnummer(16)
    create_person(
        user=users["anna.social"], purpose=f.PURPOSE, name="Lagrad Hemligsson", personnummer=number
    )
    return number


def _answer(client, group, data):
    """Status, form errors and flash messages of one POST of the member form."""
    response = client.post(f"/gvi/grupper/{group.pk}/", {"_action": "member", **data})
    form = response.context["forms"]["member"] if response.context else None
    errors = dict(form.errors) if form is not None and form.is_bound else {}
    flashed = [str(m) for m in get_messages(response.wsgi_request)]
    return response.status_code, errors, flashed


def _lookups(personnummer_found: bool | None = None):
    events = AccessEvent.objects.filter(action=Action.CONSULT, details__lookup="personnummer")
    if personnummer_found is not None:
        events = events.filter(details__found=personnummer_found)
    return events


@pytest.mark.parametrize("registrar", ["per.polis", "sara.samordnare"])
def test_a_stale_form_gets_the_same_answer_for_a_registered_and_an_unregistered_number(
    client, users, group, registered, registrar
):
    client.force_login(users[registrar])
    stale = {"area": "other", "version": group.version - 1}
    # As the finding was found: no name (a registered number needed none).
    known = _answer(client, group, {"personnummer": registered, **stale})
    unknown = _answer(client, group, {"personnummer": fresh_personnummer(16), **stale})
    assert known == unknown
    assert known[0] == 400 and "name" in known[1]
    # Complete but stale: "changed by someone else" for both.
    stale["name"] = TYPED_NAME
    known = _answer(client, group, {"personnummer": registered, **stale})
    unknown = _answer(client, group, {"personnummer": fresh_personnummer(16), **stale})
    assert known == unknown
    assert known[0] == 409
    # Nothing was looked up: the version is checked before the register is.
    assert not _lookups().exists()
    assert group.members.count() == 1


def test_a_form_without_a_name_gets_the_same_answer_for_both(client, users, group, registered):
    client.force_login(users["per.polis"])
    fresh = {"area": "other", "version": group.version}
    known = _answer(client, group, {"personnummer": registered, **fresh})
    unknown = _answer(client, group, {"personnummer": fresh_personnummer(16), **fresh})
    assert known == unknown
    assert known[0] == 400 and "name" in known[1]
    assert group.members.count() == 1


def test_a_complete_form_gets_the_same_answer_for_both(client, users, group, registered):
    client.force_login(users["per.polis"])
    statuses = []
    for number in (registered, fresh_personnummer(16)):
        group.refresh_from_db()
        response = client.post(
            f"/gvi/grupper/{group.pk}/",
            {
                "_action": "member",
                "personnummer": number,
                "name": TYPED_NAME,
                "area": "other",
                "version": group.version,
            },
        )
        statuses.append(response.status_code)
        # The member page comes next; the answer itself carries nothing of the person.
        assert "Lagrad Hemligsson" not in response.content.decode()
    assert statuses == [302, 302]
    assert group.members.count() == 3
    # Both lookups are in the access log, one found, one not.
    assert _lookups(True).count() == 1 and _lookups(False).count() == 1


def test_a_lookup_is_in_the_access_log_when_the_request_then_fails(
    client, users, group, registered
):
    """The registered person is already a member: the request is refused after the
    lookup and its transaction rolls back; the lookup's event stays."""
    client.force_login(users["per.polis"])
    group.refresh_from_db()
    data = {"personnummer": registered, "name": TYPED_NAME, "area": "other"}
    status, _errors, _flashed = _answer(client, group, {**data, "version": group.version})
    assert status == 302
    group.refresh_from_db()
    before = _lookups(True).count()
    status, errors, _flashed = _answer(client, group, {**data, "version": group.version})
    assert status == 400 and errors
    assert _lookups(True).count() == before + 1
    lookup = _lookups(True).last()
    assert lookup.user == users["per.polis"]
    assert "Lagrad" not in str(AccessEvent.objects.values_list())
