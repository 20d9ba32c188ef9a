"""Consent and recorded legal bases: whether the consents a case needs are in place, which
organisations and purposes they cover, and on which basis an organisation may see what
the case's owner holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q
from django.utils import timezone

from casework import programmes
from casework.models import CaseLegalBasis, Consent, LegalBasis


def withdrawn_givers(consents) -> list[Consent]:
    """The givers (the person, each guardian) whose newest consent of ``consents`` is
    withdrawn — each by that consent: sharing on their consent stops until they consent
    again (a renewal)."""
    newest: dict[tuple[str, object], Consent] = {}
    for consent in sorted(consents, key=lambda c: c.given_at):
        newest[(consent.giver, consent.guardian_id)] = consent
    return [c for c in newest.values() if c.withdrawn_at is not None]


def consent_state(case, *, today: date | None = None, consents=None) -> ConsentState:
    """Whether the required consents are in place, which organisations they all cover
    and for which purposes (``Consent.Purpose``).

    Required: the person's own consent, and while the person is under 18 the
    consent of every current guardian (at least one; an ended custody no longer
    counts). From 18 the guardians' consents no longer carry: the person's own is
    needed, whatever the programme's age for it. A refusal anywhere means no valid
    consent. Of each giver only the newest consent counts: a withdrawal ends the
    consent for good (an older consent of the same giver does not take its place)
    until the giver consents again, after the withdrawal (a renewal). ``consents``:
    the case's consents with their organisations prefetched, when the caller has read
    them.
    """
    today = today or timezone.localdate()
    if consents is None:
        consents = case.consents.all().prefetch_related("organisations")
    withdrawn = bool(withdrawn_givers(consents))
    consents = [
        c
        for c in consents
        if c.withdrawn_at is None and (c.valid_until is None or c.valid_until >= today)
    ]
    refused = any(c.decision == Consent.Decision.REFUSED for c in consents)
    given = [c for c in consents if c.decision == Consent.Decision.GIVEN]
    own = [c for c in given if c.giver == Consent.Giver.SELF]
    required = list(own[-1:])
    youngest, oldest = _age_bounds(case.person, on=today)
    missing = [] if own or not _own_consent_required(case, oldest) else ["self"]
    if (programme := programmes.get(case.programme)) and programme.written_guardian_consent:
        # The programme counts a guardian's consent only in writing (SSPF).
        given = [
            c for c in given if c.giver == Consent.Giver.SELF or c.form == Consent.Form.WRITTEN
        ]
    if youngest < ADULT_AGE:
        prefetched = getattr(case.person, "_prefetched_objects_cache", {}).get("guardians")
        if prefetched is not None:
            guardians = [guardian.pk for guardian in prefetched if guardian.ended_at is None]
        else:
            guardians = list(case.person.guardians.current().values_list("id", flat=True))
        if not guardians:
            missing.append("guardian")
        for guardian_id in guardians:
            theirs = [c for c in given if c.guardian_id == guardian_id]
            if theirs:
                required.append(theirs[-1])
            else:
                missing.append(f"guardian:{guardian_id}")
    covered: set[int] | None = None
    purposes: set[str] | None = None
    for consent in required:
        orgs = {org.pk for org in consent.organisations.all()}
        covered = orgs if covered is None else covered & orgs
        theirs = set(consent.purposes or ())
        purposes = theirs if purposes is None else purposes & theirs
    complete = not refused and not missing and not withdrawn
    return ConsentState(
        complete=complete,
        refused=refused,
        missing=tuple(missing),
        organisations=frozenset(covered or ()) if complete else frozenset(),
        purposes=frozenset(purposes or ()) if complete else frozenset(),
    )


def _age_bounds(person, *, on: date) -> tuple[int, int]:
    """The youngest and the oldest the person can be on ``on``, for the age rules.

    The same age twice while the person's data can be read. An erased person's date
    of birth is gone with the data key: only the plain birth year is left, which
    leaves two possible ages. Each rule then takes the stricter one (guardians'
    consent while the person may still be under 18, own consent once they may be
    old enough, a statute with an age limit only while they are surely under it),
    so an erasure never widens what anyone may see (docs/adr/0004, addendum).
    """
    if person.erased_at is not None:
        oldest = on.year - person.birth_year
        return oldest - 1, oldest
    from casework.selectors.persons import person_age

    age = person_age(person, on=on)
    return age, age


def _own_consent_required(case, age: int) -> bool:
    """Always, or from the age the case's programme registered (SSPF) — and always from
    18, when the guardians' consents no longer carry."""
    programme = programmes.get(case.programme)
    if programme is not None and programme.own_consent_age is not None:
        return age >= min(programme.own_consent_age(), ADULT_AGE)
    return True


# From this age the guardians' consents no longer carry: the person's own is needed.
ADULT_AGE = 18


@dataclass(frozen=True)
class ConsentState:
    complete: bool
    refused: bool
    missing: tuple[str, ...]
    organisations: frozenset[int]
    # The ``Consent.Purpose`` values every required consent covers.
    purposes: frozenset[str] = frozenset()

    def covers(self, organisation_id, purpose: str) -> bool:
        """The consents in force show the data to ``organisation_id`` for ``purpose``."""
        return organisation_id in self.organisations and purpose in self.purposes


def statutory_basis(case, organisation, *, today: date | None = None) -> LegalBasis | None:
    """A recorded legal basis (other than consent) allowing disclosure to ``organisation``."""
    today = today or timezone.localdate()
    recorded = (
        CaseLegalBasis.objects.filter(case=case, revoked_at__isnull=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("legal_basis")
    )
    for entry in recorded:
        basis = entry.legal_basis
        if not basis.is_active or basis.kind != LegalBasis.Kind.STATUTE:
            continue
        if basis.discloser_kinds and case.owner_organisation.kind not in basis.discloser_kinds:
            continue
        if basis.recipient_kinds and organisation.kind not in basis.recipient_kinds:
            continue
        if basis.max_age is not None and _age_bounds(case.person, on=today)[1] >= basis.max_age:
            continue
        return basis
    return None


# What a reading shows when it names no purpose of its own: the joint work on the case.
DEFAULT_PURPOSE = Consent.Purpose.COORDINATION


def disclosure_basis(
    case,
    organisation,
    *,
    today: date | None = None,
    consents=None,
    purpose: str = DEFAULT_PURPOSE,
) -> str:
    """The code of the basis on which ``organisation`` may see data the case's owner holds
    for ``purpose`` (a ``Consent.Purpose``).

    ``""`` when there is none. Consent first (what the person agreed to: the
    organisation and the purpose), then a recorded statute. ``consents``: as for
    :func:`consent_state`.
    """
    if consent_state(case, today=today, consents=consents).covers(organisation.pk, purpose):
        return "consent"
    basis = statutory_basis(case, organisation, today=today)
    return basis.code if basis else ""


def uncovered_purpose(state: ConsentState, organisation_id, purpose: str) -> str:
    """The access log's reason when the consents cover the organisation but not the
    purpose (``""`` otherwise)."""
    if organisation_id in state.organisations and purpose not in state.purposes:
        return f"consent does not cover the purpose {purpose}"
    return ""
