"""Webhooks: events out to the organisations' own systems (docs/adr/0022-integration-api.md).

A client system registers a webhook through the API (``casework.api.webhooks``) for some
of :class:`~casework.models.Webhook.Event`; this module is everything after that.

- **Where**: only to the hosts the operator allows (``API_WEBHOOK_HOSTS``, exactly or as
  a dot-suffix; none by default) and only over https (plain http only to the hosts of
  ``API_WEBHOOK_HTTP_HOSTS``), checked when the webhook is registered and again before
  each delivery: a client cannot make the server post into the operator's own network.
- **What**: identifiers and states only, never personal data (no name, no personnummer,
  no case number): ``case.status_changed`` carries the case's id, programme, status and
  version; ``task.created`` the task's id, flow, step and status and its case's id.
- **To whom**: ``case.status_changed`` to the clients of the case's responsible
  organisation and of the organisations of its team's current members (at a close, the
  team as it was); ``task.created`` to the clients of the organisation that does the
  step: its owner's if it has one, else the case's responsible organisation, else (a
  step of no case, GVI's) the organisations whose active staff may take it from its
  queue. Only usable clients (``casework.api.auth.usable_client``) and active webhooks.
- **Enqueueing** (:func:`case_status_changed`, :func:`task_created`): one query finds
  the webhooks; one :class:`~casework.models.WebhookDelivery` row per webhook is inserted
  in the transaction of the change itself (an outbox: a rollback sends nothing, a commit
  loses nothing). No network call happens there.
- **Delivering** (:func:`deliver_due`, ``manage.py deliver_webhooks`` on a timer): claims
  one due delivery at a time (``SELECT … FOR UPDATE SKIP LOCKED``: runs in parallel never
  send one twice), POSTs the JSON body with ``Samverkan-Event``, ``Samverkan-Delivery``
  and ``Samverkan-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (the
  webhook's secret as key), follows no redirect, waits at most ``TIMEOUT`` seconds. A 2xx
  answer is a delivery; anything else is retried after 30 s, 1 min, 2 min … (at most
  ``LONGEST_WAIT``) until ``MAX_ATTEMPTS``, then given up. ``last_response`` keeps the
  status code or the error's class, never an answer's body.
- **Verifying** (:func:`verify_signature`): the receiving side's check, for reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Task

from audit.services import Action as AuditAction
from audit.services import record_event
from casework.access_cache import GenerationCache, access_generation
from casework.api.auth import usable_client
from casework.models import ApiClient, Case, CaseMembership, User, Webhook, WebhookDelivery

Event = Webhook.Event
Status = WebhookDelivery.Status

EVENT_HEADER = "Samverkan-Event"
DELIVERY_HEADER = "Samverkan-Delivery"
SIGNATURE_HEADER = "Samverkan-Signature"
# Seconds: the answer's wait, the first retry's delay and the longest one.
TIMEOUT = 5
FIRST_RETRY = 30
LONGEST_WAIT = 3600
# Attempts before a delivery is given up (30 s · 2^n: about two hours in all).
MAX_ATTEMPTS = 8
# Delivered events are kept this long for the admin, then deleted.
KEEP_DELIVERED = timedelta(days=30)
# Webhooks a client may have.
MAX_WEBHOOKS = 20
# The signature's tolerance for the receiver's clock (seconds).
TOLERANCE = 300
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class WebhooksDisabled(Exception):
    """The operator allows no host for webhooks (``API_WEBHOOK_HOSTS`` is empty)."""


# --- Where a webhook may point ----------------------------------------------------------------


def _listed(host: str, entries) -> bool:
    """``host`` is one of ``entries`` or under one of them (a dot-suffix)."""
    for entry in entries:
        entry = str(entry).strip().lower().lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _url_refusal(url: str) -> Any:
    """Why the server may not post to ``url`` (a message), or ``None``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (a malformed port raises)
    except ValueError:
        return _("Enter a valid address.")
    if not host or parts.scheme not in ("https", "http"):
        return _("Enter a valid https address.")
    if parts.username is not None or parts.password is not None:
        return _("The address must not hold a user name or a password.")
    if not _listed(host, settings.API_WEBHOOK_HOSTS):
        return _("This host is not among the hosts the operator allows for webhooks.")
    if parts.scheme == "http" and not _listed(host, settings.API_WEBHOOK_HTTP_HOSTS):
        return _("The address must use https.")
    return None


