"""Erase a person by crypto-shredding: ``manage.py erase_person <id> --reason "..."``."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from casework import services
from casework.crypto.errors import CryptoError
from casework.models import Person


class Command(BaseCommand):
    help = (
        "Raderar en person genom att förstöra personens datanyckel (kryptografisk radering). "
        "Statistikfälten behålls. Att köra kommandot igen slutför en avbruten radering."
    )

    def add_arguments(self, parser):
        parser.add_argument("person_id", type=uuid.UUID)
        parser.add_argument(
            "--reason", required=True, help="why (recorded in the access log; no personal data)"
        )

    def handle(self, *args, person_id: uuid.UUID, reason: str, **options):
        already = Person.objects.filter(pk=person_id, erased_at__isnull=False).exists()
        try:
            person = services.erase_person(user=None, purpose=reason, person_id=person_id)
        except Person.DoesNotExist:
            raise CommandError(f"Ingen person med id {person_id}.") from None
        except CryptoError as exc:
            raise CommandError(str(exc)) from None
        when = f"{person.erased_at:%Y-%m-%d %H:%M:%S %Z}"
        if already:
            self.stdout.write(f"Person {person.pk} var redan raderad ({when}).")
            return
        self.stdout.write(
            self.style.SUCCESS(f"Person {person.pk} raderad {when}: datanyckeln är förstörd.")
        )
