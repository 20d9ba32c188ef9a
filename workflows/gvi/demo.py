"""Demo GVI data (``seed_demo``): groups, members, incidents, a held call-in, custom
notifications in every state and a sanction, driven through the services and the flows'
own task activations (the calls the task views make).

Keyed on the first member (a uuid5 like the SIG demo persons): running ``seed_demo``
again adds nothing. All of
it is built in one transaction. Members are synthetic persons like the SIG demo persons;
the social worker ``anna.social`` is named a GVI participant.
"""

from __future__ import annotations

import datetime
from contextlib import contextmanager

from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from casework.models import Organisation, Person, User
from workflows.common import demo
from workflows.common.demo import Slot, person_id
from workflows.common.demo import person as _person
from workflows.gvi import flow as gvi_flow
from workflows.gvi import models as gvi
from workflows.gvi import services

PURPOSE = "Demodata: GVI (seed_demo)"
MARKER = "gvi-demo-group-1"


def _users() -> dict[str, User]:
    return {u.username: u for u in User.objects.select_related("organisation")}


@contextmanager
def run_task(flow_class, process, node, user: User):
    """One POST of a task view of ``flow_class`` as ``user``
    (``workflows.common.demo.task_step``)."""
    with demo.task_step(demo.open_task(process, node), node, user) as activation:
        yield activation


def _members(group, users, keys_ages, index0: int) -> list:
    made = []
    for offset, (key, age) in enumerate(keys_ages):
        person = _person(Slot(key=f"gvi-{key}", age=age, target=""), index=index0 + offset)
        made.append(
            services.add_member(
                user=users["per.polis"], purpose=PURPOSE, group=group, person=person
            )
        )
    return made


def _notify(users, member, until: str) -> gvi.CustomNotification:
    """A custom notification driven through its flow up to ``until``."""
    per, sara, anna = users["per.polis"], users["sara.samordnare"], users["anna.social"]
    flow = gvi_flow.GviNotificationFlow
    n = services.request_notification(user=sara, purpose=PURPOSE, member=member, police_officer=per)
    process = n.process
    if until == "requested":
        return n
    if until == "legal_assessment":
        services.transition(user=per, obj=n, name="begin_assessment", purpose=PURPOSE)
        return n
    with run_task(flow, process, flow.assess, per) as activation:
        services.record_legal_assessment(
            user=per,
            purpose=PURPOSE,
            notification=n,
            lawful=True,
            assessment="Syntetisk rättslig bedömning: inga hinder för besöket.",
        )
        activation.execute()
    with run_task(flow, process, flow.approve, sara) as activation:
        services.approve_notification(
            user=sara,
            purpose=PURPOSE,
            notification=n,
            message="Våldet måste upphöra. Vi vill att du lever. Hjälp finns.",
        )
        activation.execute()
    if until == "approved":
        return n
    with run_task(flow, process, flow.deliver, per) as activation:
        services.add_messenger(
            user=per, purpose=PURPOSE, notification=n, kind="community", description="Imam"
        )
        services.schedule_notification(
            user=per,
            purpose=PURPOSE,
            notification=n,
            scheduled_for=timezone.now() + datetime.timedelta(days=1),
        )
        if until == "not_reached":
            services.transition(user=per, obj=n, name="not_reached", purpose=PURPOSE)
        elif until in ("delivered", "closed"):
            services.record_delivery(
                user=per,
                purpose=PURPOSE,
                notification=n,
                offer_of_help="Kontakt med socialtjänstens avhopparstöd och jobbcoach.",
                response="undecided",
            )
            activation.execute()
    if until == "closed":
        with run_task(flow, process, flow.follow_up, anna) as activation:
            services.record_notification_follow_up(
                user=anna, purpose=PURPOSE, notification=n, note="Uppföljningssamtal hållet."
            )
            activation.execute()
    return n


def _incident(user: User, group, kind: str, area: str, *, days_ago: int) -> gvi.Incident:
    """An incident ``days_ago`` days back that ``group`` is linked to."""
    return services.record_incident(
        user=user,
        purpose=PURPOSE,
        date=timezone.localdate() - datetime.timedelta(days=days_ago),
        area=area,
        kind=kind,
        groups=[group],
    )


