"""Reading the access log for auditors: search with keyset pagination, and people lookup.

Pages are keyset pages by id (newest first): a page is "the ``limit`` events
with id below ``before``" (or above ``after``), which is one index range scan
per filter however large the log grows — no OFFSET, no COUNT.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.module_loading import import_string

from audit.models import AccessEvent, ChainBlock, ChainLink

PAGE_SIZE = 50


@dataclass(frozen=True)
class Sealing:
    """Where an entry sits in the hash chain: its position, when it was sealed, and the
    running hash after its link (chain formats 1 and 2) or after its block (format 3)."""

    position: int
    sealed_at: dt.datetime
    chain_hash: str


def sealing_of(source: str, entry_id: int) -> Sealing | None:
    """The entry's place in the chain (None while it waits to be sealed)."""
    link = ChainLink.objects.filter(source=source, entry_id=entry_id).first()
    if link is not None:
        return Sealing(link.position, link.sealed_at, link.chain_hash)
    # A block's ids ascend, so the blocks that can hold the entry are those whose highest id
    # is at least its id (an index range; the one holding it is nearly always the first).
    block = (
        ChainBlock.objects.annotate(highest=RawSQL("entry_ids[cardinality(entry_ids)]", ()))
        .filter(source=source, highest__gte=entry_id, entry_ids__contains=[entry_id])
        .order_by("highest")
        .first()
    )
    if block is None:
        return None
    position = block.first_position + block.entry_ids.index(entry_id)
    return Sealing(position, block.sealed_at, block.chain_hash)


class PersonLookupUnavailable(Exception):
    """Search by personnummer needs the person register's blind index, which is not wired."""


def _configured_person_lookup() -> Callable[..., Iterable[uuid.UUID]] | None:
    path = getattr(settings, "AUDIT_PERSON_LOOKUP", "")
    return import_string(path) if path else None


def person_ids_for(query: str, *, user: Any = None) -> list[uuid.UUID]:
    """The person ids a search term stands for: a person id itself, or a personnummer.

    A personnummer is resolved through ``settings.AUDIT_PERSON_LOOKUP``: a
    dotted path to a callable ``(personnummer, *, user) -> iterable of person
    ids`` in the person register (casework), which finds the candidates by the
    blind index and writes the access-log event for ``user`` if it opens any
    ciphertext to confirm them; it raises ``ValueError`` for an invalid number.
    The number itself is never logged. Until a lookup is configured, only
    person ids are accepted.
    """
    query = query.strip()
    try:
        return [uuid.UUID(query)]
    except ValueError:
        pass
    lookup = _configured_person_lookup()
    if lookup is None:
        raise PersonLookupUnavailable
    return list(lookup(query, user=user))


# Each part of an ``EventFilter`` and the access-log lookup it makes.
_FILTER_LOOKUPS = {
    "username": "username",
    "organisation": "organisation_name",
    "start": "occurred_at__gte",
    "end": "occurred_at__lt",
    "action": "action",
    "outcome": "outcome",
    "person_ids": "person_id__in",
}


@dataclass(frozen=True)
class EventFilter:
    """What the auditor searches for; every part optional."""

    username: str = ""
    organisation: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    action: str = ""
    outcome: str = ""
    person_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)

    def q(self) -> Q:
        """Every part that is set narrows the search (all of them must hold)."""
        return Q(
            **{
                lookup: getattr(self, part)
                for part, lookup in _FILTER_LOOKUPS.items()
                if getattr(self, part)
            }
        )

    def describe(self) -> dict[str, Any]:
        """The filter as plain JSON for the auditor's own access-log event (no personnummer)."""
        described: dict[str, Any] = {
            "username": self.username,
            "organisation": self.organisation,
            "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
            "action": self.action,
            "outcome": self.outcome,
            "person_ids": [str(p) for p in self.person_ids],
        }
        return {key: value for key, value in described.items() if value}


@dataclass
class EventPage:
    events: list[AccessEvent]
    newer: int | None  # pass as ``after`` for the page of newer events
    older: int | None  # pass as ``before`` for the page of older events


def _matching(event_filter: EventFilter) -> QuerySet[AccessEvent]:
    return AccessEvent.objects.filter(event_filter.q())


def search_events(
    *,
    event_filter: EventFilter,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> EventPage:
    """One page of matching events, newest first."""
    events = _matching(event_filter)
    if after is not None:
        page = list(events.filter(id__gt=after).order_by("id")[: limit + 1])
        has_more_newer = len(page) > limit
        page = list(reversed(page[:limit]))
        has_more_older = True
    else:
        if before is not None:
            events = events.filter(id__lt=before)
        page = list(events.order_by("-id")[: limit + 1])
        has_more_older = len(page) > limit
        page = page[:limit]
        has_more_newer = before is not None
    if not page:
        return EventPage([], None, None)
    if after is not None and not _matching(event_filter).filter(id__lt=page[-1].id).exists():
        has_more_older = False
    if before is not None and not _matching(event_filter).filter(id__gt=page[0].id).exists():
        has_more_newer = False
    return EventPage(
        page,
        newer=page[0].id if has_more_newer else None,
        older=page[-1].id if has_more_older else None,
    )


def iter_events(
    *, event_filter: EventFilter, limit: int, chunk: int = 2000
) -> Iterator[AccessEvent]:
    """Every matching event, newest first, at most ``limit`` — keyset chunks for exports."""
    before = None
    produced = 0
    while produced < limit:
        events = _matching(event_filter)
        if before is not None:
            events = events.filter(id__lt=before)
        batch = list(events.order_by("-id")[: min(chunk, limit - produced)])
        if not batch:
            return
        yield from batch
        produced += len(batch)
        before = batch[-1].id


def get_event(*, event_id: int) -> AccessEvent | None:
    return AccessEvent.objects.filter(pk=event_id).first()


# What counts as someone reading (or passing on) a person's data, for the data subject's
# register extract (who has read the data and when; docs/adr/0025-register-extract.md).
READING_ACTIONS = (
    AccessEvent.Action.CONSULT,
    AccessEvent.Action.DISCLOSE,
    AccessEvent.Action.COMBINE,
    AccessEvent.Action.EXPORT,
    AccessEvent.Action.BREAK_GLASS,
    AccessEvent.Action.EXTRACT,
)


def person_readings(
    *, person_id: uuid.UUID, organisation_name: str, until: dt.datetime
) -> QuerySet[AccessEvent]:
    """The allowed readings of person ``person_id`` by the users of one organisation (by
    the organisation's name as the log recorded it) up to ``until``, oldest first."""
    return AccessEvent.objects.filter(
        person_id=person_id,
        organisation_name=organisation_name,
        occurred_at__lte=until,
        action__in=READING_ACTIONS,
        outcome=AccessEvent.Outcome.ALLOWED,
    ).order_by("id")
