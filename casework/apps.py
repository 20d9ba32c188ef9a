from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CaseworkConfig(AppConfig):
    name = "casework"
    verbose_name = _("Case work")

    def ready(self) -> None:
        # The system checks, and the receivers of sign-in (second factor), session and
        # lock signals, and of new tasks (their webhooks) and assigned ones (alerts).
        from casework import checks, mfa, sessions  # noqa: F401
        from casework.services import alerts, signin, webhooks  # noqa: F401
        from casework.services import sessions as ended_sessions  # noqa: F401
