"""Reads of change requests (four eyes on power): the admin's request page and the
auditors' read-only list. No personal data: account names, roles, organisation
types and legal-basis fields only."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from casework import policy
from casework.models import AdminChangeRequest, IdentityProvider, LegalBasis, Organisation, User
from casework.selectors.retention import describe_rule_change

Kind = AdminChangeRequest.Kind
NONE = "\u2013"  # an en dash: no value


def list_change_requests(*, user, decision: str = "", limit: int = 500):
    """The newest requests (``decision``: only those), for an administrator or auditor."""
    if not policy.can_view_change_requests(user):
        raise PermissionDenied
    queryset = AdminChangeRequest.objects.select_related("requested_by", "decided_by")
    if decision:
        queryset = queryset.filter(decision=decision)
    requests = list(queryset.order_by("-requested_at", "-id")[:limit])
    return [(change_request, describe_change(change_request)) for change_request in requests]


def describe_change(change_request: AdminChangeRequest) -> list[tuple[str, str]]:
    """The requested change as label/value rows for a page (ids, roles, kinds, values)."""
    change = change_request.change or {}
    rows: list[tuple[str, str]] = []
    kind = change_request.kind
    if kind == Kind.GRANT_ROLE:
        target = User.objects.filter(pk=change_request.target_id).first()
        rows.append((str(_("Account")), target.get_username() if target else NONE))
        rows.append((str(_("Role")), str(change.get("role", NONE))))
    elif kind == Kind.PASSWORD_LINK:
        target = User.objects.filter(pk=change_request.target_id).first()
        rows.append((str(_("Account")), target.get_username() if target else NONE))
    elif kind == Kind.ORGANISATION_KIND:
        target = Organisation.objects.filter(pk=change_request.target_id).first()
        labels = dict(Organisation.Kind.choices)
        rows.append((str(_("Organisation")), target.name if target else NONE))
        rows.append(
            (
                str(_("Type")),
                f"{labels.get(change.get('from'), NONE)} → {labels.get(change.get('to'), NONE)}",
            )
        )
    elif kind == Kind.LEGAL_BASIS:
        if change.get("new"):
            rows.append((str(_("New legal basis")), str(change.get("values", {}).get("code", ""))))
            for name, value in change.get("values", {}).items():
                rows.append((str(LegalBasis._meta.get_field(name).verbose_name), _value(value)))
        else:
            rows.append((str(_("Legal basis")), str(change.get("code", ""))))
            for name, diff in change.get("fields", {}).items():
                rows.append(
                    (
                        str(LegalBasis._meta.get_field(name).verbose_name),
                        f"{_value(diff.get('from'))} → {_value(diff.get('to'))}",
                    )
                )
    elif kind == Kind.IDENTITY_PROVIDER:  # single sign-on (ADR 0018)
        for name, value in change.items():
            if name == "organisations":
                served = ", ".join(
                    f"{item.get('organisation', '')} ({item.get('minimum_acr') or NONE})"
                    for item in value
                )
                rows.append((str(_("Organisations served (lowest acr)")), served or NONE))
            else:
                label = IdentityProvider._meta.get_field(name).verbose_name
                rows.append((str(label), _value(value)))
    elif kind == Kind.EXTERNAL_IDENTITY:
        rows.append((str(_("Account")), str(change.get("account", NONE))))
        rows.append((str(_("Identity provider")), str(change.get("provider", NONE))))
        rows.append((str(_("Identity at the provider")), str(change.get("subject", NONE))))
    elif kind == Kind.API_CLIENT:  # the integration API (ADR 0022)
        rows.append((str(_("API client")), str(change.get("name", NONE))))
        if change.get("action") == "new_secret":
            rows.append((str(_("Change")), str(_("A new secret (the old one stops working)"))))
        else:
            rows.append((str(_("Organisation")), str(change.get("organisation", NONE))))
            rows.append((str(_("Scopes")), _value(change.get("scopes"))))
            rows.append((str(_("Rate limit")), change.get("rate_limit") or str(_("Default"))))
            rows.append((str(_("New client")), _value(bool(change.get("new")))))
    elif kind == Kind.RETENTION_RULE:  # retention (ADR 0024)
        rows += describe_rule_change(change, value=_value)
    return rows


def _value(value) -> str:
    if value is None or value == []:
        return NONE
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, list):
        labels = dict(Organisation.Kind.choices)
        return ", ".join(str(labels.get(item, item)) for item in value)
    return str(value)
