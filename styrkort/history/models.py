from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ChangeRecord(models.Model):
    """One change to governed data: who, when, what, with before and after snapshots.

    Written by `styrkort.history.services.record` in the same transaction as the change, never
    by signals, so bulk writes and imports are recorded as well. Rows are never updated.
    """

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Changed")
        DELETE = "delete", _("Deleted")
        TRANSITION = "transition", _("State change")
        IMPORT = "import", _("Imported")
        PURGE = "purge", _("Purged")

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    region = models.ForeignKey(
        "organisation.Region", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=12, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=60, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(_("object"), max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    batch = models.CharField(_("batch"), max_length=36, blank=True, db_index=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("change")
        verbose_name_plural = _("changes")
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"

    def changed_fields(self) -> list[tuple[str, object, object]]:
        before, after = self.before or {}, self.after or {}
        keys = sorted(set(before) | set(after))
        return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
