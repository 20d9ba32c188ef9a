"""Erasing a GVI group by destroying its data key (crypto-shredding): the coordinator only,
a dormant group only, with a reason and a confirmation; afterwards the name, the notes and
the reasons of withdrawn levers are gone everywhere, every page renders with a placeholder,
statistics still count the group, and the members (people with their own keys) stay."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from audit.models import AccessEvent
from casework.crypto.keystore import GROUP, PERSON, destroy_data_key, load_data_keys
from casework.models import DataKey, Person
from casework.services.transitions import Denied
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from tests.workflows.gvi.test_views import ROLES
from tests.workflows.sig.factories import PERSON_NAME
from workflows.gvi import models as gvi
from workflows.gvi import selectors, services

pytestmark = f.IN_ENGLISH

PURPOSE = f.PURPOSE
REASON = "Gallringsbeslut 2026-11: gruppen inaktiv sedan två år."
WITHDRAW_REASON = "Påverkansmedlet kunde inte genomföras."
transactional = COMMITTED_DB


def dormant(users, *, with_withdrawn_lever: bool = False):
    """A dormant group (after a sanction decision whose lever was withdrawn, if asked)."""
    sara = users["sara.samordnare"]
    f.name_participant(users["anna.social"])
    status = gvi.GroupStatus.INCIDENT_LINKED if with_withdrawn_lever else gvi.GroupStatus.MONITORED
    group, (member,) = f.group(users, status=status)
    if with_withdrawn_lever:
        decision = f.decide_sanctions(users, group, ("police_checks", f.police_org(users)))
        services.withdraw_sanction(
            user=sara, purpose=PURPOSE, sanction=decision.sanctions.get(), reason=WITHDRAW_REASON
        )
        group.refresh_from_db()
        services.transition(user=sara, obj=group, name="clear_incident", purpose=PURPOSE)
    services.transition(user=sara, obj=group, name="go_dormant", purpose=PURPOSE)
    group.refresh_from_db()
    return group, member


def erase(user, group, *, reason=REASON, confirmed=True):
    return services.erase_group(
        user=user, purpose=PURPOSE, group=group, reason=reason, confirmed=confirmed
    )


def keys_of(group):
    return DataKey.objects.using("keystore").filter(owner_type=GROUP, owner_id=group.pk)


def test_erasing_destroys_the_key_and_empties_the_columns(users):
    sara = users["sara.samordnare"]
    group, member = dormant(users, with_withdrawn_lever=True)
    sanction = gvi.Sanction.objects.get(decision__group=group)
    assert keys_of(group).exists() and sanction.withdraw_reason is not None
    erase(sara, group)
    assert not keys_of(group).exists()
    assert load_data_keys(owner_type=GROUP, owner_ids=[group.pk]) == {}  # nor in the cache
    group.refresh_from_db()
    sanction.refresh_from_db()
    assert group.erased_at is not None
    assert group.name is None and group.notes is None and sanction.withdraw_reason is None
    # The plain columns stay (statistics), and so does the history of states.
    assert (group.area, group.size_band, group.status) == (
        "vivalla_baronbackarna",
        "6-15",
        "dormant",
    )
    event = AccessEvent.objects.get(action="erase", object_id=str(group.pk))
    assert event.purpose == REASON and event.user_id == sara.pk and event.person_id is None
    assert sorted(event.fields) == ["name", "notes", "sanction.withdraw_reason"]
    assert event.details["data_key_destroyed"] is True
    assert gvi.GviEvent.objects.filter(object_id=group.pk, transition="erase").exists()
    # The members are people with their own keys and cases: not erased.
    person = Person.objects.get(pk=member.person_id)
    assert person.erased_at is None
    assert load_data_keys(owner_type=PERSON, owner_ids=[person.pk])


def test_after_erasure_every_reading_works_without_the_name(users):
    sara = users["sara.samordnare"]
    group, member = dormant(users, with_withdrawn_lever=True)
    erase(sara, group)
    group.refresh_from_db()
    page = selectors.get_group_page(user=sara, purpose=PURPOSE, group=group)
    assert page.texts == {"name": None, "notes": None} and page.withdraw_reasons == {}
    assert [m.name for m in page.members] == [PERSON_NAME]
    overview = selectors.get_overview(user=sara, purpose=PURPOSE)
    assert [row.name for row in overview.groups] == [None]
    member_page = selectors.get_member_page(user=sara, purpose=PURPOSE, member=member)
    assert member_page.name == PERSON_NAME and member_page.group_name is None
    consult = AccessEvent.objects.filter(action="consult", object_id=str(member.pk)).last()
    assert consult.fields == ["person.name"]
    with pytest.raises(ValidationError) as error:
        services.update_group_notes(
            user=sara, purpose=PURPOSE, group=group, notes="Ny", expected_version=None
        )
    assert "erased" in " ".join(error.value.messages)


def test_only_a_dormant_group_is_erased(users):
    group, _ = f.group(users, status=gvi.GroupStatus.MONITORED)
    with pytest.raises(ValidationError) as error:
        erase(users["sara.samordnare"], group)
    assert "Only a dormant group" in " ".join(error.value.messages)
    assert keys_of(group).exists()
    group.refresh_from_db()
    assert group.erased_at is None and group.name is not None


def test_a_reason_and_the_confirmation_are_required(users):
    group, _ = dormant(users)
    with pytest.raises(ValidationError) as error:
        erase(users["sara.samordnare"], group, reason=" ", confirmed=False)
    assert set(error.value.error_dict) == {"reason", "confirmed"}
    assert keys_of(group).exists()


def test_a_second_erasure_is_a_clear_message(users):
    sara = users["sara.samordnare"]
    group, _ = dormant(users)
    erase(sara, group)
    with pytest.raises(ValidationError) as error:
        erase(sara, group)
    assert "already been erased" in " ".join(error.value.messages)
    assert AccessEvent.objects.filter(action="erase", object_id=str(group.pk)).count() == 1


def test_an_interrupted_erasure_is_completed(users):
    """The key went but the row was not marked (the process stopped in between): erasing
    again completes it."""

    sara = users["sara.samordnare"]
    group, _ = dormant(users)
    destroy_data_key(owner_type=GROUP, owner_id=group.pk)
    # The pages already cope with the missing key.
    assert selectors.get_group_page(user=sara, purpose=PURPOSE, group=group).texts["name"] is None
    erase(sara, group)
    group.refresh_from_db()
    assert group.erased_at is not None and group.name is None
    event = AccessEvent.objects.get(action="erase", object_id=str(group.pk))
    assert event.details["data_key_destroyed"] is False


@transactional
def test_no_one_but_the_coordinator_erases(users):
    group, _ = dormant(users)
    for username in ("per.polis", "anna.social", "alex.avhopp", "lisa.skola", "adam.admin"):
        with pytest.raises(Denied):
            erase(users[username], group)
        assert AccessEvent.objects.filter(
            action="access_denied", user_id=users[username].pk, details__operation="gvi:group:erase"
        ).exists()
    assert keys_of(group).exists()
    group.refresh_from_db()
    assert group.erased_at is None


# --- The pages -------------------------------------------------------------------------------


@transactional
def test_erasing_on_the_group_page_and_every_page_after(client, users):
    group, member = dormant(users, with_withdrawn_lever=True)
    url = f"/gvi/grupper/{group.pk}/"
    data = {"_action": "erase", "reason": REASON, "confirmed": "on", "version": group.version}
    # Every role but the coordinator is refused (403, logged); the key stays.
    for username in ROLES:
        if username == "sara.samordnare":
            continue
        client.force_login(users[username])
        response = client.post(url, data)
        assert response.status_code == 403, (username, response.status_code)
        assert f.GROUP_NAME not in response.content.decode()
    assert keys_of(group).exists()
    # Only the coordinator is offered the form.
    client.force_login(users["per.polis"])
    assert 'value="erase"' not in client.get(url).content.decode()
    client.force_login(users["sara.samordnare"])
    page = client.get(url).content.decode()
    assert 'value="erase"' in page and f.GROUP_NAME in page
    # Bad input: a form error (400), nothing destroyed; a stale version: 409.
    assert client.post(url, {**data, "confirmed": ""}).status_code == 400
    assert client.post(url, {**data, "reason": ""}).status_code == 400
    assert client.post(url, {**data, "version": 999}).status_code == 409
    assert keys_of(group).exists()
    response = client.post(url, data, follow=True)
    assert response.status_code == 200 and not keys_of(group).exists()
    with translation.override("sv"):
        placeholder = translation.gettext("(erased)")
        erased = client.get(url).content.decode()
        assert placeholder in erased and f.GROUP_NAME not in erased
        assert WITHDRAW_REASON not in erased and 'value="erase"' not in erased
        overview = client.get("/gvi/").content.decode()
        assert placeholder in overview and f.GROUP_NAME not in overview
        member_page = client.get(f"/gvi/medlemmar/{member.pk}/").content.decode()
        assert placeholder in member_page and PERSON_NAME in member_page
        # A second erasure from a stale page: the form is gone, a clear message.
        again = client.post(url, {**data, "version": group.version + 1})
        assert again.status_code == 400
        assert translation.gettext("That step is not available now.") in again.content.decode()
    for username in ("per.polis", "anna.social"):
        client.force_login(users[username])
        for page_url in (url, "/gvi/", f"/gvi/medlemmar/{member.pk}/"):
            response = client.get(page_url)
            assert response.status_code == 200, (username, page_url)
            assert f.GROUP_NAME not in response.content.decode()
    # Statistics read plain columns only: the erased group is still counted.
    client.force_login(users["stig.styrgrupp"])
    year = str(timezone.localdate().year)
    stats = client.get("/statistik/", {"period": year})
    assert stats.status_code == 200 and 'data-programme="gvi"' in stats.content.decode()
    assert client.get("/statistik/csv/gvi/overview.csv", {"period": year}).status_code == 200
