"""Who may take a transition, and the guards that must hold: the rules every programme's
state machine shares (django-fsm ``permission`` and ``conditions``).

A permission is ``rule(case, user) -> bool``; a guard is ``condition(case) -> bool`` and
carries the message the user sees when it does not hold (``guard(message)``; a programme
words a shared guard its own way with ``with_message``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import policy
from casework.models import CaseMembership, Organisation
from casework.selectors.persons import person_age

# --- Who may take a transition (django-fsm ``permission``) ----------------------------------


def member_role(case, user) -> str | None:
    """The user's role on the case's team (``None``: not on the team); a deputy holds the
    absent member's role for the absence's period (``casework.policy.absences``)."""
    membership = policy.team_membership(user, case) or policy.deputy_membership(user, case)
    return membership.role if membership else None


def coordinator(case, user) -> bool:
    """The programme's coordinator (``casework.coordinate_cases``)."""
    return policy.coordinates(user, case)


def lead_or_coordinator(case, user) -> bool:
    return coordinator(case, user) or member_role(case, user) == CaseMembership.Role.LEAD


def social_services_team(case, user) -> bool:
    """A social-services member of the team (or the coordinator)."""
    return coordinator(case, user) or (
        member_role(case, user) is not None
        and user.organisation.kind == Organisation.Kind.SOCIAL_SERVICES
    )


def registers_withdrawal(case, user) -> bool:
    """Whoever may register a withdrawal of consent (``withdraw_consent``): the coordinator,
    or anyone of the case's own organisation with access to it.

    The closing that follows is the withdrawal's consequence, not a decision of its own.
    """
    return coordinator(case, user) or (
        user.organisation_id == case.owner_organisation_id and bool(policy.case_access(user, case))
    )


# --- Guards (django-fsm ``conditions``); each carries the message the user sees -------------


def age_within(person, age_range: tuple[int, int]) -> bool:
    """The person's age today is within ``age_range`` (a programme's, both ends included)."""
    low, high = age_range
    return low <= person_age(person, on=timezone.localdate()) <= high


def guard(message) -> Callable:
    """Give a condition the message the user sees when it does not hold."""

    def decorate(func):
        func.message = message
        return func

    return decorate


def with_message(condition: Callable, message) -> Callable:
    """A shared guard under a programme's own message (the shared one keeps its own)."""

    def check(case) -> bool:
        return condition(case)

    check.__name__ = condition.__name__
    check.message = message
    return check


@guard(_("Appoint a lead social worker to the team first."))
def has_lead(case) -> bool:
    return case.memberships.filter(role=CaseMembership.Role.LEAD, valid_to__isnull=True).exists()


@guard(_("A police contact officer must be on the team."))
def has_police_contact(case) -> bool:
    return case.memberships.filter(
        role=CaseMembership.Role.POLICE_CONTACT, valid_to__isnull=True
    ).exists()


@guard(_("The consents are not complete: the person's own and, under 18, every guardian's."))
def consents_complete(case) -> bool:
    return policy.consent_state(case).complete


@guard(_("No withdrawal of consent has been recorded."))
def consent_withdrawal_recorded(case) -> bool:
    """A withdrawal in force: a giver's newest consent is withdrawn (a renewal ends it)."""
    return bool(policy.withdrawn_givers(case.consents.all()))


@guard(_("Set a review date in the future."))
def review_date_ahead(case) -> bool:
    return case.review_date is not None and case.review_date > timezone.localdate()


@guard(_("The review date has not been reached yet."))
def review_date_reached(case) -> bool:
    return case.review_date is not None and case.review_date <= timezone.localdate()
