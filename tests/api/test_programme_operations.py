"""The programmes' operations in the integration API, through HTTP with a real database: an
SSPF concern, a defector referral, a GVI incident and a delivered custom notification.

For each: success as the right demo user (the object exists, its flow runs, the access log
names the client), bad input (a 400 problem in Swedish), the wrong role (403, nothing
written), a token without the scope and a request without the acting person (403), a
retry with the same Idempotency-Key (the first answer, no second object), and for the
delivery a stale or missing If-Match (412 / 428, nothing changed).
"""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.utils import timezone
from viewflow.workflow.status import STATUS

from audit.models import AccessEvent
from casework.models import Case, Person
from casework.personnummer import with_check_digit
from tests.api.conftest import ALL_SCOPES
from workflows.defector.flow import DefectorFlow
from workflows.defector.models import DefectorCase, DefectorProcess
from workflows.gvi import demo as gvi_demo
from workflows.gvi import services as gvi_services
from workflows.gvi.flow import GviNotificationFlow
from workflows.gvi.models import CustomNotification, Group, Incident, NotificationStatus
from workflows.sspf.flow import SspfFlow
from workflows.sspf.models import SspfCase, SspfProcess

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

CONCERNS = "/api/v1/sspf/concerns/"
REFERRALS = "/api/v1/defector/referrals/"
INCIDENTS = "/api/v1/gvi/incidents/"
DELIVER = "gvi:notification:deliver"
NEW_CASE_FIELDS = {"id", "reference", "programme", "status", "version"}


def personnummer(years: int, serial: str = "482") -> str:
    """A synthetic personnummer of someone ``years`` old (the check digit computed)."""
    born = timezone.localdate() - datetime.timedelta(days=round(365.25 * years) + 60)
    return born.strftime("%Y")[:2] + with_check_digit(born.strftime("%y%m%d") + serial)


def concern(**changes) -> dict:
    return {
        "personnummer": personnummer(14),
        "name": "Test Testsson",
        "area": "vivalla_baronbackarna",
        "concern": "Hög frånvaro och nya kontakter med äldre.",
        **changes,
    }


def referral(**changes) -> dict:
    return {
        "personnummer": personnummer(24, "517"),
        "name": "Prov Provsson",
        "area": "other",
        "reason": "Vill lämna gänget.",
        "source": "police",
        **changes,
    }


def incident(**changes) -> dict:
    return {
        "date": str(timezone.localdate() - datetime.timedelta(days=1)),
        "area": "brickebacken",
        "kind": "shooting",
        "groups": [str(Group.objects.order_by("reference").first().pk)],
        **changes,
    }


def delivery(**changes) -> dict:
    return {"offer_of_help": "Kontakt med avhopparstödet.", "response": "undecided", **changes}


def scheduled_notification(users) -> CustomNotification:
    """The demo's approved notification (its flow at "Schedule and deliver", per.polis's
    task), with the visit scheduled as the officer does it on the task page."""
    notification = CustomNotification.objects.get(status=NotificationStatus.APPROVED)
    per = users["per.polis"]
    gvi_services.add_messenger(
        user=per, purpose="Test", notification=notification, kind="community", description="Imam"
    )
    gvi_services.schedule_notification(
        user=per,
        purpose="Test",
        notification=notification,
        scheduled_for=timezone.now() + datetime.timedelta(hours=2),
    )
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SCHEDULED
    return notification


def delivery_path(notification) -> str:
    return f"/api/v1/gvi/notifications/{notification.pk}/delivery/"


def if_match(version: int) -> dict:
    return {"If-Match": f'"v{version}"'}


def open_tasks(process) -> set[str]:
    return {
        task.flow_task.name
        for task in process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED])
    }


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"] and body["detail_en"]
    return body


def assert_swedish_errors(response, *fields: str) -> None:
    body = assert_problem(response, 400)
    named = {error["field"] for error in body["errors"]}
    assert set(fields) <= named, body
    for error in body["errors"]:
        assert error["detail"] and error["detail_en"]
    assert any(error["detail"] != error["detail_en"] for error in body["errors"]), body
    assert body["detail"] != body["detail_en"]


def created_by_client(object_id, api) -> AccessEvent:
    event = AccessEvent.objects.filter(action="create", object_id=str(object_id)).get()
    assert event.details["api_client"] == api.client.name
    return event


# --- Clients ----------------------------------------------------------------------------------


