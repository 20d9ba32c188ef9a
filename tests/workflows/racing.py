"""Helpers for the concurrency tests: hold racers in front of a lock, then let them go."""

from __future__ import annotations

import threading
from contextlib import contextmanager


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
