"""The data subject's register extract from the command line:
``manage.py register_extract <personnummer> --organisation <id> --out FILE``.

The same extract as the data protection role's pages (docs/adr/0025-register-extract.md),
made and released by an operator without a secrecy review: the request, the release
(an extract event in the access log) and the download (an export event) are recorded
as on the pages, with no user.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from casework.crypto.errors import CryptoError
from casework.extract_pdf import FORMATS, render
from casework.models import Organisation
from casework.selectors.extracts import released_document
from casework.selectors.persons import PersonErased
from casework.services import extracts


class Command(BaseCommand):
    help = (
        "Tar fram ett registerutdrag (GDPR art. 15) för en person: allt som organisationen "
        "ansvarar för, som PDF eller JSON. Utlämnandet loggas i åtkomstloggen."
    )

    def add_arguments(self, parser):
        parser.add_argument("personnummer")
        parser.add_argument(
            "--organisation", required=True, help="the responsible organisation's id"
        )
        parser.add_argument("--out", required=True, help="the file to write (.pdf or .json)")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file's name")

    def handle(self, *args, personnummer: str, organisation: str, out: str, **options):
        path = Path(out)
        format = options.get("format") or path.suffix.lower().lstrip(".")
        if format not in FORMATS:
            raise CommandError(
                "Ange --format pdf eller json, eller en fil som slutar på .pdf/.json."
            )
        if not path.parent.is_dir():
            raise CommandError(f"Mappen {path.parent} finns inte.")
        try:
            responsible = Organisation.objects.get(pk=int(organisation))
        except (ValueError, Organisation.DoesNotExist):
            raise CommandError(f"Ingen organisation med id {organisation}.") from None
        try:
            request = extracts.request_extract(
                user=None, personnummer=personnummer, organisation=responsible
            )
            request = extracts.release_extract(user=None, extract_id=request.pk)
            document = released_document(user=None, request=request, format=format)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except (CryptoError, PersonErased) as exc:
            raise CommandError(type(exc).__name__) from None
        try:
            path.write_bytes(render(document, format))
        except OSError as exc:
            raise CommandError(f"Kunde inte skriva {path}: {exc.strerror}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Registerutdrag {request.pk} för {responsible.name} skrivet till {path} "
                f"({document['withheld']['statement']})"
            )
        )