def url_allowed(url: str) -> bool:
    """Whether the server may post to ``url`` under the operator's settings now."""
    return _url_refusal(url) is None


# --- Registering (the API's operations) ---------------------------------------------------------


def client_webhooks(*, client: ApiClient):
    """The client's webhooks, oldest first."""
    return Webhook.objects.filter(client=client).order_by("created_at", "pk")


def register_webhook(*, client: ApiClient, url: str, events: list[str]) -> tuple[Webhook, str]:
    """A new webhook of ``client``; returns it and its secret (the only time it is told).

    :class:`WebhooksDisabled` when the operator allows no host; ``ValidationError`` for an
    address the operator does not allow, no or unknown events, or too many webhooks."""
    if not settings.API_WEBHOOK_HOSTS:
        raise WebhooksDisabled()
    refusal = _url_refusal(url)
    if refusal is not None:
        raise ValidationError({"url": ValidationError(refusal, code="not_allowed")})
    chosen = sorted(set(events))
    if not chosen or not set(chosen) <= set(Event.values):
        raise ValidationError({"events": ValidationError(_("Select valid events."), "invalid")})
    with transaction.atomic():
        # One registration of the client at a time: the limit below holds.
        ApiClient.objects.select_for_update().filter(pk=client.pk).first()
        if Webhook.objects.filter(client=client).count() >= MAX_WEBHOOKS:
            raise ValidationError(
                _("A client may have at most %(limit)d webhooks."),
                code="limit",
                params={"limit": MAX_WEBHOOKS},
            )
        secret = secrets.token_urlsafe(32)
        webhook = Webhook.objects.create(
            client=client, url=url, events=" ".join(chosen), secret=secret
        )
        record_event(
            action=AuditAction.CREATE,
            obj=webhook,
            fields=["url", "events"],
            details={"events": chosen, "host": urlsplit(url).hostname},
        )
    return webhook, secret


def delete_webhook(*, client: ApiClient, webhook_id: int) -> bool:
    """Delete ``client``'s webhook ``webhook_id`` and its deliveries; ``False`` when the
    client has no such webhook (another client's is not its to see)."""
    with transaction.atomic():
        webhook = Webhook.objects.filter(client=client, pk=webhook_id).first()
        if webhook is None:
            return False
        record_event(action=AuditAction.CHANGE, obj=webhook, details={"webhook": "deleted"})
        webhook.delete()
    return True


def deactivate_webhooks(*, user, webhooks) -> int:
    """An administrator switches webhooks off (nothing more is sent to them); one
    access-log event each. Returns how many were on."""
    with transaction.atomic():
        chosen = list(Webhook.objects.select_for_update().filter(pk__in=webhooks, is_active=True))
        for webhook in chosen:
            record_event(action=AuditAction.CHANGE, user=user, obj=webhook, fields=["is_active"])
        Webhook.objects.filter(pk__in=[webhook.pk for webhook in chosen]).update(is_active=False)
    return len(chosen)


def retry_now(*, deliveries) -> int:
    """Pending and given-up ``deliveries`` are due now (one more attempt for a given-up
    one); returns how many."""
    return WebhookDelivery.objects.filter(
        pk__in=deliveries, status__in=(Status.PENDING, Status.FAILED)
    ).update(status=Status.PENDING, next_attempt_at=timezone.now())


# --- Enqueueing: in the transaction of the change ------------------------------------------------


def _subscribed_events() -> frozenset[str]:
    """The events any active webhook subscribes to."""
    rows = Webhook.objects.filter(is_active=True).values_list("events", flat=True)
    return frozenset(event for events in rows for event in events.split())


# Which events any active webhook subscribes to, kept while the access generation stands
# (``casework_webhook`` raises it: migration 0031). Without a subscriber, an event reads
# nothing more (most installations, and most events): no join of webhooks, clients,
# organisations and the case's team in the transaction of every change.
_subscriptions: GenerationCache[frozenset[str]] = GenerationCache(size=1)


# Inside :func:`subscriptions_read_once`: a holder of the events read there (``None`` until
# the first event asks).
_read_once: ContextVar[list[frozenset[str] | None] | None] = ContextVar(
    "webhook_subscriptions_read_once", default=None
)


