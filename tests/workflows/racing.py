"""Helpers for the concurrency tests: hold racers in front of a lock, then let them go.

Real threads, each with its own database connection (as web workers), commit for real
(``transaction=True``). A barrier in front of the lock makes a race certain, not a
matter of timing.
"""

from __future__ import annotations

import html
import threading
from contextlib import contextmanager

from django.db import connections
from django.test import Client
from django.utils import translation

from audit.models import AccessEvent
from casework.models import Action, CaseEvent, Consent
from casework.services import cases as services
from casework.services.cases import CaseConflict


def race(**racers):
    """Run the named racers in threads at once; return what each returned or raised."""
    results: dict = {}

    def run(name, racer):
        try:
            results[name] = racer()
        except BaseException as exc:  # the test looks at it
            results[name] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item, name=item[0]) for item in racers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


def lock_meeting(monkeypatch, owner, *names: str):
    """``install(parties, first=None)``: hold each racer in front of the lock functions
    ``owner.<name>`` (each of ``names``: whichever a racer calls first) until all have
    arrived.

    With ``first`` (a racer's thread name) that racer takes the lock first and the
    others ask for it right after, so they wait for its commit: the order is chosen,
    not left to the scheduler. Only a racer's first lock meets the others (a withdrawal
    locks again to close the case, in the same transaction).
    """

    def install(parties: int, first: str | None = None) -> None:
        barrier = threading.Barrier(parties, timeout=30)
        first_has_it = threading.Event()
        local = threading.local()

        def meeting(lock):
            def meet_then_lock(*args, **kwargs):
                if getattr(local, "met", False):
                    return lock(*args, **kwargs)
                local.met = True
                barrier.wait()
                me = threading.current_thread().name
                if first is not None and me != first:
                    first_has_it.wait(timeout=30)
                try:
                    return lock(*args, **kwargs)
                finally:
                    if me == first:
                        first_has_it.set()

            return meet_then_lock

        for name in names:
            monkeypatch.setattr(owner, name, meeting(getattr(owner, name)))

    return install


def flow_lock_meeting(monkeypatch, flow_class):
    """``install(parties, first)``: hold each racer in front of the flow's lock (a task
    step's first lock, and a withdrawal's) until all have arrived; ``first`` (a thread
    name) takes it first, the others right after. Only a racer's first lock meets."""

    def install(parties: int, first: str) -> None:
        barrier = threading.Barrier(parties, timeout=30)
        first_has_it = threading.Event()
        local = threading.local()
        lock = flow_class.lock

        @contextmanager
        def meet_then_lock(cls, process_pk):
            if getattr(local, "met", False):
                with lock(process_pk):
                    yield
                return
            local.met = True
            barrier.wait()
            me = threading.current_thread().name
            if me != first:
                first_has_it.wait(timeout=30)
            with lock(process_pk):
                if me == first:
                    first_has_it.set()
                yield

        monkeypatch.setattr(flow_class, "lock", classmethod(meet_then_lock))

    return install


def record(case) -> dict:
    """What a race may have changed on ``case``, from the database."""
    case_id = case.pk
    case = type(case).objects.get(pk=case_id)
    return {
        "status": case.status,
        "version": case.version,
        "timeline": CaseEvent.objects.filter(case_id=case_id).count(),
        "transitions": AccessEvent.objects.filter(
            action=AccessEvent.Action.TRANSITION, object_id=str(case_id)
        ).count(),
        "withdrawn": Consent.objects.filter(case_id=case_id, withdrawn_at__isnull=False).count(),
        "actions": Action.objects.filter(case_id=case_id).count(),
    }


def race_two_coordinators(people, case, name: str, *, purpose: str, signed_by: str):
    """sara.samordnare and sven.samordnare take transition ``name`` of ``case`` at once,
    each signing it (``signed_by=<user>``): exactly one wins, the other gets
    ``CaseConflict``; one transition, one timeline entry, the version moved once.
    Return the winner's username and the case's record after the race."""
    before = record(case)

    def take(username):
        def run():
            user = people[username]
            mine = type(case).objects.get(pk=case.pk)  # each request loads its own copy
            services.transition(
                user=user,
                case=mine,
                name=name,
                purpose=purpose,
                expected_version=before["version"],
                **{signed_by: user},
            )
            return username

        return run

    results = race(sara=take("sara.samordnare"), sven=take("sven.samordnare"))
    winners = [r for r in results.values() if isinstance(r, str)]
    losers = [r for r in results.values() if not isinstance(r, str)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], CaseConflict), results
    after = record(case)
    assert after["version"] == before["version"] + 1
    assert after["timeline"] == before["timeline"] + 1
    assert after["transitions"] == before["transitions"] + 1
    return winners[0], after


def race_to_close_on_the_case_page(people, case, closers: dict[str, tuple[str, str]], language):
    """Two users close ``case`` on its page at once (``closers``: racer → username, close
    reason): one is taken to the closed case, the other told to reload (the message in the
    page's language); the case closed once. Return the conflict message."""
    before = record(case)
    url = f"/arenden/fall/{case.pk}/"

    def close(username, reason):
        def run():
            client = Client()
            client.cookies["django_language"] = language
            client.force_login(people[username])
            return client.post(
                url, {"_action": "close", "version": before["version"], "close_reason": reason}
            )

        return run

    responses = race(**{racer: close(*closer) for racer, closer in closers.items()}).values()
    assert sorted(r.status_code for r in responses) == [200, 302], responses
    refused = next(r for r in responses if r.status_code == 200)
    with translation.override(language):
        message = str(CaseConflict.message)
    assert html.escape(message) in refused.content.decode()
    after = record(case)
    assert after["version"] == before["version"] + 1
    assert after["transitions"] == before["transitions"] + 1
    assert after["timeline"] == before["timeline"] + 1
    return message, after
