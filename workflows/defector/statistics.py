"""The defector programme: referrals, consents, threat levels, routing, re-routings, outcomes.

Counted over ``workflows_defectorcase`` only — social services' support cases
(``DefectorSupportCase``) are also tagged ``defector`` on the shared case table
and are not counted. Stage moments are plain columns the state machine sets
(``workflows/defector.py``: ``consented_at``, ``consent_refused_at``,
``assessed_at`` with the first threat level, ``routed_at`` with where the case
went first, ``started_at``); re-routings, which can happen several times to a
case, are its timeline's routing transitions (plain columns of
``casework_caseevent``: kind, transition name, from and to state, moment).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from casework.statistics.spec import (
    Detail,
    Duration,
    Event,
    Stock,
    case_programme,
    closed_event,
    person_columns,
    referral_events,
)
from workflows.defector.models import CLOSE_REASONS, FirstRouting, Level

PERSON = person_columns()
# A routing transition after the first one: a raise takes the case out of the local
# programme (or from the region to the national programme); anything else lowers it.
REROUTINGS = (
    "casework_caseevent AS ev"
    " JOIN workflows_defectorcase AS s ON s.case_ptr_id = ev.case_id"
    " JOIN casework_case AS c ON c.id = s.case_ptr_id"
    " JOIN casework_person AS p ON p.id = c.person_id"
)
REROUTING_WHERE = (
    "ev.kind = 'transition'"
    " AND ev.transition IN ('route_local', 'hand_over_regional', 'hand_over_national')"
    " AND ev.from_state <> 'threat_assessed'"
)
RAISED, LOWERED = "raised", "lowered"
DIRECTION = Detail(
    "CASE WHEN ev.to_state = 'handed_over_national' OR (ev.to_state = 'handed_over_regional'"
    f" AND ev.from_state <> 'handed_over_national') THEN '{RAISED}' ELSE '{LOWERED}' END",
    _("Direction"),
    [(RAISED, _("Threat raised")), (LOWERED, _("Threat lowered"))],
)

STATISTICS = case_programme(
    "defector",
    _("Defector programme"),
    "workflows_defectorcase",
    events=[
        *referral_events(_("Referrals"), _("Consents refused or partial")),
        Event(
            "assessed",
            _("Threat assessments (first)"),
            "s.assessed_at",
            detail=Detail("s.assessed_level", _("Threat level"), Level.choices),
        ),
        Event(
            "routed",
            _("Routed (first)"),
            "s.routed_at",
            detail=Detail("s.routed_to", _("Routing"), FirstRouting.choices),
        ),
        Event(
            "rerouted",
            _("Re-routings"),
            "ev.at",
            detail=DIRECTION,
            source=REROUTINGS,
            where=REROUTING_WHERE,
            person=PERSON,
        ),
        Event("started", _("Local programme started"), "s.started_at"),
        closed_event(_("Outcome"), [(reason.value, reason.label) for reason in CLOSE_REASONS]),
    ],
    stocks=[
        Stock("open", _("Open at the end of the period"), "c.opened_at", "c.closed_at"),
    ],
    durations=[
        Duration(
            "referral_to_routing", _("Days from referral to routing"), "c.opened_at", "s.routed_at"
        ),
        Duration(
            "referral_to_assessment",
            _("Days from referral to threat assessment"),
            "c.opened_at",
            "s.assessed_at",
        ),
    ],
    person=PERSON,
    age_bands=[(None, 17), (18, 20), (21, 25), (26, None)],
    chart_measures=("referred", "routed", "rerouted", "closed"),
)