@pytest.fixture
def school_api(api_for, demo):
    return api_for(demo["lisa.skola"].organisation.name)


@pytest.fixture
def gvi(demo):
    """The GVI demo: groups, incidents and a notification in every state, each driven
    through its flow as the pages drive it."""
    gvi_demo.seed_gvi()
    return demo


# --- SSPF: a concern -------------------------------------------------------------------------


def test_a_school_registers_a_concern_once(school_api, demo):
    body = concern()
    first = school_api.post(CONCERNS, body, acting="lisa.skola", key="concern-1")
    assert first.status_code == 201, first.content
    answer = first.json()
    assert set(answer) == NEW_CASE_FIELDS
    assert answer["programme"] == "sspf" and answer["status"] == "concern_raised"
    case = SspfCase.objects.get(pk=answer["id"])
    assert case.referred_by == demo["lisa.skola"] and answer["version"] == case.version
    assert first["Location"] == f"/api/v1/cases/{case.pk}/"
    # The flow runs: the concern waits in the coordinators' assessment queue.
    assert open_tasks(SspfProcess.objects.get(case=case)) == {SspfFlow.assess.name}
    created_by_client(case.pk, school_api)
    # The same key again: the first answer, no second case.
    again = school_api.post(CONCERNS, body, acting="lisa.skola", key="concern-1")
    assert again.status_code == 201 and again.json() == answer
    assert again["Idempotent-Replayed"] == "true"
    assert SspfCase.objects.filter(person=case.person).count() == 1
    # The same person again (a new key): the same kind of answer, a second concern.
    second = school_api.post(CONCERNS, body, acting="lisa.skola")
    assert second.status_code == 201 and set(second.json()) == NEW_CASE_FIELDS
    assert SspfCase.objects.filter(person=case.person).count() == 2


def test_a_bad_concern_is_a_swedish_400(school_api):
    before = SspfCase.objects.count()
    response = school_api.post(
        CONCERNS, concern(personnummer="12345", concern=""), acting="lisa.skola"
    )
    assert_swedish_errors(response, "personnummer", "concern")
    # Outside the SSPF age range: the service's own message.
    too_old = school_api.post(CONCERNS, concern(personnummer=personnummer(30)), acting="lisa.skola")
    assert_swedish_errors(too_old, "personnummer")
    assert SspfCase.objects.count() == before


def test_a_concern_needs_a_case_role(api_for, demo):
    social = api_for(demo["stig.styrgrupp"].organisation.name)
    cases, persons = SspfCase.objects.count(), Person.objects.count()
    refused = social.post(CONCERNS, concern(), acting="stig.styrgrupp")
    assert_problem(refused, 403)
    assert SspfCase.objects.count() == cases and Person.objects.count() == persons


# --- The defector programme: a referral ----------------------------------------------------


def test_the_police_register_a_defector_referral_once(police_api, demo):
    body = referral(phone="", protected_identity=1)
    first = police_api.post(REFERRALS, body, acting="per.polis", key="referral-1")
    assert first.status_code == 201, first.content
    answer = first.json()
    assert set(answer) == NEW_CASE_FIELDS
    assert answer["programme"] == "defector" and answer["status"] == "referred"
    case = DefectorCase.objects.get(pk=answer["id"])
    assert case.referral_source == "police" and case.referred_by == demo["per.polis"]
    assert case.person.protected_identity == Person.ProtectedIdentity.CONFIDENTIALITY_MARKING
    # As the referral page: the flow starts with the defector coordinators' initial check.
    process = DefectorProcess.objects.get(case=case)
    assert open_tasks(process) == {DefectorFlow.check.name}
    created_by_client(case.pk, police_api)
    again = police_api.post(REFERRALS, body, acting="per.polis", key="referral-1")
    assert again.status_code == 201 and again.json() == answer
    assert DefectorCase.objects.filter(person=case.person).count() == 1


def test_a_bad_defector_referral_is_a_swedish_400(police_api):
    before = DefectorCase.objects.count()
    response = police_api.post(
        REFERRALS, referral(source="neighbour", area="moon"), acting="per.polis"
    )
    assert_swedish_errors(response, "source", "area")
    missing = police_api.post(REFERRALS, {"name": "Prov"}, acting="per.polis")
    assert_swedish_errors(missing, "personnummer", "reason", "source")
    assert DefectorCase.objects.count() == before


