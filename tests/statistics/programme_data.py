"""Known synthetic data sets of the defector programme, SSPF and GVI for the statistics
tests, written straight to the tables (plain columns only, every moment explicit).

Each builder returns, next to writing the rows, a list of :class:`Fact`: one
counted thing (a measure, its moment, its breakdown) computed here in Python,
independently of the SQL — the tests count the facts of a period and compare.
"""

from __future__ import annotations

import datetime
import itertools
import random
from collections import Counter
from dataclasses import dataclass

from casework.models import Case, CaseEvent, Organisation, Person, User
from casework.statistics import periods
from workflows.defector.models import CLOSE_REASONS, DefectorCase, DefectorSupportCase
from workflows.gvi import models as gvi
from workflows.sspf.models import AnonymisedDiscussion, SspfCase

from .conftest import local, write_case

_numbers = itertools.count(1)
NO_BAND = -1


@dataclass
class Fact:
    measure: str
    at: datetime.datetime | None  # an event's moment, or a stock's start
    age: int = NO_BAND
    gender: str = "unknown"
    area: str = ""
    detail: str = ""
    until: datetime.datetime | None = None  # a stock's end (None: still in it)
    stock: bool = False


def band(age: int, bands) -> int:
    for index, (low, high) in enumerate(bands):
        if (low is None or age >= low) and (high is None or age <= high):
            return index
    return NO_BAND


def _in(moment, period: periods.Period) -> bool:
    if moment is None:
        return False
    day = moment.astimezone(local(2000, 1, 1).tzinfo).date()
    return period.start <= day < period.end


def expected(facts: list[Fact], period: periods.Period) -> dict[str, Counter]:
    """measure -> Counter of ("", ""), ("age", band), ("gender", g), ("area", a),
    ("detail", d) for the period (events in it; stocks at its end)."""
    end = local(period.end.year, period.end.month, 1, 0)
    result: dict[str, Counter] = {}
    for fact in facts:
        if fact.stock:
            counted = (
                fact.at is not None and fact.at < end and (fact.until is None or fact.until >= end)
            )
        else:
            counted = _in(fact.at, period)
        if not counted:
            continue
        counter = result.setdefault(fact.measure, Counter())
        for ref in (
            ("", ""),
            ("age", fact.age),
            ("gender", fact.gender),
            ("area", fact.area),
            ("detail", fact.detail),
        ):
            counter[ref] += 1
    return result


def _later(rng: random.Random, moment: datetime.datetime) -> datetime.datetime:
    return moment + datetime.timedelta(days=rng.randint(1, 70), hours=rng.randint(0, 5))


def _people(rng, count, *, ages, years=(2023, 2024)):
    for _ in range(count):
        opened = local(rng.choice(years), rng.randint(1, 12), rng.randint(1, 28))
        age = rng.randint(*ages)
        yield (
            opened,
            Person.objects.create(
                birth_year=opened.year - age,
                gender=rng.choice(["female", "male", "male", "other"]),
                area=rng.choice(Person.Area.values),
                protected_identity=rng.choice([0, 0, 0, 0, 0, 2]),
            ),
        )


def _dims(person: Person, at: datetime.datetime, bands) -> dict:
    return {
        "age": band(at.year - person.birth_year, bands),
        "gender": person.gender,
        "area": "" if person.protected_identity else person.area,
    }


def _org_and_user():
    org, _created = Organisation.objects.get_or_create(
        name="Socialtjänsten Statistik", kind="social_services"
    )
    user, _created = User.objects.get_or_create(username="statistik.data", organisation=org)
    return org, user


# --- Defector programme --------------------------------------------------------------------------

DEFECTOR_BANDS = [(None, 17), (18, 20), (21, 25), (26, None)]


