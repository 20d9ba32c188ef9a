"""Service steps every case programme shares, on the core's case services.

Programme-generic: the programme hands in its case and process models; nothing here
decrypts or seals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from django.db import transaction

from casework.models import CaseMembership
from casework.services import webhooks
from casework.services.case_changes import reload_version
from casework.services.case_keys import opening_keys
from casework.services.cases import (
    close_case,
    has_other_legal_basis,
    link_cases,
    record_source,
    transition,
    update_case,
)
from casework.services.teams import add_member

CLOSED = "closed"


def open_and_start(start, register: Callable[[], Any]) -> Any:
    """A case opened outside its flow's start page (the integration API): ``register()``
    opens it, ``start`` (the flow's start handle for such cases) starts its flow, all or
    nothing; the case is returned with its version after the start.

    Inside a caller's transaction (the API's Idempotency-Key transaction) it joins that
    transaction without a savepoint: an error rolls the whole of it back. Which webhook
    events have subscribers is read once for the case's opening and its flow's start,
    and a new person's data key is made with the case's (``opening_keys``)."""
    with (
        transaction.atomic(savepoint=False),
        webhooks.subscriptions_read_once(),
        opening_keys(),
    ):
        case = register()
        start.run(case=case)
        reload_version(case)
    return case


class Referrals(NamedTuple):
    """A case programme's two hooks for referrals from another programme
    (``casework.programmes.refer_linked`` and ``refer_from``)."""

    refer_linked: Callable[..., Any]
    refer_from: Callable[..., Any]


def referrals(open_referral: Callable[..., Any], start: Callable[[Any], None]) -> Referrals:
    """The referrals to a programme from another one, given how the programme opens a
    referred case (``open_referral(user=, person=, reason=, purpose=)``: its checks, then
    the case opened) and starts its flow for it (``start(case)``: the coordinators' queue).

    ``refer_linked(user=, from_case=, kind=, reason=, purpose=)`` refers the person of
    another programme's case and records the link (``kind``), shown on both cases;
    ``refer_from(user=, person=, reason=, purpose=, source="")`` refers a person from an
    object that is not a case (a GVI group member who accepted the offer of help) and
    writes ``source`` (e.g. ``gvi_member:<id>``) on the new case's timeline, so its page
    shows where it came from. Each opens the case and starts its flow, all or nothing,
    and returns the case with its version after the start."""

    def refer_linked(*, user, from_case, kind: str, reason: str, purpose: str):
        with transaction.atomic():
            case = open_referral(user=user, person=from_case.person, reason=reason, purpose=purpose)
            start(case)
            link_cases(
                user=user,
                from_case=from_case,
                to_case=case,
                kind=kind,
                reason=reason,
                purpose=purpose,
            )
            reload_version(case)
        return case

    def refer_from(*, user, person, reason: str, purpose: str, source: str = ""):
        with transaction.atomic():
            case = open_referral(user=user, person=person, reason=reason, purpose=purpose)
            start(case)
            if source:
                record_source(user=user, case=case, source=source, purpose=purpose)
            reload_version(case)
        return case

    return Referrals(refer_linked, refer_from)


def cancel_running_process(process_model, case) -> None:
    """Cancel the case's process (a ``process_model`` row) if it is still running."""
    process = process_model.objects.filter(case_id=case.pk).first()
    if process is not None and process.finished is None:
        process.flow_class.instance.cancel(process)


def transition_with_review_date(
    *, user, case, purpose: str, name: str, reason: str | None = None, **update
):
    """The transition ``name`` (its ``reason`` in the timeline) with the case's next review
    date (``update``: the ``review_date`` and ``expected_version`` of ``update_case``), in
    one transaction: a programme that starts, a review that continues the case."""
    with transaction.atomic():
        update_case(user=user, case=case, purpose=purpose, **update)
        return transition(user=user, case=case, name=name, purpose=purpose, reason=reason)


def accept_with_team(*, user, case, purpose: str, lead, police_contact):
    """Accept a screened referral: the lead social worker and the police contact officer
    join the case's team, and the case moves on by the transition ``accept``."""
    for member, role in (
        (lead, CaseMembership.Role.LEAD),
        (police_contact, CaseMembership.Role.POLICE_CONTACT),
    ):
        add_member(user=user, case=case, purpose=purpose, member=member, role=role)
    return transition(user=user, case=case, name="accept", purpose=purpose)


def screening(note_field: str, reject: Callable[..., Any]) -> Callable[..., Any]:
    """A programme's screening service (SIG's screening, the defector programme's initial
    check; ``ScreeningStepView`` calls it), given the case field of the screening's note
    and the programme's rejection.

    The service (keyword arguments ``user``, ``case``, ``purpose``, ``accept``, ``note``,
    ``expected_version``, ``lead``, ``police_contact``, and the programme's own arguments
    of a rejection) writes, in one transaction, the note (sealed in ``note_field``) and
    then either accepts with the team (:func:`accept_with_team`) or calls
    ``reject(user=, case=, purpose=, note=, **rejection)``; it returns the case."""

    def record(
        *,
        user,
        case,
        purpose: str,
        accept: bool,
        note: str | None,
        expected_version: int | None = None,
        lead=None,
        police_contact=None,
        **rejection,
    ):
        with transaction.atomic():
            update_case(
                user=user,
                case=case,
                purpose=purpose,
                texts={note_field: note or None},
                expected_version=expected_version,
            )
            if not accept:
                return reject(user=user, case=case, purpose=purpose, note=note, **rejection)
            return accept_with_team(
                user=user, case=case, purpose=purpose, lead=lead, police_contact=police_contact
            )

    return record


def close_and_stop(stop: Callable, /, *, case, **close):
    """Close the case (:func:`~casework.services.cases.close_case`, ``close`` its other
    arguments) and ``stop(case)`` the programme's processes, in one transaction."""
    with transaction.atomic():
        close_case(case=case, **close)
        stop(case)
    return case


def close_after_withdrawal(*, user, case, purpose: str, case_model, process_model) -> bool:
    """Stop the process and close the case (``consent_withdrawn``) unless it is closed or
    another legal basis applies. Returns whether the case was closed.

    Runs inside the withdrawal's transaction, which holds the case's row lock: the case
    is taken as it is now, so that a step someone committed since the page was loaded
    cannot make the withdrawal fail. A withdrawal always wins.
    """
    current = case_model.objects.select_related("person").get(pk=case.pk)
    if current.status == CLOSED or has_other_legal_basis(current):
        return False
    cancel_running_process(process_model, current)
    transition(user=user, case=current, name="consent_withdrawn", purpose=purpose)
    return True
