"""URL configuration: the viewflow site shell, login, admin, health and language."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from django.views.i18n import set_language
from viewflow.urls import Site

from audit.views import AuditApp
from casework import mfa_views, programmes
from casework.absence_views import AbsenceView
from casework.extract_views import ExtractApp
from casework.services.password_links import set_password_tokens
from casework.sessions import keep_alive
from casework.settings_views import SettingsView
from casework.sso_views import SignInCallbackView, SignInStartView
from casework.statistics.app import StatisticsApp
from casework.views import CaseworkApp, home
from config.health import healthz
from workflows.common.case_page import casework_urls as shared_case_pages
from workflows.common.record import record_urls
from workflows.gvi.app import GviApp

admin.site.site_header = _("Samverkan administration")
admin.site.site_title = "Samverkan"
admin.site.index_title = _("Users and organisations")

site = Site(
    title="Samverkan",
    primary_color="#1d4f91",
    secondary_color="#00838f",
    viewsets=[
        # The case pages every programme shares, then each programme's own.
        CaseworkApp(
            urlpatterns=[*shared_case_pages(), *record_urls(), *programmes.casework_urls()]
        ),
        GviApp(),
        StatisticsApp(),
        AuditApp(),
        ExtractApp(),
    ],
)

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("konto/logga-in/", auth_views.LoginView.as_view(), name="login"),
    path("konto/logga-ut/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "konto/byt-losenord/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "konto/byt-losenord/klart/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # A user sets their own password through a single-use, time-limited link that
    # a second administrator approved (docs/adr/0014-four-eyes-on-power.md).
    path(
        "konto/satt-losenord/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            token_generator=set_password_tokens,
            success_url=reverse_lazy("password_set_done"),
            template_name="registration/set_password.html",
        ),
        name="password_set",
    ),
    path(
        "konto/satt-losenord/klart/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/set_password_done.html"
        ),
        name="password_set_done",
    ),
    # Single sign-on with OpenID Connect: start with a provider, one callback for all
    # (docs/adr/0018-single-sign-on.md).
    path("konto/sso/logga-in/<slug:slug>/", SignInStartView.as_view(), name="sso_begin"),
    path("konto/sso/svar/", SignInCallbackView.as_view(), name="sso_callback"),
    # Two-step verification (django-otp): docs/adr/0017-mfa-and-step-up.md.
    path("konto/tvasteg/", mfa_views.ManageView.as_view(), name="mfa_manage"),
    path("konto/tvasteg/aktivera/", mfa_views.EnrolView.as_view(), name="mfa_enrol"),
    path("konto/tvasteg/verifiera/", mfa_views.VerifyView.as_view(), name="mfa_verify"),
    path("konto/tvasteg/bekrafta/", mfa_views.StepUpView.as_view(), name="mfa_step_up"),
    # The user's own settings: the alerts they get (docs/adr/0029).
    path("konto/installningar/", SettingsView.as_view(), name="account_settings"),
    # Absence: a deputy for a period (docs/adr/0026-changing-teams.md).
    path("konto/franvaro/", AbsenceView.as_view(), name="absence"),
    # The idle warning's answer: renews the session (docs/adr/0016).
    path("konto/session/forlang/", keep_alive, name="session_keep_alive"),
    # The language can be chosen on the login page too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    # One login page for the whole site, the admin included.
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(pattern_name="login", query_string=True)),
    ),
    path("admin/", admin.site.urls),
    # The integration API (docs/adr/0022-integration-api.md).
    path("api/v1/", include("casework.api.urls")),
    path("", site.urls),
]

# The 403 page also keeps the refusal's reason for the denied-access event.
handler403 = "audit.views.permission_denied"
