from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Processes")

    def ready(self) -> None:
        """Each programme registers itself with the core (``casework.programmes``)."""
        from workflows.defector import programme as defector_programme
        from workflows.gvi import programme as gvi_programme
        from workflows.sig import programme as sig_programme
        from workflows.sspf import programme as sspf_programme

        # The order of the statistics and the demo data (the menu has its own).
        for programme in (sig_programme, sspf_programme, gvi_programme, defector_programme):
            programme.register()
