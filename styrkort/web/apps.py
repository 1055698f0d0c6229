from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "styrkort.web"
    label = "web"
    verbose_name = _("Page shell")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from styrkort import textsearch
        from styrkort.indicators.services import feeds_results
        from styrkort.jobs.services import register
        from styrkort.web import demo

        connection_created.connect(textsearch.register_sqlite_functions)

        register(demo.JOB_KIND, demo.background_job)
        feeds_results(demo.JOB_KIND)
