"""Reads for retention (gallring): which rule covers a case, each case's last entry, and
which cases are due to be culled. Nothing is shown to a user: the only decryption is of
a person's date of birth, to evaluate the research exception (as ``person_age``
evaluates an age rule: not a disclosure, no consultation event). docs/adr/0024.

**The last entry** of a case is the latest day (local time) of: the case opened or
closed, a timeline entry (``CaseEvent``: every transition, team change, plan,
assessment, decision and link writes one), an action recorded, an agency decision, a
consent given or withdrawn, a legal basis recorded, and a link to another case.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import DateTimeField, Max, OuterRef, Q, Subquery
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from casework import retention
from casework.crypto.envelope import Sealed, open_sealed
from casework.crypto.errors import CryptoError
from casework.crypto.keystore import PERSON, load_data_keys
from casework.models import (
    Action,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseLink,
    Consent,
    Organisation,
    Person,
    RetentionRule,
)


def terms(rule: RetentionRule) -> retention.Terms:
    return retention.Terms(
        event=rule.event,
        years=rule.years,
        end_of_following_year=rule.end_of_following_year,
        research_exception=rule.research_exception,
    )


class Rules:
    """The active rules, and the one that decides a case (the most specific: the
    organisation's own for the programme, its own for all, its type's for the programme,
    its type's for all)."""

    def __init__(self, rules: list[RetentionRule] | None = None):
        if rules is None:
            rules = list(RetentionRule.objects.filter(is_active=True).select_related("controller"))
        self.rules = rules
        self._index = {(self._scope(r), r.programme): r for r in rules}

    @staticmethod
    def _scope(rule: RetentionRule) -> tuple[str, Any]:
        if rule.organisation_id:
            return ("organisation", rule.organisation_id)
        return ("kind", rule.organisation_kind)

    def rule_for(self, *, organisation_id: int, kind: str, programme: str) -> RetentionRule | None:
        for scope in (("organisation", organisation_id), ("kind", kind)):
            for code in (programme, ""):
                rule = self._index.get((scope, code))
                if rule is not None:
                    return rule
        return None

    def latest_start(self, *, today: datetime.date) -> datetime.date | None:
        """No case whose counting event is later than this is due under any rule."""
        days = [retention.due_before(terms(r), today=today) for r in self.rules]
        return max(days, default=None)


def _latest(model, field: str, case_field: str = "case"):
    rows = (
        model.objects.filter(**{case_field: OuterRef("pk")})
        .values(case_field)
        .annotate(latest=Max(field))
        .values("latest")
    )
    return Subquery(rows, output_field=DateTimeField())


def with_last_entry(cases):
    """``cases`` annotated with ``last_entry_day`` and ``closed_day`` (local dates)."""
    tz = timezone.get_current_timezone()
    latest = Greatest(
        "opened_at",
        "closed_at",
        _latest(CaseEvent, "at"),
        _latest(Action, "created_at"),
        _latest(CaseDecision, "decided_at"),
        _latest(Consent, "given_at"),
        _latest(Consent, "withdrawn_at"),
        _latest(CaseLegalBasis, "recorded_at"),
        _latest(CaseLink, "created_at", "from_case"),
        _latest(CaseLink, "created_at", "to_case"),
        output_field=DateTimeField(),
    )
    return cases.annotate(
        last_entry_day=TruncDate(latest, tzinfo=tz), closed_day=TruncDate("closed_at", tzinfo=tz)
    )


@dataclass(frozen=True)
class DueCase:
    """A case due to be culled: identifiers, the rule and the dates (no personal data)."""

    case_id: uuid.UUID
    reference: str
    programme: str
    organisation: str
    person_id: uuid.UUID
    rule: RetentionRule
    due: retention.Due
    # Under its own data key already (``Case.keyed_at``); otherwise moved there first.
    keyed: bool = True


def _birth_dates(person_ids: set[uuid.UUID]) -> dict[uuid.UUID, datetime.date]:
    """The dates of birth of these persons (erased ones and missing keys left out): one
    query for the sealed dates, one for the keys, no model instances."""
    field = Person._meta.get_field("birth_date")
    table = Person._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {field.column} FROM {table} "  # noqa: S608 - the model's table
            "WHERE id = ANY(%s) AND erased_at IS NULL",
            [list(person_ids)],
        )
        rows = [(pk, blob) for pk, blob in cursor.fetchall() if blob is not None]
    keys = load_data_keys(owner_type=PERSON, owner_ids=[pk for pk, _blob in rows])
    born = {}
    for pk, blob in rows:
        key = keys.get(pk)
        if key is None:
            continue
        try:
            plain = open_sealed(key, Sealed(blob), table=table, column=field.column, row_id=pk)
        except CryptoError:
            continue
        born[pk] = field.decode(plain)
    return born


