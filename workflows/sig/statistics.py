"""SIG: referred, consents, decisions, plans, active cases and closures.

Stage moments are plain columns of ``workflows_sigcase`` set by the state
machine's transitions (``workflows/sig.py``); opening and closing are on the
shared ``casework_case``; age band, gender and area come from the person's
plain columns.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from casework.models import Case
from casework.statistics.spec import Duration, Event, Person, ProgrammeStatistics, Stock

STATISTICS = ProgrammeStatistics(
    code="sig",
    label=_("SIG (social intervention group)"),
    source=(
        "workflows_sigcase AS s"
        " JOIN casework_case AS c ON c.id = s.case_ptr_id"
        " JOIN casework_person AS p ON p.id = c.person_id"
    ),
    where="c.programme = 'sig'",
    events=[
        Event("referred", _("Referrals"), "c.opened_at"),
        Event("consent_given", _("Consents given"), "s.consented_at"),
        Event("consent_refused", _("Consents refused"), "s.consent_refused_at"),
        Event("started", _("Decisions to start"), "s.started_at"),
        Event("plan_approved", _("Plans approved"), "s.plan_approved_at"),
        Event(
            "closed",
            _("Closures"),
            "c.closed_at",
            detail="c.close_reason",
            detail_label=_("Close reason"),
            detail_choices=Case.CloseReason.choices,
        ),
    ],
    stocks=[
        Stock("active", _("Active at the end of the period"), "s.plan_approved_at", "c.closed_at"),
        Stock("open", _("Open"), "c.opened_at", "c.closed_at", published=False),
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
    person=Person(
        birth_year="p.birth_year",
        gender="p.gender",
        area="p.area",
        protected_identity="p.protected_identity",
        age_at="c.opened_at",
    ),
    age_bands=[(None, 14), (15, 17), (18, 20), (21, None)],
    entry="referred",
    open_stock="open",
    chart_measures=("referred", "started", "active", "closed"),
)
