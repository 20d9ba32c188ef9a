"""A SIG transition outside any transaction (autocommit, as a web request runs it) is
its one statement sent alone: atomic by itself, no ``BEGIN`` and ``COMMIT`` of its own
(docs/adr/0032-one-statement-transition.md, Session 12). Where the change must commit
with further writes — a webhook's delivery (the outbox), a close's end of the team — it
takes a transaction as before; inside the caller's transaction it is part of it.

Committed for real (``transaction=True``): a test case's wrapping transaction would
keep the path from being taken."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from audit import integrity
from audit.models import AccessEvent, PendingEntry
from audit.selectors import sealing_of
from casework.crypto.records import open_value
from casework.models import CaseEvent, CaseMembership, Webhook, WebhookDelivery
from casework.services import cases as services
from casework.services import webhooks
from casework.services.case_keys import case_data_key
from casework.services.cases import CaseConflict
from tests.api.conftest import make_client
from tests.conftest import COMMITTED_DB
from tests.workflows.racing import record
from tests.workflows.sig import prepared
from tests.workflows.sig.factories import PURPOSE, sig_case
from workflows.sig.models import SigCase, Status

pytestmark = COMMITTED_DB
REASON = "Screeningen påbörjas: bedömning av behov."


class Trips:
    """The statements sent on the default connection (whether each was inside a
    transaction) and the transactions committed or rolled back."""

    def __init__(self, monkeypatch) -> None:
        self.statements: list[tuple[str, bool]] = []
        self.ends = 0
        for name in ("_commit", "_rollback"):
            ends = getattr(connection, name)

            def counted(ends=ends):
                self.ends += 1
                return ends()

            monkeypatch.setattr(connection, name, counted)

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((sql, not connection.get_autocommit()))
        return execute(sql, params, many, context)


def begin_screening(user, case, **kwargs) -> None:
    """``begin_screening`` of ``case`` by ``user``, with the tests' purpose and reason."""
    services.transition(
        user=user, case=case, name="begin_screening", purpose=PURPOSE, reason=REASON, **kwargs
    )


def begin_screening_counted(monkeypatch, user, case) -> Trips:
    """``begin_screening`` of ``case`` by ``user``, its round trips counted."""
    trips = Trips(monkeypatch)
    with connection.execute_wrapper(trips):
        begin_screening(user, case)
    return trips


def calls_in_a_transaction(monkeypatch, module, name: str) -> list[bool]:
    """For each call of ``module.name`` from now on: whether it ran inside a transaction."""
    calls = []
    function = getattr(module, name)

    def spied(**kwargs):
        calls.append(connection.in_atomic_block)
        return function(**kwargs)

    monkeypatch.setattr(module, name, spied)
    return calls


def test_outside_a_transaction_a_transition_is_one_statement_committed_alone(
    users, monkeypatch, settings
):
    settings.AUDIT_SEAL_INTERVAL = 0  # the inline seal runs at every commit
    sara = users["sara.samordnare"]
    # The user's roles are read once per request (kept on the user object): a first
    # transition reads them, the second counts only its own.
    services.transition(
        user=sara, case=sig_case(users, Status.REFERRED), name="begin_screening", purpose=PURPOSE
    )
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    sealed = calls_in_a_transaction(monkeypatch, integrity, "seal")
    trips = begin_screening_counted(monkeypatch, sara, case)
    written = [(sql, inside) for sql, inside in trips.statements if prepared.name(sql)]
    assert len(written) == 1, trips.statements
    assert written[0] == (written[0][0], False)  # sent in autocommit: no transaction
    assert prepared.statement(written[0][0]).startswith("WITH probed AS (")
    # The statement committed itself; the one commit is the inline seal's own, after it.
    assert trips.ends == len(sealed) == 1
    assert [sql for sql, _inside in trips.statements if "FOR UPDATE" in sql] == []

    # The same rows as in a transaction.
    after = record(case)
    assert after["status"] == Status.SCREENING
    assert after["version"] == case.version == before["version"] + 1
    assert after["timeline"] == before["timeline"] + 1
    assert after["transitions"] == before["transitions"] + 1
    entry = CaseEvent.objects.get(case_id=case.pk, transition="begin_screening")
    assert (entry.actor, entry.from_state, entry.to_state) == (
        sara,
        Status.REFERRED,
        Status.SCREENING,
    )
    assert open_value(entry, "reason", case_data_key(SigCase.objects.get(pk=case.pk))) == REASON
    event = AccessEvent.objects.get(
        object_id=str(case.pk),
        action=AccessEvent.Action.TRANSITION,
        details__transition="begin_screening",
    )
    assert (event.user, event.fields, event.purpose) == (sara, ["reason"], PURPOSE)
    # The seal was arranged after the commit (on_commit without a transaction runs at
    # once, the statement having committed) and chained the event.
    assert sealed == [False]
    assert sealing_of("access", event.pk) is not None  # sealed, in the format written
    assert not PendingEntry.objects.exists()
    # django-fsm's record of the loaded state follows the statement.
    case.save()


