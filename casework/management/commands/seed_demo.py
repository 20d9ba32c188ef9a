"""Create the demo organisations, one demo user per role and synthetic persons (idempotent).

Demo data is synthetic and exists only where this command is run: never in a
migration, and never under production settings.

Synthetic persons (``DEMO_PERSONS``, default 300, or ``--persons``):

* personnummer are **samordningsnummer** (day of birth + 60) born 2001-2015,
  with the check digit computed by ``stdnum.luhn`` - they validate, but they
  are drawn at random and belong to no one we know of. Skatteverket publishes
  a list of test personnummer; it is not bundled here (no network), see
  docs/adr/0004-field-encryption.md ("Demo persons");
* surnames are made-up compounds of ``Prov-``, ``Test-``, ``Exempel-`` … and
  streets ``Provgatan``, ``Testvägen`` …: Swedish-sounding and obviously fake;
* phone numbers are in the series 070-1740605…699 that PTS sets aside for
  fiction;
* every note says "Syntetisk demoperson".

Person ids are derived from the number (uuid5), so running the command again
adds nothing.

Demo cases (``DEMO_SIG_CASES``, on by default; ``--no-sig-cases``): each registered
programme's own (``casework.programmes``, ``Programme.seed_demo``) — for SIG one
case in every state of the SIG process, each about a synthetic person of its
own, driven through the services and the flow so its tasks sit in the demo
users' inboxes and queues (``workflows/sig_demo.py``). Keyed on the person:
running the command again adds nothing.

Demo API clients (``DEMO_API_CLIENTS``, on by default): one client system per main
organisation with every scope, ``demo-socialtjanst`` and ``demo-polisen``, made by
adam.admin and approved by berit.admin through the four-eyes service (so the access log
and the change requests show both), then given the known demo secret
(``DEMO_API_SECRET``) instead of the one the approval made. Keyed on the client's name:
running the command again adds nothing while the client is as approved.
"""

from __future__ import annotations

import datetime
import random
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext

from casework import personnummer as pnr
from casework import programmes, roles, services
from casework.models import ApiClient, Organisation, Person, User
from casework.services import administration, api_clients

POLICE = "Lokalpolisområde Örebro"
SOCIAL = "Socialförvaltningen, Örebro kommun"
MUNICIPALITY_IT = "Örebro kommun, IT-enheten"

ORGANISATIONS = [
    (POLICE, Organisation.Kind.POLICE),
    (SOCIAL, Organisation.Kind.SOCIAL_SERVICES),
    ("Vivallaskolan", Organisation.Kind.SCHOOL),
    ("Navets skola", Organisation.Kind.SCHOOL),
    ("Fritidsgården Vivalla", Organisation.Kind.LEISURE),
    ("Fritidsgården Brickebacken", Organisation.Kind.LEISURE),
    (MUNICIPALITY_IT, Organisation.Kind.OTHER),
]

# username, first name, last name, role, organisation
USERS = [
    ("anna.social", "Anna", "Social", roles.SOCIAL_WORKER, SOCIAL),
    ("per.polis", "Per", "Polis", roles.POLICE_CONTACT, POLICE),
    ("sara.samordnare", "Sara", "Samordnare", roles.COORDINATOR, SOCIAL),
    ("alex.avhopp", "Alex", "Avhopp", roles.DEFECTOR_COORDINATOR, SOCIAL),
    ("maja.avhopp", "Maja", "Avhopp", roles.DEFECTOR_COORDINATOR, POLICE),
    ("lisa.skola", "Lisa", "Skola", roles.SCHOOL, "Vivallaskolan"),
    ("fredrik.fritid", "Fredrik", "Fritid", roles.LEISURE, "Fritidsgården Vivalla"),
    ("stig.styrgrupp", "Stig", "Styrgrupp", roles.STEERING_GROUP, SOCIAL),
    ("greta.granskare", "Greta", "Granskare", roles.AUDITOR, SOCIAL),
    # Data protection: the data subject's register extract (docs/adr/0025).
    ("dina.dataskydd", "Dina", "Dataskydd", roles.DATA_PROTECTION, SOCIAL),
    ("adam.admin", "Adam", "Admin", roles.ADMINISTRATOR, MUNICIPALITY_IT),
    # A second administrator: role grants, set-password links, legal bases and
    # organisation types need the approval of another administrator (four eyes).
    ("berit.admin", "Berit", "Admin", roles.ADMINISTRATOR, MUNICIPALITY_IT),
]

