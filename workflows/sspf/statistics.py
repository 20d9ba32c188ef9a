"""SSPF: concerns raised, consents, plans adopted at the network meeting, active plans,
closures — and the operational group's anonymised case discussions.

Stage moments are plain columns of ``workflows_sspfcase`` set by the state
machine (``workflows/sspf/models.py``: ``consented_at``, ``consent_refused_at``,
``plan_adopted_at``). An anonymised discussion has no person and no case: it is
counted by its own plain columns (date, topic, age band, area), and suppressed
like every other count.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from casework.statistics.spec import (
    AGE,
    AREA,
    Detail,
    Duration,
    Event,
    Plain,
    Stock,
    case_programme,
    closed_event,
    open_stock,
    referral_events,
    start_of_day,
)
from workflows.sspf.models import AgeBand, AnonymisedDiscussion

AGE_BANDS = [(10, 12), (13, 15), (16, 18)]
# The discussion's own age band (a plain column) as the index of the same band above.
_DISCUSSION_BAND = (
    "CASE d.age_band "
    + " ".join(
        f"WHEN '{band.value}' THEN {index}"
        for index, band in enumerate([AgeBand.AGE_10_12, AgeBand.AGE_13_15, AgeBand.AGE_16_18])
    )
    + " ELSE -1 END"
)

STATISTICS = case_programme(
    "sspf",
    _("SSPF (school, social services, police, leisure)"),
    "workflows_sspfcase",
    events=[
        *referral_events(_("Concerns raised"), _("Consents refused")),
        Event("plan_adopted", _("Plans adopted (network meeting)"), "s.plan_adopted_at"),
        closed_event(_("Close reason")),
        Event(
            "discussions",
            _("Anonymised case discussions"),
            start_of_day("d.date"),
            detail=Detail("d.topic", _("Topic"), AnonymisedDiscussion.Topic.choices),
            source="workflows_anonymiseddiscussion AS d",
            person=Plain(age_band=_DISCUSSION_BAND, area="d.area"),
            dimensions=(AGE, AREA),
        ),
    ],
    stocks=[
        Stock(
            "active", _("Plans active at the end of the period"), "s.plan_adopted_at", "c.closed_at"
        ),
        open_stock(),
    ],
    durations=[
        Duration(
            "concern_to_consent",
            _("Days from concern to consent"),
            "c.opened_at",
            "s.consented_at",
        ),
        Duration(
            "consent_to_plan",
            _("Days from consent to adopted plan"),
            "s.consented_at",
            "s.plan_adopted_at",
        ),
    ],
    age_bands=AGE_BANDS,
    chart_measures=("referred", "plan_adopted", "active", "discussions"),
)
