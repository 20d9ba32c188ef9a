"""A known synthetic data set for the statistics tests, written straight to the tables.

Statistics read plain columns only, so the persons here have no data key and
no encrypted values; every timestamp is set explicitly. ``expected`` in each
test is computed from the same list in Python, independently of the SQL.
"""

from __future__ import annotations

import datetime
import itertools
import random
from dataclasses import dataclass

import numpy as np
import pytest
from django.utils import timezone
from scipy.optimize import Bounds, LinearConstraint, milp

from casework.models import Case, Organisation, Person, User
from casework.statistics import disclosure
from workflows.sig.models import SigCase, Status

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _count_the_running_month_every_time(settings):
    settings.SAMVERKAN = {**settings.SAMVERKAN, "STATS_LIVE_SECONDS": 0}


@dataclass
class Spec:
    born: int
    gender: str
    area: str
    protected: int
    opened: datetime.datetime
    consented: datetime.datetime | None = None
    refused: datetime.datetime | None = None
    decided: datetime.datetime | None = None
    started: datetime.datetime | None = None
    approved: datetime.datetime | None = None
    closed: datetime.datetime | None = None
    reason: str = ""


def local(year: int, month: int, day: int, hour: int = 12) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(year, month, day, hour))


def random_specs(seed: int, count: int, *, years=(2023, 2024)) -> list[Spec]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
    specs = []
    for _ in range(count):
        opened = local(rng.choice(years), rng.randint(1, 12), rng.randint(1, 28))
        spec = Spec(
            born=opened.year - rng.randint(13, 24),
            gender=rng.choice(["female", "male", "male", "other"]),
            area=rng.choice(Person.Area.values),
            protected=rng.choice([0, 0, 0, 0, 0, 0, 2]),
            opened=opened,
        )
        moment = opened
        step = rng.random()

        def later(start):
            return start + datetime.timedelta(days=rng.randint(1, 80), hours=rng.randint(0, 5))

        if step < 0.15:
            spec.refused = later(moment)
            spec.closed, spec.reason = later(spec.refused), Case.CloseReason.CONSENT_REFUSED
        elif step > 0.25:
            spec.consented = moment = later(moment)
            if step > 0.35:
                spec.decided = spec.started = moment = later(moment)
                if step > 0.45:
                    spec.approved = moment = later(moment)
                    if step > 0.7:
                        spec.closed = later(moment)
                        spec.reason = rng.choice(
                            [Case.CloseReason.GOALS_MET, Case.CloseReason.MOVED]
                        )
            else:
                spec.decided = spec.closed = later(moment)
                spec.reason = Case.CloseReason.NOT_STARTED
        specs.append(spec)
    return specs


@pytest.fixture
def steering(client, db):
    """A steering-group member, logged in."""
    from django.contrib.auth.models import Group

    from casework import roles

    user = User.objects.create(username="stina.styrgrupp")
    user.groups.add(Group.objects.get(name=roles.STEERING_GROUP))
    client.force_login(user)
    return user


def write_case(model, programme, prefix: str, *, person, org, user, **fields):
    """A case of ``model`` (its reference ``<prefix>-T-…``) written straight to its table,
    where the statistics read it: ``org`` owns it, ``user`` there referred it."""
    return model.objects.create(
        reference=f"{prefix}-T-{next(_numbers):06d}",
        programme=programme,
        person=person,
        owner_organisation=org,
        referred_by=user,
        referring_organisation=org,
        **fields,
    )


@pytest.fixture
def make_cases(db):
    """Write ``specs`` as SIG cases (with their persons) and return them."""
    org = Organisation.objects.create(name="Socialtjänsten Test", kind="social_services")
    user = User.objects.create(username="statistik.test", organisation=org)

    def _make(specs: list[Spec]) -> list[Spec]:
        for spec in specs:
            person = Person.objects.create(
                birth_year=spec.born,
                gender=spec.gender,
                area=spec.area,
                protected_identity=spec.protected,
            )
            write_case(
                SigCase,
                Case.Programme.SIG,
                "SIG",
                person=person,
                org=org,
                user=user,
                opened_at=spec.opened,
                consented_at=spec.consented,
                consent_refused_at=spec.refused,
                decided_at=spec.decided,
                started_at=spec.started,
                plan_approved_at=spec.approved,
                closed_at=spec.closed,
                close_reason=spec.reason,
                status=Status.CLOSED if spec.closed else Status.REFERRED,
            )
        return specs

    return _make


# --- An attacker: an integer program over everything a period publishes ----------------------


def recoverable_cells(publication: disclosure.Publication) -> list[tuple[str, str]]:
    """The hidden cells whose value an attacker pins down from what is published.

    Every cell is an integer unknown (a cell published under several names — a
    quarter's total that is also a row of its year's quarters — is one unknown).
    Shown cells are fixed; "<t" cells lie in [1, t-1]; secondary cells are at
    least t (smaller counts would be "<t", zeros are shown); each table's rows sum
    to its total (a breakdown's measure, a year's quarters, a quarter's months).
    For each hidden cell the least and greatest feasible value are found with an
    integer program (HiGHS, through scipy): a cell is recovered when they are equal.
    """
    limit = publication.threshold
    refs, cells = [], []
    for ref, cell in publication.cells():
        refs.append(ref)
        cells.append(cell)
    index = {id(cell): i for i, cell in enumerate(cells)}
    big = sum(c.value for c in cells) * 10 + 100
    lower, upper = [], []
    for cell in cells:
        if cell.state == disclosure.PRIMARY:
            lower.append(1), upper.append(limit - 1)
        elif cell.state == disclosure.SECONDARY:
            lower.append(limit), upper.append(big)
        elif cell.state == disclosure.WITHHELD:  # nothing published about it
            lower.append(0), upper.append(big)
        else:
            lower.append(cell.value), upper.append(cell.value)
    rows = []
    for table in publication.tables:
        if table.withheld:
            continue
        row = np.zeros(len(refs))
        row[index[id(publication.totals[table.total])]] -= 1
        for cell in table.rows.values():
            row[index[id(cell)]] += 1
        rows.append(row)
    constraints = [LinearConstraint(np.array(rows), 0, 0)] if rows else []
    bounds = Bounds(lower, upper)
    integrality = np.ones(len(refs))
    found = []
    for i, cell in enumerate(cells):
        if not cell.hidden:
            continue
        objective = np.zeros(len(refs))
        objective[i] = 1
        low = milp(objective, constraints=constraints, bounds=bounds, integrality=integrality)
        high = milp(-objective, constraints=constraints, bounds=bounds, integrality=integrality)
        assert low.success and high.success, "the true values must be feasible"
        if round(low.fun) == round(-high.fun):
            found.append(refs[i])
    return found
