"""Single sign-on pages: start the code flow with a chosen provider, and its one callback.

Both subclass mozilla-django-oidc's views so that the provider is chosen per
request; the protocol work stays the library's (state, nonce and PKCE in the
session; the token exchange and checks in ``casework.services.sso``).
docs/adr/0018-single-sign-on.md.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from django.contrib import auth
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from casework.services import sso

_STATE_SESSION_KEY = "oidc_states"  # the library's: state -> nonce and PKCE verifier


def _refused(request, refusal: sso.SignInRefused) -> TemplateResponse:
    return TemplateResponse(
        request, "registration/sso_refused.html", {"message": refusal.message}, status=403
    )


@method_decorator(login_not_required, name="dispatch")
class SignInStartView(OIDCAuthenticationRequestView):
    """``/konto/sso/logga-in/<provider>/``: off to the provider with state, nonce, PKCE."""

    get_settings = staticmethod(sso.get_settings)

    def __init__(self, **kwargs):  # not the library's: it reads a single provider
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request, slug):
        provider = None
        try:
            provider = sso.usable_provider(slug)
            client = sso.ProviderClient(provider)
        except sso.SignInRefused as refusal:
            sso.refuse(refusal, provider=provider)
            return _refused(request, refusal)
        self.OIDC_OP_AUTH_ENDPOINT = client.OIDC_OP_AUTHORIZATION_ENDPOINT
        self.OIDC_RP_CLIENT_ID = client.OIDC_RP_CLIENT_ID
        self._scope = provider.scopes
        response = super().get(request)
        state = parse_qs(urlparse(response["Location"]).query)["state"][0]
        providers = request.session.get(sso.STATES_KEY, {})
        live = request.session.get(_STATE_SESSION_KEY, {})  # the library keeps at most 50
        providers = {key: value for key, value in providers.items() if key in live}
        providers[state] = provider.pk
        request.session[sso.STATES_KEY] = providers
        return response

    def get_extra_params(self, request):
        return {"scope": self._scope}


@method_decorator(login_not_required, name="dispatch")
class SignInCallbackView(OIDCAuthenticationCallbackView):
    """``/konto/sso/svar/``: the one redirect URI of every provider."""

    get_settings = staticmethod(sso.get_settings)

    def get(self, request):
        state = request.GET.get("state", "")
        states = request.session.get(_STATE_SESSION_KEY, {})
        providers = request.session.get(sso.STATES_KEY, {})
        # One use per state, whatever happens next (the library's replay rule).
        entry = states.pop(state, None) if isinstance(state, str) else None
        provider_id = providers.pop(state, None) if isinstance(state, str) else None
        request.session.modified = True
        provider = None
        try:
            if entry is None or provider_id is None:
                raise sso.SignInRefused("state")
            provider = sso.usable_provider(provider_id, by_pk=True)
            if request.GET.get("error"):
                raise sso.SignInRefused("provider_error")
            # RFC 9207: a provider that names itself must be the one we sent the user to.
            if "iss" in request.GET and request.GET["iss"] != provider.issuer:
                raise sso.SignInRefused("authorization_response_issuer")
        except sso.SignInRefused as refusal:
            sso.refuse(refusal, provider=provider)
            return _refused(request, refusal)
        try:
            sign_in = sso.complete_sign_in(
                request,
                provider,
                code=request.GET.get("code", ""),
                nonce=entry.get("nonce"),
                code_verifier=entry.get("code_verifier"),
            )
        except sso.SignInRefused as refusal:
            return _refused(request, refusal)
        next_url = self.success_url  # checked when the sign-in started
        # The login event (audit.signals) records the provider and its assurance.
        request.samverkan_sso = sign_in.sso
        auth.login(request, sign_in.user, backend="casework.auth.RoleBackend")
        request.session[sso.SESSION_KEY] = sign_in.sso
        return HttpResponseRedirect(next_url)
