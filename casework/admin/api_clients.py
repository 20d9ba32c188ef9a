"""The integration API's clients in the admin (docs/adr/0022-integration-api.md).

django-oauth-toolkit registers its own models (applications, tokens, grants) in the
admin; they are taken out: an administrator who could make an application or a token
there would give a system access without a second administrator's approval. Clients
are made and their scopes granted through ``casework.services.api_clients``.
"""

from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

for _model in (
    get_application_model(),
    get_access_token_model(),
    get_grant_model(),
    get_id_token_model(),
    get_refresh_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