@contextlib.contextmanager
def subscriptions_read_once() -> Iterator[None]:
    """Inside, which events have subscribers is read once, when the first event asks: for
    one step that raises several events and changes no webhook (a referral's case opening
    and its flow's first task, ``workflows.common.services.open_and_start``)."""
    token = _read_once.set([None])
    try:
        yield
    finally:
        _read_once.reset(token)


def _current_subscriptions() -> frozenset[str]:
    return _subscriptions.get("events", access_generation(), _subscribed_events)


def _wanted(event: str) -> bool:
    """Whether any active webhook subscribes to ``event``."""
    holder = _read_once.get()
    if holder is None:
        return event in _current_subscriptions()
    if holder[0] is None:
        holder[0] = _current_subscriptions()
    return event in holder[0]


def _enqueue(event: str, organisations: Q, content: dict[str, Any]) -> int:
    """One delivery of ``event`` for each active webhook subscribed to it of a usable
    client of ``organisations`` (a condition on ``client__organisation_id``); the caller
    has found the event :func:`_wanted`."""
    found = (
        Webhook.objects.filter(
            organisations,
            is_active=True,
            client__is_active=True,
            client__organisation__is_active=True,
            events__regex=rf"(^| ){re.escape(event)}( |$)",
        )
        .select_related("client__organisation")
        .order_by("pk")
    )
    hooks = [webhook for webhook in found if usable_client(webhook.client)]
    if not hooks:
        return 0
    payload = {"event": event, "occurred_at": timezone.now().isoformat(), **content}
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=webhook, event=event, payload=payload) for webhook in hooks]
    )
    return len(hooks)


def subscribed_sql(event: str) -> tuple[str, list[str]]:
    """An SQL condition (and its parameters), true when some active webhook is
    subscribed to ``event``: evaluated inside the statement of a change (the transition
    engine's probe), so that the full lookup (:func:`case_status_changed`) costs nothing
    while no webhook wants the event. The lookup decides who receives it."""
    return (
        f"EXISTS (SELECT 1 FROM {Webhook._meta.db_table} WHERE is_active AND events ~ %s)",  # noqa: S608
        [rf"(^| ){re.escape(event)}( |$)"],
    )


def case_status_changed(*, case: Case) -> int:
    """``case.status_changed`` for the programme case ``case`` (its new status saved): to
    the clients of its responsible organisation and of its current team's organisations.
    Called by the transition engine (``casework.services.case_changes``) and at a case's
    opening (``casework.services.cases.record_opening``)."""
    if not _wanted(Event.CASE_STATUS_CHANGED):
        return 0
    now = timezone.now()
    team = (
        CaseMembership.objects.filter(case_id=case.pk, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .exclude(user__organisation__isnull=True)
        .values("user__organisation_id")
    )
    organisations = Q(client__organisation_id=case.owner_organisation_id) | Q(
        client__organisation_id__in=team
    )
    content = {
        "case": {
            "id": str(case.pk),
            "programme": case.programme,
            "status": getattr(case, "status", ""),
            "version": case.version,
        }
    }
    return _enqueue(Event.CASE_STATUS_CHANGED, organisations, content)


def _queue_holders(permission: str):
    """The organisations of the active users who hold ``permission`` (``app.codename``)."""
    app_label, _dot, codename = permission.partition(".")
    granted = Q(
        user_permissions__codename=codename, user_permissions__content_type__app_label=app_label
    ) | Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    )
    return (
        User.objects.filter(granted, is_active=True, organisation__isnull=False)
        .values("organisation_id")
        .distinct()
    )


def task_created(*, task) -> int:
    """``task.created`` for a new human task (a viewflow ``Task``): to the clients of the
    organisation that does the step (see the module's docstring)."""
    if not _wanted(Event.TASK_CREATED):
        return 0
    process = task.coerced_process
    case_id = getattr(process, "case_id", None)
    if task.owner_id is not None:
        organisations = Q(
            client__organisation_id__in=User.objects.filter(pk=task.owner_id).values(
                "organisation_id"
            )
        )
    elif case_id is not None:
        organisations = Q(
            client__organisation_id__in=Case.objects.filter(pk=case_id).values(
                "owner_organisation_id"
            )
        )
    elif task.owner_permission:
        organisations = Q(client__organisation_id__in=_queue_holders(task.owner_permission))
    else:
        return 0
    flow_task = task.flow_task
    content = {
        "task": {
            "id": task.pk,
            "flow": flow_task.flow_class.instance.flow_label,
            "step": flow_task.name,
            "status": task.status,
        },
        "case": {"id": str(case_id)} if case_id is not None else None,
    }
    return _enqueue(Event.TASK_CREATED, organisations, content)


