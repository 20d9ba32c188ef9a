"""Authentication backend: Django's model backend, reading a user's roles once a request.

A user's roles are Django groups (``casework.roles``). The model backend reads the
groups' permissions with one query; the access log also names the roles of whoever
acts (``audit.services``), which took a second query on every page that logs. Here
one query reads both, and both are kept on the user object as Django keeps its
permission cache there.
"""

from __future__ import annotations

import copy

from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import (
    AuthenticationMiddleware as DjangoAuthenticationMiddleware,
)
from django.contrib.auth.models import Group
from django.utils.functional import SimpleLazyObject

from casework.access_cache import GenerationCache, access_generation, generation_read

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


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with the request's user read under the access generation that came with
    the session's own read (``casework.sessions.SessionStore``): one statement fewer on
    every signed-in request. Django's ``auth.get_user`` reads the session first in any
    case; here it is read a moment earlier, and the generation then read with it stands
    for the user's read, as a separate read a moment later would. A session not read from
    the database (another store, a new session) leaves the generation to be read."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))


def _get_user(request):
    if not hasattr(request, "_cached_user"):
        session = request.session
        session.get(auth.SESSION_KEY)  # loads the session (and the generation with it)
        generation = getattr(session, "access_generation", None)
        unread = getattr(session, "UNREAD", None)
        if unread is None or generation is unread:
            request._cached_user = auth.get_user(request)
        else:
            with generation_read(generation):
                request._cached_user = auth.get_user(request)
    return request._cached_user
