from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from styrkort.organisation.models import CareUnit, Region


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    ANALYST = "analyst", _("Analyst")
    UNIT_MANAGER = "unit_manager", _("Unit manager")
    AUDITOR = "auditor", _("Auditor")
    VIEWER = "viewer", _("Viewer")


class Membership(models.Model):
    """A user's role in a region; unit managers are further scoped to the units listed here.

    This row is the only source of what a user may see and change: every view, API endpoint
    and command asks `styrkort.accounts.access`, which reads it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    units = models.ManyToManyField(CareUnit, blank=True, related_name="managers")

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} – {self.get_role_display()} ({self.region})"


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A token for scripts calling the API; only its hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=8, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple[ApiToken, str]:
        """Create a token and return it with the raw value, which is shown once and not kept."""
        raw = "sk_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, prefix=raw[3:11], token_hash=_hash_token(raw)
        )
        return token, raw

    @classmethod
    def find(cls, raw: str) -> ApiToken | None:
        return (
            cls.objects.select_related("user")
            .filter(token_hash=_hash_token(raw), revoked__isnull=True, user__is_active=True)
            .first()
        )
