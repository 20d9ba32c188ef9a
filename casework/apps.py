from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CaseworkConfig(AppConfig):
    name = "casework"
    verbose_name = _("Case work")

    def ready(self) -> None:
        from casework import (
            checks,  # noqa: F401 - registers the system checks
            mfa,  # noqa: F401 - the sign-in receiver of the second factor
        )