def seed_gvi() -> int:
    """Create the GVI demo data unless it exists; return how many groups were created."""
    if Person.objects.filter(pk=person_id(Slot(key=MARKER, age=19, target=""))).exists():
        return 0
    users = _users()
    per, sara, anna = users["per.polis"], users["sara.samordnare"], users["anna.social"]
    anna.user_permissions.add(
        Permission.objects.get(content_type__app_label="workflows", codename="take_part_in_gvi")
    )
    anna = User.objects.get(pk=anna.pk)  # fresh permission cache
    users["anna.social"] = anna
    with transaction.atomic():
        north, west, east = (
            services.create_group(
                user=creator,
                purpose=PURPOSE,
                name=name,
                notes=notes,
                area=area,
                size_band=size_band,
            )
            for creator, name, notes, area, size_band in (
                (
                    per,
                    "Norrgänget (syntetisk demogrupp)",
                    "Påhittad grupp för demonstration.",
                    "vivalla_baronbackarna",
                    "6-15",
                ),
                (sara, "Västra nätverket (syntetisk demogrupp)", None, "brickebacken", "1-5"),
                (per, "Östra gruppen (syntetisk demogrupp)", None, "varberga_oxhagen", "16-30"),
            )
        )
        # The marker person (keyed like the SIG demo persons) makes a second run a no-op.
        marker = _person(Slot(key=MARKER, age=19, target=""), index=60)
        north_members = [
            services.add_member(user=per, purpose=PURPOSE, group=north, person=marker),
            *_members(north, users, [("n2", 16), ("n3", 21), ("n4", 23), ("n5", 22)], 61),
        ]
        west_members = _members(west, users, [("w1", 20), ("w2", 24)], 70)
        _members(east, users, [("e1", 22)], 75)
        for group in (north, west):
            services.transition(user=per, obj=group, name="map", purpose=PURPOSE)
        # A held call-in for the north group's first two members (follow-up open).
        call_in = services.create_call_in(user=sara, purpose=PURPOSE, date=timezone.localdate())
        for member in north_members[:2]:
            services.add_attendee(user=sara, purpose=PURPOSE, call_in=call_in, member=member)
        flow = gvi_flow.GviCallInFlow
        with run_task(flow, call_in.process, flow.plan, sara) as activation:
            services.transition(user=sara, obj=call_in, name="select_attendees", purpose=PURPOSE)
            services.transition(user=sara, obj=call_in, name="invite", purpose=PURPOSE)
            attendees = list(call_in.attendees.all())
            services.record_attendance(
                user=sara,
                purpose=PURPOSE,
                call_in=call_in,
                attendance={a.pk: True for a in attendees},
            )
            for role, speaker in (
                ("moral", "Imam, Vivalla moské"),
                ("law_enforcement", "Kammaråklagare"),
                ("offer_of_help", "Socialtjänstens avhopparstöd"),
            ):
                services.set_speaker(
                    user=sara, purpose=PURPOSE, call_in=call_in, role=role, speaker=speaker
                )
            services.hold_call_in(user=sara, purpose=PURPOSE, call_in=call_in)
            activation.execute()
        # Custom notifications in every state.
        for member, until in zip(
            [*north_members[2:], *west_members],
            ["requested", "legal_assessment", "approved", "not_reached", "closed"],
            strict=True,
        ):
            _notify(users, member, until)
        _notify(users, north_members[1], "delivered")
        # The north group shoots again after the message: a group-wide sanction.
        north.refresh_from_db()
        services.transition(user=sara, obj=north, name="monitor", purpose=PURPOSE)
        incident = _incident(per, north, "shooting", "vivalla_baronbackarna", days_ago=2)
        north.refresh_from_db()
        police = per.organisation
        social = Organisation.objects.filter(kind=Organisation.Kind.SOCIAL_SERVICES).first()
        decision = services.decide_sanctions(
            user=sara,
            purpose=PURPOSE,
            group=north,
            incident=incident,
            levers=[("police_checks", police), ("traffic", police), ("benefits", social)],
        )
        checks = decision.sanctions.get(lever="police_checks")
        services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name="decide")
        services.sanction_step(user=per, purpose=PURPOSE, sanction=checks, name="execute")
        _incident(per, east, "explosion", "varberga_oxhagen", days_ago=20)
    return 3