@receiver(post_save, sender=Task, dispatch_uid="casework_webhooks_task_created")
def _task_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    # Human steps only (viewflow's ``View`` nodes); a fixture's load (``raw``) is no event.
    if created and not raw and instance.flow_task_type == "HUMAN":
        task_created(task=instance)


# --- Signing and verifying ----------------------------------------------------------------------


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Samverkan-Signature`` header of ``body``: ``t=<unix time>,v1=<hex HMAC>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes | str, tolerance: int = TOLERANCE, *, now=None
) -> bool:
    """The receiver's check of a delivery: ``header`` (``Samverkan-Signature``) signs
    exactly ``body`` (the raw bytes received) with ``secret``, and its time is within
    ``tolerance`` seconds of ``now`` (a replayed old delivery is refused)."""
    if isinstance(body, str):
        body = body.encode()
    timestamp, signed = None, []
    for item in (header or "").split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            timestamp = value
        elif name == "v1":
            signed.append(value)
    if timestamp is None or not _TIMESTAMP.match(timestamp) or not signed:
        return False
    moment = time.time() if now is None else now
    if abs(moment - int(timestamp)) > tolerance:
        return False
    expected = _mac(secret, int(timestamp), body).encode()
    return any(hmac.compare_digest(expected, value.encode()) for value in signed)


# --- Delivering ----------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new address: it is not followed (a non-2xx)."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
    """POST ``body``; (delivered, what to record: the status code or the error's class)."""
    # Only http(s) to an allowed host reaches here (``url_allowed``, just before).
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
    except urllib.error.URLError as error:
        reason = error.reason
        return False, type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return False, type(error).__name__
    return 200 <= status < 300, f"HTTP {status}"


def body_of(delivery: WebhookDelivery) -> bytes:
    """The JSON body of ``delivery`` as sent (and signed)."""
    content = {"event": delivery.event, "id": delivery.pk, **delivery.payload}
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s · 2^(attempts-1), capped."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT))


def _attempt(delivery: WebhookDelivery) -> None:
    """Send ``delivery`` once and record the outcome (its row is locked by the caller)."""
    webhook = delivery.webhook
    given_up = False
    if not webhook.is_active:
        delivered, answer, given_up = False, "webhook inactive", True
    elif not url_allowed(webhook.url):
        delivered, answer, given_up = False, "host not allowed", True
    elif not usable_client(webhook.client):
        delivered, answer = False, "client not usable"
    else:
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Samverkan-Webhooks/1",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.pk),
            SIGNATURE_HEADER: signature(webhook.secret, body),
        }
        delivered, answer = _post(webhook.url, body, headers)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_response = answer[:200]
    if delivered:
        delivery.status, delivery.delivered_at = Status.DELIVERED, now
    elif given_up or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = Status.FAILED
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=["attempts", "last_response", "status", "delivered_at", "next_attempt_at"]
    )


def deliver_next(*, due_by=None) -> WebhookDelivery | None:
    """Claim the next pending delivery due by ``due_by`` (now), which no other run holds,
    send it and record the outcome; ``None`` when none is due."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook__client__organisation")
            .filter(status=Status.PENDING, next_attempt_at__lte=due_by or timezone.now())
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if delivery is None:
            return None
        _attempt(delivery)
    return delivery


def deliver_due(*, once: bool = False) -> dict[str, int]:
    """Send what is due. ``once``: the deliveries due when the pass starts, each once;
    otherwise until nothing is due (a retry that falls due meanwhile goes too). Returns
    the count of each outcome (``delivered``, ``pending``: to be retried, ``failed``)."""
    counts = {status: 0 for status in Status.values}
    started = timezone.now()
    while (delivery := deliver_next(due_by=started if once else None)) is not None:
        counts[delivery.status] += 1
    return counts


def forget_delivered(*, now=None) -> int:
    """Delete the deliveries delivered more than ``KEEP_DELIVERED`` ago; how many."""
    cutoff = (now or timezone.now()) - KEEP_DELIVERED
    deleted, _rows = WebhookDelivery.objects.filter(
        status=Status.DELIVERED, delivered_at__lt=cutoff
    ).delete()
    return deleted
