"""Factory pieces every programme's tests use: a consent, the end of the happy path, a timer
that comes due, and a driver of a flow's task views."""

from __future__ import annotations

import datetime

from django.test import Client
from django.utils import timezone

from casework.models import Case, Consent
from casework.services import cases as services


def record_consent(user, case, purpose: str, organisations, **consent) -> Consent:
    """A consent covering ``organisations``, recorded by ``user`` through the service:
    the person's own, given in writing, unless ``consent`` says otherwise (``giver``,
    ``guardian``, ``decision``, ``form``)."""
    consent = {
        "giver": Consent.Giver.SELF,
        "decision": Consent.Decision.GIVEN,
        "form": Consent.Form.WRITTEN,
        **consent,
    }
    return services.record_consent(
        user=user, case=case, purpose=purpose, organisations=organisations, **consent
    )


def reach_review_date(case) -> None:
    """The passing of time: the review date is today."""
    Case.objects.filter(pk=case.pk).update(review_date=timezone.localdate())
    case.review_date = timezone.localdate()


def review_date_ahead(user, case, purpose: str, *, days: int = 30) -> None:
    """A review date ``days`` ahead, set by ``user`` through ``update_case`` (the API may
    set one in any state)."""
    review = timezone.localdate() + datetime.timedelta(days=days)
    services.update_case(user=user, case=case, purpose=purpose, review_date=review)


def assert_closed(case, status: str, reason: str) -> None:
    """``case`` (reloaded) is closed as ``close_case`` closes one: in ``status``, with
    ``reason`` and a close time, and without a review date."""
    case.refresh_from_db()
    assert case.status == status
    assert case.close_reason == reason
    assert case.closed_at is not None
    assert case.review_date is None


def close_or_follow_up(case, state: str, *, coordinator, lead, purpose: str):
    """The end of a programme's happy path, after its plan: ``closed``, closed by the
    coordinator (goals met); ``follow_up``, the review date reached and the follow-up begun."""
    if state == "closed":
        return services.close_case(
            user=coordinator, case=case, purpose=purpose, reason=Case.CloseReason.GOALS_MET
        )
    reach_review_date(case)
    services.transition(user=lead, case=case, name="begin_follow_up", purpose=purpose)
    if state == "follow_up":
        return case
    raise ValueError(f"unknown state {state!r}")


def fire_timer(timer) -> None:
    """The passing of time: the flow's ``timer`` task is due and ``send_reminders`` fires it."""
    from viewflow.workflow.timers import fire_due_timers

    type(timer).objects.filter(pk=timer.pk).update(
        scheduled=timezone.now() - datetime.timedelta(minutes=1)
    )
    fire_due_timers()


def open_task(process, node):
    """The open task of flow node ``node`` (a node of the process's flow)."""
    return process.task_set.exclude(status__in=["DONE", "CANCELED"]).get(flow_task=node)


class TaskDriver:
    """Walks a case through a flow's task views as the demo users would (the Django test
    client: the "assign" button for a queue task, then the step's form)."""

    def __init__(self, users):
        self.users = users
        self.client = Client()

    def post(self, username: str, url: str, data: dict | None = None, *, expect: int = 302):
        self.client.force_login(self.users[username])
        response = self.client.post(url, data or {})
        assert response.status_code == expect, (url, response.status_code, response.content[:3000])
        return response

    def url(self, task, name: str = "execute") -> str:
        return task.flow_task.reverse(name, args=[task.process_id, task.pk])

    def task(self, case, node: str):
        raise NotImplementedError

    def run(self, case, node: str, username: str, data: dict, *, expect: int = 302):
        """One POST of ``node``'s task view as ``username`` (claiming a queue task first)."""
        task = self.task(case, node)
        if task.owner_id is None:
            self.post(username, self.url(task, "assign"))
            task.refresh_from_db()
        case.refresh_from_db()
        response = self.post(
            username, self.url(task), {"version": case.version, **data}, expect=expect
        )
        case.refresh_from_db()
        return response
