"""GVI: groups by the state they are in, incidents, call-ins and their attendees, custom
notifications (delivered, visits not reached, offers accepted) and sanctions by lever.

A group is not a person: groups, incidents, call-ins and sanctions have no
person breakdown. Members reached (call-in attendees, notifications) are
broken down by age band only. Everything is counted from plain columns: the
groups' states over time from the GVI timeline (``workflows_gvievent``: object,
transition, to state, moment — no free text), the rest from the objects'
timestamp columns.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from casework.statistics.spec import (
    AGE,
    Detail,
    Event,
    Label,
    ProgrammeStatistics,
    Stock,
    person_columns,
    start_of_day,
)
from workflows.gvi.models import GroupStatus, Incident, Lever

# One row per state a group has been in, from when until the next state (or now).
GROUP_STATES = """(
    SELECT gs.state, gs.since,
           lead(gs.since) OVER (PARTITION BY gs.group_id ORDER BY gs.since) AS until
    FROM (
        SELECT e.object_id AS group_id, e.to_state AS state, e.at AS since
        FROM workflows_gvievent AS e
        WHERE e.object_type = 'workflows.group' AND e.to_state <> ''
        UNION ALL
        SELECT g.id, g.status, g.created_at FROM workflows_group AS g
        WHERE NOT EXISTS (
            SELECT 1 FROM workflows_gvievent AS e
            WHERE e.object_id = g.id AND e.object_type = 'workflows.group' AND e.to_state <> ''
        )
    ) AS gs
) AS gs"""
NOTIFICATIONS = (
    "workflows_customnotification AS n"
    " JOIN workflows_groupmember AS m ON m.id = n.member_id"
    " JOIN casework_person AS p ON p.id = m.person_id"
)
ATTENDEES = (
    "workflows_callinattendee AS a"
    " JOIN workflows_callin AS ci ON ci.id = a.call_in_id"
    " JOIN workflows_groupmember AS m ON m.id = a.member_id"
    " JOIN casework_person AS p ON p.id = m.person_id"
)
SANCTIONS = "workflows_sanction AS sa"
BY_LEVER = Detail("sa.lever", _("Lever"), Lever.choices)


def members_reached(
    key: str,
    label: Label,
    at: str,
    source: str = NOTIFICATIONS,
    where: str = "TRUE",
    age_at: str | None = None,
) -> Event:
    """Members reached (call-in attendees, notifications), broken down by age band only:
    the age at ``age_at`` (by default the moment ``at``)."""
    return Event(
        key,
        label,
        at,
        source=source,
        where=where,
        person=person_columns(age_at or at),
        dimensions=(AGE,),
    )


STATISTICS = ProgrammeStatistics(
    code="gvi",
    label=_("GVI (group violence intervention)"),
    source="workflows_group AS g",
    events=[
        Event(
            "incidents",
            _("Incidents"),
            start_of_day("i.date"),
            detail=Detail("i.kind", _("Type"), Incident.Kind.choices),
            source="workflows_incident AS i",
        ),
        Event("held", _("Call-ins held"), "ci.held_at", source="workflows_callin AS ci"),
        members_reached(
            "attendees", _("Call-in attendees"), "ci.held_at", ATTENDEES, "a.attended IS TRUE"
        ),
        members_reached("delivered", _("Custom notifications delivered"), "n.delivered_at"),
        Event(
            "not_reached",
            _("Notification visits not reached"),
            "e.at",
            source="workflows_gvievent AS e",
            where="e.object_type = 'workflows.customnotification' AND e.transition = 'not_reached'",
        ),
        members_reached(
            "offers_accepted",
            _("Offers of help accepted (notifications)"),
            "CASE WHEN n.response = 'accepted' THEN n.delivered_at END",
            age_at="n.delivered_at",
        ),
        Event(
            "sanctions_decided",
            _("Sanctions decided"),
            "sa.decided_at",
            detail=BY_LEVER,
            source=SANCTIONS,
        ),
        Event(
            "sanctions_executed",
            _("Sanctions executed"),
            "sa.executed_at",
            detail=BY_LEVER,
            source=SANCTIONS,
        ),
    ],
    stocks=[
        Stock(
            "groups",
            _("Groups at the end of the period"),
            "gs.since",
            "gs.until",
            detail=Detail("gs.state", _("State"), GroupStatus.choices),
            source=GROUP_STATES,
        ),
    ],
    person=None,
    age_bands=[(None, 17), (18, 20), (21, 24), (25, None)],
    entry="attendees",
    chart_measures=("incidents", "held", "delivered", "sanctions_decided"),
)