def defector_data(seed: int, count: int) -> list[Fact]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
    org, user = _org_and_user()
    facts: list[Fact] = []
    for opened, person in _people(rng, count, ages=(15, 35)):
        dims = _dims(person, opened, DEFECTOR_BANDS)
        row = {"opened_at": opened}
        events = []  # timeline: (transition, from, to, at)
        step = rng.random()
        if step < 0.12:
            moment = row["consent_refused_at"] = _later(rng, opened)
            row.update(routed_at=moment, routed_to="not_eligible", closed_at=moment)
            row.update(close_reason=Case.CloseReason.NOT_ELIGIBLE, status="not_eligible")
        elif step < 0.2:
            moment = _later(rng, opened)
            row.update(routed_at=moment, routed_to="not_eligible", closed_at=moment)
            row.update(close_reason=Case.CloseReason.NOT_ELIGIBLE, status="not_eligible")
        else:
            row["consented_at"] = _later(rng, opened)
            moment = row["assessed_at"] = _later(rng, row["consented_at"])
            level = rng.choice(["low", "low", "elevated", "high"])
            row["assessed_level"] = level
            national = rng.random() < 0.1
            route = "national" if national else "local" if level == "low" else "regional"
            row.update(routed_at=moment, routed_to=route)
            state = {
                "local": "local_intake",
                "regional": "handed_over_regional",
                "national": "handed_over_national",
            }[route]
            transition = {
                "local": "route_local",
                "regional": "hand_over_regional",
                "national": "hand_over_national",
            }[route]
            events.append((transition, "threat_assessed", state, moment))  # not a re-routing
            if route == "local" and rng.random() < 0.6:
                moment = row["started_at"] = _later(rng, moment)
                state = "active"
            for _ in range(rng.choice([0, 0, 1, 2])):
                moment = _later(rng, moment)
                if state in ("local_intake", "active"):
                    events.append(("hand_over_regional", state, "handed_over_regional", moment))
                    state = "handed_over_regional"
                elif state == "handed_over_regional" and rng.random() < 0.5:
                    events.append(("hand_over_national", state, "handed_over_national", moment))
                    state = "handed_over_national"
                elif state == "handed_over_national":
                    events.append(("hand_over_regional", state, "handed_over_regional", moment))
                    state = "handed_over_regional"
                else:
                    events.append(("route_local", state, "local_intake", moment))
                    state = "local_intake"
            if rng.random() < 0.4:
                row["closed_at"] = _later(rng, moment)
                row["close_reason"] = rng.choice(CLOSE_REASONS)
            row["status"] = "closed" if row.get("closed_at") else state
        case = write_case(
            DefectorCase,
            Case.Programme.DEFECTOR,
            "AVH",
            person=person,
            org=org,
            user=user,
            referral_source="police",
            **row,
        )
        for transition, source, target, at in events:
            CaseEvent.objects.create(
                case=case,
                at=at,
                kind=CaseEvent.Kind.TRANSITION,
                transition=transition,
                from_state=source,
                to_state=target,
            )
            if source != "threat_assessed":
                raised = target == "handed_over_national" or (
                    target == "handed_over_regional" and source != "handed_over_national"
                )
                detail = "raised" if raised else "lowered"
                at_dims = _dims(person, opened, DEFECTOR_BANDS)
                facts.append(Fact("rerouted", at, detail=detail, **at_dims))
        if row.get("routed_to") == "regional":  # social services' support case: not counted
            write_case(
                DefectorSupportCase,
                Case.Programme.DEFECTOR,
                "AVS",
                person=person,
                org=org,
                user=user,
                opened_at=row["routed_at"],
            )
        facts += [
            Fact("referred", opened, **dims),
            Fact("consent_given", row.get("consented_at"), **dims),
            Fact("consent_refused", row.get("consent_refused_at"), **dims),
            Fact("assessed", row.get("assessed_at"), detail=row.get("assessed_level", ""), **dims),
            Fact("routed", row.get("routed_at"), detail=row.get("routed_to", ""), **dims),
            Fact("started", row.get("started_at"), **dims),
            Fact("closed", row.get("closed_at"), detail=row.get("close_reason", ""), **dims),
            Fact("open", opened, until=row.get("closed_at"), stock=True, **dims),
        ]
    return facts


