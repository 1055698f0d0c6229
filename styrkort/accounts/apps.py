from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "styrkort.accounts"
    label = "accounts"
    verbose_name = _("Users, roles and access")
    default_auto_field = "django.db.models.BigAutoField"