# The demo's API clients: client id, name, organisation (every scope).
API_CLIENTS = [
    ("demo-socialtjanst", "Samverkan demo – socialtjänsten", SOCIAL),  # noqa: RUF001
    ("demo-polisen", "Samverkan demo – polisen", POLICE),  # noqa: RUF001
]
API_CLIENT_REASON = "Demodata: organisationens eget ärendesystem (seed_demo)"

FIRST_NAMES = [
    "Alva",
    "Ebba",
    "Elsa",
    "Ella",
    "Maja",
    "Saga",
    "Wilma",
    "Nora",
    "Amira",
    "Leila",
    "Hana",
    "Sara",
    "Elias",
    "Noah",
    "Hugo",
    "Liam",
    "Leo",
    "Oscar",
    "Adam",
    "Omar",
    "Yusuf",
    "Ali",
    "Milo",
    "Isak",
]
SURNAME_STEMS = ["Prov", "Test", "Exempel", "Demo", "Fiktiv", "Låtsas", "Skiss", "Utkast"]
SURNAME_ENDINGS = ["berg", "lund", "ström", "holm", "dahl", "kvist", "gren", "sson", "by"]
STREETS = [
    "Provgatan",
    "Testvägen",
    "Exempelstigen",
    "Demogränd",
    "Fiktivallén",
    "Låtsastorget",
    "Skissbacken",
    "Utkastvägen",
]
AREAS = [
    (Person.Area.VIVALLA_BARONBACKARNA, 35),
    (Person.Area.VARBERGA_OXHAGEN, 25),
    (Person.Area.BRICKEBACKEN, 20),
    (Person.Area.OTHER, 20),
]
PERSON_NAMESPACE = uuid.UUID("6f1d2c1e-8a8c-4e0e-9a51-5a6d656d6f00")
SEED_PURPOSE = "Demodata: syntetiska personer (seed_demo)"
STALE_KEYS_PURPOSE = "Demodata: inaktuella datanycklar från en tidigare körning (seed_demo)"


def synthetic_persons(count: int) -> list[dict]:
    """``count`` synthetic persons, the same ones on every run."""
    rng = random.Random(20_261_127)  # noqa: S311 - reproducible demo data, not secrets
    first_day = datetime.date(2001, 1, 1)
    span = (datetime.date(2015, 12, 31) - first_day).days
    numbers: set[str] = set()
    persons = []
    while len(persons) < count:
        born = first_day + datetime.timedelta(days=rng.randrange(span + 1))
        serial = f"{rng.randrange(1000):03d}"
        ten = pnr.with_check_digit(f"{born:%y%m}{born.day + 60:02d}{serial}")
        number = f"{born:%Y}"[:2] + ten
        if number in numbers:
            continue
        numbers.add(number)
        persons.append(
            {
                "person_id": uuid.uuid5(PERSON_NAMESPACE, number),
                "personnummer": number,
                "name": f"{rng.choice(FIRST_NAMES)} "
                f"{rng.choice(SURNAME_STEMS)}{rng.choice(SURNAME_ENDINGS)}",
                "address": f"{rng.choice(STREETS)} {rng.randrange(1, 60)}, Örebro",
                "phone": f"070-174 06 {rng.randrange(5, 100):02d}",
                "area": rng.choices([a for a, _w in AREAS], weights=[w for _a, w in AREAS])[0],
                "protected_identity": rng.choices(
                    list(Person.ProtectedIdentity.values), weights=[90, 6, 3, 1]
                )[0],
                "note": "Syntetisk demoperson: påhittade uppgifter.",
            }
        )
    return persons


