"""The data subject's register extract: asking for it, the secrecy review, the release.

The data protection role (or an operator, ``user`` ``None``: ``manage.py
register_extract``) asks for an extract of one person for its organisation; the secrecy
review withholds items under OSL, each with the provision cited; the release assembles
the items again from the data as it is (refused if they changed since the review saw
them), seals the released document under the person's data key and writes one extract
event (``Action.EXTRACT``) naming the withheld items and provisions, never their content.
See docs/adr/0025-register-extract.md.
"""

from __future__ import annotations

import json
import re
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.services import Action
from casework import policy
from casework.crypto.records import seal_value
from casework.models import ExtractRequest, Organisation, WithheldItem
from casework.selectors import extracts as selectors
from casework.selectors.extracts import record_extract_event
from casework.selectors.persons import find_person_for_extract

# A provision of the Public Access to Information and Secrecy Act (offentlighets- och
# sekretesslagen, 2009:400): "OSL 26 kap. 1 §", "OSL 18 kap. 1 § första stycket",
# "26 kap. 1 § OSL", "offentlighets- och sekretesslagen 35 kap. 1 a §".
_OSL = r"(?:OSL|offentlighets-\s+och\s+sekretesslagen(?:\s*\(2009:400\))?)"
_CHAPTER_SECTION = r"\d{1,2}\s*kap\.?\s*\d{1,3}(?:\s*[a-z])?\s*§"
PROVISION = re.compile(
    rf"^(?:{_OSL}\s+{_CHAPTER_SECTION}|{_CHAPTER_SECTION}\s+{_OSL})(?:[\s,].*)?$", re.IGNORECASE
)
PROVISION_MAX_LENGTH = 200


def clean_provision(provision: str) -> str:
    """The cited secrecy provision, or a ``ValidationError`` in Swedish."""
    provision = " ".join((provision or "").split())
    if not provision:
        raise ValidationError(
            _("Cite the secrecy provision the item is withheld under (e.g. OSL 26 kap. 1 §)."),
            code="provision_required",
        )
    if len(provision) > PROVISION_MAX_LENGTH or not PROVISION.match(provision):
        raise ValidationError(
            _(
                "Cite a provision of the Public Access to Information and Secrecy Act as "
                "chapter and section, e.g. OSL 26 kap. 1 §."
            ),
            code="provision_invalid",
        )
    return provision


def _refuse(user, request: ExtractRequest | None = None) -> None:
    if user is not None and (
        not policy.can_produce_register_extract(user)
        or (request is not None and not policy.extract_in_reach(user, request))
    ):
        raise PermissionDenied(_("You may not work on this register extract."))


def _locked(user, extract_id: uuid.UUID) -> ExtractRequest:
    """The extract, locked, if the user may work on it and it is still under review."""
    _refuse(user)
    request = (
        ExtractRequest.objects.select_for_update()
        .select_related("person", "organisation")
        .filter(pk=extract_id)
        .first()
    )
    if request is None:
        raise ExtractRequest.DoesNotExist
    _refuse(user, request)
    if request.status != ExtractRequest.Status.REVIEW:
        raise ValidationError(
            _("The register extract has been released; it can no longer be changed."),
            code="released",
        )
    return request


def request_extract(
    *, user, personnummer: str, organisation: Organisation | None = None
) -> ExtractRequest:
    """Ask for the register extract of the person with ``personnummer``, for the user's
    organisation (an operator, ``user`` ``None``, names ``organisation``)."""
    _refuse(user)
    if user is not None:
        organisation = user.organisation
    if organisation is None:
        raise ValueError("an operator's extract names the organisation")
    person = find_person_for_extract(personnummer, user=user)
    if person is None:
        raise ValidationError(
            _("No person with this personal identity number is registered."), code="not_found"
        )
    with transaction.atomic():
        request = ExtractRequest(person=person, organisation=organisation, requested_by=user)
        extract = selectors.assemble(request, selectors.person_key(person))
        request.item_keys = extract.index()
        request.save()
        record_extract_event(Action.CREATE, user=user, request=request, items=len(extract.items))
    return request


