"""Running independent batches of a bulk command (``cull``'s erasures and destructions) on
several database connections at once, each in a thread of its own. (``reseal_case_keys``
runs its batches one by one through here, and with ``--workers`` in forked processes
instead: ``casework.services.case_reseal``.)

Each batch is its own transaction on disjoint rows, so two may run side by side: while
one waits for the database (the change history's triggers, the access log's chain),
the other does its Python work (AES-GCM, key wrapping). On two cores this keeps both
busy instead of taking turns. With ``workers=1`` (the default, and inside a test's
transaction, whose rows other connections cannot see) the batches run one after the
other in the calling thread, on its connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from django.db import connections

T = TypeVar("T")
R = TypeVar("R")


def run_batches(batches: Iterable[T], work: Callable[[T], R], *, workers: int = 1) -> Iterator[R]:
    """``work(batch)`` for every batch, ``workers`` at a time (each thread on its own
    database connections, closed at the end); the results as batches finish. The
    first error stops the submitting and is raised once the running batches are done
    (each committed or rolled back on its own: resumable as a sequential run)."""
    if workers < 1:
        raise ValueError("workers must be positive")
    if workers == 1:
        for batch in batches:
            yield work(batch)
        return

    closing = threading.Barrier(workers)

    def close() -> None:
        # One per thread: each waits for the others, so every thread gets one.
        try:
            closing.wait(timeout=60)
        finally:
            connections.close_all()  # this thread's connections

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="samverkan-batch") as pool:
        try:
            running: set[Future] = set()
            for batch in batches:
                if len(running) >= workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                running.add(pool.submit(work, batch))
            for future in running:
                yield future.result()
        finally:
            wait(running)
            for _ in range(workers):
                pool.submit(close)
