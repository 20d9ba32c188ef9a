"""The data subject's register extract (registerutdrag, GDPR art. 15): assembling its items.

Everything about one person that the requesting organisation is responsible for: the
person's identity and protected-identity status, guardians, every case the organisation
owns in every programme (the case row, team, consents, legal bases, decisions, actions,
timeline, links, break-the-glass accesses, and each programme's own rows through the
registry, ``casework.programmes.extract_rows``), the organisation's own actions and
decisions in other organisations' cases, and who in the organisation has read the
person's data and when (the access log). Rows are shown field by field from the model's
own description (``verbose_name``, choices), so a new field is in the extract without
a change here. See docs/adr/0025-register-extract.md.

``assemble`` writes no access-log event: its callers do (the review page: a
consultation; the release: the extract event).
"""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.selectors import person_readings
from audit.services import Action, record_event
from casework import policy, programmes
from casework.crypto.keystore import PERSON, load_data_key
from casework.crypto.records import open_value
from casework.fields import EncryptedField
from casework.models import (
    Action as CaseAction,
)
from casework.models import (
    BreakGlassAccess,
    Case,
    CaseDecision,
    CaseEvent,
    CaseLegalBasis,
    CaseLink,
    CaseMembership,
    Consent,
    ExtractRequest,
    Guardian,
    LegalBasis,
    Organisation,
    Person,
    User,
)
from casework.selectors.case_keys import case_keys
from casework.selectors.persons import PersonErased

if TYPE_CHECKING:
    from audit.models import AccessEvent

EXTRACT_OBJECT = "casework.extractrequest"
PURPOSE = _("Register extract for the data subject (GDPR art. 15)")
# Never shown: row ids, row versions, the blind index, the person link (the extract is
# the person's own), the extract's bookkeeping.
HIDDEN_FIELDS = frozenset({"id", "version", "personnummer_index", "person", "item_keys"})
# The core's models the extract shows (the programmes add theirs: the registry).
CORE_MODELS = (
    Person,
    Guardian,
    Case,
    CaseMembership,
    Consent,
    CaseLegalBasis,
    CaseDecision,
    CaseAction,
    CaseEvent,
    CaseLink,
    BreakGlassAccess,
)
# The access log's columns shown of each reading (the user as the log recorded them).
READING_FIELDS = ("occurred_at", "username", "organisation_name", "action", "fields", "purpose")


@dataclass(frozen=True)
class ExtractItem:
    """One item of the extract: a row (or a part of one), shown field by field.

    ``key`` ("app.model:id"; the protected-identity status: "…:protected_identity") and
    ``description`` (its kind and case number) name it without its content, for the
    secrecy review's record. ``repr`` shows no personal data.
    """

    key: str
    section: str
    description: str
    title: str
    fields: tuple[tuple[str, str], ...] = field(repr=False)


@dataclass
class Extract:
    person_id: uuid.UUID
    organisation: str
    items: list[ExtractItem]

    def index(self) -> list[dict[str, str]]:
        """The items' keys and descriptions (no content): what the review saw."""
        return [{"key": item.key, "description": item.description} for item in self.items]

    def kinds(self) -> list[str]:
        """The kinds of row the items come from (their keys' first part), sorted: the fields
        an extract's access-log events name."""
        return sorted({item.key.split(":", 1)[0] for item in self.items})

    def sections(self, *, leaving_out=frozenset()) -> list[tuple[str, list[ExtractItem]]]:
        """The items by section, in order, without the keys in ``leaving_out``."""
        found: dict[str, list[ExtractItem]] = {}
        for item in self.items:
            if item.key not in leaving_out:
                found.setdefault(item.section, []).append(item)
        return list(found.items())


# --- Showing a row ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _related(row: models.Model, model_field: models.Field) -> str | None:
    """A link shown by what it names: a user's name, a case number, an organisation."""
    target = getattr(row, model_field.name)
    if target is None:
        return None
    if isinstance(target, User):
        return target.get_full_name() or target.username
    if isinstance(target, Case):
        return target.reference
    if isinstance(target, Organisation | LegalBasis):
        return str(target)
    return None  # another row of the extract (a guardian, a group member …): its own item


def _value(row: models.Model, model_field: models.Field, dek) -> Any:
    if isinstance(model_field, EncryptedField):
        # No key: the row's case was culled (its texts are gone).
        return open_value(row, model_field.name, dek) if dek is not None else None
    if model_field.many_to_many:
        return [str(target) for target in getattr(row, model_field.name).all()]
    if model_field.is_relation:
        if model_field.one_to_one and model_field.remote_field.parent_link:
            return None
        return _related(row, model_field)
    if model_field.choices:
        return getattr(row, f"get_{model_field.name}_display")()
    if isinstance(model_field, models.UUIDField | models.BinaryField):
        return None
    return getattr(row, model_field.attname)


