"""Four eyes on power: change requests that a second administrator approves.

Granting a role that opens case data, the access log or account management, a
set-password link for another user, a new or changed legal basis and a changed
organisation kind are never applied by the administrator who asks for them:
:func:`request_*` records an ``AdminChangeRequest``, :func:`approve` applies it
— in one transaction, after checking again that nothing changed since — when
*another* administrator approves, and :func:`reject` closes it with a reason.
Every step is an access-log event; a refused attempt to decide one's own request
is a denied-access event that survives the refusal.

Errors are ``ValidationError`` (bad input, stale or decided request, own
request) or ``PermissionDenied`` (no right to this kind of request), each with a
message for the administrator; nothing is written when one is raised.

Passwords: an administrator never sets another user's password. An approved
``password_link`` request produces a single-use, time-limited link
(``casework.services.password_links``, ``PASSWORD_RESET_TIMEOUT``) at which the
user sets their own; it is e-mailed to the account's address when e-mail is
configured, otherwise shown once to the approving administrator — never to the
one who asked (docs/adr/0014-four-eyes-on-power.md).

Identity providers and linked identities (ADR 0018) and the integration API's clients
(``casework.services.api_clients``) are used only in the state a second administrator
approved; a client's secret is made at approval and shown once, to the approver.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from audit.services import Action, record_event, record_refusal
from casework import policy
from casework.models import (
    AdminChangeRequest,
    ApiClient,
    ExternalIdentity,
    IdentityProvider,
    LegalBasis,
    Organisation,
    RetentionRule,
    User,
)
from casework.services import api_credentials, retention_rules
from casework.services.password_links import send_link, set_password_link

Kind = AdminChangeRequest.Kind
Decision = AdminChangeRequest.Decision

REASON_MAX_LENGTH = 2000
LEGAL_BASIS_FIELDS = (
    "code",
    "name",
    "description",
    "kind",
    "discloser_kinds",
    "recipient_kinds",
    "max_age",
    "is_active",
)
# The fields of a legal basis that decide disclosure: never changed in the
# admin's own form, only through an approved request.
LEGAL_BASIS_DISCLOSURE_FIELDS = (
    "code",
    "kind",
    "discloser_kinds",
    "recipient_kinds",
    "max_age",
    "is_active",
)
_TARGET_TYPES = {
    Kind.GRANT_ROLE: "casework.user",
    Kind.PASSWORD_LINK: "casework.user",
    Kind.LEGAL_BASIS: "casework.legalbasis",
    Kind.ORGANISATION_KIND: "casework.organisation",
    Kind.IDENTITY_PROVIDER: "casework.identityprovider",
    Kind.EXTERNAL_IDENTITY: "casework.externalidentity",
    Kind.API_CLIENT: "casework.apiclient",
    Kind.RETENTION_RULE: "casework.retentionrule",
}
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


@dataclass(frozen=True)
class Approval:
    """What an approval did; ``link`` (a set-password link) or ``secret`` (an API client's
    new secret, with its ``client_id``) is set only when the approver must hand it over."""

    request: AdminChangeRequest
    link: str = ""
    emailed: bool = False
    secret: str = ""
    client_id: str = ""


# --- helpers ----------------------------------------------------------------------------


def clean_reason(value: str, *, message: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(message, code="reason_required")
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError(
            _("The reason may be at most %(limit)d characters.") % {"limit": REASON_MAX_LENGTH},
            code="reason_too_long",
        )
    return text


def require_right(user, kind: str, *, decide: bool = False) -> None:
    """Refuse (a denied-access event, then ``PermissionDenied``) a user who may not request,
    or with ``decide`` decide, a change request of ``kind``."""
    allowed = (
        policy.can_decide_admin_change(user, kind)
        if decide
        else policy.can_request_admin_change(user, kind)
    )
    if not allowed:
        record_refusal(
            user=user,
            object_type="casework.adminchangerequest",
            details={"kind": str(kind), "step": "decide" if decide else "request"},
        )
        raise PermissionDenied(_("You may not make or decide this kind of change request."))


def request_reason(user, kind: str, reason: str) -> str:
    """The prologue of a change request of ``kind``: the user may request it
    (:func:`require_right`) and gives a reason; returns the cleaned reason."""
    require_right(user, kind)
    return clean_reason(reason, message=_("Give a reason for the request."))


def state_digest(state: dict[str, Any]) -> str:
    """A keyed digest of a target's state: compared, never shown, holds no value."""
    canonical = json.dumps(state, sort_keys=True, default=str, ensure_ascii=False)
    return salted_hmac("casework.four_eyes.target", canonical, algorithm="sha256").hexdigest()


