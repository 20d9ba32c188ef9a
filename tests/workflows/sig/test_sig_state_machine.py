"""SIG as a state machine under random use: hypothesis drives random sequences of
SIG actions by random roles through the services and checks, after every step:

* no ``active`` or ``follow_up`` case without valid consent, unless a statutory
  basis is recorded;
* nobody outside social services — the police above all — reads the case
  without a legal basis: every consultation or disclosure logged for such a
  user names one, and ``get_case_page`` answers them only when
  ``policy.disclosure_basis`` has one;
* every successful transition wrote exactly one ``TRANSITION`` access event;
* a refused attempt (``CaseDenied``, ``ValidationError``, ``CaseConflict``,
  ``CaseNotFound``) changed nothing: the case row, its team, consents,
  decisions, actions, legal bases, break-the-glass accesses and timeline are as
  they were, and the only events it wrote are ``ACCESS_DENIED`` ones.

Each example starts from a fresh case, built along the happy path to a random
state, inside a transaction that ``teardown`` rolls back (a clean slate). Every
step runs in its own ``transaction.atomic()`` as the views do, on a fresh copy
of the case as a request would load it.

Why ``transaction=True``: a refusal inside an atomic block (a view's, or a
withdrawal's follow-up transition) writes its ``ACCESS_DENIED`` event through
the separate ``audit`` connection, which commits on its own. Inside
pytest-django's per-test transaction that connection could neither see the
test's uncommitted users (foreign key) nor be seen; with real commits it
behaves as in production, and the flush at the end empties the audit tables
through the project's ``flush`` override (docs/adr/0005-audit-log.md).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from audit.models import AccessEvent
from casework import policy
from casework.models import (
    Action,
    Case,
    CaseDecision,
    CaseMembership,
    Consent,
    LegalBasis,
    User,
)
from casework.selectors.cases import CaseNotFound, get_case_page
from casework.services import cases as services
from casework.services.cases import CaseConflict, CaseDenied
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import colleague
from tests.workflows.factories import (
    assert_closed,
    reach_review_date,
    record_consent,
    review_date_ahead,
)
from tests.workflows.sig.factories import PURPOSE, decide, make_person, orgs, sig_case
from workflows.sig.models import SigCase, Status
from workflows.sig.services import after_consent_withdrawn

ACTORS = (
    "anna.social",  # social worker, the referrer; lead from screening on
    "bo.social",  # social worker in the same office, never on the team
    "per.polis",  # police contact officer, on the team from screening on
    "sara.samordnare",  # the coordinator
    "lisa.skola",
    "fredrik.fritid",
    "stig.styrgrupp",
    "greta.granskare",
    "adam.admin",
)
NO_CASE_DATA = {"stig.styrgrupp", "greta.granskare", "adam.admin"}
ORGS = ("social", "police", "school", "leisure")
REFUSED = (CaseDenied, CaseConflict, ValidationError, CaseNotFound)
TRANSITIONS = {
    "accept",
    "approve_plan",
    "begin_follow_up",
    "begin_screening",
    "close",
    "consent_refused",
    "consent_withdrawn",
    "consents_given",
    "continue_case",
    "decline",
    "start",
}
# Where an example starts (built along the happy path). The states where the
# invariants bite — active, follow-up — come first and twice: hypothesis favours
# the first values of a ``sampled_from``.
START_STATES = (
    Status.ACTIVE,
    Status.FOLLOW_UP,
    Status.PLANNING,
    Status.DECISION_PENDING,
    Status.CONSENT_PENDING,
    Status.SCREENING,
    Status.REFERRED,
    Status.ACTIVE,
    Status.FOLLOW_UP,
)
# Ages: a minor (guardians' consent), an adult, one past OSL 10:18 a (under 21 only),
# and one outside the SIG age range (never accepted at screening).
AGES = (16, 19, 22, 30)
OUT_OF_RANGE = 30

# The team (and the coordinator) act most often; everyone else now and then.
TEAM = ("anna.social", "per.polis", "sara.samordnare")
actors = st.sampled_from(ACTORS + TEAM * 3)


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused attempt must leave as it was (one query)."""

    case_row: str  # the Case row, as JSON
    sig_row: str  # the SigCase row, as JSON
    rows: tuple  # counts of the case's rows (consents, withdrawals, team, …)
    last_event_id: int
    transitions: int  # TRANSITION events of the case
    status: str
    version: int


