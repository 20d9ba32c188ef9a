"""Create the demo organisations and one demo user per role (idempotent).

Demo data is synthetic and exists only where this command is run: never in a
migration, and never under production settings.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from casework import roles
from casework.models import Organisation, User

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
    ("lisa.skola", "Lisa", "Skola", roles.SCHOOL, "Vivallaskolan"),
    ("fredrik.fritid", "Fredrik", "Fritid", roles.LEISURE, "Fritidsgården Vivalla"),
    ("stig.styrgrupp", "Stig", "Styrgrupp", roles.STEERING_GROUP, SOCIAL),
    ("greta.granskare", "Greta", "Granskare", roles.AUDITOR, SOCIAL),
    ("adam.admin", "Adam", "Admin", roles.ADMINISTRATOR, MUNICIPALITY_IT),
]


class Command(BaseCommand):
    help = "Skapar demoorganisationer och en demoanvändare per roll (kan köras flera gånger)."

    def handle(self, *args, **options):
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
        self.stdout.write(
            self.style.SUCCESS(f"Demodata klar. Inloggningar (lösenord: {password}):")
        )
        for username, _first, _last, role, org in USERS:
            self.stdout.write(f"  {username:<17} {roles.LABELS[role]!s:<20} {org}")
