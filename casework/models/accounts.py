"""Who works in Samverkan: organisations, user accounts, the role-level permissions,
changes of power that wait for a second administrator (four eyes), and single sign-on
(identity providers, the organisations they serve, identities linked to accounts;
docs/adr/0018-single-sign-on.md)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    """A party to the cooperation agreement: the police area, social services, a school …"""

    class Kind(models.TextChoices):
        POLICE = "police", _("Police")
        SOCIAL_SERVICES = "social_services", _("Social services")
        SCHOOL = "school", _("School")
        LEISURE = "leisure", _("Leisure")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who works in Samverkan, always on behalf of one organisation.

    Roles are Django groups (see ``casework.roles``); what a user may see is
    decided by ``casework.policy``, never by the template or the view.
    """

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text=_(
            "The organisation the user works for. Without one the user gets no access to cases."
        ),
    )
    # The user's own choice (their settings page): an alert, in the app and by e-mail,
    # when someone else gives them a task. Off until they turn it on.
    alert_new_tasks = models.BooleanField(
        _("alert me about new tasks"),
        default=False,
        help_text=_(
            "A reminder in the app and, where e-mail is set up, an e-mail without case data "
            "when a task is given to you."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Capability(models.Model):  # noqa: DJ008 (never instantiated)
    """Holder of the role-level permissions that belong to no single model.

    Unmanaged and without a table: it only gives the permissions below a
    content type, so role groups can carry them and views can require them.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_task_inbox", _("Can work on cases and the task inbox")),
            ("view_statistics", _("Can see anonymised statistics")),
            ("view_access_log", _("Can read and review the access log")),
            ("coordinate_cases", _("Can coordinate SIG, SSPF and GVI cases")),
            ("coordinate_defector_cases", _("Can coordinate defector cases")),
            ("break_glass", _("Can open a case outside the team in an emergency")),
            (
                "produce_register_extract",
                _("Can produce a data subject's register extract for the own organisation"),
            ),
        ]


class AdminChangeRequest(models.Model):
    """A change of power that waits for a second administrator (four eyes).

    Granting a role that gives access to case data, to the access log or to
    account management, a set-password link for another user, a new or changed
    legal basis and a changed organisation kind are requested here and applied
    only when another administrator approves (``casework.services.administration``).
    ``change`` holds identifiers and values that are not personal data (group
    and account ids, organisation kinds, legal-basis fields); ``target_digest``
    is a keyed digest of the target's state when requested, so a request whose
    target changed since is refused as stale.
    """

    class Kind(models.TextChoices):
        GRANT_ROLE = "grant_role", _("Grant a role")
        PASSWORD_LINK = "password_link", _("Set-password link")
        LEGAL_BASIS = "legal_basis", _("New or changed legal basis")
        ORGANISATION_KIND = "organisation_kind", _("Change of organisation type")
        # Single sign-on (docs/adr/0018-single-sign-on.md): a provider's configuration
        # and an identity linked to an account take effect only once approved.
        IDENTITY_PROVIDER = "identity_provider", _("Identity provider configuration")
        EXTERNAL_IDENTITY = "external_identity", _("Identity linked to an account")
        # The integration API (docs/adr/0022-integration-api.md): a client system's
        # organisation, scopes and rate limit take effect only once approved.
        API_CLIENT = "api_client", _("API client and its scopes")
        # Retention (docs/adr/0024-retention.md): how long cases are kept.
        RETENTION_RULE = "retention_rule", _("New or changed retention rule")

    class Decision(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    target_type = models.CharField(_("object type"), max_length=100)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    change = models.JSONField(_("requested change"), default=dict)
    target_digest = models.CharField(max_length=64, blank=True, editable=False)
    reason = models.TextField(_("reason"))
    requested_by = models.ForeignKey(
        User, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now, editable=False)
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING
    )
    decided_by = models.ForeignKey(
        User,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_reason = models.TextField(_("reason for the decision"), blank=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)

    class Meta:
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        ordering = ["-requested_at", "-id"]
        default_permissions = ("view", "add")
        permissions = [("decide_adminchangerequest", _("Can approve or reject change requests"))]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(decision="pending", decided_by__isnull=True, decided_at__isnull=True)
                    | models.Q(
                        ~models.Q(decision="pending"),
                        decided_by__isnull=False,
                        decided_at__isnull=False,
                    )
                ),
                name="adminchangerequest_decided_by_someone",
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="adminchangerequest_four_eyes",
            ),
        ]
        indexes = [models.Index(fields=["decision", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


_SECRET_ENV = RegexValidator(
    r"^SAMVERKAN_OIDC_SECRET_[A-Z0-9_]{1,60}$",
    _("Name an environment variable SAMVERKAN_OIDC_SECRET_… (capitals, digits, underscores)."),
)


class IdentityProvider(models.Model):
    """An OpenID Connect provider through which the users of some organisations sign in.

    Configuration, not code: edited in the admin (every change is in the access
    log), but a provider is used for sign-in only while its configuration is the
    one a second administrator approved (``approved_digest``, written only by
    ``casework.services.administration``). The client secret is never stored: the
    provider names the environment variable that holds it.
    """

    class AccountField(models.TextChoices):
        LINKED = "linked", _("A linked identity (an administrator links each account)")
        USERNAME = "username", _("The account's username")

    slug = models.SlugField(_("short name"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    issuer = models.URLField(_("issuer"), max_length=300)
    client_id = models.CharField(_("client id"), max_length=200)
    client_secret_env = models.CharField(
        _("environment variable of the client secret"),
        max_length=100,
        blank=True,
        validators=[_SECRET_ENV],
        help_text=_("Empty for a public client (PKCE only). The secret itself is never stored."),
    )
    authorization_endpoint = models.URLField(_("authorization endpoint"), blank=True)
    token_endpoint = models.URLField(_("token endpoint"), blank=True)
    userinfo_endpoint = models.URLField(_("userinfo endpoint"), blank=True)
    jwks_uri = models.URLField(_("JWKS address"), blank=True)
    scopes = models.CharField(_("scopes"), max_length=200, default="openid")
    match_claim = models.CharField(
        _("matching claim"),
        max_length=100,
        default="sub",
        help_text=_("The claim that identifies the person: sub, or e.g. an HSA-id claim."),
    )
    account_field = models.CharField(
        _("matched against"),
        max_length=20,
        choices=AccountField.choices,
        default=AccountField.LINKED,
    )
    acr_levels = models.CharField(
        _("assurance levels (acr)"),
        max_length=500,
        blank=True,
        help_text=_(
            "The provider's acr values from the lowest to the highest, separated by spaces."
        ),
    )
    organisations = models.ManyToManyField(
        Organisation,
        through="IdentityProviderOrganisation",
        verbose_name=_("organisations served"),
        related_name="identity_providers",
        blank=True,
    )
    is_active = models.BooleanField(_("active"), default=True)
    approved_digest = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("identity provider")
        verbose_name_plural = _("identity providers")
        ordering = ["name"]
        default_permissions = ("view", "add", "change")

    def __str__(self) -> str:
        return self.name


class IdentityProviderOrganisation(models.Model):
    """An organisation whose users may sign in through a provider, with the lowest
    assurance level (acr) the organisation accepts from it."""

    provider = models.ForeignKey(
        IdentityProvider, verbose_name=_("identity provider"), on_delete=models.CASCADE
    )
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT
    )
    minimum_acr = models.CharField(
        _("lowest assurance level (acr)"),
        max_length=200,
        blank=True,
        help_text=_("Empty: any level the provider sends."),
    )

    class Meta:
        verbose_name = _("organisation served")
        verbose_name_plural = _("organisations served")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "organisation"], name="identityprovider_organisation_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.organisation}"


class ExternalIdentity(models.Model):
    """The identity a provider asserts (the value of its matching claim) linked to an
    account. Used for sign-in only once a second administrator approved the link."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.PROTECT, related_name="external_identities"
    )
    provider = models.ForeignKey(
        IdentityProvider, verbose_name=_("identity provider"), on_delete=models.PROTECT
    )
    subject = models.CharField(_("identity at the provider"), max_length=255)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    approved_digest = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("linked identity")
        verbose_name_plural = _("linked identities")
        default_permissions = ("view", "add", "change")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "subject"], name="externalidentity_one_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.subject}"


class AccessGeneration(models.Model):
    """One row: a number the database raises with every change to who may do what (an
    account, its roles, a role's permissions, an organisation, an API client, its
    application or a token; triggers of migration 0020). Processes keep what they read
    of those tables while the number stands (``casework.access_cache``)."""

    value = models.BigIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"access generation {self.value}"


__all__ = [
    "AccessGeneration",
    "AdminChangeRequest",
    "Capability",
    "ExternalIdentity",
    "IdentityProvider",
    "IdentityProviderOrganisation",
    "Organisation",
    "User",
]