# --- SSPF ----------------------------------------------------------------------------------------

SSPF_BANDS = [(10, 12), (13, 15), (16, 18)]


def sspf_data(seed: int, count: int, discussions: int) -> list[Fact]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
    org, user = _org_and_user()
    facts: list[Fact] = []
    for opened, person in _people(rng, count, ages=(9, 19)):
        dims = _dims(person, opened, SSPF_BANDS)
        row = {"opened_at": opened}
        step = rng.random()
        if step < 0.15:
            moment = row["consent_refused_at"] = row["closed_at"] = _later(rng, opened)
            row["close_reason"] = Case.CloseReason.CONSENT_REFUSED
        elif step > 0.25:
            moment = row["consented_at"] = _later(rng, opened)
            if step > 0.4:
                moment = row["plan_adopted_at"] = _later(rng, moment)
            if rng.random() < 0.4:
                row["closed_at"] = _later(rng, moment)
                row["close_reason"] = rng.choice(
                    [Case.CloseReason.GOALS_MET, Case.CloseReason.MOVED, Case.CloseReason.OTHER]
                )
        write_case(
            SspfCase,
            Case.Programme.SSPF,
            "SSPF",
            person=person,
            org=org,
            user=user,
            status="closed" if row.get("closed_at") else "assessment",
            **row,
        )
        facts += [
            Fact("referred", opened, **dims),
            Fact("consent_given", row.get("consented_at"), **dims),
            Fact("consent_refused", row.get("consent_refused_at"), **dims),
            Fact("plan_adopted", row.get("plan_adopted_at"), **dims),
            Fact("closed", row.get("closed_at"), detail=row.get("close_reason", ""), **dims),
        ]
        if row.get("plan_adopted_at"):
            until = row.get("closed_at")
            facts.append(Fact("active", row["plan_adopted_at"], until=until, stock=True, **dims))
    bands = {"10-12": 0, "13-15": 1, "16-18": 2, "": NO_BAND}
    for _ in range(discussions):
        day = datetime.date(rng.choice([2023, 2024]), rng.randint(1, 12), rng.randint(1, 28))
        age_band = rng.choice(["10-12", "13-15", "16-18", ""])
        area = rng.choice([*Person.Area.values, ""])
        topic = rng.choice(AnonymisedDiscussion.Topic.values)
        AnonymisedDiscussion.objects.create(
            date=day,
            organisation=org,
            topic=topic,
            age_band=age_band,
            area=area,
            summary="En elev med hög frånvaro.",
            recorded_by=user,
        )
        at = local(day.year, day.month, day.day, 0)
        facts.append(Fact("discussions", at, age=bands[age_band], area=area, detail=topic))
    return facts


# --- GVI -----------------------------------------------------------------------------------------

GVI_BANDS = [(None, 17), (18, 20), (21, 24), (25, None)]
GROUP_PATH = [
    "identified",
    "mapped",
    "message_delivered",
    "monitored",
    "incident_linked",
    "sanction_decided",
    "sanction_active",
    "sanction_ended",
]