class Command(BaseCommand):
    help = (
        "Skapar demoorganisationer, en demoanvändare per roll och syntetiska personer "
        "(kan köras flera gånger)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--persons",
            type=int,
            default=None,
            help="number of synthetic persons (default: settings.DEMO_PERSONS)",
        )
        parser.add_argument(
            "--no-sig-cases",
            action="store_true",
            help="no SIG demo cases (default: settings.DEMO_SIG_CASES)",
        )

    def handle(self, *args, persons: int | None = None, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo vägrar köra med produktionsinställningar (DJANGO_ENV=production)."
            )
        password = settings.DEMO_PASSWORD
        with transaction.atomic():
            organisations = {}
            for name, kind in ORGANISATIONS:
                organisations[name], _ = Organisation.objects.update_or_create(
                    name=name, defaults={"kind": kind, "is_active": True}
                )
            for username, first, last, role, org in USERS:
                user, _ = User.objects.update_or_create(
                    username=username,
                    defaults={
                        "first_name": first,
                        "last_name": last,
                        "email": f"{username}@demo.invalid",
                        "organisation": organisations[org],
                        "is_staff": role == roles.ADMINISTRATOR,
                        "is_superuser": False,
                        "is_active": True,
                    },
                )
                user.set_password(password)
                user.save(update_fields=["password"])
                user.groups.set([Group.objects.get(name=role)])
        if settings.DEMO_API_CLIENTS:
            self._seed_api_clients(organisations)
        count = settings.DEMO_PERSONS if persons is None else persons
        with_cases = settings.DEMO_SIG_CASES and not options.get("no_sig_cases")
        if count > 0 or with_cases:
            # A fresh main database over the key store of an earlier run: the demo persons'
            # ids come again (uuid5 of their numbers) and their old keys are stale.
            stale = services.discard_stale_demo_data_keys(purpose=STALE_KEYS_PURPOSE)
            if stale:
                self.stdout.write(
                    gettext(
                        "The key store held %(count)d data keys of demo persons this database "
                        "does not have (from an earlier run): deleted."
                    )
                    % {"count": stale}
                )
        created = self._seed_persons(count) if count > 0 else 0
        if count > 0:
            self.stdout.write(f"Syntetiska personer: {created} nya, {count} totalt.")
        if with_cases:
            # Each programme's demo cases (``casework.programmes``, ``Programme.seed_demo``).
            for programme in programmes.registered():
                if programme.seed_demo is not None:
                    programme.seed_demo(self.stdout)
        self.stdout.write(
            self.style.SUCCESS(f"Demodata klar. Inloggningar (lösenord: {password}):")
        )
        for username, _first, _last, role, org in USERS:
            self.stdout.write(f"  {username:<17} {roles.LABELS[role]!s:<20} {org}")
        if settings.DEMO_API_CLIENTS:
            self.stdout.write(
                self.style.SUCCESS(
                    "API-klienter (client credentials, hemlighet: "
                    f"{settings.DEMO_API_SECRET}; README: Integration API):"
                )
            )
            for client_id, _name, org in API_CLIENTS:
                self.stdout.write(f"  {client_id:<17} {'alla behörigheter':<20} {org}")

    def _seed_api_clients(self, organisations: dict[str, Organisation]) -> None:
        """The demo API clients, approved with four eyes, with the known demo secret."""
        requester = User.objects.get(username="adam.admin")
        approver = User.objects.get(username="berit.admin")
        for client_id, name, org in API_CLIENTS:
            values = {
                "name": name,
                "organisation": organisations[org],
                "scopes": list(settings.API_SCOPES),
                "rate_limit": "",
            }
            with transaction.atomic():
                client = ApiClient.objects.filter(name=name).first()
                if client is None:
                    client = api_clients.create_client(user=requester, **values)
                else:
                    client = api_clients.change_client(user=requester, client=client, **values)
                    api_clients.activate_client(user=requester, client=client)
                if not api_clients.api_client_approved(client):
                    change_request = api_clients.request_approval(
                        user=requester, client=client, reason=API_CLIENT_REASON
                    )
                    # The secret the approval made is not kept: the demo's is known.
                    administration.approve(user=approver, request_id=change_request.pk)
                    client.refresh_from_db()
                api_clients.install_demo_credentials(
                    client=client, client_id=client_id, secret=settings.DEMO_API_SECRET
                )

    def _seed_persons(self, count: int) -> int:
        wanted = synthetic_persons(count)
        existing = set(
            Person.objects.filter(pk__in=[p["person_id"] for p in wanted]).values_list(
                "pk", flat=True
            )
        )
        created = 0
        for data in wanted:
            if data["person_id"] in existing:
                continue
            services.create_person(user=None, purpose=SEED_PURPOSE, **data)
            created += 1
        return created
