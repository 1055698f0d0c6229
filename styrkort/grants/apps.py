from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GrantsConfig(AppConfig):
    name = "styrkort.grants"
    label = "grants"
    verbose_name = _("State grants")
    default_auto_field = "django.db.models.BigAutoField"
