from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExtractsConfig(AppConfig):
    name = "styrkort.extracts"
    label = "extracts"
    verbose_name = _("Visit-level extracts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from styrkort.extracts import services
        from styrkort.indicators.services import feeds_results
        from styrkort.jobs.services import register, register_startup

        register(services.JOB_KIND, services.ingest_job)
        register(services.PURGE_JOB_KIND, services.delete_purged_job)
        feeds_results(services.JOB_KIND)
        register_startup(services.cleanup)