def _account_state(user: User, kind: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "active": user.is_active,
        "superuser": user.is_superuser,
        "organisation": user.organisation_id,
        "groups": sorted(user.groups.values_list("pk", flat=True)),
    }
    if kind == Kind.PASSWORD_LINK:
        # Where the link goes and the password it replaces: part of the digest only.
        state.update(email=user.email, password=user.password)
    return state


def _legal_basis_values(basis: LegalBasis) -> dict[str, Any]:
    values = {name: getattr(basis, name) for name in LEGAL_BASIS_FIELDS}
    for name in ("discloser_kinds", "recipient_kinds"):
        if isinstance(values[name], list):
            values[name] = sorted(set(values[name]))
    return values


# --- single sign-on: what an approval covers (docs/adr/0018-single-sign-on.md) ------------

_PROVIDER_FIELDS = (
    "slug",
    "name",
    "issuer",
    "client_id",
    "client_secret_env",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "scopes",
    "match_claim",
    "account_field",
    "acr_levels",
)


def identity_provider_state(provider: IdentityProvider) -> dict[str, Any]:
    """Everything of a provider's configuration that decides who signs in as whom
    (all but its on/off switch): an approval covers exactly this."""
    state: dict[str, Any] = {name: getattr(provider, name) for name in _PROVIDER_FIELDS}
    state["organisations"] = sorted(
        [organisation_id, minimum_acr]
        for organisation_id, minimum_acr in provider.identityproviderorganisation_set.values_list(
            "organisation_id", "minimum_acr"
        )
    )
    return state


def external_identity_state(identity: ExternalIdentity) -> dict[str, Any]:
    return {
        "user": identity.user_id,
        "provider": identity.provider_id,
        "subject": identity.subject,
    }


def sso_approved(obj: IdentityProvider | ExternalIdentity) -> bool:
    """Is this provider configuration or linked identity the one a second
    administrator approved? (Any change since voids the approval.)"""
    if not obj.approved_digest:
        return False
    kind = Kind.IDENTITY_PROVIDER if isinstance(obj, IdentityProvider) else Kind.EXTERNAL_IDENTITY
    return state_digest(_target_state(kind, obj)) == obj.approved_digest


def _target_state(kind: str, target) -> dict[str, Any]:
    if kind == Kind.API_CLIENT:
        return api_credentials.api_client_state(target)
    if kind == Kind.RETENTION_RULE:
        return retention_rules.rule_state(target)
    if kind == Kind.IDENTITY_PROVIDER:
        return identity_provider_state(target)
    if kind == Kind.EXTERNAL_IDENTITY:
        return external_identity_state(target)
    if kind in (Kind.GRANT_ROLE, Kind.PASSWORD_LINK):
        return _account_state(target, kind)
    if kind == Kind.LEGAL_BASIS:
        return _legal_basis_values(target) if target is not None else {}
    return {"kind": target.kind}


def _event(user, change_request: AdminChangeRequest, step: str, **details: Any) -> None:
    record_event(
        action=Action.ACCOUNT_CHANGE,
        user=user,
        obj=change_request,
        purpose=change_request.reason if step == "request" else change_request.decision_reason,
        details={
            "change_request": change_request.pk,
            "step": step,
            "kind": change_request.kind,
            "target_type": change_request.target_type,
            "target_id": change_request.target_id,
            "change": change_request.change,
            **details,
        },
    )


def changed_fields(before: dict, after: dict, names) -> dict[str, dict[str, Any]]:
    """What a change request changes: ``{name: {"from": …, "to": …}}`` for each of
    ``names`` whose value differs from ``before`` in ``after``; a request that changes
    nothing is refused."""
    fields = {
        name: {"from": before[name], "to": after[name]}
        for name in names
        if before[name] != after[name]
    }
    if not fields:
        raise ValidationError(_("The request changes nothing."), code="no_change")
    return fields


def create_request(*, user, kind: str, target, change: dict[str, Any], reason: str):
    """Record a request for a change of ``target`` (its state's digest, to refuse it when
    stale) and its access-log event; the caller checked the right and the reason."""
    change_request = AdminChangeRequest.objects.create(
        kind=kind,
        target_type=_TARGET_TYPES[kind],
        target_id=str(target.pk) if target is not None else "",
        change=change,
        target_digest=state_digest(_target_state(kind, target)),
        reason=reason,
        requested_by=user,
    )
    _event(user, change_request, "request")
    return change_request