def test_a_defector_referral_needs_a_case_role(social_api):
    cases, persons = DefectorCase.objects.count(), Person.objects.count()
    refused = social_api.post(REFERRALS, referral(), acting="greta.granskare")
    assert_problem(refused, 403)
    assert DefectorCase.objects.count() == cases and Person.objects.count() == persons


# --- GVI: an incident --------------------------------------------------------------------------


def test_the_police_record_an_incident_once(police_api, gvi):
    body = incident()
    first = police_api.post(INCIDENTS, body, acting="per.polis", key="incident-1")
    assert first.status_code == 201, first.content
    answer = first.json()
    assert set(answer) == {"id", "date", "area", "kind", "groups", "recorded_at"}
    recorded = Incident.objects.get(pk=answer["id"])
    assert recorded.recorded_by == gvi["per.polis"] and recorded.kind == "shooting"
    assert [str(g.pk) for g in recorded.groups.all()] == body["groups"] == answer["groups"]
    created_by_client(recorded.pk, police_api)
    count = Incident.objects.count()
    again = police_api.post(INCIDENTS, body, acting="per.polis", key="incident-1")
    assert again.status_code == 201 and again.json() == answer
    assert Incident.objects.count() == count
    # The same key with another body is refused.
    reused = police_api.post(
        INCIDENTS, incident(kind="other"), acting="per.polis", key="incident-1"
    )
    assert_problem(reused, 422)


def test_a_bad_incident_is_a_swedish_400(police_api, gvi):
    before = Incident.objects.count()
    tomorrow = str(timezone.localdate() + datetime.timedelta(days=1))
    unknown = police_api.post(
        INCIDENTS, incident(kind="riot", groups=[str(uuid.uuid4())]), acting="per.polis"
    )
    assert_swedish_errors(unknown, "kind", "groups")
    assert "Det finns ingen sådan grupp." in {e["detail"] for e in unknown.json()["errors"]}
    # The service's own rules: no date in the future, at least one group.
    future = police_api.post(INCIDENTS, incident(date=tomorrow, groups=[]), acting="per.polis")
    assert_swedish_errors(future, "date", "groups")
    assert Incident.objects.count() == before


@pytest.mark.parametrize("username", ["lisa.skola", "sara.samordnare"])
def test_only_the_police_record_incidents(api_for, gvi, username):
    api = api_for(gvi[username].organisation.name)
    before = Incident.objects.count()
    refused = api.post(INCIDENTS, incident(), acting=username)
    assert_problem(refused, 403)
    assert Incident.objects.count() == before
    denial = AccessEvent.objects.get(
        action="access_denied", username=username, details__operation="gvi:incident:create"
    )
    assert denial.details["api_client"] == api.client.name


# --- GVI: a delivered custom notification ------------------------------------------------------


def test_the_officer_records_the_delivery_with_its_etag(police_api, gvi):
    notification = scheduled_notification(gvi)
    path = delivery_path(notification)
    read = police_api.get(path, acting="per.polis")
    assert read.status_code == 200, read.content
    assert read.json()["status"] == "scheduled"
    etag = read["ETag"]
    assert etag == f'"v{notification.version}"'
    consulted = AccessEvent.objects.filter(action="consult", object_id=str(notification.pk)).last()
    assert consulted.fields == [] and consulted.details["api_client"] == police_api.client.name

    first = police_api.post(
        path, delivery(), acting="per.polis", key="delivery-1", **{"If-Match": etag}
    )
    assert first.status_code == 201, first.content
    answer = first.json()
    notification.refresh_from_db()
    assert answer["status"] == notification.status == NotificationStatus.DELIVERED
    assert answer["response"] == "undecided" and answer["version"] == notification.version
    assert first["ETag"] == f'"v{notification.version}"'
    assert set(answer) == {
        "id",
        "reference",
        "status",
        "response",
        "delivered_at",
        "follow_up_due",
        "version",
    }
    # The step is done as on its task page: the follow-up comes next.
    assert open_tasks(notification.process) == {GviNotificationFlow.follow_up.name}
    change = AccessEvent.objects.filter(action="transition", object_id=str(notification.pk)).last()
    assert change.username == "per.polis"
    assert change.details["api_client"] == police_api.client.name
    # A retry: the first answer, nothing changed again.
    again = police_api.post(
        path, delivery(), acting="per.polis", key="delivery-1", **{"If-Match": etag}
    )
    assert again.status_code == 201 and again.json() == answer
    notification.refresh_from_db()
    assert notification.version == answer["version"]


