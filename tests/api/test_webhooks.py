"""Webhooks: a client registers one, a case changes state and a task appears, and
``deliver_webhooks`` posts the events, signed, to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.api.webhooks import CaseStatusChangedOut, TaskCreatedOut
from casework.models import Case, IdempotentRequest, Webhook, WebhookDelivery
from casework.personnummer import with_check_digit
from casework.services import cases as case_services
from casework.services import webhooks
from tests.api.conftest import ALL_SCOPES
from tests.workflows.sig.factories import PERSON_NAME, FlowDriver

pytestmark = pytest.mark.django_db(databases=["default", "keystore", "audit"])

PURPOSE = "Test av webhooks"
PERSONNUMMER = "20" + with_check_digit("090815098")
NAME = "Webbe Krokesson"
BOTH = ["case.status_changed", "task.created"]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers each path with
    the statuses queued for it (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                queued = receiver.answers.get(self.path) or []
                code = queued.pop(0) if queued else 200
                self.send_response(code)
                if code in (301, 302, 307, 308):
                    self.send_header("Location", f"{receiver.url}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict]:
        return [request for request in self.requests if request["path"] == path]

    def events(self, path: str) -> list[tuple[str, dict]]:
        return [(r["headers"]["Samverkan-Event"], json.loads(r["body"])) for r in self.at(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.API_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.API_WEBHOOK_HTTP_HOSTS = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.close()


def register(api, url: str, events=BOTH):
    response = api.post("/api/v1/webhooks/", {"url": url, "events": events})
    assert response.status_code == 201, response.content
    return response.json()


def state(delivery: WebhookDelivery) -> tuple[str, int, str]:
    delivery.refresh_from_db()
    return delivery.status, delivery.attempts, delivery.last_response


def deliver():
    call_command("deliver_webhooks", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115


def refer(api):
    body = {"personnummer": PERSONNUMMER, "name": NAME, "area": "other", "reason": "Orolig."}
    response = api.post("/api/v1/sig/referrals/", body, acting="anna.social")
    assert response.status_code == 201, response.content
    return Case.objects.get(pk=response.json()["id"]).sigcase


def test_events_are_signed_and_carry_ids_and_states_only(receiver, social_api, police_api, demo):
    social = register(social_api, f"{receiver.url}/social")
    register(police_api, f"{receiver.url}/police")
    case = refer(social_api)
    case_services.transition(
        user=demo["sara.samordnare"], case=case, name="begin_screening", purpose=PURPOSE
    )
    deliver()

    got = receiver.events("/social")
    assert [(event, body.get("case", {}).get("status")) for event, body in got] == [
        ("case.status_changed", "referred"),
        ("task.created", None),
        ("case.status_changed", "screening"),
    ]
    # The police are neither responsible for the case nor on its team (yet).
    assert receiver.at("/police") == []
    opened, task, screening = (body for _event, body in got)
    assert set(opened) == {"event", "id", "occurred_at", "case"}
    assert opened["case"] == {
        "id": str(case.pk),
        "programme": "sig",
        "status": "referred",
        "version": 1,
    }
    assert screening["case"]["version"] == case.version
    assert task["case"] == {"id": str(case.pk)}
    assert task["task"]["step"] == "screen" and task["task"]["status"] == "NEW"
    assert set(task["task"]) == {"id", "flow", "step", "status"}
    for request in receiver.at("/social"):
        text = request["body"].decode()
        for personal in (NAME, "Webbe", PERSONNUMMER, PERSONNUMMER[2:], case.reference):
            assert personal not in text
        headers = request["headers"]
        assert headers["Content-Type"] == "application/json"
        assert headers["Samverkan-Delivery"] == str(json.loads(text)["id"])
        assert webhooks.verify_signature(
            social["secret"], headers["Samverkan-Signature"], request["body"]
        )
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    # As the OpenAPI document's ``webhooks`` describe them.
    for event, body in got:
        described = {"task.created": TaskCreatedOut, "case.status_changed": CaseStatusChangedOut}
        serializer = described[event](data=body)
        assert serializer.is_valid(), serializer.errors
        assert set(body) == set(serializer.fields)

    # The receiver's check refuses a changed body, a changed signature, an old timestamp
    # and another secret.
    request = receiver.at("/social")[0]
    header, body = request["headers"]["Samverkan-Signature"], request["body"]
    assert not webhooks.verify_signature(social["secret"], header, body.replace(b"1", b"2"))
    stamp, mac = header.split(",")
    forged = f"{stamp},v1={'0' * 64}"
    assert not webhooks.verify_signature(social["secret"], forged, body)
    flipped = f"{stamp},{mac[:-1]}{'0' if mac[-1] != '0' else '1'}"
    assert not webhooks.verify_signature(social["secret"], flipped, body)
    assert not webhooks.verify_signature(social["secret"], header, body, now=time.time() + 301)
    old = webhooks.signature(social["secret"], body, timestamp=int(time.time()) - 600)
    assert not webhooks.verify_signature(social["secret"], old, body)
    assert webhooks.verify_signature(social["secret"], old, body, tolerance=700)
    assert not webhooks.verify_signature("another secret", header, body)
    assert not webhooks.verify_signature(social["secret"], "", body)
    assert not webhooks.verify_signature(social["secret"], "t=x,v1=y", body)


def test_the_team_and_the_owner_of_a_task_hear_of_it(receiver, api_for, demo):
    police = api_for(demo["per.polis"].organisation.name)
    register(police, f"{receiver.url}/police")
    flow_case = FlowDriver(demo).build("decide")
    deliver()

    got = receiver.events("/police")
    # On the team from the screening on: every status from then; and the police's own
    # decision step, which per.polis owns (social services' step is not theirs).
    statuses = [body["case"]["status"] for event, body in got if event == "case.status_changed"]
    assert statuses == ["consent_pending", "decision_pending"]
    tasks = [body["task"] for event, body in got if event == "task.created"]
    decide_police = flow_case.task("decide_police")
    assert tasks == [
        {
            "id": decide_police.pk,
            "flow": tasks[0]["flow"],
            "step": "decide_police",
            "status": "ASSIGNED",
        }
    ]
    for request in receiver.at("/police"):
        assert PERSON_NAME not in request["body"].decode()


def test_a_failure_is_retried_with_backoff_then_delivered(receiver, social_api):
    register(social_api, f"{receiver.url}/hook", events=["case.status_changed"])
    receiver.answers["/hook"] = [500, 302]
    refer(social_api)
    delivery = WebhookDelivery.objects.get()

    deliver()
    assert state(delivery) == ("pending", 1, "HTTP 500")
    wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=25) < wait <= timedelta(seconds=30)

    deliver()  # not due yet: nothing is sent
    assert len(receiver.at("/hook")) == 1

    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliver()  # a redirect is not followed: another failure, a longer wait
    assert state(delivery) == ("pending", 2, "HTTP 302")
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=55)
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]

    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    deliver()
    assert state(delivery) == ("delivered", 3, "HTTP 200")
    bodies = {request["body"] for request in receiver.at("/hook")}
    assert len(bodies) == 1  # the same event each time (its id, for the receiver's dedup)


def test_given_up_after_the_last_attempt_and_sent_again_from_the_admin(
    receiver, social_api, client, adam
):
    register(social_api, f"{receiver.url}/hook", events=["case.status_changed"])
    receiver.answers["/hook"] = [503]
    refer(social_api)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(attempts=webhooks.MAX_ATTEMPTS - 1)
    deliver()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_response) == ("failed", "HTTP 503")
    assert webhooks.backoff(1) == timedelta(seconds=30)
    assert webhooks.backoff(20) == timedelta(seconds=webhooks.LONGEST_WAIT)

    client.force_login(adam)
    page = client.get("/admin/casework/webhookdelivery/?status__exact=failed")
    assert page.status_code == 200 and f">{delivery.pk}<" in page.content.decode()
    response = client.post(
        "/admin/casework/webhookdelivery/",
        {"action": "retry", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at <= timezone.now()
    deliver()
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_a_rolled_back_change_sends_nothing(receiver, social_api, demo):
    register(social_api, f"{receiver.url}/hook")
    case = refer(social_api)
    before = WebhookDelivery.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        case_services.transition(
            user=demo["sara.samordnare"], case=case, name="begin_screening", purpose=PURPOSE
        )
        assert WebhookDelivery.objects.count() == before + 1  # enqueued with the change
        raise RuntimeError("the change fails later in its transaction")
    assert WebhookDelivery.objects.count() == before


def test_inactive_webhooks_and_clients_get_nothing(receiver, social_api, api_for, demo):
    hook = register(social_api, f"{receiver.url}/off")
    Webhook.objects.filter(pk=hook["id"]).update(is_active=False)
    unapproved = api_for(demo["sara.samordnare"].organisation.name)
    register(unapproved, f"{receiver.url}/unapproved")
    unapproved.client.approved_digest = ""
    unapproved.client.save(update_fields=["approved_digest"])
    events_only = api_for(demo["sara.samordnare"].organisation.name)
    register(events_only, f"{receiver.url}/tasks", events=["task.created"])
    refer(social_api)
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["task.created"]


def test_registration_needs_an_allowed_https_host(social_api, settings):
    settings.API_WEBHOOK_HOSTS = []
    refused = social_api.post("/api/v1/webhooks/", {"url": "https://x.orebro.se/", "events": BOTH})
    assert refused.status_code == 403
    assert refused.json()["type"] == "/api/v1/problems/webhooks-disabled"
    assert refused.json()["detail"] and refused.json()["detail_en"]

    settings.API_WEBHOOK_HOSTS = ["orebro.se", "127.0.0.1"]
    settings.API_WEBHOOK_HTTP_HOSTS = ["127.0.0.1"]
    for url in (
        "https://orebro.se.evil.example/",  # not a dot-suffix of the allowed host
        "https://evilorebro.se/",
        "https://169.254.169.254/latest/meta-data/",
        "http://x.orebro.se/hook",  # http only for the test receiver's host
        "https://user:password@x.orebro.se/",
        "ftp://x.orebro.se/",
    ):
        response = social_api.post("/api/v1/webhooks/", {"url": url, "events": BOTH})
        assert response.status_code == 400, (url, response.content)
        assert [error["field"] for error in response.json()["errors"]] == ["url"]
    assert response.json()["errors"][0]["detail"] == "Ange en giltig https-adress."
    for body in ({"url": "https://x.orebro.se/", "events": []}, {"url": "https://x.orebro.se/"}):
        response = social_api.post("/api/v1/webhooks/", body)
        assert response.status_code == 400
    assert not Webhook.objects.exists()
    assert (
        social_api.post(
            "/api/v1/webhooks/", {"url": "https://x.orebro.se/h", "events": BOTH}
        ).status_code
        == 201
    )
    assert (
        social_api.post(
            "/api/v1/webhooks/", {"url": "https://orebro.se/h", "events": ["task.created"]}
        ).status_code
        == 201
    )


def test_list_never_shows_the_secret_and_only_the_owner_deletes(receiver, social_api, police_api):
    made = register(social_api, f"{receiver.url}/hook")
    assert len(made["secret"]) >= 40
    listed = social_api.get("/api/v1/webhooks/")
    assert listed.status_code == 200
    assert listed.json() == [{k: v for k, v in made.items() if k != "secret"}]
    assert made["secret"] not in listed.content.decode()
    assert police_api.get("/api/v1/webhooks/").json() == []

    url = f"/api/v1/webhooks/{made['id']}/"
    assert police_api.http.delete(url, **police_api.headers(None)).status_code == 404
    assert social_api.http.delete(url, **social_api.headers(None)).status_code == 204
    assert social_api.http.delete(url, **social_api.headers(None)).status_code == 404
    assert not Webhook.objects.exists()
    huge = f"/api/v1/webhooks/{10**30}/"
    assert social_api.http.delete(huge, **social_api.headers(None)).status_code == 404


def test_managing_webhooks_needs_the_scope(receiver, api_for, demo):
    scopes = [scope for scope in ALL_SCOPES if scope != "webhooks:manage"]
    api = api_for(demo["anna.social"].organisation.name, scopes)
    response = api.post("/api/v1/webhooks/", {"url": f"{receiver.url}/h", "events": BOTH})
    assert response.status_code == 403
    assert api.get("/api/v1/webhooks/").status_code == 403


def test_the_admin_shows_webhooks_without_secrets_to_administrators(
    receiver, social_api, client, adam, demo
):
    made = register(social_api, f"{receiver.url}/hook")
    refer(social_api)
    client.force_login(adam)
    for url in (
        "/admin/casework/webhook/",
        f"/admin/casework/webhook/{made['id']}/change/",
        "/admin/casework/webhookdelivery/",
        f"/admin/casework/webhookdelivery/{WebhookDelivery.objects.first().pk}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert made["secret"] not in page.content.decode()
    response = client.post(
        "/admin/casework/webhook/", {"action": "deactivate", "_selected_action": [made["id"]]}
    )
    assert response.status_code == 302
    assert not Webhook.objects.get(pk=made["id"]).is_active

    client.force_login(demo["anna.social"])
    assert client.get("/admin/casework/webhook/").status_code in (302, 403)


def test_old_deliveries_and_idempotency_answers_are_forgotten(receiver, social_api, settings):
    register(social_api, f"{receiver.url}/hook", events=["case.status_changed"])
    refer(social_api)
    deliver()
    long_ago = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.update(delivered_at=long_ago)
    IdempotentRequest.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS + 1)
    )
    deliver()
    assert not WebhookDelivery.objects.exists()
    assert not IdempotentRequest.objects.exists()


def test_whether_anyone_listens_is_kept_until_a_webhook_changes(receiver, social_api, demo):
    """Which events any active webhook subscribes to is kept between events under the
    access generation (``casework_webhook`` raises it): a webhook registered, switched off
    by a bulk update or deleted counts at the very next event."""
    case = refer(social_api)  # no webhook yet: nothing enqueued, "no subscriber" kept
    assert WebhookDelivery.objects.count() == 0
    assert webhooks.case_status_changed(case=case) == 0
    hook = register(social_api, f"{receiver.url}/late")
    assert webhooks.case_status_changed(case=case) == 1
    Webhook.objects.filter(pk=hook["id"]).update(is_active=False)
    assert webhooks.case_status_changed(case=case) == 0
    Webhook.objects.filter(pk=hook["id"]).update(is_active=True)
    assert webhooks.case_status_changed(case=case) == 1
    Webhook.objects.filter(pk=hook["id"]).delete()
    assert webhooks.case_status_changed(case=case) == 0
    register(social_api, f"{receiver.url}/tasks-only", events=["task.created"])
    assert webhooks.case_status_changed(case=case) == 0


def _generation_reads(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return sum("casework_accessgeneration" in query["sql"] for query in captured.captured_queries)


def test_a_referral_reads_who_listens_once_for_its_case_and_its_first_task(receiver, social_api):
    """A referral's opening and its flow's start raise ``case.status_changed`` and
    ``task.created`` in one transaction that changes no webhook: which events have
    subscribers is read once there (``subscriptions_read_once``), and both are sent."""
    register(social_api, f"{receiver.url}/hook")
    case = refer(social_api)
    assert sorted(WebhookDelivery.objects.values_list("event", flat=True)) == [
        "case.status_changed",
        "task.created",
    ]
    # Outside the scope every event reads the generation; inside, the first one only.
    assert _generation_reads(lambda: webhooks.case_status_changed(case=case)) == 1

    def twice_inside():
        with webhooks.subscriptions_read_once():
            webhooks.case_status_changed(case=case)
            webhooks.case_status_changed(case=case)

    assert _generation_reads(twice_inside) == 1
    assert WebhookDelivery.objects.filter(event="case.status_changed").count() == 4
