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

from casework.statistics.spec import AGE, Event, ProgrammeStatistics, Stock, person_columns
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


STATISTICS = ProgrammeStatistics(
    code="gvi",
    label=_("GVI (group violence intervention)"),
    source="workflows_group AS g",
    events=[
        Event(
            "incidents",
            _("Incidents"),
            "(i.date::timestamp AT TIME ZONE %(tz)s)",
            detail="i.kind",
            detail_label=_("Type"),
            detail_choices=Incident.Kind.choices,
            source="workflows_incident AS i",
        ),
        Event("held", _("Call-ins held"), "ci.held_at", source="workflows_callin AS ci"),
        Event(
            "attendees",
            _("Call-in attendees"),
            "ci.held_at",
            source=ATTENDEES,
            where="a.attended IS TRUE",
            person=person_columns("ci.held_at"),
            dimensions=(AGE,),
        ),
        Event(
            "delivered",
            _("Custom notifications delivered"),
            "n.delivered_at",
            source=NOTIFICATIONS,
            person=person_columns("n.delivered_at"),
            dimensions=(AGE,),
        ),
        Event(
            "not_reached",
            _("Notification visits not reached"),
            "e.at",
            source="workflows_gvievent AS e",
            where="e.object_type = 'workflows.customnotification' AND e.transition = 'not_reached'",
        ),
        Event(
            "offers_accepted",
            _("Offers of help accepted (notifications)"),
            "CASE WHEN n.response = 'accepted' THEN n.delivered_at END",
            source=NOTIFICATIONS,
            person=person_columns("n.delivered_at"),
            dimensions=(AGE,),
        ),
        Event(
            "sanctions_decided",
            _("Sanctions decided"),
            "sa.decided_at",
            detail="sa.lever",
            detail_label=_("Lever"),
            detail_choices=Lever.choices,
            source="workflows_sanction AS sa",
        ),
        Event(
            "sanctions_executed",
            _("Sanctions executed"),
            "sa.executed_at",
            detail="sa.lever",
            detail_label=_("Lever"),
            detail_choices=Lever.choices,
            source="workflows_sanction AS sa",
        ),
    ],
    stocks=[
        Stock(
            "groups",
            _("Groups at the end of the period"),
            "gs.since",
            "gs.until",
            detail="gs.state",
            detail_label=_("State"),
            detail_choices=GroupStatus.choices,
            source=GROUP_STATES,
        ),
    ],
    person=None,
    age_bands=[(None, 17), (18, 20), (21, 24), (25, None)],
    entry="attendees",
    chart_measures=("incidents", "held", "delivered", "sanctions_decided"),
)