def test_outside_a_transaction_a_stale_version_writes_nothing(users):
    case = sig_case(users, Status.REFERRED)
    before = record(case)
    with pytest.raises(CaseConflict):
        begin_screening(users["sara.samordnare"], case, expected_version=before["version"] - 1)
    assert record(case) == before
    assert case.status == Status.REFERRED  # the object is the row again


def test_outside_a_transaction_a_subscribed_webhook_takes_a_transaction(
    users, monkeypatch, settings
):
    """What the probe announces must commit with the change (the outbox): the statement
    sent alone writes nothing when a webhook is subscribed, and the transition is
    written once, in a transaction, with its delivery."""
    settings.AUDIT_SEAL_INTERVAL = None  # no seal's commit among the counted
    sara = users["sara.samordnare"]
    case = sig_case(users, Status.REFERRED)
    client, _id, _secret = make_client(case.owner_organisation)
    Webhook.objects.create(
        client=client,
        url="https://mottagare.example/krok",
        events=Webhook.Event.CASE_STATUS_CHANGED,
        secret="hemlig-test",
    )
    before = record(case)
    looked_up = calls_in_a_transaction(monkeypatch, webhooks, "case_status_changed")
    trips = begin_screening_counted(monkeypatch, sara, case)
    assert looked_up == [True]  # in the transaction that writes the change
    assert trips.ends == 1
    after = record(case)
    assert after["status"] == Status.SCREENING
    assert after["version"] == before["version"] + 1
    assert after["timeline"] == before["timeline"] + 1
    assert after["transitions"] == before["transitions"] + 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["case"] == {
        "id": str(case.pk),
        "programme": case.programme,
        "status": Status.SCREENING,
        "version": after["version"],
    }


def test_outside_a_transaction_a_close_takes_a_transaction(users, monkeypatch, settings):
    """A close ends the team between the change and the event: its statements commit
    together."""
    settings.AUDIT_SEAL_INTERVAL = None  # no seal's commit among the counted
    case = sig_case(users, Status.ACTIVE)
    before = record(case)
    trips = Trips(monkeypatch)
    with connection.execute_wrapper(trips):
        services.close_case(
            user=users["sara.samordnare"], case=case, purpose=PURPOSE, reason="goals_met"
        )
    moved = [inside for sql, inside in trips.statements if prepared.name(sql)]
    assert moved == [True]
    assert trips.ends == 1
    after = record(case)
    assert (after["status"], after["version"]) == (Status.CLOSED, before["version"] + 1)
    assert after["transitions"] == before["transitions"] + 1
    assert not CaseMembership.objects.filter(case_id=case.pk, valid_to__isnull=True).exists()


def test_inside_the_callers_transaction_a_transition_is_part_of_it(users):
    """The caller's transaction rolled back takes the transition with it."""
    case = sig_case(users, Status.REFERRED)
    before = record(case)

    class Undone(Exception):
        pass

    with pytest.raises(Undone), transaction.atomic():
        begin_screening(users["sara.samordnare"], case)
        raise Undone
    assert record(case) == before


def test_outside_a_transaction_the_change_history_names_who_changed_it(users):
    """The request's history context goes with the statement sent alone (the prefix's
    ``set_config(…, true)`` and the statement are one implicit transaction): the case's
    change records name the acting user."""
    from audit import history
    from audit.models import ChangeRecord

    sara = users["sara.samordnare"]
    case = sig_case(users, Status.REFERRED)
    known = set(ChangeRecord.objects.values_list("id", flat=True))
    metadata = {"user_id": sara.pk, "username": sara.username, "request_id": "r-alone"}
    with history.context(metadata):
        services.transition(user=sara, case=case, name="begin_screening", purpose=PURPOSE)
    records = ChangeRecord.objects.exclude(id__in=known).filter(row_id=str(case.pk))
    assert "workflows_sigcase" in {record.table_name for record in records}  # the status
    assert {record.context["request_id"] for record in records} == {"r-alone"}
