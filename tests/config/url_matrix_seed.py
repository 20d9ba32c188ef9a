"""The data of the role x URL matrix (``test_url_matrix.py``): all four programmes, committed.

``build()`` runs ``seed_demo`` with its demo cases (SIG, SSPF, defector and GVI in every
state, with their viewflow tasks in the demo users' inboxes and queues — the data the
issue's findings were confirmed on), adds a few cases through the test factories (school
and leisure on a SIG team, the police on an SSPF case, a break-the-glass access, a GVI
offer of help accepted into a referral), erases the person of one SIG case, and then gives
every person and guardian a distinctive synthetic name, address and phone, so that a
substring of a response can only be that person's.

``Seed.forbidden(user)`` is what ``casework.policy`` does *not* grant ``user``: the strings
of every person field outside ``policy.case_access`` (narrowed by ``policy.case_parts`` and
the named-handler rule for protected identities) over every seeded case, and outside
``policy.gvi_access`` for GVI members (their names only: the GVI pages show nothing else);
and the case numbers of the cases it may not open. Computed from the policy, not by hand.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from django.core.management import call_command
from django.db import transaction
from django.db.models import Q

from casework import policy
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import open_value, seal_value
from casework.models import Case, CaseLink, CaseMembership, Guardian, Person, User
from casework.selectors.persons import PersonErased
from casework.services import cases as case_services
from casework.services import erase_person, update_person

PURPOSE = "Test: rollmatrisen över alla adresser"
ERASED_REASON = "Test: en raderad person i matrisen"

# The person fields the matrix looks for, in the forms the app prints them.
CHECKED_FIELDS = ("name", "personnummer", "address", "phone")
ALL_FIELDS = frozenset(CHECKED_FIELDS)


def personnummer_forms(normalised: str) -> tuple[str, ...]:
    """12 digits with and without the dash, 10 digits with and without it."""
    short = normalised[2:]
    return (normalised, f"{normalised[:8]}-{normalised[8:]}", short, f"{short[:6]}-{short[6:]}")


@dataclass
class PersonStrings:
    person_id: uuid.UUID
    label: str
    values: dict[str, tuple[str, ...]]  # field → the strings it shows as
    guardian_values: dict[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Seed:
    users: dict[str, User]
    persons: dict[uuid.UUID, PersonStrings]
    erased: PersonStrings  # the values of the erased person, from before the erasure
    erased_case: Case
    cases: list[Case]
    gvi_person_ids: frozenset[uuid.UUID]
    handed_over_case: Case

    def case_grants(self, user) -> tuple[dict[uuid.UUID, set[str]], set[int], set[uuid.UUID]]:
        """What the policy grants ``user``: person id → fields, guardian ids, case ids."""
        fields: dict[uuid.UUID, set[str]] = {}
        guardians: set[int] = set()
        cases: set[uuid.UUID] = set()
        if user is None:
            return fields, guardians, cases
        for case in self.cases:
            try:
                if not policy.case_access(user, case):
                    continue
            except PersonErased:
                continue  # the policy needs the age of the person for this user: gone
            cases.add(case.pk)
            if case.person.erased_at is not None:
                continue  # nothing of an erased person can be shown (nor decrypted)
            parts = policy.case_parts(user, case)
            granted = set(ALL_FIELDS if parts.person_fields is None else parts.person_fields)
            person = case.person
            if person.protected_identity:
                # The case selector's rule: a protected address for the lead and the
                # coordinator only; in a defector case address and phone for the named
                # handlers only (``policy.named_handler``).
                if case.programme == Case.Programme.DEFECTOR:
                    if not policy.named_handler(user, case):
                        granted -= {"address", "phone"}
                else:
                    lead = CaseMembership.objects.filter(
                        case=case, user=user, role=CaseMembership.Role.LEAD, valid_to__isnull=True
                    ).exists()
                    if not (lead or policy.coordinates(user, case)):
                        granted.discard("address")
            fields.setdefault(person.pk, set()).update(granted & ALL_FIELDS)
            if parts.guardians:
                guardians.update(person.guardians.values_list("pk", flat=True))
        if policy.gvi_access(user):
            for person_id in self.gvi_person_ids:
                fields.setdefault(person_id, set()).add("name")
        # The data protection role: everything about the persons of its organisation's
        # register extracts (ADR 0025), nothing else.
        for person_id in extract_person_ids(user):
            fields.setdefault(person_id, set()).update(ALL_FIELDS)
            guardians.update(
                Guardian.objects.filter(person_id=person_id).values_list("pk", flat=True)
            )
        return fields, guardians, cases

    def forbidden(self, user) -> dict[str, str]:
        """Every string ``user`` must never be shown (lower case) → what it is.

        Person fields outside the grants (the erased person's: to nobody), and the numbers
        of the cases the user may not open and did not refer (a referrer knows the number
        of their own referral)."""
        fields, guardians, cases = self.case_grants(user)
        forbidden: dict[str, str] = {}
        for person in [*self.persons.values(), self.erased]:
            erased = person is self.erased
            granted = set() if erased else fields.get(person.person_id, set())
            for name, values in person.values.items():
                if name not in granted:
                    forbidden.update({v.lower(): f"{person.label} {name}" for v in values})
            for guardian_id, values in person.guardian_values.items():
                if erased or guardian_id not in guardians:
                    label = f"{person.label} guardian {guardian_id}"
                    forbidden.update({v.lower(): label for v in values})
        known = self.known_cases(user, cases)
        for case in self.cases:
            if case.pk not in known:
                forbidden[case.reference.lower()] = f"case number {case.reference}"
        return forbidden

    def person_tokens(self) -> set[str]:
        """Every string of every (not erased) person and guardian, lower case."""
        found = set()
        for person in self.persons.values():
            for values in [*person.values.values(), *person.guardian_values.values()]:
                found |= {v.lower() for v in values}
        return found

    def known_cases(self, user, opened: set[uuid.UUID]) -> set[uuid.UUID]:
        """The cases whose *number* ``user`` may be shown: those the policy opens, and the
        ones the design shows the number of without opening the case — the user referred
        it or was on its team once (their own referral, tasks and hand-over notices), it is
        linked to a case the user may open, it is the referral a GVI offer of help opened
        (for the GVI participants who take it up), or the user is an auditor (the access
        log names cases). A number is not person data; the pages that show the numbers of
        all cases to anyone are findings 2 and 6."""
        if user is None:
            return set()
        from viewflow.workflow.models import Task

        from workflows.defector.models import DefectorProcess
        from workflows.gvi.models import GroupMember
        from workflows.sig.models import SigProcess
        from workflows.sspf.models import SspfProcess

        if policy.can_view_access_log(user):
            return {case.pk for case in self.cases}
        known = set(opened)
        extracted = extract_person_ids(user)
        known |= {case.pk for case in self.cases if case.person_id in extracted}
        known |= {case.pk for case in self.cases if case.referred_by_id == user.pk}
        known |= set(CaseMembership.objects.filter(user=user).values_list("case_id", flat=True))
        # The cases of the tasks the user holds or did (their inbox and archive).
        process_ids = Task.objects.filter(owner=user).values("process_id")
        for process_class in (SigProcess, SspfProcess, DefectorProcess):
            known |= set(
                process_class.objects.filter(pk__in=process_ids).values_list("case_id", flat=True)
            )
        links = CaseLink.objects.filter(Q(from_case__in=opened) | Q(to_case__in=opened))
        for from_case, to_case in links.values_list("from_case_id", "to_case_id"):
            known |= {from_case, to_case}
        if policy.gvi_access(user):
            known |= set(
                GroupMember.objects.filter(referral_case__isnull=False).values_list(
                    "referral_case_id", flat=True
                )
            )
        return known


def extract_person_ids(user) -> set[uuid.UUID]:
    """The persons of the register extracts of ``user``'s organisation, for its data
    protection role (``policy.can_produce_register_extract``)."""
    from casework.models import ExtractRequest

    if user is None or not policy.can_produce_register_extract(user):
        return set()
    return set(
        ExtractRequest.objects.filter(organisation_id=user.organisation_id).values_list(
            "person_id", flat=True
        )
    )


def _extracts(users, cases: list[Case]) -> None:
    """Register extracts (ADR 0025): one under review and one released for the social
    services' data protection role, and one of the police area's (an operator's)."""
    from casework.services import extracts

    dina = users["dina.dataskydd"]
    police = users["per.polis"].organisation
    social = [c for c in cases if c.owner_organisation_id == dina.organisation_id]
    first, second = (
        open_value(p, "personnummer", load_data_key(owner_type=PERSON, owner_id=p.pk))
        for p in (social[0].person, social[-1].person)
    )
    extracts.request_extract(user=dina, personnummer=first)
    released = extracts.request_extract(user=dina, personnummer=second)
    extracts.release_extract(user=dina, extract_id=released.pk)
    extracts.request_extract(user=None, personnummer=second, organisation=police)


# Every string ``Seed.forbidden`` can hold, as a token of a response: the synthetic names,
# addresses and phones ``_rename`` gives, personnummer (10 or 12 digits, with or without
# the dash) and case numbers.
TOKENS = re.compile(
    r"Matrisgatan \d{3}B"
    r"|[A-Za-z]+\d{3}[A-Za-z]?"
    r"|0(?:70-1740|31-3900)\d{3}"
    r"|(?<![0-9])(?:[0-9]{8}|[0-9]{6})-?[0-9]{4}(?![0-9])"
    r"|[A-Z]+-[0-9]{4}-[0-9]{4}",
    re.IGNORECASE,
)


def tokens(text: str) -> set[str]:
    """The tokens of ``text``; a name token followed by a letter ("Provmark007s") also
    without it."""
    found = {match.lower() for match in TOKENS.findall(text)}
    return found | {t[:-1] for t in found if t[-1].isalpha() and t[-2].isdigit()}


# --- Building -----------------------------------------------------------------------------


def _extras(users) -> dict:
    """Cases the demo does not have, through the test factories."""
    from tests.workflows.gvi import factories as gvi_factories
    from tests.workflows.sig.factories import sig_case
    from tests.workflows.sspf.factories import sspf_case
    from workflows.sig import models as sig
    from workflows.sspf import models as sspf

    # School and leisure on a SIG team; the consents cover the school, not leisure.
    sig_case(
        users,
        sig.Status.ACTIVE,
        members=(("lisa.skola", "school"), ("fredrik.fritid", "leisure")),
        covering=("social", "police", "school"),
    )
    # The police on an SSPF case (participation decided, consent covering them).
    sspf_case(users, sspf.Status.PLAN_ACTIVE, police=True)
    # The defector coordinator breaks the glass on a SIG case outside her team.
    glass = sig_case(users, sig.Status.CONSENT_PENDING)
    case_services.break_glass(
        user=users["alex.avhopp"],
        case=glass,
        reason="Test: akut hot mot personen, måste ringa nu.",
    )
    # A GVI offer of help accepted: a SIG referral and a task in the participants' queue.
    _, (member,) = gvi_factories.group(users, status="mapped", years=19)
    gvi_factories.delivered_notification(
        users, member, response="accepted", programme="sig", reason="Vill lämna gruppen."
    )
    # A pending four-eyes request (ADR 0014): the role of a case worker, asked by one admin.
    from django.contrib.auth.models import Group

    from casework.services import administration

    administration.request_role_grant(
        user=users["adam.admin"],
        target=users["fredrik.fritid"],
        group=Group.objects.get(name="socialsekreterare"),
        reason="Ny tjänst som socialsekreterare från 1 januari.",
    )
    # Single sign-on (ADR 0018): an approved provider (explicit endpoints: no network)
    # serving the municipality, and a link to an account waiting for approval.
    from casework.models import ExternalIdentity, IdentityProvider, IdentityProviderOrganisation

    provider = IdentityProvider.objects.create(
        slug="kommunen",
        name="Kommunens inloggning",
        issuer="https://idp.invalid",
        client_id="samverkan",
        authorization_endpoint="https://idp.invalid/auth",
        token_endpoint="https://idp.invalid/token",
        jwks_uri="https://idp.invalid/jwks",
    )
    IdentityProviderOrganisation.objects.create(
        provider=provider, organisation=users["anna.social"].organisation
    )
    administration.approve(
        user=users["berit.admin"],
        request_id=administration.request_identity_provider(
            user=users["adam.admin"], provider=provider, reason="Kommunens inloggning."
        ).pk,
    )
    administration.request_external_identity(
        user=users["adam.admin"],
        identity=ExternalIdentity.objects.create(
            user=users["fredrik.fritid"], provider=provider, subject="fredrik-sub"
        ),
        reason="Fredriks konto hos kommunen.",
    )
    # The person of an active SIG case, erased (``manage.py erase_person``).
    return {"to_erase": sig_case(users, sig.Status.ACTIVE)}


def _strings_of(person: Person, number: int, label: str) -> PersonStrings:
    dek = load_data_key(owner_type=PERSON, owner_id=person.pk)
    values = {
        "name": tuple(open_value(person, "name", dek).split()),
        "personnummer": personnummer_forms(open_value(person, "personnummer", dek)),
    }
    for name in ("address", "phone"):
        value = open_value(person, name, dek)
        if value:
            values[name] = (value,)
    guardians = {}
    for guardian in Guardian.objects.filter(person=person):
        shown = [*open_value(guardian, "name", dek).split()]
        phone = open_value(guardian, "phone", dek)
        if phone:
            shown.append(phone)
        guardians[guardian.pk] = tuple(shown)
    return PersonStrings(person.pk, label, values, guardians)


def _rename(person: Person, number: int) -> None:
    """Distinctive synthetic values (fixed width: none is a substring of another).

    Phones in the PTS series for fiction: 070-1740605…699 for persons, 031-3900600…699
    for guardians."""
    update_person(
        user=None,
        purpose=PURPOSE,
        person_id=person.pk,
        name=f"Matrisa{number:03d} Provmark{number:03d}",
        address=f"Matrisgatan {number:03d}B",
        phone=f"070-1740{605 + number:03d}",
    )
    dek = load_data_key(owner_type=PERSON, owner_id=person.pk)
    for index, guardian in enumerate(Guardian.objects.filter(person=person).order_by("pk")):
        tag = number * 3 + index
        seal_value(guardian, "name", f"Vardnadsa{tag:03d} Provmark{number:03d}v", dek)
        seal_value(guardian, "phone", f"031-3900{600 + tag % 100:03d}", dek)
        guardian.save(update_fields=["name", "phone"])


def build() -> Seed:
    """Seed everything (committed: call with the database unblocked, outside a test)."""
    from axes.models import AccessAttempt

    from workflows.defector import models as defector
    from workflows.gvi import models as gvi

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    users = {user.username: user for user in User.objects.all()}
    # A sign-in lock, for the admin's pages of one (ADR 0016).
    AccessAttempt.objects.create(
        username="finns.inte",
        ip_address="192.0.2.1",
        user_agent="url matrix",
        failures_since_start=5,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/konto/logga-in/",
    )
    # An API client's webhook and a delivery, for the admin's pages of one (ADR 0022).
    from casework.models import ApiClient, Webhook, WebhookDelivery

    api_client = ApiClient.objects.create(
        name="url matrix", organisation=users["anna.social"].organisation
    )
    webhook = Webhook.objects.create(
        client=api_client, url="https://system.example/hook", events="task.created", secret="x"
    )
    WebhookDelivery.objects.create(
        webhook=webhook, event="task.created", payload={"task": {"id": 1}, "case": None}
    )
    extras = _extras(users)
    persons = list(Person.objects.filter(erased_at__isnull=True).order_by("pk"))
    assert len(persons) < 95, "the phone series has room for 95 persons"
    with transaction.atomic():
        for number, person in enumerate(persons):
            _rename(person, number)
    to_erase = extras["to_erase"]
    cases = list(Case.objects.select_related("person", "owner_organisation").order_by("reference"))
    _extracts(users, [c for c in cases if c.person_id != to_erase.person_id])
    case_of = {}
    for case in cases:
        case_of.setdefault(case.person_id, case)
    strings = {}
    for number, person in enumerate(persons):
        person.refresh_from_db()
        case = case_of.get(person.pk)
        where = f"{case.programme} {case.reference}" if case else "GVI member"
        strings[person.pk] = _strings_of(person, number, f"person {number} ({where})")
    erased = strings.pop(to_erase.person_id)
    erased.label += " [erased]"
    erase_person(user=None, purpose=ERASED_REASON, person_id=to_erase.person_id)
    gvi_person_ids = frozenset(gvi.GroupMember.objects.values_list("person_id", flat=True))
    handed_over = (
        defector.DefectorCase.objects.filter(handed_over_at__isnull=False).order_by("pk").first()
    )
    assert handed_over is not None, "the demo has a defector case handed over to the police"
    cases = list(Case.objects.select_related("person", "owner_organisation").order_by("reference"))
    return Seed(
        users=users,
        persons=strings,
        erased=erased,
        erased_case=Case.objects.get(pk=to_erase.pk),
        cases=cases,
        gvi_person_ids=gvi_person_ids,
        handed_over_case=Case.objects.get(pk=handed_over.pk),
    )
