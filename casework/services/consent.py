"""Consent, guardians and legal bases of a case: on what ground its data is shared.

A case under way on consent keeps valid consent (or a statutory basis): a refusal or a
new guardian without consent is refused; a withdrawal takes effect in the same request.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.services import Action as AuditAction
from casework import policy
from casework.crypto.records import seal_value
from casework.models import (
    Case,
    CaseEvent,
    CaseLegalBasis,
    Consent,
    Guardian,
    LegalBasis,
    Organisation,
)
from casework.selectors.persons import require_purpose
from casework.services.case_changes import (
    REASON_LIMIT,
    audit_case,
    case_change,
    clean_text,
    deny_case,
    require_access,
    require_access_and_role,
    require_role,
)
from casework.services.case_keys import person_data_key


def keep_consent(case: Case, *, was_complete: bool) -> None:
    """A case under way on consent (the programme's ``CONSENT_REQUIRED_STATES``) keeps it.

    A refusal or a new guardian without consent would leave it running without
    valid consent; ending a consent is a withdrawal, which closes the case
    unless another legal basis applies.
    """
    if (
        was_complete
        and getattr(case, "status", None) in getattr(type(case), "CONSENT_REQUIRED_STATES", ())
        and not policy.consent_state(case).complete
        and not has_other_legal_basis(case)
    ):
        raise ValidationError(
            _(
                "The case is under way: this would leave it without valid consent. "
                "To end a consent, withdraw it on the case page."
            ),
            code="consent_required",
        )


def _not_police(case: Case, user) -> bool:
    """The police do not record consents (nor withdraw them)."""
    return not policy.is_police(user)


def under_way_on_consent(case: Case) -> bool:
    """The case is in a state whose work rests on consent (``CONSENT_REQUIRED_STATES``)
    and open."""
    return case.closed_at is None and getattr(case, "status", None) in getattr(
        type(case), "CONSENT_REQUIRED_STATES", ()
    )


def add_guardian(
    *,
    user,
    case: Case,
    purpose: str,
    name: str,
    phone: str | None,
    keep: bool = True,
    **details,
) -> Guardian:
    """Register a guardian of the case's person. ``keep``: a case under way on consent
    refuses a guardian who has not consented (:func:`keep_consent`); the record's
    correction of a custody change passes ``False``: the guardian is a fact of the
    register, and the case then waits for their consent (ADR 0028, "A new guardian").
    ``details`` go into the guardian's ``CREATE`` event."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="guardian:add")
    name = clean_text(name, "guardian_name", limit=200, required=True)
    phone = clean_text(phone, "guardian_phone", limit=40)
    with transaction.atomic():
        was_complete = policy.consent_state(case).complete
        guardian = Guardian(person_id=case.person_id)
        # A guardian belongs to the person (their identity), not to this case.
        dek = person_data_key(case.person)
        seal_value(guardian, "name", name, dek)
        seal_value(guardian, "phone", phone, dek)
        guardian.save(force_insert=True)
        if keep:
            keep_consent(case, was_complete=was_complete)
        audit_case(
            action=AuditAction.CREATE,
            user=user,
            case=case,
            purpose=purpose,
            fields=["name", "phone"] if phone else ["name"],
            obj=guardian,
            **details,
        )
    return guardian


def record_consent(
    *,
    user,
    case: Case,
    purpose: str,
    giver: str,
    decision: str,
    form: str,
    organisations: Iterable[Organisation],
    guardian: Guardian | None = None,
    valid_until: datetime.date | None = None,
    purposes: Iterable[str] | None = None,
    expected_version: int | None = None,
) -> Consent:
    """Record a consent (or refusal) of the person or one guardian, with its scope: the
    organisations and the purposes (``Consent.Purpose``; ``None``: every purpose) it
    covers.

    A consent of a giver whose newest consent was withdrawn renews it: the case goes on
    under it (a closed case stays closed: nothing is recorded on it), and the timeline
    shows the gap (``CONSENT_RENEWED``, with the withdrawal's date).
    """
    purpose = require_access_and_role(
        _not_police, user=user, case=case, purpose=purpose, what="consent:record"
    )
    if case.closed_at is not None:
        raise ValidationError(
            _("The case is closed: a new consent does not reopen it. Refer the person again."),
            code="case_closed",
        )
    errors: dict[str, list] = {}
    purposes = list(Consent.Purpose.values if purposes is None else dict.fromkeys(purposes))
    if any(p not in Consent.Purpose.values for p in purposes):
        errors["purposes"] = [_("Select a valid choice.")]
    elif decision == Consent.Decision.GIVEN and not purposes:
        errors["purposes"] = [_("Choose the purposes the consent covers.")]
    if giver not in Consent.Giver.values:
        errors["giver"] = [_("Select a valid choice.")]
    if decision not in Consent.Decision.values:
        errors["decision"] = [_("Select a valid choice.")]
    if form not in Consent.Form.values:
        errors["form"] = [_("Select a valid choice.")]
    if giver == Consent.Giver.GUARDIAN and (
        guardian is None or guardian.person_id != case.person_id
    ):
        errors["guardian"] = [_("Choose the guardian who gave the consent.")]
    elif (
        giver == Consent.Giver.GUARDIAN
        and not Guardian.objects.current().filter(pk=guardian.pk).exists()
    ):
        # An ended custody's consent no longer counts (``policy.consent_state``); asked of
        # the database, not of the caller's copy of the row.
        errors["guardian"] = [
            _("This guardian's custody has ended: their consent no longer counts.")
        ]
    if giver == Consent.Giver.SELF and guardian is not None:
        errors["guardian"] = [_("A consent of the person names no guardian.")]
    organisations = list(organisations)
    if decision == Consent.Decision.GIVEN and not organisations:
        errors["organisations"] = [_("Choose the organisations the consent covers.")]
    if valid_until is not None and valid_until < timezone.localdate():
        errors["valid_until"] = [_("The date cannot be in the past.")]
    if errors:
        raise ValidationError(errors)
    with case_change(case, expected_version, user=user, purpose=purpose) as change:
        was_complete = policy.consent_state(case).complete
        previous = (
            Consent.objects.filter(case=case, giver=giver, guardian=guardian)
            .order_by("-given_at")
            .first()
        )
        consent = Consent.objects.create(
            case=case,
            giver=giver,
            guardian=guardian,
            decision=decision,
            form=form,
            valid_until=valid_until,
            purposes=purposes,
            recorded_by=user,
        )
        consent.organisations.set(organisations)
        keep_consent(case, was_complete=was_complete)
        details = {}
        # A case under way waited for this consent (a new guardian's, say): complete again.
        restores = (
            not was_complete and under_way_on_consent(case) and policy.consent_state(case).complete
        )
        if restores:
            details["consents_complete"] = True
        if previous is not None and previous.withdrawn_at is not None:
            # The gap: from the withdrawal to this consent, on the timeline (plain dates).
            kind = CaseEvent.Kind.CONSENT_RENEWED
            withdrawn_on = timezone.localdate(previous.withdrawn_at)
            label = f"{giver}:{decision}:{withdrawn_on.isoformat()}"
            details |= {"renews": str(previous.pk), "withdrawn_on": withdrawn_on.isoformat()}
        else:
            kind, label = CaseEvent.Kind.CONSENT, f"{giver}:{decision}"
            if restores:
                label += f":{CONSENTS_COMPLETE}"
        change.record_created(
            consent,
            kind,
            label,
            fields=["consent"],
            decision=decision,
            giver=giver,
            organisations=sorted(o.pk for o in organisations),
            purposes=purposes,
            **details,
        )
    return consent


# The timeline label's suffix of a consent that made a waiting case's consents complete.
CONSENTS_COMPLETE = "complete"


def renewal_gap(event: CaseEvent) -> tuple[datetime.date, datetime.date] | None:
    """The withdrawal's and the renewal's dates of a ``CONSENT_RENEWED`` timeline entry
    (plain: its label holds the withdrawal's date), for the timeline's "gap"."""
    if event.kind != CaseEvent.Kind.CONSENT_RENEWED:
        return None
    try:
        withdrawn_on = datetime.date.fromisoformat(event.transition.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None
    return withdrawn_on, timezone.localdate(event.at)


def withdraw_consent(
    *,
    user,
    case: Case,
    purpose: str,
    consent: Consent,
    on_withdrawn=None,
) -> Consent:
    """Withdraw a consent at once: sharing stops in this very request.

    Police (and other organisations) lose access as soon as this commits —
    ``casework.policy`` reads consents on every request. ``on_withdrawn(case)``
    lets the programme cancel its open tasks and close the case unless another
    legal basis applies, inside the same transaction.
    """
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="consent:withdraw")
    if consent.case_id != case.pk:
        raise deny_case(
            user=user, case=case, purpose=purpose, what="consent:withdraw", reason="case"
        )
    require_role(
        user=user,
        case=case,
        purpose=purpose,
        what="consent:withdraw",
        # The case's own organisation keeps the consents (and keeps its access once one
        # is withdrawn, to close the case); the coordinator acts for it.
        allowed=not policy.is_police(user)
        and (user.organisation_id == case.owner_organisation_id or policy.coordinates(user, case)),
    )
    with case_change(case, user=user, purpose=purpose) as change:
        updated = Consent.objects.filter(pk=consent.pk, withdrawn_at__isnull=True).update(
            withdrawn_at=timezone.now(), withdrawn_by=user
        )
        if not updated:
            raise ValidationError(_("The consent has already been withdrawn."))
        consent.refresh_from_db()
        change.record(
            CaseEvent.Kind.CONSENT_WITHDRAWN, fields=["consent"], obj=consent, withdrawn=True
        )
        if on_withdrawn is not None:
            on_withdrawn(case)
    return consent


def record_legal_basis(
    *,
    user,
    case: Case,
    purpose: str,
    legal_basis: LegalBasis,
    justification: str,
    valid_until: datetime.date | None = None,
) -> CaseLegalBasis:
    """Record a statutory basis for disclosure (e.g. OSL 10:18 a), with its justification."""
    purpose = require_purpose(purpose)
    require_access(user=user, case=case, purpose=purpose, what="legal_basis:record")
    if user.organisation_id != case.owner_organisation_id:
        # The disclosing organisation decides on its own disclosures.
        raise deny_case(
            user=user, case=case, purpose=purpose, what="legal_basis:record", reason="organisation"
        )
    justification = clean_text(justification, "justification", limit=REASON_LIMIT, required=True)
    if not legal_basis.is_active or legal_basis.kind != LegalBasis.Kind.STATUTE:
        raise ValidationError({"legal_basis": ValidationError(_("Select a valid choice."))})
    if valid_until is not None and valid_until < timezone.localdate():
        raise ValidationError(
            {"valid_until": ValidationError(_("The date cannot be in the past."))}
        )
    with case_change(case, user=user, purpose=purpose) as change:
        entry = CaseLegalBasis(
            case=case, legal_basis=legal_basis, recorded_by=user, valid_until=valid_until
        )
        change.seal(entry, "justification", justification)
        entry.save(force_insert=True)
        change.record_created(
            entry, CaseEvent.Kind.LEGAL_BASIS, legal_basis.code, legal_basis=legal_basis.code
        )
    return entry


def has_other_legal_basis(case: Case) -> bool:
    """A recorded statutory basis is in force (consent withdrawal then does not close)."""
    today = timezone.localdate()
    return (
        CaseLegalBasis.objects.filter(case=case, revoked_at__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .filter(legal_basis__is_active=True, legal_basis__kind=LegalBasis.Kind.STATUTE)
        .exists()
    )
