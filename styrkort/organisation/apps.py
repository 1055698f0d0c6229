from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganisationConfig(AppConfig):
    name = "styrkort.organisation"
    label = "organisation"
    verbose_name = _("Organisation registry")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models must be loaded before the import service is.
        from styrkort.jobs.services import register
        from styrkort.organisation.imports import JOB_KIND, run_import_job

        register(JOB_KIND, run_import_job)
