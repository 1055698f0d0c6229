from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "styrkort.web"
    label = "web"
    verbose_name = _("Page shell")
    default_auto_field = "django.db.models.BigAutoField"