_SNAPSHOT = """
SELECT row_to_json(c)::text, row_to_json(s)::text, s.status, c.version,
  (SELECT count(*) FROM casework_consent WHERE case_id = c.id),
  (SELECT count(withdrawn_at) FROM casework_consent WHERE case_id = c.id),
  (SELECT count(*) FROM casework_consent_organisations o
     JOIN casework_consent x ON x.id = o.consent_id WHERE x.case_id = c.id),
  (SELECT count(*) FROM casework_action WHERE case_id = c.id),
  (SELECT count(*) FROM casework_casedecision WHERE case_id = c.id),
  (SELECT count(*) FROM casework_casemembership WHERE case_id = c.id),
  (SELECT count(valid_to) FROM casework_casemembership WHERE case_id = c.id),
  (SELECT count(*) FROM casework_caseevent WHERE case_id = c.id),
  (SELECT count(*) FROM casework_guardian WHERE person_id = c.person_id),
  (SELECT count(*) FROM casework_caselegalbasis WHERE case_id = c.id),
  (SELECT count(*) FROM casework_breakglassaccess WHERE case_id = c.id),
  (SELECT coalesce(max(id), 0) FROM audit_accessevent),
  (SELECT count(*) FROM audit_accessevent
     WHERE action = 'transition' AND object_id = c.id::text)
FROM casework_case c JOIN workflows_sigcase s ON s.case_ptr_id = c.id
WHERE c.id = %s
"""


def snapshot(case_id) -> Snapshot:
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT, [case_id])
        case_row, sig_row, status, version, *counts, last_event_id, transitions = cursor.fetchone()
    return Snapshot(case_row, sig_row, tuple(counts), last_event_id, transitions, status, version)


# Reads of the case by someone of another organisation than the owner without a legal
# basis, or by a role that never sees case data; timeline transitions; logged transitions.
_LOG_CHECK = """
SELECT
  (SELECT count(*) FROM audit_accessevent
     WHERE (object_id = %(case)s OR details->>'case' = %(case)s)
       AND action IN ('consult', 'disclose')
       AND ((organisation_name <> %(owner)s AND legal_basis = '')
            OR username = ANY(%(no_case_data)s))),
  (SELECT count(*) FROM casework_caseevent
     WHERE case_id = %(case_id)s AND kind = 'transition' AND transition <> 'refer'),
  (SELECT count(*) FROM audit_accessevent
     WHERE action = 'transition' AND object_id = %(case)s)
"""


