"""Retention rules' values: validated, described and applied for a four-eyes request.

``casework.services.administration`` applies an approved ``retention_rule`` request
with :func:`apply_rule_change`; ``casework.services.retention`` records the request.
This module imports neither (docs/adr/0024-retention.md).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from casework import programmes
from casework.models import Organisation, RetentionRule

RULE_FIELDS = (
    "organisation",
    "organisation_kind",
    "programme",
    "controller",
    "event",
    "years",
    "end_of_following_year",
    "research_exception",
    "is_active",
)
# What a rule covers: fixed once the rule exists (a new scope is a new rule).
SCOPE_FIELDS = ("organisation", "organisation_kind", "programme")


def programme_codes() -> list[str]:
    """The registered programmes whose cases a rule can cover (those with case models)."""
    return sorted(p.code for p in programmes.registered() if p.case_models)


def rule_values(rule: RetentionRule) -> dict[str, Any]:
    """A rule's values as a change request holds them (organisations by id)."""
    return {
        "organisation": rule.organisation_id,
        "organisation_kind": rule.organisation_kind,
        "programme": rule.programme,
        "controller": rule.controller_id,
        "event": rule.event,
        "years": rule.years,
        "end_of_following_year": rule.end_of_following_year,
        "research_exception": rule.research_exception,
        "is_active": rule.is_active,
    }


def rule_state(rule: RetentionRule | None) -> dict[str, Any]:
    """What an approval covers (the digest of a stale request differs)."""
    return rule_values(rule) if rule is not None else {}


def _organisation(value, errors: dict, name: str) -> int | None:
    if value in (None, ""):
        return None
    pk = getattr(value, "pk", value)
    if not isinstance(pk, int) or not Organisation.objects.filter(pk=pk).exists():
        errors[name] = _("Choose an organisation from the list.")
        return None
    return pk


def clean_rule_values(values: dict[str, Any], *, rule: RetentionRule | None) -> dict[str, Any]:
    """Validated values of a rule (every field of ``RULE_FIELDS``); organisations as ids."""
    if set(values) != set(RULE_FIELDS):
        raise ValidationError(_("The retention rule is incomplete."), code="incomplete")
    errors: dict[str, str] = {}
    organisation = _organisation(values["organisation"], errors, "organisation")
    controller = _organisation(values["controller"], errors, "controller")
    kind = values["organisation_kind"] or ""
    if kind and kind not in Organisation.Kind.values:
        errors["organisation_kind"] = _("Choose a valid organisation type.")
    if organisation is None and not kind and "organisation" not in errors:
        errors["organisation_kind"] = _("Choose an organisation or an organisation type.")
    if organisation is not None:
        kind = ""  # an organisation's own rule: its type is the organisation's
    programme = values["programme"] or ""
    if programme and programme not in programme_codes():
        errors["programme"] = _("Choose a programme from the list, or none for every programme.")
    if values["event"] not in RetentionRule.Event.values:
        errors["event"] = _("Choose what the years are counted from.")
    years = values["years"]
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 100:
        errors["years"] = _("Enter a number of years between 1 and 100.")
    for flag in ("end_of_following_year", "research_exception", "is_active"):
        if not isinstance(values[flag], bool):
            errors[flag] = _("Choose yes or no.")
    if not errors:
        same_scope = RetentionRule.objects.filter(
            organisation_id=organisation, organisation_kind=kind, programme=programme
        ).exclude(pk=getattr(rule, "pk", None))
        if same_scope.exists():
            errors["programme"] = _(
                "Another retention rule already covers this organisation and programme: "
                "request a change of that rule."
            )
    if errors:
        raise ValidationError(errors)
    return {
        "organisation": organisation,
        "organisation_kind": kind,
        "programme": programme,
        "controller": controller,
        "event": values["event"],
        "years": years,
        "end_of_following_year": values["end_of_following_year"],
        "research_exception": values["research_exception"],
        "is_active": values["is_active"],
    }


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    return {
        ("organisation_id" if name == "organisation" else "controller_id")
        if name in ("organisation", "controller")
        else name: value
        for name, value in values.items()
    }


def apply_rule_change(change: dict[str, Any], rule: RetentionRule | None) -> RetentionRule:
    """Apply an approved request (validated again, in the approval's transaction)."""
    if rule is None:
        values = clean_rule_values(change["values"], rule=None)
        return RetentionRule.objects.create(**_fields(values))
    values = rule_values(rule)
    values.update({name: diff["to"] for name, diff in change["fields"].items()})
    values = clean_rule_values(values, rule=rule)
    for name, value in _fields(values).items():
        setattr(rule, name, value)
    rule.save()
    return rule