def gvi_data(seed: int, groups: int) -> list[Fact]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
    _org, user = _org_and_user()
    police, _created = Organisation.objects.get_or_create(name="Polisen Statistik", kind="police")
    facts: list[Fact] = []
    for _ in range(groups):
        created = local(rng.choice([2023, 2024]), rng.randint(1, 12), rng.randint(1, 28))
        group = gvi.Group.objects.create(
            reference=f"GVI-T-{next(_numbers):05d}",
            area=rng.choice(Person.Area.values),
            size_band=gvi.SizeBand.SMALL,
            created_by=user,
            created_at=created,
        )
        moment, states = created, GROUP_PATH[: rng.randint(1, len(GROUP_PATH))]
        for index, state in enumerate(states):
            gvi.GviEvent.objects.create(
                group=group,
                object_type="workflows.group",
                object_id=group.pk,
                at=moment,
                transition="register" if index == 0 else "move",
                from_state=states[index - 1] if index else "",
                to_state=state,
            )
            following = _later(rng, moment) if index + 1 < len(states) else None
            facts.append(Fact("groups", moment, detail=state, until=following, stock=True))
            moment = following or moment
        gvi.GviEvent.objects.create(  # an event without a state change: not a state
            group=group,
            object_type="workflows.group",
            object_id=group.pk,
            at=moment,
            transition="incident",
        )
        members = []
        for _m in range(rng.randint(1, 4)):
            person = Person.objects.create(
                birth_year=created.year - rng.randint(15, 28),
                gender="male",
                area=group.area,
                protected_identity=rng.choice([0, 0, 2]),
            )
            members.append(
                gvi.GroupMember.objects.create(group=group, person=person, added_by=user)
            )
        incident = gvi.Incident.objects.create(
            date=_later(rng, created).date(),
            area=group.area,
            kind=rng.choice(gvi.Incident.Kind.values),
            recorded_by=user,
            organisation=police,
        )
        day = incident.date
        facts.append(
            Fact("incidents", local(day.year, day.month, day.day, 0), detail=incident.kind)
        )
        if rng.random() < 0.7:
            held = _later(rng, created)
            call_in = gvi.CallIn.objects.create(
                reference=f"KALL-T-{next(_numbers):05d}",
                date=held.date(),
                status="held",
                held_at=held,
                created_by=user,
            )
            facts.append(Fact("held", held))
            for member in members:
                attended = rng.random() < 0.7
                gvi.CallInAttendee.objects.create(call_in=call_in, member=member, attended=attended)
                if attended:
                    age = band(held.year - member.person.birth_year, GVI_BANDS)
                    facts.append(Fact("attendees", held, age=age, gender="male", area=group.area))
        for member in members[:2]:
            delivered = _later(rng, created) if rng.random() < 0.7 else None
            response = rng.choice(["accepted", "declined", "undecided"]) if delivered else ""
            notification = gvi.CustomNotification.objects.create(
                reference=f"AVI-T-{next(_numbers):05d}",
                member=member,
                requested_by=user,
                police_officer=user,
                status="delivered" if delivered else "scheduled",
                delivered_at=delivered,
                response=response,
            )
            if delivered:
                age = band(delivered.year - member.person.birth_year, GVI_BANDS)
                facts.append(Fact("delivered", delivered, age=age, gender="male"))
                if response == "accepted":
                    facts.append(Fact("offers_accepted", delivered, age=age, gender="male"))
            for _attempt in range(rng.choice([0, 0, 1, 2])):
                at = _later(rng, created)
                gvi.GviEvent.objects.create(
                    group=group,
                    object_type="workflows.customnotification",
                    object_id=notification.pk,
                    at=at,
                    transition="not_reached",
                    from_state="scheduled",
                    to_state="not_reached",
                )
                facts.append(Fact("not_reached", at))
        if rng.random() < 0.5:
            decision = gvi.SanctionDecision.objects.create(
                group=group, incident=incident, decided_by=user
            )
            for lever in rng.sample(gvi.Lever.values, rng.randint(1, 3)):
                decided = _later(rng, created)
                executed = _later(rng, decided) if rng.random() < 0.6 else None
                gvi.Sanction.objects.create(
                    decision=decision,
                    lever=lever,
                    organisation=police,
                    status="executed" if executed else "decided",
                    decided_at=decided,
                    executed_at=executed,
                )
                facts.append(Fact("sanctions_decided", decided, detail=lever))
                facts.append(Fact("sanctions_executed", executed, detail=lever))
    return facts