class SigMachine(RuleBasedStateMachine):
    """One SIG case per example; the rules are what users (and time) can do to it."""

    users: dict[str, User] = {}
    persons: dict[int, object] = {}

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.case_id = None

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ---------------------------------------------------------------------------

    @property
    def case(self) -> SigCase:
        """A fresh copy of the case, as each request loads it."""
        return SigCase.objects.select_related("person", "owner_organisation").get(pk=self.case_id)

    def attempt(self, fn, *, transitions: int | None = 0, changes: bool = True):
        """Run one user action as a view would; check what a refusal or a success left.

        ``transitions``: how many TRANSITION events a success writes (``None``:
        the caller checks). ``changes=False``: a success changes no row either
        (a reading). Returns the result, or ``None`` when refused.
        """
        before = snapshot(self.case_id)
        try:
            with transaction.atomic():
                result = fn(self.case)
        except REFUSED:
            after = snapshot(self.case_id)
            assert after.case_row == before.case_row
            assert after.sig_row == before.sig_row
            assert after.rows == before.rows
            new = set(
                AccessEvent.objects.filter(id__gt=before.last_event_id).values_list(
                    "action", flat=True
                )
            )
            assert new <= {AccessEvent.Action.ACCESS_DENIED}, new
            return None
        after = snapshot(self.case_id)
        assert after.version >= before.version
        if transitions is not None:
            assert after.transitions == before.transitions + transitions
            if transitions == 0:
                assert after.status == before.status
        if not changes:
            assert (after.case_row, after.rows) == (before.case_row, before.rows)
        return result

    def transition(self, name: str, actor: str, **kwargs):
        user = self.users[actor]
        source = self.case.status
        result = self.attempt(
            lambda case: services.transition(
                user=user, case=case, name=name, purpose=PURPOSE, **kwargs
            ),
            transitions=1,
        )
        if result is not None:
            meta = getattr(SigCase, name)._django_fsm
            assert self.case.status == meta.get_transition(source).target

    # --- initial state ------------------------------------------------------------------------

    @initialize(age=st.sampled_from(AGES), start=st.sampled_from(START_STATES))
    def open_case(self, age, start):
        if age == OUT_OF_RANGE:  # it never gets past screening
            start = start if start in (Status.REFERRED, Status.SCREENING) else Status.SCREENING
        case = sig_case(self.users, start, person=self.persons[age])
        self.case_id = case.pk

    # --- the transitions of SigCase, one rule each -------------------------------------------

    @rule(actor=actors)
    def begin_screening(self, actor):
        self.transition("begin_screening", actor)

    @rule(actor=actors)
    def accept(self, actor):
        self.transition("accept", actor)

    @rule(actor=actors)
    def consents_given(self, actor):
        self.transition("consents_given", actor)

    @rule(actor=actors)
    def consent_refused(self, actor):
        self.transition("consent_refused", actor)

    @rule(actor=actors)
    def start(self, actor):
        self.transition("start", actor)

    @rule(actor=actors)
    def decline(self, actor):
        self.transition("decline", actor)

    @rule(actor=actors)
    def approve_plan(self, actor):
        self.transition("approve_plan", actor, approved_by=self.users[actor])

    @rule(actor=actors)
    def begin_follow_up(self, actor):
        self.transition("begin_follow_up", actor)

    @rule(actor=actors)
    def continue_case(self, actor):
        self.transition("continue_case", actor)

    @rule(actor=actors)
    def consent_withdrawn(self, actor):
        self.transition("consent_withdrawn", actor)

    @rule(actor=actors, reason=st.sampled_from(Case.CloseReason.values), note=st.booleans())
    def close(self, actor, reason, note):
        user = self.users[actor]
        self.attempt(
            lambda case: services.close_case(
                user=user,
                case=case,
                purpose=PURPOSE,
                reason=reason,
                note="Avslutas efter uppföljning." if note else None,
            ),
            transitions=1,
        )

    # --- the other actions on a case -------------------------------------------------------

    @rule(
        actor=actors,
        member=actors,
        role=st.sampled_from(CaseMembership.Role.values),
    )
    def add_member(self, actor, member, role):
        user, member = self.users[actor], self.users[member]
        self.attempt(
            lambda case: services.add_member(
                user=user, case=case, purpose=PURPOSE, member=member, role=role
            )
        )

    @rule(actor=actors)
    def add_guardian(self, actor):
        user = self.users[actor]
        self.attempt(
            lambda case: services.add_guardian(
                user=user, case=case, purpose=PURPOSE, name="Ville Provsson", phone=None
            )
        )

    @rule(
        actor=actors,
        giver=st.sampled_from(Consent.Giver.values),
        decision=st.sampled_from(Consent.Decision.values),
        covering=st.sets(st.sampled_from(ORGS)),
    )
    def record_consent(self, actor, giver, decision, covering):
        user = self.users[actor]

        def record(case):
            guardian = case.person.guardians.first() if giver == Consent.Giver.GUARDIAN else None
            covered = [orgs(self.users)[name] for name in sorted(covering)]
            return record_consent(
                user, case, PURPOSE, covered, giver=giver, guardian=guardian, decision=decision
            )

        self.attempt(record)

    @rule(actor=actors, which=st.integers(min_value=0, max_value=5))
    def withdraw_consent(self, actor, which):
        """As the case page does it: the withdrawal, then the programme's consequence."""
        user = self.users[actor]
        consents = list(Consent.objects.filter(case_id=self.case_id).order_by("given_at", "pk"))
        if not consents:
            return
        consent = consents[which % len(consents)]

        def withdraw(case):
            services.withdraw_consent(user=user, case=case, purpose=PURPOSE, consent=consent)
            return (
                "closed" if after_consent_withdrawn(user=user, case=case, purpose=PURPOSE) else ""
            )

        before = snapshot(self.case_id)
        outcome = self.attempt(withdraw, transitions=None)
        if outcome is None:
            return
        assert snapshot(self.case_id).transitions == before.transitions + (1 if outcome else 0)
        if outcome:
            assert self.case.status == Status.CLOSED
            assert self.case.close_reason == Case.CloseReason.CONSENT_WITHDRAWN

    @rule(
        actor=actors,
        decision=st.sampled_from(CaseDecision.Decision.values),
        note=st.booleans(),
    )
    def record_decision(self, actor, decision, note):
        user = self.users[actor]
        self.attempt(
            lambda case: services.record_decision(
                user=user,
                case=case,
                purpose=PURPOSE,
                decision=decision,
                note="Motivering." if note else None,
            )
        )

    @rule(
        actor=actors,
        organisation=st.sampled_from((None, *ORGS)),
        status=st.sampled_from((Action.Status.PLANNED, Action.Status.DONE)),
        kind=st.sampled_from((Action.Kind.SUPPORT_TALKS, Action.Kind.POLICE_TALK)),
    )
    def add_action(self, actor, organisation, status, kind):
        """As the case page does it: police only while the plan is in force."""
        user = self.users[actor]

        def add(case):
            return services.add_action(
                user=user,
                case=case,
                purpose=PURPOSE,
                kind=kind,
                status=status,
                date=timezone.localdate(),
                organisation=orgs(self.users)[organisation] if organisation else None,
            )

        self.attempt(add)

    @rule(actor=actors, days=st.integers(min_value=-3, max_value=120), plan=st.booleans())
    def update_case(self, actor, days, plan):
        user = self.users[actor]
        self.attempt(
            lambda case: services.update_case(
                user=user,
                case=case,
                purpose=PURPOSE,
                texts={"plan": "Mål: skolgång och fritid."} if plan else None,
                review_date=timezone.localdate() + datetime.timedelta(days=days),
            )
        )

    @rule(actor=actors, code=st.sampled_from(("osl-10-18a", "osl-10-2", "consent")))
    def record_legal_basis(self, actor, code):
        user = self.users[actor]
        basis = LegalBasis.objects.get(code=code)
        self.attempt(
            lambda case: services.record_legal_basis(
                user=user,
                case=case,
                purpose=PURPOSE,
                legal_basis=basis,
                justification="Särskilda omständigheter.",
            )
        )

    @rule(actor=actors, reason=st.sampled_from(("kort", "Akut hot mot personen i kväll.")))
    def break_glass(self, actor, reason):
        user = self.users[actor]
        self.attempt(lambda case: services.break_glass(user=user, case=case, reason=reason))

    @rule(actor=actors)
    def read_case_page(self, actor):
        user = self.users[actor]
        case = self.case
        basis = policy.disclosure_basis(case, user.organisation) if user.organisation_id else ""
        page = self.attempt(
            lambda case: get_case_page(user=user, purpose=PURPOSE, case=case), changes=False
        )
        if page is None:
            return
        assert actor not in NO_CASE_DATA
        if user.organisation_id != case.owner_organisation_id:
            # Police (and school, leisure) read only under a legal basis.
            assert basis, (actor, case.status)
            assert page.access.legal_basis == basis
        if policy.is_police(user):
            assert basis

    @rule()
    def time_passes_to_review_date(self):
        """Not a user action: the calendar reaches the review date."""
        if self.case.review_date is not None:
            reach_review_date(self.case)

    # --- invariants (one method: the case is loaded once per step) -----------------------------

    @invariant()
    def invariants_hold(self):
        if self.case_id is None:
            return
        case = self.case
        consent = policy.consent_state(case)
        # No active (or follow-up) case without valid consent, unless a statute is recorded.
        if case.status in (Status.ACTIVE, Status.FOLLOW_UP):
            assert consent.complete or services.has_other_legal_basis(case), (case, consent)
        # A withdrawal ends the consent for good: an older consent of the same giver
        # does not come back in its place (sharing stops at once); only a newer consent
        # of that giver (a renewal) does.
        if policy.withdrawn_givers(Consent.objects.filter(case_id=self.case_id)):
            assert not consent.complete, consent
        with connection.cursor() as cursor:
            cursor.execute(
                _LOG_CHECK,
                {
                    "case": str(case.pk),
                    "case_id": case.pk,
                    "owner": case.owner_organisation.name,
                    "no_case_data": sorted(NO_CASE_DATA),
                },
            )
            unlawful_reads, timeline, logged = cursor.fetchone()
        # Nobody of another organisation than the owner (the police above all) read the
        # case without a legal basis; nobody without a case role read it at all.
        assert unlawful_reads == 0
        # Each transition is one timeline entry and one TRANSITION event (the referral
        # itself is a CREATE event).
        assert timeline == logged
        # Every close has its outcome reason.
        if case.status == Status.CLOSED:
            assert case.close_reason and case.closed_at is not None
        else:
            assert case.closed_at is None


