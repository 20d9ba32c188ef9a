"""Authentication backend: Django's model backend, reading a user's roles once a request.

A user's roles are Django groups (``casework.roles``). The model backend reads the
groups' permissions with one query; the access log also names the roles of whoever
acts (``audit.services``), which took a second query on every page that logs. Here
one query reads both, and both are kept on the user object as Django keeps its
permission cache there.
"""

from __future__ import annotations

import copy

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group

from casework.access_cache import GenerationCache, access_generation

# Signed-in accounts by id, each kept while the access generation stands.
_accounts = GenerationCache()


class RoleBackend(ModelBackend):
    def get_user(self, user_id):
        """The logged-in user of a request, with the organisation every page shows
        (the toolbar, the access log's entries, the policy's checks) and the roles and
        permissions read: kept in this process while the access generation stands
        (``casework.access_cache``), a copy a request, which knows the generation it was
        read under."""
        generation = access_generation()
        kept = _accounts.get(user_id, generation, lambda: self._load_user(user_id))
        if kept is None:
            return None
        user = copy.copy(kept)
        # What the page shell's kept parts are checked against (``{% shellpart %}``).
        user._access_generation = generation
        return user

    def _load_user(self, user_id):
        UserModel = get_user_model()
        try:
            user = UserModel._default_manager.select_related("organisation").get(pk=user_id)
        except UserModel.DoesNotExist:
            return None
        if not self.user_can_authenticate(user):
            return None
        self.get_all_permissions(user)
        return user

    def get_group_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_group_permissions(user_obj, obj)
        if not hasattr(user_obj, "_group_perm_cache"):
            names: set[str] = set()
            permissions: set[str] = set()
            for name, app_label, codename in Group.objects.filter(user=user_obj).values_list(
                "name", "permissions__content_type__app_label", "permissions__codename"
            ):
                names.add(name)
                if codename is not None:
                    permissions.add(f"{app_label}.{codename}")
            user_obj._group_perm_cache = permissions
            # What ``audit.services`` writes as the actor's roles.
            user_obj._audit_roles = ",".join(sorted(names))[:300]
        return user_obj._group_perm_cache
