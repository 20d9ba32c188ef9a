"""GVI under random use: hypothesis drives random sequences of custom-notification and
sanction events through the services and checks after every step that the guards hold
(no delivery without a supporting legal assessment, a non-police messenger and the offer
of help; never more attempts than the limit; sanctions only after the message and with a
linked incident and a decision; no decision left stranded with every lever withdrawn) and
that every transition is audited exactly once."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from audit.models import AccessEvent
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.gvi import factories as f
from workflows.gvi import models as gvi
from workflows.gvi import services

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)
PURPOSE = f.PURPOSE


class GviMachine(RuleBasedStateMachine):
    users: dict = {}

    @initialize()
    def setup(self):
        self.group, (self.member,) = f.group(self.users, status=gvi.GroupStatus.MAPPED)
        self.n = f.notification(self.users, self.member, until=gvi.NotificationStatus.REQUESTED)
        self.incident = None

    def _try(self, call):
        """Run a service call; a refusal must change nothing."""
        before_events = AccessEvent.objects.filter(action="transition").count()
        before = (self.n.status, self.group.status)
        try:
            call()
        except ValidationError:
            self.n.refresh_from_db()
            self.group.refresh_from_db()
            assert (self.n.status, self.group.status) == before
            assert AccessEvent.objects.filter(action="transition").count() == before_events
        self.n.refresh_from_db()
        self.group.refresh_from_db()

    @property
    def per(self):
        return self.users["per.polis"]

    @property
    def sara(self):
        return self.users["sara.samordnare"]

    @rule(lawful=st.booleans())
    def assess(self, lawful):
        self._try(
            lambda: services.record_legal_assessment(
                user=self.per, purpose=PURPOSE, notification=self.n, lawful=lawful, assessment="B"
            )
        )

    @rule()
    def approve(self):
        self._try(
            lambda: services.approve_notification(
                user=self.sara, purpose=PURPOSE, notification=self.n, message="M"
            )
        )

    @rule()
    def reject(self):
        self._try(
            lambda: services.transition(user=self.per, obj=self.n, name="reject", purpose=PURPOSE)
        )

    @rule(kind=st.sampled_from(gvi.MessengerKind.values))
    def messenger(self, kind):
        self._try(
            lambda: services.add_messenger(
                user=self.per, purpose=PURPOSE, notification=self.n, kind=kind, description="X"
            )
        )

    @rule()
    def schedule(self):
        self._try(
            lambda: services.schedule_notification(
                user=self.per,
                purpose=PURPOSE,
                notification=self.n,
                scheduled_for=timezone.now() + datetime.timedelta(days=1),
            )
        )

    @rule()
    def not_reached(self):
        self._try(
            lambda: services.transition(
                user=self.per, obj=self.n, name="not_reached", purpose=PURPOSE
            )
        )

    @rule(response=st.sampled_from(["declined", "undecided"]))
    def deliver(self, response):
        self._try(
            lambda: services.record_delivery(
                user=self.per,
                purpose=PURPOSE,
                notification=self.n,
                offer_of_help="O",
                response=response,
            )
        )

    @rule()
    def incident(self):
        self._try(
            lambda: setattr(
                self,
                "incident",
                services.record_incident(
                    user=self.per,
                    purpose=PURPOSE,
                    date=timezone.localdate(),
                    area="other",
                    kind="shooting",
                    groups=[self.group],
                ),
            )
        )

    @rule()
    def monitor(self):
        self._try(
            lambda: services.transition(
                user=self.sara, obj=self.group, name="monitor", purpose=PURPOSE
            )
        )

    @rule()
    def sanctions(self):
        if self.incident is None:
            return
        self._try(
            lambda: services.decide_sanctions(
                user=self.sara,
                purpose=PURPOSE,
                group=self.group,
                incident=self.incident,
                levers=[("police_checks", self.per.organisation)],
            )
        )

    @rule()
    def withdraw(self):
        decision = self.group.open_decision()
        if decision is None:
            return
        for sanction in decision.sanctions.all():
            self._try(
                lambda sanction=sanction: services.withdraw_sanction(
                    user=self.per, purpose=PURPOSE, sanction=sanction, reason="R"
                )
            )

    @invariant()
    def no_stranded_decision(self):
        """Sanctions decided always have a lever that is not withdrawn."""
        if not hasattr(self, "group") or self.group.status != gvi.GroupStatus.SANCTION_DECIDED:
            return
        decision = self.group.open_decision()
        assert decision is not None
        assert decision.sanctions.exclude(status=gvi.SanctionStatus.WITHDRAWN).exists()

    @invariant()
    def guards_hold(self):
        if not hasattr(self, "n"):
            return
        n = self.n
        if n.delivered_at is not None:
            assert n.lawful is True and n.legal_assessed_at is not None
            assert n.messengers.exclude(kind="police").exists()
            assert n.offer_of_help is not None and n.response
        if n.status == gvi.NotificationStatus.APPROVED:
            assert n.lawful is True and n.message is not None
        assert n.attempts <= 3
        if self.group.sanction_decisions.exists():
            assert self.group.message_delivered_at is not None
            assert self.group.incidents.exists()

    @invariant()
    def every_transition_audited(self):
        if not hasattr(self, "n"):
            return
        for obj in (self.n, self.group, self.member):
            timeline = gvi.GviEvent.objects.filter(object_id=obj.pk).exclude(to_state="")
            audited = AccessEvent.objects.filter(action="transition", object_id=str(obj.pk))
            # The registration's timeline entry (no source state) has a CREATE event.
            assert timeline.exclude(from_state="").count() == audited.count()


def test_gvi_state_machine(users):
    GviMachine.users = dict(users)
    run_state_machine_as_test(
        GviMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
