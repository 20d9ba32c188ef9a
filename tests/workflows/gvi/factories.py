"""Factories of the GVI tests: groups, members, call-ins, notifications in any state,
built through the services (the same calls the pages make)."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone
from viewflow.workflow.models import Task

from casework.models import Organisation
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import make_person
from workflows.gvi import models as gvi
from workflows.gvi import services

PURPOSE = "Test av GVI"
GROUP_NAME = "Provgänget Syntetiska Norr"
GROUP_NOTES = "Syntetisk anteckning om gruppen"
# The GVI tests' marks: both databases; the messages asserted in English (the msgids).
IN_ENGLISH = [pytest.mark.django_db(databases=BOTH_DATABASES), pytest.mark.usefixtures("english")]


def name_participant(user) -> None:
    """A social worker named a GVI participant (the per-user permission)."""
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="workflows", codename="take_part_in_gvi")
    )
    for cache in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)


def group(users, *, status: str = gvi.GroupStatus.IDENTIFIED, members: int = 1, years=17):
    """A group in ``status`` (up to incident_linked) with ``members`` members."""
    sara, per = users["sara.samordnare"], users["per.polis"]
    g = services.create_group(
        user=sara,
        purpose=PURPOSE,
        name=GROUP_NAME,
        notes=GROUP_NOTES,
        area="vivalla_baronbackarna",
        size_band="6-15",
    )
    made = [
        services.add_member(
            user=sara, purpose=PURPOSE, group=g, person=make_person(user=sara, years=years)
        )
        for _ in range(members)
    ]
    order = [
        gvi.GroupStatus.IDENTIFIED,
        gvi.GroupStatus.MAPPED,
        gvi.GroupStatus.MESSAGE_DELIVERED,
        gvi.GroupStatus.MONITORED,
        gvi.GroupStatus.INCIDENT_LINKED,
    ]
    target = order.index(status)
    if target >= 1:
        services.transition(user=sara, obj=g, name="map", purpose=PURPOSE)
    if target >= 2:
        notification = delivered_notification(users, made[0])
        assert notification.status == gvi.NotificationStatus.DELIVERED
        g.refresh_from_db()
    if target >= 3:
        services.transition(user=sara, obj=g, name="monitor", purpose=PURPOSE)
    if target >= 4:
        incident(per, g, area="vivalla_baronbackarna")
        g.refresh_from_db()
    for m in made:
        m.refresh_from_db()
    return g, made


def incident(user, group, *, area: str = "other"):
    """A shooting today, recorded by ``user`` with ``group`` linked."""
    return services.record_incident(
        user=user,
        purpose=PURPOSE,
        date=timezone.localdate(),
        area=area,
        kind="shooting",
        groups=[group],
    )


def decide_sanctions(users, group, *levers):
    """The coordinator's decision of ``levers`` (lever, organisation) on the incident
    linked to ``group``."""
    return services.decide_sanctions(
        user=users["sara.samordnare"],
        purpose=PURPOSE,
        group=group,
        incident=group.incidents.get(),
        levers=list(levers),
    )


def unnamed_group(user):
    """A group registered by ``user`` with the least it needs (no notes, no member)."""
    return services.create_group(
        user=user, purpose=PURPOSE, name="X", notes=None, area="other", size_band="1-5"
    )


def task_link(path: str, text: str) -> str:
    """A task list's link to a GVI page (the inbox and the queue)."""
    return f'<a href="{path}" data-turbo="false">{text}</a>'


def notification(users, member, *, until: str = gvi.NotificationStatus.SCHEDULED):
    """A custom notification to ``member`` driven up to ``until``."""
    sara, per = users["sara.samordnare"], users["per.polis"]
    n = services.request_notification(user=sara, purpose=PURPOSE, member=member, police_officer=per)
    if until == gvi.NotificationStatus.REQUESTED:
        return n
    services.record_legal_assessment(
        user=per, purpose=PURPOSE, notification=n, lawful=True, assessment="Synt. bedömning"
    )
    if until == gvi.NotificationStatus.LEGAL_ASSESSMENT:
        return n
    services.approve_notification(user=sara, purpose=PURPOSE, notification=n, message="Sluta.")
    if until == gvi.NotificationStatus.APPROVED:
        return n
    services.add_messenger(
        user=per, purpose=PURPOSE, notification=n, kind="community", description="Imam"
    )
    services.schedule_notification(
        user=per,
        purpose=PURPOSE,
        notification=n,
        scheduled_for=timezone.now() + datetime.timedelta(days=1),
    )
    return n


def deliver(users, n, *, offer_of_help="Stöd från socialtjänsten", response="undecided", **kwargs):
    """The police officer records the delivery of the scheduled notification ``n``."""
    services.record_delivery(
        user=users["per.polis"],
        purpose=PURPOSE,
        notification=n,
        offer_of_help=offer_of_help,
        response=response,
        **kwargs,
    )


def delivered_notification(users, member, **delivery):
    n = notification(users, member)
    deliver(users, n, **delivery)
    return n


def accepted_member(users, *, programme="sig", years=19):
    """A member who accepted the offer at a delivered notification (the referral opened)."""
    _, (member,) = group(users, status=gvi.GroupStatus.MAPPED, years=years)
    delivered_notification(
        users, member, response="accepted", programme=programme, reason="Vill lämna gruppen."
    )
    member.refresh_from_db()
    return member


def referral_notice_tasks(member):
    """The open and done human tasks of the notice of ``member``'s accepted offer."""
    return Task.objects.filter(
        process__gvireferralnoticeprocess__accepted_member=member, flow_task_type="HUMAN"
    )


def police_org(users) -> Organisation:
    return users["per.polis"].organisation


def social_org(users) -> Organisation:
    return users["anna.social"].organisation


def refused_sig_referral(users):
    """An adult member's acceptance of help through SIG recorded at the delivery: outside
    SIG's age range it is refused. Returns the notification and the member."""
    _, (member,) = group(users, status=gvi.GroupStatus.MAPPED, years=30)
    n = notification(users, member)
    with pytest.raises(ValidationError):
        deliver(users, n, response="accepted", programme="sig", reason="Vill ut.")
    return n, member
