"""Factories of the defector tests: a case at any step, driven through the flow and services
(``workflows.defector.demo.Builder``), about a fresh synthetic person."""

from __future__ import annotations

import datetime

from django.utils import timezone

from tests.workflows.sig.factories import make_person
from workflows.defector.demo import Builder
from workflows.defector.models import DefectorCase, Level

PURPOSE = "Test av avhopparprocessen"
ADDRESS = "Provgatan 1"
PHONE = "070-174 06 11"


def defector_case(
    users, target: str, *, level: str = Level.LOW, years: int = 25, protected: int = 0
) -> DefectorCase:
    person = make_person(user=users["anna.social"], years=years)
    if protected:
        type(person).objects.filter(pk=person.pk).update(protected_identity=protected)
        person.refresh_from_db()
    return Builder(users, person, level=level).run(target)


def assessment(level: str = Level.LOW, **overrides) -> dict:
    today = timezone.localdate()
    values = {
        "level": level,
        "evidence_person": False,
        "national_programme": False,
        "basis": "Hot från tidigare nätverk.",
        "valid_until": today + datetime.timedelta(days=120),
        "next_review": today + datetime.timedelta(days=30),
    }
    values.update(overrides)
    return values


def reassess_data(case, level: str = Level.LOW, **overrides) -> dict:
    values = assessment(level, **overrides)
    data = {"_action": "reassess", "version": case.version}
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return data
