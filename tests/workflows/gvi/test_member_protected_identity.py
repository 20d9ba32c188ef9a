"""A GVI member's protected identity, set and lifted on the member page by those who
register members (ADR 0027); refused and logged for everyone else; bad input a Swedish
form error."""

from __future__ import annotations

import pytest

from audit.models import AccessEvent
from tests.conftest import demo_users
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.gvi import factories as f
from workflows.gvi import models as gvi

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

# Those who register members: the GVI coordinator and the police (maja.avhopp is police too).
REGISTRARS = {"per.polis", "sara.samordnare", "maja.avhopp"}


def _post(client, user, member, level):
    client.force_login(user)
    member.refresh_from_db()
    return client.post(
        f"/gvi/medlemmar/{member.pk}/",
        {"_action": "protected_identity", "level": level, "version": member.version},
    )


def test_the_coordinator_and_the_police_set_and_lift_it(users, client):
    f.name_participant(users["anna.social"])
    _group, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    assert _post(client, users["per.polis"], member, "3").status_code == 302
    member.person.refresh_from_db()
    assert member.person.protected_identity == 3
    page = client.get(f"/gvi/medlemmar/{member.pk}/").content.decode()
    assert "Fingerade personuppgifter" in page
    assert _post(client, users["sara.samordnare"], member, "0").status_code == 302
    member.person.refresh_from_db()
    assert member.person.protected_identity == 0
    events = AccessEvent.objects.filter(
        object_id=str(member.pk), details__protected_identity__isnull=False
    ).order_by("id")
    assert [(e.details["protected_identity"], e.details["lifted"]) for e in events] == [
        (3, False),
        (0, True),
    ]
    bad = _post(client, users["sara.samordnare"], member, "7")
    assert bad.status_code == 400
    assert "Välj ett giltigt alternativ" in bad.content.decode()


@pytest.mark.parametrize("username", sorted(set(demo_users()) - REGISTRARS))
def test_no_one_else_may(users, client, username):
    f.name_participant(users["anna.social"])
    _group, (member,) = f.group(users, status=gvi.GroupStatus.MAPPED)
    response = _post(client, users[username], member, "2")
    assert response.status_code in (400, 403)
    member.person.refresh_from_db()
    assert member.person.protected_identity == 0
    assert 'name="_action" value="protected_identity"' not in response.content.decode()