def _check_grant(target: User, group: Group) -> None:
    if target.is_superuser:
        raise ValidationError(_("A superuser account cannot be changed here."), code="superuser")
    if target.groups.filter(pk=group.pk).exists():
        raise ValidationError(_("The account already has this role."), code="has_role")
    if policy.roles_conflict(policy.account_permissions(target, extra_groups=[group])):
        raise ValidationError(
            _(
                "An account cannot hold both a case role and the auditor role: "
                "remove the other role first."
            ),
            code="role_conflict",
        )


def _not_own_account(user, target: User, message: str) -> None:
    if target.pk == user.pk:
        raise ValidationError(message, code="own_account")


# --- requests ---------------------------------------------------------------------------


def request_role_grant(*, user, target: User, group: Group, reason: str) -> AdminChangeRequest:
    """Ask for ``group`` to be added to ``target``'s roles."""
    reason = request_reason(user, Kind.GRANT_ROLE, reason)
    _not_own_account(user, target, _("You cannot request a role for your own account."))
    with transaction.atomic():
        _check_grant(target, group)
        return create_request(
            user=user,
            kind=Kind.GRANT_ROLE,
            target=target,
            change={"group": group.pk, "role": group.name},
            reason=reason,
        )


def request_password_link(*, user, target: User, reason: str) -> AdminChangeRequest:
    """Ask for a set-password link for ``target`` (the user sets their own password)."""
    reason = request_reason(user, Kind.PASSWORD_LINK, reason)
    _not_own_account(user, target, _("Change your own password under “Change password”, not here."))
    if target.is_superuser:
        raise ValidationError(_("A superuser account cannot be changed here."), code="superuser")
    if not target.is_active:
        raise ValidationError(
            _("The account is deactivated: activate it before asking for a link."),
            code="inactive",
        )
    with transaction.atomic():
        return create_request(
            user=user, kind=Kind.PASSWORD_LINK, target=target, change={}, reason=reason
        )


def clean_legal_basis_values(values: dict[str, Any], *, basis: LegalBasis | None) -> dict:
    """Validated values of a legal basis (every field of ``LEGAL_BASIS_FIELDS``)."""
    unknown = set(values) - set(LEGAL_BASIS_FIELDS)
    missing = set(LEGAL_BASIS_FIELDS) - set(values)
    if unknown or missing:
        raise ValidationError(_("The legal basis is incomplete."), code="incomplete")
    errors: dict[str, str] = {}
    code = str(values["code"] or "").strip()
    if not code or len(code) > 50 or not _SLUG.match(code):
        errors["code"] = _("Enter a code of letters, digits, hyphens or underscores.")
    elif LegalBasis.objects.filter(code=code).exclude(pk=getattr(basis, "pk", None)).exists():
        errors["code"] = _("Another legal basis already has this code.")
    name = str(values["name"] or "").strip()
    if not name or len(name) > 200:
        errors["name"] = _("Enter a name of at most 200 characters.")
    description = str(values["description"] or "").strip()
    if len(description) > 5000:
        errors["description"] = _("The description may be at most 5000 characters.")
    if values["kind"] not in LegalBasis.Kind.values:
        errors["kind"] = _("Choose a valid kind.")
    kinds = {}
    for name_ in ("discloser_kinds", "recipient_kinds"):
        chosen = values[name_]
        if not isinstance(chosen, list | tuple) or not set(chosen) <= set(Organisation.Kind.values):
            errors[name_] = _("Choose organisation types from the list.")
        else:
            kinds[name_] = sorted(set(chosen))
    max_age = values["max_age"]
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 < max_age <= 150
    ):
        errors["max_age"] = _("Enter an age between 1 and 150, or leave it empty.")
    if not isinstance(values["is_active"], bool):
        errors["is_active"] = _("Choose active or not.")
    if errors:
        raise ValidationError(errors)
    return {
        "code": code,
        "name": name,
        "description": description,
        "kind": values["kind"],
        **kinds,
        "max_age": max_age,
        "is_active": values["is_active"],
    }


def request_legal_basis(
    *, user, basis: LegalBasis | None, values: dict[str, Any], reason: str
) -> AdminChangeRequest:
    """Ask for a new legal basis (``basis=None``) or a change of ``basis``."""
    reason = request_reason(user, Kind.LEGAL_BASIS, reason)
    values = clean_legal_basis_values(values, basis=basis)
    if basis is None:
        change: dict[str, Any] = {"new": True, "values": values}
    else:
        before = _legal_basis_values(basis)
        fields = changed_fields(before, values, LEGAL_BASIS_FIELDS)
        change = {"new": False, "code": basis.code, "fields": fields}
    with transaction.atomic():
        return create_request(
            user=user, kind=Kind.LEGAL_BASIS, target=basis, change=change, reason=reason
        )


