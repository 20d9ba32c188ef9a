"""Sign out everywhere: an account's sessions end when its power changes.

When an account is deactivated, its roles (groups) or own permissions change, a role's
permissions change, or its staff or superuser flag or organisation changes — through the
admin, the four-eyes approval (``casework.services.administration.approve``), a command
or any other path — every session of the account is deleted from the session store, in
the same transaction as the change. The receivers below sit on the model signals, so no
path can skip them. Each ending is an ``account_change`` event naming the account and
how many sessions ended. docs/adr/0016-lockout-sessions-and-headers.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from audit import context
from audit.services import Action, record_event, sanitize_text

User = get_user_model()

# The account fields whose change ends the account's sessions (``is_active`` only when
# it goes off).
POWER_FIELDS = ("is_active", "is_staff", "is_superuser", "organisation_id")


def end_sessions(*, user_ids: Iterable[int], reason: str) -> int:
    """Delete every unexpired session of these accounts; returns how many ended."""
    wanted = {str(pk) for pk in user_ids}
    if not wanted:
        return 0
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended: dict[str, list[str]] = {}
    sessions = Session.objects.filter(expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data"
    )
    for key, data in sessions.iterator():
        owner = store().decode(data).get(SESSION_KEY)
        if owner is not None and str(owner) in wanted:
            ended.setdefault(str(owner), []).append(key)
    for keys in ended.values():
        for key in keys:
            store(session_key=key).delete()
    actor = context.current().user
    for account in User.objects.filter(pk__in=[int(pk) for pk in ended]):
        record_event(
            action=Action.ACCOUNT_CHANGE,
            user=actor,
            object_type=account._meta.label_lower,
            object_id=str(account.pk),
            details={
                "account": sanitize_text(account.get_username(), max_length=150),
                "sessions_ended": len(ended[str(account.pk)]),
                "reason": reason,
            },
        )
    return sum(len(keys) for keys in ended.values())


@receiver(pre_save, sender=User, dispatch_uid="casework_sessions_account_before")
def _remember_power(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {*update_fields} & {*POWER_FIELDS, "organisation"}:
        return
    instance._sessions_previous = (
        sender.objects.filter(pk=instance.pk).values(*POWER_FIELDS).first()
    )


@receiver(post_save, sender=User, dispatch_uid="casework_sessions_account_after")
def _account_saved(sender, instance, created, raw=False, **kwargs) -> None:
    previous = instance.__dict__.pop("_sessions_previous", None)
    if raw or created or not previous:
        return
    changed = [name for name in POWER_FIELDS if previous[name] != getattr(instance, name)]
    if changed == ["is_active"] and instance.is_active:
        return  # reactivated: it had no sessions to end
    if changed:
        reason = "deactivated" if "is_active" in changed and not instance.is_active else "account"
        end_sessions(user_ids=[instance.pk], reason=reason)


def _accounts_changed(instance, action: str, reverse: bool, pk_set, *, reason: str) -> None:
    if action == "pre_clear" and reverse:
        instance._sessions_clear = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if not reverse:
        end_sessions(user_ids=[instance.pk], reason=reason)
    elif action == "post_clear":
        end_sessions(user_ids=instance.__dict__.pop("_sessions_clear", []), reason=reason)
    else:
        end_sessions(user_ids=pk_set or (), reason=reason)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="casework_sessions_roles")
def _roles_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    _accounts_changed(instance, action, reverse, pk_set, reason="roles")


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="casework_sessions_perms")
def _permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    _accounts_changed(instance, action, reverse, pk_set, reason="permissions")


@receiver(
    m2m_changed, sender=Group.permissions.through, dispatch_uid="casework_sessions_role_perms"
)
def _role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    groups = [instance.pk] if not reverse else list(pk_set or ())
    if reverse and action == "post_clear":
        return  # permission.group_set.clear(): not a path the app takes
    members = User.objects.filter(groups__pk__in=groups).values_list("pk", flat=True)
    end_sessions(user_ids=set(members), reason="role_permissions")