def row_fields(row: models.Model, dek, *, names=None) -> tuple[tuple[str, str], ...]:
    """Every field of ``row`` with a value, as (label, text): encrypted ones opened."""
    meta = row._meta
    chosen = (
        [meta.get_field(name) for name in names]
        if names is not None
        else [*meta.concrete_fields, *meta.many_to_many]
    )
    shown = []
    for model_field in chosen:
        if model_field.name in HIDDEN_FIELDS or model_field.name.endswith("_ptr"):
            continue
        value = _value(row, model_field, dek)
        if value in (None, "", [], {}):
            continue
        shown.append((capfirst(str(model_field.verbose_name)), _text(value)))
    return tuple(shown)


def _key(row: models.Model) -> str:
    return f"{row._meta.label_lower}:{row.pk}"


# --- Assembling --------------------------------------------------------------------------------


def _case_rows(cases: list[Case], organisation: Organisation) -> list[models.Model]:
    """The core's rows of the cases: every part of the organisation's own cases, and the
    organisation's own actions and decisions in the others."""
    owned = [case.pk for case in cases if case.owner_organisation_id == organisation.pk]
    others = [case.pk for case in cases if case.pk not in owned]
    own_or_team = Q(organisation=organisation) | Q(visibility=CaseAction.Visibility.TEAM)
    rows: list[models.Model] = []
    for model in (CaseMembership, Consent, CaseLegalBasis, CaseDecision, CaseEvent):
        rows.extend(model.objects.filter(case_id__in=owned).order_by("pk"))
    rows.extend(
        CaseAction.objects.filter(
            (Q(case_id__in=owned) & own_or_team) | Q(case_id__in=others, organisation=organisation)
        ).order_by("date", "created_at")
    )
    rows.extend(CaseDecision.objects.filter(case_id__in=others, organisation=organisation))
    rows.extend(
        CaseLink.objects.filter(Q(from_case_id__in=owned) | Q(to_case_id__in=owned)).order_by(
            "created_at"
        )
    )
    rows.extend(BreakGlassAccess.objects.filter(case_id__in=owned).order_by("opened_at"))
    return rows


def _case_of(row: models.Model, cases: dict[uuid.UUID, Case]) -> Case | None:
    if isinstance(row, Case):
        return cases.get(row.pk)
    case_id = getattr(row, "case_id", None) or getattr(row, "from_case_id", None)
    if isinstance(row, CaseLink) and case_id not in cases:
        case_id = row.to_case_id
    return cases.get(case_id)


def assemble(request: ExtractRequest, dek) -> Extract:
    """The items of extract ``request`` from the data as it is now (no event: the callers
    write it). ``dek``: the person's data key."""
    person = request.person
    organisation = request.organisation
    identity = gettext("Identity")
    items = [
        ExtractItem(
            key=_key(person),
            section=identity,
            description=gettext("Personal details"),
            title=gettext("Personal details"),
            fields=row_fields(
                person, dek, names=(*Person.ENCRYPTED_FIELDS, "birth_year", "gender", "area")
            ),
        ),
        ExtractItem(
            key=f"{_key(person)}:protected_identity",
            section=identity,
            description=gettext("Protected identity"),
            title=gettext("Protected identity"),
            fields=row_fields(person, dek, names=("protected_identity",)),
        ),
    ]
    for guardian in Guardian.objects.filter(person=person).order_by("created_at"):
        title = capfirst(str(Guardian._meta.verbose_name))
        items.append(ExtractItem(_key(guardian), identity, title, title, row_fields(guardian, dek)))
    all_cases = list(
        Case.objects.filter(person=person)
        .select_related("owner_organisation", "person")
        .order_by("opened_at")
    )
    # A case's rows are sealed under the case's own key (docs/adr/0023-keys-per-case.md).
    keys = case_keys(all_cases)
    owned = [case for case in all_cases if case.owner_organisation_id == organisation.pk]
    cases = {case.pk: case for case in all_cases}
    rows = [
        *programmes.extract_rows(person=person, organisation=organisation, cases=owned),
        *_case_rows(all_cases, organisation),
    ]
    # In case order: each case's rows under its heading, the rest under their programme's.
    order = {case.pk: number for number, case in enumerate(all_cases)}
    rows.sort(key=lambda row: order.get(getattr(_case_of(row, cases), "pk", None), len(order)))
    for row in rows:
        case = _case_of(row, cases)
        title = capfirst(str(row._meta.verbose_name))
        if case is not None:
            section = gettext("Case %(reference)s (%(programme)s)") % {
                "reference": case.reference,
                "programme": case.get_programme_display(),
            }
            description = f"{title}, {case.reference}"
        else:
            section = _programme_label(row)
            description = title
        row_dek = keys.get(case.pk) if case is not None else dek
        items.append(ExtractItem(_key(row), section, description, title, row_fields(row, row_dek)))
    items.extend(_readings(person, organisation, until=request.requested_at))
    return Extract(person_id=person.pk, organisation=organisation.name, items=items)


