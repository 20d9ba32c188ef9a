from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Processes")

    def ready(self) -> None:
        """Each programme registers itself with the core (``casework.programmes``)."""
        from workflows import defector_programme, gvi_programme, sig_programme, sspf_programme

        # The order of the statistics and the demo data (the menu has its own).
        for programme in (sig_programme, sspf_programme, gvi_programme, defector_programme):
            programme.register()
