"""Withdrawing a sanction lever that will not be carried out: from proposed or decided only,
by its own organisation or the coordinator, with a reason sealed under the group's key;
every lever of a decision withdrawn before any executed ends the decision and takes the
group back to ``incident_linked``. Services, the group page and every role on it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import translation

from audit.models import AccessEvent
from casework.services.transitions import Denied
from tests.conftest import COMMITTED_DB
from tests.workflows.gvi import factories as f
from tests.workflows.gvi.test_views import ROLES
from workflows.gvi import models as gvi
from workflows.gvi import selectors, services

pytestmark = f.IN_ENGLISH

PURPOSE = f.PURPOSE
REASON = "Kronofogden har inga ärenden mot gruppens medlemmar."
transactional = COMMITTED_DB


def decided(users, levers=("police_checks", "traffic", "housing")):
    """A group with sanctions decided: police levers and one of social services."""
    f.name_participant(users["anna.social"])
    group, _ = f.group(users, status=gvi.GroupStatus.INCIDENT_LINKED)
    orgs = {"police_checks": f.police_org(users), "traffic": f.police_org(users)}
    decision = f.decide_sanctions(
        users, group, *((lever, orgs.get(lever, f.social_org(users))) for lever in levers)
    )
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_DECIDED
    return group, {s.lever: s for s in decision.sanctions.all()}


def withdraw(user, sanction, reason=REASON):
    return services.withdraw_sanction(user=user, purpose=PURPOSE, sanction=sanction, reason=reason)


def test_the_owning_organisation_withdraws_a_proposed_lever(users):
    per = users["per.polis"]
    group, levers = decided(users)
    lever = withdraw(per, levers["police_checks"])
    lever.refresh_from_db()
    assert lever.status == gvi.SanctionStatus.WITHDRAWN
    assert lever.withdrawn_at is not None and lever.recorded_by == per
    # The reason is sealed under the group's key: not in the column, readable on the page.
    with connection.cursor() as cursor:
        cursor.execute("SELECT withdraw_reason FROM workflows_sanction WHERE id = %s", [lever.pk])
        (stored,) = cursor.fetchone()
    assert REASON.encode() not in bytes(stored)
    page = selectors.get_group_page(user=users["sara.samordnare"], purpose=PURPOSE, group=group)
    assert page.withdraw_reasons == {lever.pk: REASON}
    consult = AccessEvent.objects.filter(
        action="consult", object_id=str(group.pk), person_id__isnull=True
    ).last()
    assert "sanction.withdraw_reason" in consult.fields
    event = AccessEvent.objects.get(
        action="transition", object_id=str(lever.pk), details__transition="withdraw"
    )
    assert event.details["source"] == "proposed" and REASON not in str(event.details)
    assert gvi.GviEvent.objects.filter(object_id=lever.pk, transition="withdraw").exists()
    # Other levers stand: the group's sanctions are still decided.
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_DECIDED


def test_the_coordinator_withdraws_a_decided_lever(users):
    per, sara = users["per.polis"], users["sara.samordnare"]
    _, levers = decided(users)
    services.sanction_step(user=per, purpose=PURPOSE, sanction=levers["traffic"], name="decide")
    withdraw(sara, levers["traffic"])
    levers["traffic"].refresh_from_db()
    assert levers["traffic"].status == gvi.SanctionStatus.WITHDRAWN
    assert levers["traffic"].decided_at is not None  # it was decided: that stays recorded


def test_an_executed_or_reported_lever_is_not_withdrawn(users):
    per, sara = users["per.polis"], users["sara.samordnare"]
    _, levers = decided(users)
    checks = levers["police_checks"]
    for step in ("decide", "execute"):
        services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name=step)
    with pytest.raises(ValidationError) as error:
        withdraw(sara, checks)
    assert "current state" in " ".join(error.value.messages)
    services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name="report")
    with pytest.raises(ValidationError):
        withdraw(per, checks)
    checks.refresh_from_db()
    assert checks.status == gvi.SanctionStatus.REPORTED and checks.withdraw_reason is None


def test_a_reason_is_required_and_short(users):
    _, levers = decided(users)
    lever = levers["police_checks"]
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(ValidationError) as error:
            withdraw(users["per.polis"], lever, reason=reason)
        assert set(error.value.error_dict) == {"reason"}
    lever.refresh_from_db()
    assert lever.status == gvi.SanctionStatus.PROPOSED and lever.withdraw_reason is None


@transactional
def test_another_organisation_or_a_stranger_is_refused(users):
    _, levers = decided(users)
    police_lever = levers["police_checks"]
    for username in ("anna.social", "lisa.skola", "stig.styrgrupp", "alex.avhopp"):
        with pytest.raises(Denied):
            withdraw(users[username], police_lever)
        assert AccessEvent.objects.filter(
            action="access_denied", user_id=users[username].pk
        ).exists()
    police_lever.refresh_from_db()
    assert police_lever.status == gvi.SanctionStatus.PROPOSED
    assert police_lever.withdraw_reason is None


def test_every_lever_withdrawn_ends_the_decision_and_the_group_goes_back(users):
    per, sara, anna = users["per.polis"], users["sara.samordnare"], users["anna.social"]
    group, levers = decided(users)
    decision = levers["housing"].decision
    services.sanction_step(user=anna, purpose=PURPOSE, sanction=levers["housing"], name="decide")
    withdraw(per, levers["police_checks"])
    withdraw(sara, levers["traffic"])
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_DECIDED
    withdraw(anna, levers["housing"])
    group.refresh_from_db()
    decision.refresh_from_db()
    assert group.status == gvi.GroupStatus.INCIDENT_LINKED
    assert decision.ended_at is not None and group.open_decision() is None
    assert AccessEvent.objects.filter(
        action="transition", object_id=str(group.pk), details__transition="withdraw_sanctions"
    ).exists()
    # The coordinator decides again, with other levers, or clears the incident.
    again = f.decide_sanctions(users, group, ("probation", f.police_org(users)))
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_DECIDED and group.open_decision() == again


def test_withdrawn_levers_count_as_done_when_the_sanctions_end(users):
    per, sara = users["per.polis"], users["sara.samordnare"]
    group, levers = decided(users, levers=("police_checks", "traffic"))
    checks, traffic = levers["police_checks"], levers["traffic"]
    for step in ("decide", "execute"):
        services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name=step)
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_ACTIVE
    # Active sanctions: withdrawing the other lever leaves them active (one was executed).
    withdraw(per, traffic)
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_ACTIVE
    with pytest.raises(ValidationError) as error:
        services.transition(user=sara, obj=group, name="end_sanctions", purpose=PURPOSE)
    assert "reported (or withdrawn)" in " ".join(error.value.messages)
    services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name="report")
    services.transition(user=sara, obj=group, name="end_sanctions", purpose=PURPOSE)
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.SANCTION_ENDED


def test_the_withdraw_transition_cannot_run_on_its_own_in_an_active_group(users):
    """``withdraw_sanctions`` (the group's) needs every lever withdrawn."""
    group, _ = decided(users)
    with pytest.raises(ValidationError) as error:
        services.transition(
            user=users["sara.samordnare"], obj=group, name="withdraw_sanctions", purpose=PURPOSE
        )
    assert "Not every sanction lever has been withdrawn" in " ".join(error.value.messages)


# --- The group page --------------------------------------------------------------------------


@transactional
def test_withdrawing_on_the_group_page_by_every_role(client, users):
    """Police withdraw their levers, social services theirs, the coordinator any; everyone
    else gets a 403 (logged) and the lever stands."""
    group, levers = decided(users)
    url = f"/gvi/grupper/{group.pk}/"

    def post(username, lever, reason=REASON):
        client.force_login(users[username])
        lever.refresh_from_db()
        return client.post(
            url,
            {
                "_action": "withdraw_sanction",
                "sanction": lever.pk,
                "version": lever.version,
                "reason": reason,
            },
        )

    police_lever = levers["police_checks"]
    for username in ROLES:
        if username in ("per.polis", "sara.samordnare"):
            continue
        response = post(username, police_lever)
        assert response.status_code == 403, (username, response.status_code)
        assert f.GROUP_NAME not in response.content.decode()
    police_lever.refresh_from_db()
    assert police_lever.status == gvi.SanctionStatus.PROPOSED

    # Bad input: a form error, nothing saved.
    response = post("per.polis", police_lever, reason="")
    assert response.status_code == 400
    with translation.override("sv"):
        assert "samverkan-withdraw-errors" in response.content.decode()
    response = client.post(
        url,
        {
            "_action": "withdraw_sanction",
            "sanction": "00000000-0000-0000-0000-000000000000",
            "version": 1,
            "reason": REASON,
        },
    )
    assert response.status_code == 400
    # A stale version: 409.
    response = client.post(
        url,
        {"_action": "withdraw_sanction", "sanction": police_lever.pk, "version": 99, "reason": "x"},
    )
    assert response.status_code == 409

    # The page offers the form only on levers this user may withdraw.
    client.force_login(users["anna.social"])
    page = client.get(url).content.decode()
    assert page.count('name="_action" value="withdraw_sanction"') == 1  # housing only
    client.force_login(users["sara.samordnare"])
    page = client.get(url).content.decode()
    assert page.count('name="_action" value="withdraw_sanction"') == 3

    assert post("per.polis", police_lever).status_code == 302
    assert post("sara.samordnare", levers["traffic"]).status_code == 302
    response = post("anna.social", levers["housing"])
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.status == gvi.GroupStatus.INCIDENT_LINKED
    with translation.override("sv"):
        page = client.get(url).content.decode()
        assert translation.pgettext("sanction", "Withdrawn") in page
    assert REASON in page