def reassemble(*, user, extract_id: uuid.UUID) -> ExtractRequest:
    """Take the data as it is now into the review (after a change since it was asked for);
    the withholdings of items that are gone are dropped."""
    with transaction.atomic():
        request = _locked(user, extract_id)
        extract = selectors.assemble(request, selectors.person_key(request.person))
        request.item_keys = extract.index()
        request.save(update_fields=["item_keys"])
        request.withheld.exclude(item_key__in=[item.key for item in extract.items]).delete()
        record_extract_event(
            Action.CHANGE, user=user, request=request, items=len(extract.items), step="again"
        )
    return request


def withhold_item(*, user, extract_id: uuid.UUID, item_key: str, provision: str) -> WithheldItem:
    """The secrecy review withholds one item under ``provision`` (OSL, cited)."""
    provision = clean_provision(provision)
    with transaction.atomic():
        request = _locked(user, extract_id)
        described = {entry["key"]: entry["description"] for entry in request.item_keys}
        if item_key not in described:
            raise ValidationError(_("The extract has no such item."), code="no_item")
        if request.withheld.filter(item_key=item_key).exists():
            raise ValidationError(_("The item is already withheld."), code="already_withheld")
        withheld = WithheldItem.objects.create(
            request=request,
            item_key=item_key,
            description=described[item_key][:200],
            provision=provision,
            decided_by=user,
        )
        record_extract_event(
            Action.CHANGE, user=user, request=request, withheld=item_key, provision=provision
        )
    return withheld


def restore_item(*, user, extract_id: uuid.UUID, withheld_id: uuid.UUID) -> None:
    """The secrecy review takes back a withholding before the release."""
    with transaction.atomic():
        request = _locked(user, extract_id)
        withheld = request.withheld.filter(pk=withheld_id).first()
        if withheld is None:
            raise ValidationError(_("The item is not withheld."), code="not_withheld")
        withheld.delete()
        record_extract_event(Action.CHANGE, user=user, request=request, restored=withheld.item_key)


def withheld_statement(count: int, provisions: list[str]) -> str:
    """The document's sentence on what the secrecy review withheld (no content)."""
    if not count:
        return gettext("Nothing has been withheld under secrecy.")
    return gettext(
        "%(count)d items have been reviewed for secrecy and are not released, under %(provisions)s."
    ) % {"count": count, "provisions": ", ".join(provisions)}


def release_extract(*, user, extract_id: uuid.UUID) -> ExtractRequest:
    """Release the extract to the data subject: the items but the withheld ones, sealed
    under the person's key; one extract event (the withheld items and provisions listed)."""
    with transaction.atomic():
        request = _locked(user, extract_id)
        dek = selectors.person_key(request.person)
        extract = selectors.assemble(request, dek)
        # By key: the descriptions follow the language of the request that made them.
        if [item.key for item in extract.items] != [e["key"] for e in request.item_keys]:
            raise ValidationError(
                _(
                    "The person's data has changed since the extract was put together. "
                    "Put it together again and review it before releasing it."
                ),
                code="stale",
            )
        withheld = list(request.withheld.all())
        keys = {item.item_key for item in withheld}
        provisions = sorted({item.provision for item in withheld})
        now = timezone.now()
        document = {
            "title": gettext("Register extract"),
            "law": gettext("Article 15 of the General Data Protection Regulation (GDPR)"),
            "person_id": str(request.person_id),
            "organisation": request.organisation.name,
            "requested_at": request.requested_at.isoformat(),
            "released_at": now.isoformat(),
            "sections": [
                {
                    "title": section,
                    "items": [
                        {
                            "key": item.key,
                            "title": item.title,
                            "fields": [{"label": k, "value": v} for k, v in item.fields],
                        }
                        for item in items
                    ],
                }
                for section, items in extract.sections(leaving_out=keys)
            ],
            "withheld": {
                "count": len(withheld),
                "provisions": provisions,
                "statement": withheld_statement(len(withheld), provisions),
            },
        }
        seal_value(request, "document", json.dumps(document, ensure_ascii=False), dek)
        request.status = ExtractRequest.Status.RELEASED
        request.released_by = user
        request.released_at = now
        request.save(update_fields=["document", "status", "released_by", "released_at"])
        record_extract_event(
            Action.EXTRACT,
            user=user,
            request=request,
            fields=extract.kinds(),
            recipient="data_subject",
            released=len(extract.items) - len(withheld),
            withheld=[{"item": item.item_key, "provision": item.provision} for item in withheld],
        )
    return request
