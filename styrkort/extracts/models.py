import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExtractVersion(models.Model):
    """One accepted upload of one extract table for one region and declared period.

    The validated data lives as a Parquet file under settings.EXTRACT_DIR; this row records where,
    its checksum and row count. Re-uploading a (region, period, table) adds version n+1 and
    supersedes the previous one, which is kept until an analyst purges it. Only the active
    version of each (region, period, table) is read by the indicator engine.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("In force")
        SUPERSEDED = "superseded", _("Superseded")
        PURGED = "purged", _("Purged")

    region = models.ForeignKey(
        "organisation.Region", on_delete=models.PROTECT, related_name="extract_versions"
    )
    period = models.CharField(_("period"), max_length=7)
    table = models.CharField(_("table"), max_length=20)
    version = models.PositiveIntegerField(_("version"))
    path = models.CharField(max_length=500, help_text="relative to settings.EXTRACT_DIR")
    checksum = models.CharField(_("SHA-256"), max_length=64)
    rows = models.PositiveBigIntegerField(_("rows"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    source_name = models.CharField(_("file name"), max_length=255, blank=True)
    # SHA-256 of the file as sent (CSV or Parquet), so a re-send of the same file is recognised.
    source_checksum = models.CharField(_("SHA-256 of the file sent"), max_length=64, blank=True)
    upload = models.ForeignKey(
        "extracts.ExtractUpload",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="versions",
    )

    class Meta:
        ordering = ["region", "period", "table", "-version"]
        verbose_name = _("extract version")
        verbose_name_plural = _("extract versions")
        constraints = [
            models.UniqueConstraint(
                fields=["region", "period", "table", "version"], name="extract_version_unique"
            ),
            models.UniqueConstraint(
                fields=["region", "period", "table"],
                condition=models.Q(status="active"),
                name="extract_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.table} {self.period} v{self.version}"

    @property
    def full_path(self):
        return settings.EXTRACT_DIR / self.path


class ExtractUpload(models.Model):
    """One attempt to upload an extract (one or more tables for one declared period).

    Accepted or refused, every attempt is kept: an accepted one points at the versions it
    created, a refused one at its error report (a CSV under ``DATA_DIR/extract_reports``). Only
    masked values are ever stored here (the validator masks identifiers in every error); the
    file names sent are masked the same way. When the upload runs as a background job, ``job``
    is that job and the report is named after it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Being checked")
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Refused")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(
        "organisation.Region", on_delete=models.PROTECT, related_name="extract_uploads"
    )
    period = models.CharField(_("period"), max_length=7)
    tables = models.JSONField(_("tables"), default=list)
    source_names = models.JSONField(default=dict, blank=True)  # table -> file name (masked)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(_("uploaded"), auto_now_add=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)  # table -> data rows read
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    error_counts = models.JSONField(default=dict, blank=True)  # table -> rule -> count
    errors = models.JSONField(default=list, blank=True)  # the first 1,000, values masked
    report_path = models.CharField(
        max_length=300, blank=True, help_text="error report, relative to settings.DATA_DIR"
    )
    message = models.TextField(_("message"), blank=True)  # why it failed (never a value)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("extract upload")
        verbose_name_plural = _("extract uploads")

    def __str__(self) -> str:
        return f"upload {', '.join(self.tables)} {self.period} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.ACCEPTED, self.Status.REFUSED, self.Status.FAILED)

    @property
    def report_full_path(self):
        return settings.DATA_DIR / self.report_path if self.report_path else None