def _unchanged(notification) -> None:
    version = notification.version
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SCHEDULED
    assert notification.version == version and notification.offer_of_help is None
    assert open_tasks(notification.process) == {GviNotificationFlow.deliver.name}


def test_a_stale_or_missing_if_match_changes_nothing(police_api, gvi):
    notification = scheduled_notification(gvi)
    path = delivery_path(notification)
    stale = police_api.post(
        path, delivery(), acting="per.polis", **if_match(notification.version - 1)
    )
    assert_problem(stale, 412)
    _unchanged(notification)
    missing = police_api.post(path, delivery(), acting="per.polis")
    assert_problem(missing, 428)
    _unchanged(notification)


def test_a_bad_delivery_is_a_swedish_400(police_api, gvi):
    notification = scheduled_notification(gvi)
    path = delivery_path(notification)
    version = if_match(notification.version)
    bad = police_api.post(path, {"response": "maybe"}, acting="per.polis", **version)
    assert_swedish_errors(bad, "offer_of_help", "response")
    # Accepted needs the programme and the reason (the service's rule).
    accepted = police_api.post(path, delivery(response="accepted"), acting="per.polis", **version)
    assert_swedish_errors(accepted, "programme")
    _unchanged(notification)


def test_only_the_officer_of_the_step_records_the_delivery(api_for, gvi):
    notification = scheduled_notification(gvi)
    # A GVI participant who is not police: refused before anything is looked up.
    social = api_for(gvi["anna.social"].organisation.name)
    refused = social.post(
        delivery_path(notification), delivery(), acting="anna.social", **if_match(1)
    )
    assert_problem(refused, 403)
    denial = AccessEvent.objects.get(
        action="access_denied", username="anna.social", details__operation=DELIVER
    )
    assert denial.details["reason"] == "role"
    assert denial.details["api_client"] == social.client.name
    _unchanged(notification)
    # A police officer in GVI, but the step is per.polis's: refused by the task's owner
    # rule (its refusal event commits on the audit connection, outside this test's view).
    police = api_for(gvi["maja.avhopp"].organisation.name)
    path = delivery_path(notification)
    refused = police.post(path, delivery(), acting="maja.avhopp", **if_match(notification.version))
    body = assert_problem(refused, 403)
    assert body["detail"] == "Leveranssteget är tilldelat en annan polis."
    _unchanged(notification)


def test_an_unknown_notification_is_a_404_and_a_delivered_one_a_400(police_api, gvi):
    unknown = f"/api/v1/gvi/notifications/{uuid.uuid4()}/delivery/"
    assert_problem(police_api.get(unknown, acting="per.polis"), 404)
    assert_problem(
        police_api.post(unknown, delivery(), acting="per.polis", **{"If-Match": "*"}), 404
    )
    delivered = CustomNotification.objects.get(status=NotificationStatus.DELIVERED)
    again = police_api.post(
        delivery_path(delivered), delivery(), acting="per.polis", **if_match(delivered.version)
    )
    assert_problem(again, 400)


# --- Every operation: the scope and the acting person ------------------------------------------


OPERATIONS = {
    "sspf_concern_create": ("lisa.skola", "referrals:write", CONCERNS, concern),
    "defector_referral_create": ("per.polis", "referrals:write", REFERRALS, referral),
    "gvi_incident_create": ("per.polis", "gvi:write", INCIDENTS, incident),
    "gvi_notification_delivery_create": ("per.polis", "gvi:write", None, delivery),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_scope_and_the_acting_person_are_needed(api_for, gvi, operation):
    username, scope, path, body = OPERATIONS[operation]
    organisation = gvi[username].organisation.name
    headers = {}
    if path is None:
        notification = CustomNotification.objects.get(status=NotificationStatus.APPROVED)
        path, headers = delivery_path(notification), if_match(notification.version)
    cases, incidents = Case.objects.count(), Incident.objects.count()
    without_scope = api_for(organisation, [s for s in ALL_SCOPES if s != scope])
    assert_problem(without_scope.post(path, body(), acting=username, **headers), 403)
    with_scope = api_for(organisation, [scope])
    assert_problem(with_scope.post(path, body(), **headers), 403)
    assert Case.objects.count() == cases and Incident.objects.count() == incidents