def _programme_label(row: models.Model) -> str:
    for programme in programmes.registered():
        if type(row) in programme.extract_models:
            return str(programme.label)
    return capfirst(str(row._meta.verbose_name_plural))


def _readings(
    person: Person, organisation: Organisation, *, until: datetime.datetime
) -> list[ExtractItem]:
    """The readings up to when the extract was asked for (the lookup that found the person
    included): the review's own readings after it do not change what is reviewed."""
    section = gettext("Who has read the data, and when")
    found = []
    event: AccessEvent
    for event in person_readings(
        person_id=person.pk, organisation_name=organisation.name, until=until
    ):
        when = timezone.localtime(event.occurred_at).strftime("%Y-%m-%d %H:%M")
        title = gettext("%(action)s %(when)s") % {
            "action": event.get_action_display(),
            "when": when,
        }
        found.append(
            ExtractItem(
                _key(event), section, title, title, row_fields(event, None, names=READING_FIELDS)
            )
        )
    return found


def covered_models() -> frozenset[type]:
    """Every model whose rows the extract shows (the completeness test checks the rest
    against its list of justified exclusions)."""
    return frozenset({*CORE_MODELS, *programmes.extract_models()})


def person_key(person: Person):
    if person.erased_at is not None:
        raise PersonErased(person.pk)
    return load_data_key(owner_type=PERSON, owner_id=person.pk)


# --- Selectors -----------------------------------------------------------------------------


def list_extracts(*, user) -> list[ExtractRequest]:
    """The extracts of the user's organisation, newest first (ids, dates and states only)."""
    if not policy.can_produce_register_extract(user):
        raise PermissionDenied
    return list(
        ExtractRequest.objects.filter(organisation_id=user.organisation_id)
        .select_related("requested_by", "released_by")
        .prefetch_related("withheld")[:200]
    )


def get_extract(*, user, extract_id: uuid.UUID) -> ExtractRequest:
    """One extract of the user's organisation; anyone else's is a 404 (``DoesNotExist``)."""
    if not policy.can_produce_register_extract(user):
        raise PermissionDenied
    return (
        ExtractRequest.objects.select_related("person", "organisation")
        .prefetch_related("withheld")
        .get(pk=extract_id, organisation_id=user.organisation_id)
    )


def record_extract_event(action: str, *, user, request: ExtractRequest, fields=(), **details):
    """The access-log event of one step of an extract (never the content): on the request,
    under its person, for the extract's purpose; ``details`` beside the request's id."""
    record_event(
        action=action,
        user=user,
        obj=request,
        person_id=request.person_id,
        fields=list(fields),
        purpose=str(PURPOSE),
        details={"extract": str(request.pk), **details},
    )


def review_extract(*, user, request: ExtractRequest) -> Extract:
    """The items of ``request`` for its secrecy review: one consultation event."""
    if not policy.extract_in_reach(user, request):
        raise PermissionDenied
    with transaction.atomic():
        extract = assemble(request, person_key(request.person))
        record_extract_event(
            Action.CONSULT,
            user=user,
            request=request,
            fields=extract.kinds(),
            items=len(extract.items),
            step="review",
        )
    return extract


def released_document(*, user, request: ExtractRequest, format: str) -> dict:
    """The released document of ``request`` (JSON-ready), for a download in ``format``: one
    export event. ``user`` ``None``: an operator (``manage.py register_extract``)."""
    if user is not None and not policy.extract_in_reach(user, request):
        raise PermissionDenied
    if request.status != ExtractRequest.Status.RELEASED:
        raise ExtractRequest.DoesNotExist
    with transaction.atomic():
        document = json.loads(open_value(request, "document", person_key(request.person)))
        record_extract_event(
            Action.EXPORT, user=user, request=request, fields=["document"], format=format
        )
    return document
