"""Access-log events that Django announces by signal: logins and account changes.

- ``user_logged_in`` / ``user_logged_out`` / ``user_login_failed``: login,
  logout, failed login (the name tried, sanitised — never the password). A
  failed login is written independently of the request's transaction.
- Account and role changes — role (group) membership, active/staff/superuser
  flags, organisation, password set or reset (that it happened, never the
  hash), account creation — as ``account_change`` events naming the acting
  user (the request's user; nobody for commands). The database's change
  history records the same rows; these events make the administrator who
  handed out a role answerable in the access log.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from audit import context
from audit.services import Action, Outcome, record_event, sanitize_text

User = get_user_model()

WATCHED_FIELDS = ("is_active", "is_staff", "is_superuser", "organisation_id", "password")
_WATCHED_NAMES = {*WATCHED_FIELDS, "organisation"}


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs) -> None:
    # Single sign-on: the provider and the assurance (acr/amr) it sent (ADR 0018).
    sso = getattr(request, "samverkan_sso", None)
    record_event(action=Action.LOGIN, user=user, obj=user, details={"sso": sso} if sso else None)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        record_event(action=Action.LOGOUT, user=user, obj=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials: dict[str, Any], request=None, **kwargs) -> None:
    # Django masks secrets in ``credentials``; we keep only the name tried.
    tried = credentials.get(User.USERNAME_FIELD) or credentials.get("username") or ""
    record_event(
        action=Action.LOGIN_FAILED,
        username=sanitize_text(str(tried), max_length=150),
        outcome=Outcome.DENIED,
        independent=True,
    )


def _account_event(target: Any, details: dict[str, Any]) -> None:
    record_event(
        action=Action.ACCOUNT_CHANGE,
        user=context.current().user,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        details={"account": sanitize_text(target.get_username(), max_length=150), **details},
    )


@receiver(pre_save, sender=User, dispatch_uid="audit_account_before")
def _remember_account(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & _WATCHED_NAMES:
        return  # e.g. the login's last_login update
    instance._audit_previous = sender.objects.filter(pk=instance.pk).values(*WATCHED_FIELDS).first()


@receiver(post_save, sender=User, dispatch_uid="audit_account_after")
def _account_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    if created:
        _account_event(
            instance,
            {
                "created": True,
                **{f: getattr(instance, f) for f in WATCHED_FIELDS if f != "password"},
            },
        )
        return
    previous = instance.__dict__.pop("_audit_previous", None)
    if not previous:
        return
    changes: dict[str, Any] = {}
    for name in WATCHED_FIELDS:
        before, after = previous[name], getattr(instance, name)
        if before == after:
            continue
        if name == "password":
            changes["password_changed"] = True
        else:
            changes[name] = {"from": before, "to": after}
    if changes:
        _account_event(instance, {"changes": changes})


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="audit_account_roles")
def _roles_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action not in {"post_add", "post_remove", "pre_clear"}:
        return
    key = "roles_added" if action == "post_add" else "roles_removed"
    if reverse:  # group.user_set.add(...): one event per account
        if action == "pre_clear":
            accounts = list(instance.user_set.all())
        else:
            accounts = list(User.objects.filter(pk__in=pk_set or ()))
        for account in accounts:
            _account_event(account, {key: [instance.name]})
        return
    if action == "pre_clear":
        names = list(instance.groups.values_list("name", flat=True))
    else:
        names = list(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    if names:
        _account_event(instance, {key: sorted(names)})


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="audit_role_permissions")
def _role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in {"post_add", "post_remove", "post_clear"} or reverse:
        return
    record_event(
        action=Action.ACCOUNT_CHANGE,
        user=context.current().user,
        object_type="auth.group",
        object_id=str(instance.pk),
        details={
            "role": sanitize_text(instance.name, max_length=150),
            "permissions_" + action.removeprefix("post_"): sorted(pk_set or ()),
        },
    )