def due_cases(
    *, today: datetime.date, rules: Rules | None = None, batch_size: int = 2000
) -> Iterator[list[DueCase]]:
    """The closed, not yet culled cases due on ``today``, in batches (case-number order).

    Only closed cases are culled: an open case is in use, its last entry not its last.
    A case no active rule covers is never due; a person the research exception keeps
    keeps their case.
    """
    rules = rules or Rules()
    latest = rules.latest_start(today=today)
    if latest is None:
        return
    candidates = (
        with_last_entry(
            Case.objects.filter(culled_at__isnull=True, closed_at__isnull=False).filter(
                Q(closed_at__date__lte=latest)
            )
        )
        .order_by("reference")
        .values_list(
            "pk",
            "reference",
            "programme",
            "owner_organisation_id",
            "owner_organisation__kind",
            "owner_organisation__name",
            "person_id",
            "last_entry_day",
            "closed_day",
            "keyed_at",
        )
    )
    batch: list[tuple] = []
    for row in candidates.iterator(chunk_size=batch_size):
        batch.append(row)
        if len(batch) >= batch_size:
            if found := _due_in(batch, rules, today):
                yield found
            batch = []
    if batch and (found := _due_in(batch, rules, today)):
        yield found


def _due_in(rows: list[tuple], rules: Rules, today: datetime.date) -> list[DueCase]:
    ruled = []
    for pk, reference, programme, org_id, kind, org_name, person_id, last, closed, keyed in rows:
        rule = rules.rule_for(organisation_id=org_id, kind=kind, programme=programme)
        if rule is None:
            continue
        due = retention.due_dates(terms(rule), last_entry=last, closed=closed)
        if retention.is_due(due, today=today):
            ruled.append(
                DueCase(pk, reference, programme, org_name, person_id, rule, due, keyed is not None)
            )
    exempt = {d.person_id for d in ruled if d.rule.research_exception}
    born = _birth_dates(exempt) if exempt else {}
    return [
        d
        for d in ruled
        if not (d.rule.research_exception and retention.research_kept(born.get(d.person_id)))
    ]


def persons_left_behind() -> list[uuid.UUID]:
    """Persons (not erased) with a culled case and nothing else of theirs left: no case
    that is not culled, and no row of any other model that points at them (a GVI
    membership …; guardians belong to the person and go with them)."""
    persons = Person.objects.filter(erased_at__isnull=True, cases__culled_at__isnull=False)
    persons = persons.exclude(cases__culled_at__isnull=True)
    for relation in Person._meta.related_objects:
        if relation.related_model in (Case,) or relation.name == "guardians":
            continue
        persons = persons.exclude(**{f"{relation.name}__isnull": False})
    return list(persons.order_by("pk").values_list("pk", flat=True).distinct())


def describe_rule_change(change: dict, *, value) -> list[tuple[str, str]]:
    """A retention-rule request as label/value rows (organisations by name, choices by
    label); ``value`` shows a plain value."""
    names = dict(Organisation.objects.values_list("pk", "name"))
    labels = {
        "organisation_kind": dict(Organisation.Kind.choices),
        "event": dict(RetentionRule.Event.choices),
    }

    def shown(name: str, item) -> str:
        if name in ("organisation", "controller"):
            return names.get(item, value(None)) if item else value(None)
        if name in labels:
            return str(labels[name].get(item, value(None)))
        return value(item)

    def label(name: str) -> str:
        return str(RetentionRule._meta.get_field(name).verbose_name)

    if change.get("new"):
        rows = [(str(_("New retention rule")), str(_("Yes")))]
        return rows + [(label(n), shown(n, v)) for n, v in change.get("values", {}).items()]
    rows = [(str(_("Retention rule")), f"#{change.get('rule', '')}")]
    for name, diff in change.get("fields", {}).items():
        rows.append(
            (label(name), f"{shown(name, diff.get('from'))} → {shown(name, diff.get('to'))}")
        )
    return rows