def request_organisation_kind(
    *, user, organisation: Organisation, kind: str, reason: str
) -> AdminChangeRequest:
    """Ask for ``organisation`` to become an organisation of type ``kind``."""
    reason = request_reason(user, Kind.ORGANISATION_KIND, reason)
    if kind not in Organisation.Kind.values:
        raise ValidationError({"kind": _("Choose a valid organisation type.")})
    if kind == organisation.kind:
        raise ValidationError(_("The request changes nothing."), code="no_change")
    with transaction.atomic():
        return create_request(
            user=user,
            kind=Kind.ORGANISATION_KIND,
            target=organisation,
            change={"organisation": organisation.pk, "from": organisation.kind, "to": kind},
            reason=reason,
        )


def request_identity_provider(
    *, user, provider: IdentityProvider, reason: str
) -> AdminChangeRequest:
    """Ask a second administrator to approve ``provider``'s configuration as it is now."""
    reason = request_reason(user, Kind.IDENTITY_PROVIDER, reason)
    with transaction.atomic():
        if sso_approved(provider):
            raise ValidationError(_("The request changes nothing."), code="no_change")
        state = identity_provider_state(provider)
        names = dict(
            Organisation.objects.filter(
                pk__in=[organisation for organisation, _acr in state["organisations"]]
            ).values_list("pk", "name")
        )
        change = {
            **{name: value for name, value in state.items() if name != "organisations"},
            "organisations": [
                {"organisation": names.get(organisation, ""), "minimum_acr": acr}
                for organisation, acr in state["organisations"]
            ],
        }
        return create_request(
            user=user, kind=Kind.IDENTITY_PROVIDER, target=provider, change=change, reason=reason
        )


def request_external_identity(
    *, user, identity: ExternalIdentity, reason: str
) -> AdminChangeRequest:
    """Ask a second administrator to approve the link of an identity to an account."""
    reason = request_reason(user, Kind.EXTERNAL_IDENTITY, reason)
    _not_own_account(user, identity.user, _("You cannot request a link for your own account."))
    if identity.user.is_superuser:
        raise ValidationError(_("A superuser account cannot be changed here."), code="superuser")
    with transaction.atomic():
        if sso_approved(identity):
            raise ValidationError(_("The request changes nothing."), code="no_change")
        change = {
            "account": identity.user.get_username(),
            "user": identity.user_id,
            "provider": identity.provider.slug,
            "subject": identity.subject,
        }
        return create_request(
            user=user, kind=Kind.EXTERNAL_IDENTITY, target=identity, change=change, reason=reason
        )


# --- decisions --------------------------------------------------------------------------


def _get(request_id, *, lock: bool = False) -> AdminChangeRequest:
    queryset = AdminChangeRequest.objects.all()
    if lock:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(pk=int(request_id))
    except (AdminChangeRequest.DoesNotExist, TypeError, ValueError, OverflowError):
        raise ValidationError(_("There is no such change request."), code="missing") from None


def _refuse_unless_may_decide(*, user, request_id) -> None:
    """Refusals that do not depend on the request's state (who asked, what kind),
    checked before the decision's transaction so that their denied-access event
    commits at once, whatever happens next."""
    change_request = _get(request_id)
    require_right(user, change_request.kind, decide=True)
    if change_request.requested_by_id == user.pk:
        record_refusal(
            user=user,
            obj=change_request,
            details={"change_request": change_request.pk, "step": "decide", "own_request": True},
        )
        raise ValidationError(
            _(
                "You cannot decide your own request: another administrator must "
                "approve or reject it."
            ),
            code="own_request",
        )


def _pending_for_decision(*, user, request_id) -> AdminChangeRequest:
    change_request = _get(request_id, lock=True)
    if change_request.decision != Decision.PENDING:
        raise ValidationError(_("The request has already been decided."), code="already_decided")
    return change_request


def _stale() -> ValidationError:
    return ValidationError(
        _(
            "The request is out of date: what it changes has changed since it was made. "
            "Reject it and make a new request."
        ),
        code="stale",
    )


def _locked_target(change_request: AdminChangeRequest):
    model = {
        "casework.user": User,
        "casework.legalbasis": LegalBasis,
        "casework.organisation": Organisation,
        "casework.identityprovider": IdentityProvider,
        "casework.externalidentity": ExternalIdentity,
        "casework.apiclient": ApiClient,
        "casework.retentionrule": RetentionRule,
    }[change_request.target_type]
    if not change_request.target_id:
        return None
    target = model.objects.select_for_update().filter(pk=change_request.target_id).first()
    if target is None:
        raise _stale()
    return target


