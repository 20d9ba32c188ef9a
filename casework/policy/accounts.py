"""Who may use which part of Samverkan: roles, the four eyes on power, the start page,
single sign-on and the second factor."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from casework import programmes, roles


def is_active_user(user) -> bool:
    """An authenticated user whose account is active."""
    return bool(user and user.is_authenticated and user.is_active)


def kept_on_user(user, name: str, answer):
    """``answer(user)``, kept on the user object under ``name`` for as long as Django's
    permission cache of that object (dropping that cache drops the answer too): for
    questions of roles and permissions asked many times a page."""
    perms = getattr(user, "_perm_cache", None)
    cached = getattr(user, name, None)
    if cached is not None and perms is not None and cached[0] is perms:
        return cached[1]
    value = answer(user)
    setattr(user, name, (getattr(user, "_perm_cache", None), value))
    return value


def can_use_task_inbox(user) -> bool:
    """Case workers: tasks and cases. Needs the role *and* an organisation to act for.

    Asked dozens of times a page (menus, views, policy): kept on the user object
    (:func:`kept_on_user`).
    """
    if not (is_active_user(user) and user.organisation_id is not None):
        return False
    return kept_on_user(
        user, "_samverkan_task_inbox", lambda user: user.has_perm(roles.PERM_TASK_INBOX)
    )


def can_view_statistics(user) -> bool:
    """The steering group: anonymised statistics only."""
    return is_active_user(user) and user.has_perm(roles.PERM_STATISTICS)


def can_view_access_log(user) -> bool:
    """Auditors: the access log and its integrity, nothing else."""
    return is_active_user(user) and user.has_perm(roles.PERM_ACCESS_LOG)


def can_manage_users(user) -> bool:
    """Administrators: users and organisations in the admin, never case data."""
    return is_active_user(user) and user.is_staff


def can_lift_sign_in_locks(user) -> bool:
    """Administrators lift a sign-in lock (no four eyes: it grants nothing, ADR 0016)."""
    return can_manage_users(user) and user.has_perm("axes.delete_accessattempt")


# --- Four eyes on power (docs/adr/0014-four-eyes-on-power.md) --------------------------
#
# Which roles one administrator may hand out alone is decided from the
# permissions a role (group) carries, never from its name, and deny by default:
# a role that carries any permission outside ``UNGUARDED_PERMISSIONS`` (case
# data, the access log, account management, anything added later) is granted
# only when a second administrator approves.

CASE_DATA_PERMISSIONS = frozenset(
    {
        roles.PERM_TASK_INBOX,
        roles.PERM_COORDINATE,
        roles.PERM_COORDINATE_DEFECTOR,
        roles.PERM_BREAK_GLASS,
        roles.PERM_ERASE_PERSON,
        roles.PERM_REGISTER_EXTRACT,
    }
)
ACCESS_LOG_PERMISSIONS = frozenset({roles.PERM_ACCESS_LOG})
UNGUARDED_PERMISSIONS = frozenset({roles.PERM_STATISTICS})
# The model permission an administrator needs for each kind of change request.
_CHANGE_REQUEST_PERMISSIONS = {
    "grant_role": "casework.change_user",
    "password_link": "casework.change_user",
    "legal_basis": "casework.change_legalbasis",
    "organisation_kind": "casework.change_organisation",
    # Single sign-on (docs/adr/0018-single-sign-on.md).
    "identity_provider": "casework.change_identityprovider",
    "external_identity": "casework.change_externalidentity",
    # The integration API's client systems (docs/adr/0022-integration-api.md).
    "api_client": "casework.change_apiclient",
    # Retention rules (docs/adr/0024-retention.md).
    "retention_rule": "casework.change_retentionrule",
}


def role_permissions(group) -> frozenset[str]:
    """The permissions of a role as ``app_label.codename``."""
    return frozenset(
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    )


def gives_case_data(permissions) -> bool:
    """Does this set of permissions open case data (any flow's permission does too)?"""
    return any(
        perm in CASE_DATA_PERMISSIONS
        or perm in programmes.participant_permissions()
        or perm.split(".", 1)[0] in ("workflows", "viewflow")
        for perm in permissions
    )


def gives_access_log(permissions) -> bool:
    return bool(ACCESS_LOG_PERMISSIONS & set(permissions))


def role_needs_four_eyes(group) -> bool:
    """Granting this role waits for a second administrator (deny by default)."""
    return not role_permissions(group) <= UNGUARDED_PERMISSIONS


def roles_conflict(permissions) -> bool:
    """One account never holds both a case role and the auditor's access log."""
    return gives_case_data(permissions) and gives_access_log(permissions)


def account_permissions(user, *, extra_groups=()) -> frozenset[str]:
    """What ``user`` would hold with ``extra_groups`` added: its roles, its own
    permissions and, for a superuser, every permission there is."""
    if user.is_superuser:
        return frozenset(
            {*CASE_DATA_PERMISSIONS, *programmes.participant_permissions(), *ACCESS_LOG_PERMISSIONS}
        )
    perms = set(
        f"{app_label}.{codename}"
        for app_label, codename in user.user_permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    from django.contrib.auth.models import Permission

    groups = [g.pk for g in extra_groups]
    group_perms = Permission.objects.filter(
        Q(group__user=user) | Q(group__pk__in=groups)
    ).values_list("content_type__app_label", "codename")
    perms.update(f"{app_label}.{codename}" for app_label, codename in group_perms)
    return frozenset(perms)


def _admin_change_allowed(user, kind: str, request_permission: str) -> bool:
    perm = _CHANGE_REQUEST_PERMISSIONS.get(kind)
    return (
        can_manage_users(user)
        and perm is not None
        and user.has_perm(request_permission)
        and user.has_perm(perm)
    )


def can_request_admin_change(user, kind: str) -> bool:
    """Administrators ask for a change of power (it waits for a second one)."""
    return _admin_change_allowed(user, kind, "casework.add_adminchangerequest")


def can_decide_admin_change(user, kind: str) -> bool:
    """May ``user`` approve or reject a request of this kind (never their own: the
    service refuses that with a message of its own)."""
    return _admin_change_allowed(user, kind, "casework.decide_adminchangerequest")


def can_view_change_requests(user) -> bool:
    """Administrators (in the admin) and auditors (read-only, in the audit pages)."""
    return (
        can_manage_users(user) and user.has_perm("casework.view_adminchangerequest")
    ) or can_view_access_log(user)


def can_process_person_data(user) -> bool:
    """Registering, finding and reading persons: case workers acting for an organisation.

    The case-team rules (need to know per case, consent, legal basis for police)
    narrow this when cases exist; until then a person's data is open to case roles
    only, and every read is in the access log.
    """
    return can_use_task_inbox(user)


def can_erase_person(user) -> bool:
    """Erasure (crypto-shredding) from the UI: only with the explicit permission.

    No role group has it yet; operators erase with ``manage.py erase_person``.
    """
    return is_active_user(user) and user.has_perm(roles.PERM_ERASE_PERSON)


def can_produce_register_extract(user) -> bool:
    """The data protection role: register extracts (GDPR art. 15) of its own organisation's
    data, and no other case data. Needs the permission *and* an organisation to act for."""
    return (
        is_active_user(user)
        and user.organisation_id is not None
        and user.has_perm(roles.PERM_REGISTER_EXTRACT)
    )


def extract_in_reach(user, extract) -> bool:
    """May ``user`` see and work on register extract ``extract`` (its organisation's)?"""
    return can_produce_register_extract(user) and extract.organisation_id == user.organisation_id


def start_url(user) -> str | None:
    """The page a user lands on after logging in, or ``None`` for a user with no role."""
    if can_use_task_inbox(user):
        return reverse("arenden:inbox")
    if can_view_statistics(user):
        return reverse("statistik:index")
    if can_view_access_log(user):
        return reverse("granskning:index")
    if can_produce_register_extract(user):
        return reverse("registerutdrag:index")
    if can_manage_users(user):
        return reverse("admin:index")
    return None


# --- Single sign-on (docs/adr/0018-single-sign-on.md) ----------------------------------


def sso_assurance_sufficient(*, levels: str, minimum: str, acr: str) -> bool:
    """Is the assurance level (``acr``) a provider sent at least the organisation's
    minimum? ``levels`` lists the provider's acr values from lowest to highest; with
    no list only the minimum itself passes. An unknown value never passes."""
    if not minimum:
        return True
    order = levels.split()
    if not order:
        return acr == minimum
    if minimum not in order or acr not in order:
        return False
    return order.index(acr) >= order.index(minimum)


# --- Second factor and step-up (docs/adr/0017-mfa-and-step-up.md) ----------------------------

# Set by the single sign-on (OIDC) sign-in: a dict with what the provider asserted, at least
# ``acr`` and ``amr``, and ``auth_time`` (Unix seconds of the provider's authentication).
# A session that carries it relies on the provider's assurance: no TOTP is asked.
SSO_SESSION_KEY = "samverkan_sso"
# Unix seconds of the latest strong check in this session: a second factor passed (sign-in,
# enrolment, step-up), or the password where the account has no second factor and MFA is off.
STEP_UP_SESSION_KEY = "samverkan_step_up_at"
# Whether the account had a confirmed device at sign-in (kept in the session so that a page
# does not query both device tables; enrolment and removal update it).
HAS_DEVICE_SESSION_KEY = "samverkan_mfa_device"


def mfa_required() -> bool:
    """Every password account must enrol and pass a second factor (production default)."""
    return bool(getattr(settings, "MFA_REQUIRED", False))


def sso_assertion(request) -> dict | None:
    """What the identity provider asserted for this session, or ``None`` (password sign-in)."""
    marker = getattr(request, "session", {}).get(SSO_SESSION_KEY)
    return marker if isinstance(marker, dict) and marker else None


def has_second_factor_device(request, *, refresh: bool = False) -> bool:
    """The signed-in account has a confirmed TOTP device or recovery codes."""
    from django_otp import user_has_device

    session = request.session
    if refresh or HAS_DEVICE_SESSION_KEY not in session:
        session[HAS_DEVICE_SESSION_KEY] = user_has_device(request.user)
    return bool(session[HAS_DEVICE_SESSION_KEY])


def second_factor_satisfied(request) -> bool:
    """The session has passed a second factor: a django-otp device verified it (TOTP or a
    recovery code), or the account signed in through single sign-on (the provider's
    assurance; the minimum per organisation is the SSO sign-in's own check)."""
    user = getattr(request, "user", None)
    if not is_active_user(user):
        return False
    if sso_assertion(request) is not None:
        return True
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def second_factor_pending(request) -> str | None:
    """What the session must do before any other page: ``"verify"`` (the account has a
    second factor: always asked, whatever ``MFA_REQUIRED`` says), ``"enrol"`` (none yet,
    and MFA is required) or ``None``."""
    if not is_active_user(getattr(request, "user", None)) or second_factor_satisfied(request):
        return None
    if has_second_factor_device(request):
        return "verify"
    return "enrol" if mfa_required() else None


def step_up_method(request) -> str:
    """How this session proves itself again before a grave action: ``"code"`` (TOTP or a
    recovery code), ``"password"`` (MFA off and no device: the password again, a real check
    though not a second factor), ``"sso"`` (sign in again at the identity provider) or
    ``"enrol"`` (MFA required and nothing to check with)."""
    if has_second_factor_device(request):
        return "code"
    if sso_assertion(request) is not None:
        return "sso"
    if not mfa_required() and request.user.has_usable_password():
        return "password"
    return "enrol"


def step_up_fresh(request, *, now: datetime | None = None) -> bool:
    """A strong check within ``STEP_UP_MINUTES`` in this session (docs/adr/0017)."""
    if not is_active_user(getattr(request, "user", None)):
        return False
    now = now or timezone.now()
    stamps = [request.session.get(STEP_UP_SESSION_KEY)]
    assertion = sso_assertion(request)
    if assertion is not None:
        stamps.append(assertion.get("auth_time"))
    valid = [stamp for stamp in stamps if isinstance(stamp, int | float)]
    if not valid:
        return False
    age = now.timestamp() - max(valid)
    return -60 <= age <= settings.STEP_UP_MINUTES * 60
