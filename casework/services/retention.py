"""Retention (gallring): rules changed with four eyes, and the cull of due cases.

**Rules** (``RetentionRule``) change only through a change request of kind
``retention_rule`` that a second administrator approves
(``casework.services.administration``; docs/adr/0014 and 0024).

**The cull** (``manage.py cull``, daily): for each batch of due cases
(``casework.selectors.retention.due_cases``)

1. the cases' data keys are destroyed in the key store (committed at once; a case
   still waiting to be moved from its person's key is moved first,
   ``casework.services.case_reseal``): from this moment nothing sealed for the case can
   be read, here or in any backup;
2. in one transaction the cases are marked culled (``culled_at``) and one ``cull``
   access-log event is written per case (identifiers, the rule and the dates);
3. then every person left with nothing but culled cases is erased with the one erasure
   service (``casework.services.persons.erase_person``).

A run interrupted after 1 finds the same cases due next time (they are not marked) and
completes them; one interrupted after 2 finds their persons in step 3. The plain
columns of a culled case stay, so the statistics keep counting it.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import Action, record_events
from casework.models import AdminChangeRequest, Case, RetentionRule
from casework.selectors.retention import DueCase, Rules, due_cases, persons_left_behind
from casework.services import administration
from casework.services.batches import run_batches
from casework.services.case_keys import destroy_case_keys
from casework.services.case_reseal import release_previous_person_keys, reseal_cases
from casework.services.persons import erase_persons
from casework.services.retention_rules import (
    RULE_FIELDS,
    SCOPE_FIELDS,
    clean_rule_values,
    rule_values,
)

Kind = AdminChangeRequest.Kind
# The access log's purposes (stored as written: Swedish, as the log is read).
CULL_PURPOSE = "Gallring enligt gallringsregel"
ERASE_PURPOSE = "Gallring: alla personens ärenden är gallrade"
RESEAL_PURPOSE = "Gallring: ärendet flyttas till egen nyckel"


def request_rule_change(
    *, user, rule: RetentionRule | None, values: dict[str, Any], reason: str
) -> AdminChangeRequest:
    """Ask for a new retention rule (``rule=None``) or a change of ``rule``; it takes
    effect when another administrator approves it. What a rule covers (organisation,
    type, programme) is fixed once it exists: a new scope is a new rule."""
    reason = administration.request_reason(user, Kind.RETENTION_RULE, reason)
    values = clean_rule_values(values, rule=rule)
    if rule is None:
        change: dict[str, Any] = {"new": True, "values": values}
    else:
        before = rule_values(rule)
        if any(before[name] != values[name] for name in SCOPE_FIELDS):
            raise ValidationError(
                _(
                    "What a rule covers (organisation, type, programme) cannot be changed: "
                    "request a new rule instead."
                ),
                code="scope",
            )
        fields = administration.changed_fields(before, values, RULE_FIELDS)
        change = {"new": False, "rule": rule.pk, "fields": fields}
    with transaction.atomic():
        return administration.create_request(
            user=user, kind=Kind.RETENTION_RULE, target=rule, change=change, reason=reason
        )


@dataclass
class CullResult:
    culled: list[DueCase] = field(default_factory=list)
    keys_destroyed: int = 0
    persons_erased: int = 0
    # Seconds spent finding the due cases, culling them and erasing the persons.
    timings: dict[str, float] = field(default_factory=dict)


def _event(due: DueCase, *, key_destroyed: bool) -> dict[str, Any]:
    rule = due.rule
    return {
        "action": Action.CULL,
        "object_type": "casework.case",
        "object_id": str(due.case_id),
        "person_id": due.person_id,
        "purpose": CULL_PURPOSE,
        "details": {
            "reference": due.reference,
            "programme": due.programme,
            "rule": rule.pk,
            "controller": rule.controller_id,
            "counted_from": rule.event,
            "years": rule.years,
            "start": due.due.start.isoformat(),
            "due": due.due.due.isoformat(),
            "deadline": due.due.deadline.isoformat(),
            # False: gone already (an interrupted run, or a case that never had one).
            "data_key_destroyed": key_destroyed,
        },
    }


def cull_batch(batch: list[DueCase]) -> tuple[list[DueCase], int]:
    """Cull one batch of due cases: keys first (committed), then the marks and events in
    one transaction. Returns the cases marked now and how many keys were destroyed."""
    ids = [due.case_id for due in batch]
    if waiting := [due.case_id for due in batch if not due.keyed]:
        # Values still under the person's key move to the case's own first, so that
        # destroying it leaves nothing of the case readable (docs/adr/0023).
        reseal_cases(case_ids=waiting, purpose=RESEAL_PURPOSE)
    # The change history's copies of the cases from before they moved to their own keys
    # are under their persons' previous keys: those go first (docs/adr/0023).
    release_previous_person_keys(
        person_ids={due.person_id for due in batch}, purpose=RESEAL_PURPOSE
    )
    destroyed = destroy_case_keys(ids)
    with transaction.atomic(), connection.cursor() as cursor:
        # One statement marks the batch (the rows it locks are those still unmarked).
        cursor.execute(
            f"UPDATE {Case._meta.db_table} SET culled_at = %s "  # noqa: S608 - the model's table
            "WHERE id = ANY(%s) AND culled_at IS NULL RETURNING id",
            [timezone.now(), ids],
        )
        marked = {row[0] for row in cursor.fetchall()}
        done = [due for due in batch if due.case_id in marked]
        record_events(*(_event(due, key_destroyed=due.case_id in destroyed) for due in done))
    return done, len(destroyed)


def erase_persons_left_behind(*, batch_size: int = 2000, workers: int = 1) -> int:
    """Erase every person whose cases are all culled and who has nothing else left (one
    query finds them all: erasing one leaves no one else behind), ``batch_size`` at a
    time, ``workers`` batches at once."""
    person_ids = persons_left_behind()
    chunks = (person_ids[i : i + batch_size] for i in range(0, len(person_ids), batch_size))

    def erase(chunk):
        return erase_persons(purpose=ERASE_PURPOSE, person_ids=chunk)

    return sum(run_batches(chunks, erase, workers=workers))


def cull(
    *, today: datetime.date | None = None, batch_size: int = 2000, workers: int = 1
) -> CullResult:
    """Cull every case due ``today`` (default: the local date) and erase the persons left
    with nothing. Idempotent: a second run finds nothing more to do.

    ``workers`` batches run at once, each on its own connections
    (:mod:`casework.services.batches`), while the next batches are being found."""
    today = today or timezone.localdate()
    result = CullResult()
    started = time.perf_counter()
    # The due cases come from one query whose rows are fixed when it starts (a
    # server-side cursor): marking a batch does not shift the next.
    batches = due_cases(today=today, rules=Rules(), batch_size=batch_size)
    for done, destroyed in run_batches(batches, cull_batch, workers=workers):
        result.culled += done
        result.keys_destroyed += destroyed
    culled = time.perf_counter()
    result.persons_erased = erase_persons_left_behind(batch_size=batch_size, workers=workers)
    result.timings = {
        "find and cull": culled - started,
        "erase": time.perf_counter() - culled,
    }
    return result
