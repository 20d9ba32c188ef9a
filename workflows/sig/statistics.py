"""SIG: referred, consents, decisions, plans, active cases and closures.

Stage moments are plain columns of ``workflows_sigcase`` set by the state
machine's transitions (``workflows/sig.py``); opening and closing are on the
shared ``casework_case``; age band, gender and area come from the person's
plain columns.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from casework.statistics.spec import (
    Duration,
    Event,
    Stock,
    case_programme,
    closed_event,
    open_stock,
    referral_events,
)

STATISTICS = case_programme(
    "sig",
    _("SIG (social intervention group)"),
    "workflows_sigcase",
    events=[
        *referral_events(_("Referrals"), _("Consents refused")),
        Event("started", _("Decisions to start"), "s.started_at"),
        Event("plan_approved", _("Plans approved"), "s.plan_approved_at"),
        closed_event(_("Close reason")),
    ],
    stocks=[
        Stock("active", _("Active at the end of the period"), "s.plan_approved_at", "c.closed_at"),
        open_stock(),
    ],
    durations=[
        Duration(
            "referral_to_decision",
            _("Days from referral to decision"),
            "c.opened_at",
            "s.decided_at",
        ),
        Duration(
            "decision_to_plan",
            _("Days from decision to approved plan"),
            "s.started_at",
            "s.plan_approved_at",
        ),
    ],
    age_bands=[(None, 14), (15, 17), (18, 20), (21, None)],
    chart_measures=("referred", "started", "active", "closed"),
)