def _apply(user, change_request: AdminChangeRequest, target) -> str:
    """Apply an approved request; returns an API client's new secret, else ""."""
    kind = change_request.kind
    change = change_request.change
    if kind == Kind.GRANT_ROLE:
        if target.pk == user.pk:
            raise ValidationError(
                _("You cannot approve a request that concerns your own account."),
                code="own_account",
            )
        group = Group.objects.filter(pk=change.get("group")).first()
        if group is None:
            raise _stale()
        _check_grant(target, group)
        target.groups.add(group)
    elif kind == Kind.PASSWORD_LINK:
        if target.pk == user.pk:
            raise ValidationError(
                _("You cannot approve a request that concerns your own account."),
                code="own_account",
            )
        if not target.is_active:
            raise _stale()
    elif kind == Kind.LEGAL_BASIS:
        if target is None:
            values = clean_legal_basis_values(change["values"], basis=None)
            target = LegalBasis.objects.create(**values)
            change_request.target_id = str(target.pk)
        else:
            values = _legal_basis_values(target)
            values.update({name: diff["to"] for name, diff in change["fields"].items()})
            values = clean_legal_basis_values(values, basis=target)
            for name, value in values.items():
                setattr(target, name, value)
            target.save()
    elif kind == Kind.RETENTION_RULE:
        change_request.target_id = str(retention_rules.apply_rule_change(change, target).pk)
    elif kind == Kind.ORGANISATION_KIND:
        target.kind = change["to"]
        target.save(update_fields=["kind"])
    elif kind in (Kind.IDENTITY_PROVIDER, Kind.EXTERNAL_IDENTITY):
        if kind == Kind.EXTERNAL_IDENTITY and target.user_id == user.pk:
            raise ValidationError(
                _("You cannot approve a request that concerns your own account."),
                code="own_account",
            )
        # The digest checked just before: exactly the configuration that was asked for.
        target.approved_digest = change_request.target_digest
        target.save(update_fields=["approved_digest"])
    elif kind == Kind.API_CLIENT and change.get("action") == "new_secret":
        return api_credentials.replace_secret(target)  # the old one and its tokens stop
    elif kind == Kind.API_CLIENT:  # a new client gets its application and first secret
        secret = "" if target.application_id else api_credentials.issue_application(target)
        target.approved_digest = state_digest(api_credentials.api_client_state(target))
        target.save(update_fields=["approved_digest"])
        return secret
    return ""


def approve(*, user, request_id, reason: str = "") -> Approval:
    """Approve and apply a pending request (not one's own), in one transaction."""
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            _("The reason may be at most %(limit)d characters.") % {"limit": REASON_MAX_LENGTH},
            code="reason_too_long",
        )
    _refuse_unless_may_decide(user=user, request_id=request_id)
    with transaction.atomic():
        change_request = _pending_for_decision(user=user, request_id=request_id)
        target = _locked_target(change_request)
        if state_digest(_target_state(change_request.kind, target)) != change_request.target_digest:
            raise _stale()
        secret = _apply(user, change_request, target)
        now = timezone.now()
        change_request.decision = Decision.APPROVED
        change_request.decided_by = user
        change_request.decided_at = now
        change_request.decision_reason = reason
        change_request.applied_at = now
        change_request.save()
        emailed = bool(
            change_request.kind == Kind.PASSWORD_LINK and settings.EMAIL_ENABLED and target.email
        )
        delivery = {"secret_to": "approver"} if secret else {}
        delivery["link_delivery"] = "email" if emailed else "approver"
        _event(user, change_request, "approve", **delivery)
    if secret:
        return Approval(change_request, secret=secret, client_id=target.application.client_id)
    if change_request.kind != Kind.PASSWORD_LINK:
        return Approval(change_request)
    link = set_password_link(target)
    if emailed:
        try:
            send_link(target, link)
        except OSError:  # the mail server failed (smtplib's errors): hand the link over
            return Approval(change_request, link=link)
        return Approval(change_request, emailed=True)
    return Approval(change_request, link=link)


def reject(*, user, request_id, reason: str) -> AdminChangeRequest:
    """Reject a pending request (not one's own) with a reason; nothing is applied."""
    reason = clean_reason(reason, message=_("Give a reason for rejecting the request."))
    _refuse_unless_may_decide(user=user, request_id=request_id)
    with transaction.atomic():
        change_request = _pending_for_decision(user=user, request_id=request_id)
        change_request.decision = Decision.REJECTED
        change_request.decided_by = user
        change_request.decided_at = timezone.now()
        change_request.decision_reason = reason
        change_request.save()
        _event(user, change_request, "reject")
    return change_request
