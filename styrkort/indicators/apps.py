from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


def check_catalogue(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check``: load and validate every indicator pack (one error per problem)."""
    from styrkort.indicators.catalogue import CatalogueError, load_catalogue

    try:
        load_catalogue()
    except CatalogueError as exc:
        return [
            checks.Error(str(problem), obj="indicator catalogue", id="indicators.E001")
            for problem in exc.problems
        ]
    return []


class IndicatorsConfig(AppConfig):
    name = "styrkort.indicators"
    label = "indicators"
    verbose_name = _("Indicators")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from styrkort.indicators import services
        from styrkort.jobs.services import register

        register(services.JOB_KIND, services.compute_job)
        checks.register(check_catalogue, "indicators")
