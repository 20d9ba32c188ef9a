"""What a process keeps of who may do what, for as long as the access generation stands.

Every API request needs its token, the client behind it, the acting person and that
person's roles: four queries that give the same answer until an administrator changes
something. A :class:`GenerationCache` keeps such answers in this process, each under
the access generation (``casework.AccessGeneration``) it was read under; the database
raises the generation with every change to an account, a role, an organisation, an API
client, its application, a token (triggers of migration 0020, which catch bulk updates
and raw SQL too) or a webhook (migration 0031: which events have subscribers, ADR 0035).
One small query reads the generation per request; a kept answer read under an older one
is read again. docs/adr/0030-access-cache.md has the figures.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, TypeVar

from django.db import connection

Value = TypeVar("Value")

_GENERATION = "SELECT value FROM casework_accessgeneration WHERE id = 1"


# The generation a caller read already, for the calls within :func:`generation_read`.
_UNREAD = object()
_read: ContextVar[object] = ContextVar("samverkan_access_generation_read", default=_UNREAD)


@contextmanager
def generation_read(generation: int | None) -> Iterator[None]:
    """Within the block, :func:`access_generation` answers ``generation`` (read by the
    caller a moment before, e.g. with the request's session) instead of reading it."""
    token = _read.set(generation)
    try:
        yield
    finally:
        _read.reset(token)


def access_generation() -> int | None:
    """The current access generation; ``None`` where its row is missing (a test
    database flushed between tests), which makes every cache read afresh."""
    read = _read.get()
    if read is not _UNREAD:
        return read  # type: ignore[return-value]
    with connection.cursor() as cursor:
        cursor.execute(_GENERATION)
        row = cursor.fetchone()
    return None if row is None else row[0]


_caches: list[GenerationCache] = []


def clear_all() -> None:
    """Empty every cache of this process."""
    for cache in _caches:
        cache.clear()


class GenerationCache(Generic[Value]):
    """At most ``size`` values of this process, each valid while the generation it was
    read under is the current one (least recently used dropped first)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, Value]] = OrderedDict()
        _caches.append(self)

    def get(self, key: Hashable, generation: int | None, load: Callable[[], Value | None]):
        """The value kept for ``key`` under ``generation``, else ``load()`` (kept unless
        it is ``None`` or the generation is unknown)."""
        if generation is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == generation:
                self._entries.move_to_end(key)
                return entry[1]
        value = load()
        if value is not None and generation is not None:
            self._entries[key] = (generation, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
