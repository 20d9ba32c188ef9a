"""The reminders of consent over time (``manage.py send_reminders``): a consent about to
expire, a person who turned 18 during the case (the guardians' consents no longer carry:
their own is needed), a person who left the programme's age range.

Each is reminded of once per event (``Reminder.ONCE_PER_EVENT``: the object id names
the event, whatever day it is found). The case's lead social worker is reminded; a case
without one goes to its coordinators' list. Ages are evaluated from the sealed date of
birth only to apply the rule (``person_age``: nothing is shown or returned but the
reminder's ids and dates), for the few persons whose plain birth year makes the event
possible.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from uuid import UUID

from django.db.models import F
from django.db.models.functions import ExtractYear
from django.utils import timezone

from casework import policy, programmes
from casework.crypto.keystore import PERSON, load_data_key
from casework.models import Case, CaseMembership, Consent, Reminder
from casework.selectors.persons import person_age

# A consent is reminded of this many days before its ``valid_until``.
CONSENT_NOTICE_DAYS = 30


def _leads(case_ids: Iterable[UUID]) -> dict[UUID, int]:
    return dict(
        CaseMembership.objects.filter(
            case_id__in=list(case_ids), role=CaseMembership.Role.LEAD, valid_to__isnull=True
        ).values_list("case_id", "user_id")
    )


def _reminders(kind: str, today: datetime.date, events: list[tuple[str, UUID]]) -> list[Reminder]:
    """One reminder of ``kind`` per (event id, case id), to the case's lead."""
    leads = _leads(case_id for _event, case_id in events)
    return programmes.make_reminders(
        kind, today, ((event, case_id, leads.get(case_id)) for event, case_id in events)
    )


def expiring_consents(today: datetime.date) -> list[Reminder]:
    """Consents in force on open cases whose ``valid_until`` is within
    :data:`CONSENT_NOTICE_DAYS` days — the newest of their giver only (an older one,
    already replaced, is not reminded of)."""
    candidates = Consent.objects.filter(
        decision=Consent.Decision.GIVEN,
        withdrawn_at__isnull=True,
        valid_until__gte=today,
        valid_until__lte=today + datetime.timedelta(days=CONSENT_NOTICE_DAYS),
        case__closed_at__isnull=True,
    ).order_by("valid_until")
    events = [
        (str(consent.pk), consent.case_id)
        for consent in candidates
        if not Consent.objects.filter(
            case_id=consent.case_id,
            giver=consent.giver,
            guardian_id=consent.guardian_id,
            given_at__gt=consent.given_at,
        ).exists()
    ]
    return _reminders(Reminder.Kind.CONSENT_EXPIRING, today, events)


def _open_cases(**filters):
    return Case.objects.filter(
        closed_at__isnull=True, person__erased_at__isnull=True, **filters
    ).select_related("person")


def _ages(case: Case, today: datetime.date) -> tuple[int, int]:
    """The person's age when the case opened and today (one key-store read)."""
    dek = load_data_key(owner_type=PERSON, owner_id=case.person_id)
    opened = timezone.localdate(case.opened_at)
    return (
        person_age(case.person, on=opened, dek=dek),
        person_age(case.person, on=today, dek=dek),
    )


def turned_18(today: datetime.date) -> list[Reminder]:
    """Open cases whose person was under 18 when the case opened and is 18 now."""
    adult = policy.ADULT_AGE
    cases = _open_cases(
        person__birth_year__lte=today.year - adult,
        person__birth_year__gte=ExtractYear(F("opened_at")) - adult,
    )
    events = []
    for case in cases:
        then, now = _ages(case, today)
        if then < adult <= now:
            events.append((f"{case.pk}:{adult}", case.pk))
    return _reminders(Reminder.Kind.TURNED_18, today, events)


def age_range_left(today: datetime.date) -> list[Reminder]:
    """Open cases of a programme with an age range (the registry's ``age_range``) whose
    person was within it at most at its oldest when the case opened and is older now."""
    events = []
    for programme in programmes.registered():
        if programme.age_range is None:
            continue
        _youngest, oldest = programme.age_range()
        cases = _open_cases(
            programme=programme.code, person__birth_year__lte=today.year - oldest - 1
        )
        for case in cases:
            then, now = _ages(case, today)
            if then <= oldest < now:
                events.append((f"{case.pk}:age", case.pk))
    return _reminders(Reminder.Kind.AGE_RANGE_LEFT, today, events)


SOURCES = (
    (Reminder.Kind.CONSENT_EXPIRING, expiring_consents),
    (Reminder.Kind.TURNED_18, turned_18),
    (Reminder.Kind.AGE_RANGE_LEFT, age_range_left),
)