def test_every_transition_of_sigcase_has_a_rule():
    field = SigCase._meta.get_field("status")
    assert {t.name for t in field.get_all_transitions(SigCase)} == TRANSITIONS
    for name in TRANSITIONS:
        assert callable(getattr(SigMachine, name))


@COMMITTED_DB
def test_sig_state_machine(users):
    users = {**users, "bo.social": colleague(users, "anna.social", "bo.social")}
    SigMachine.users = users
    SigMachine.persons = {
        age: make_person(user=users["anna.social"], years=age, name=f"Prov Person {age}")
        for age in AGES
    }
    run_state_machine_as_test(
        SigMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            database=None,
            # No shrinking: every step costs database round trips, and a shrink can
            # run for minutes. A failure prints its (at most 25) steps as they ran;
            # add Phase.shrink locally to minimise one.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# --- What the machine found, kept as plain examples ---------------------------------------------


@pytest.mark.django_db(databases=["default", "keystore"])
def test_a_refusal_cannot_leave_an_active_case_without_consent(users):
    case = sig_case(users, Status.ACTIVE)
    consents = Consent.objects.filter(case=case).count()
    with pytest.raises(ValidationError) as refused:
        record_consent(
            users["anna.social"],
            case,
            PURPOSE,
            [],
            decision=Consent.Decision.REFUSED,
            form=Consent.Form.ORAL,
        )
    assert refused.value.code == "consent_required"
    assert Consent.objects.filter(case=case).count() == consents
    assert policy.consent_state(case).complete


@pytest.mark.django_db(databases=["default", "keystore"])
def test_a_new_guardian_needs_a_statute_while_the_case_is_active(users):
    anna = users["anna.social"]
    case = sig_case(users, Status.ACTIVE, years=16)
    guardians = case.person.guardians.count()
    with pytest.raises(ValidationError):
        services.add_guardian(user=anna, case=case, purpose=PURPOSE, name="Ny", phone=None)
    assert case.person.guardians.count() == guardians
    # With OSL 10:18 a recorded the case does not rest on consent alone.
    services.record_legal_basis(
        user=anna,
        case=case,
        purpose=PURPOSE,
        legal_basis=LegalBasis.objects.get(code="osl-10-18a"),
        justification="Särskilda omständigheter.",
    )
    services.add_guardian(user=anna, case=case, purpose=PURPOSE, name="Ny", phone=None)
    assert case.person.guardians.count() == guardians + 1


@pytest.mark.django_db(databases=["default", "keystore"])
def test_a_withdrawal_is_not_undone_by_an_older_consent(users):
    anna, per = users["anna.social"], users["per.polis"]
    case = sig_case(users, Status.ACTIVE, years=19)
    older = Consent.objects.get(case=case, giver=Consent.Giver.SELF)
    newer = record_consent(anna, case, PURPOSE, [orgs(users)["social"], orgs(users)["police"]])
    with transaction.atomic():
        services.withdraw_consent(user=anna, case=case, purpose=PURPOSE, consent=newer)
        assert after_consent_withdrawn(user=anna, case=case, purpose=PURPOSE)
    older.refresh_from_db()
    assert older.withdrawn_at is None
    assert not policy.consent_state(case).complete
    assert policy.disclosure_basis(case, per.organisation) == ""
    with pytest.raises(CaseNotFound):
        get_case_page(user=per, purpose=PURPOSE, case=SigCase.objects.get(pk=case.pk))


@pytest.mark.django_db(databases=["default", "keystore"])
def test_a_decision_not_to_start_closes_like_any_other_close(users):
    """``decline`` closes through ``close_case`` (the decision's time is the close's), and
    no review date set before the decision is left behind."""
    case = sig_case(users, Status.DECISION_PENDING)
    anna = users["anna.social"]
    review_date_ahead(anna, case, PURPOSE)
    decide(anna, case, CaseDecision.Decision.DECLINE, note="Personen vill inte delta.")
    services.transition(user=anna, case=case, name="decline", purpose=PURPOSE)
    assert_closed(case, Status.CLOSED, Case.CloseReason.NOT_STARTED)
    assert case.decided_at == case.closed_at
