from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from styrkort import breakdowns

AGE_BAND_CHOICES = [(b, b) for b in breakdowns.REPORT_AGE_BANDS] + [
    (breakdowns.ALL_AGES, _("All ages"))
]
SEX_CHOICES = [(s, breakdowns.SEX_LABELS[s]) for s in breakdowns.SEXES_WITH_TOTAL]


class IndicatorDefinition(models.Model):
    """One version of an indicator definition from the catalogue, as stored with its results.

    The catalogue files (``packs/*.toml``) are the source; a row is added whenever a
    definition's content hash (``version``) is new, so every result can point at exactly the
    definition that produced it. ``is_current`` marks the version in the catalogue now.
    """

    class Kind(models.TextChoices):
        PROPORTION = "proportion", _("Proportion")
        RATE = "rate_per_1000", _("Rate per listed population")
        MEAN = "mean", _("Mean")
        MEDIAN = "median", _("Median")
        COUNT = "count", _("Count")

    class Polarity(models.TextChoices):
        HIGHER_BETTER = "higher_better", _("Higher is better")
        LOWER_BETTER = "lower_better", _("Lower is better")
        NONE = "none", _("No judgement")

    class Source(models.TextChoices):
        EXTRACT = "extract", _("EHR extract")
        COLLECTED = "collected", _("Collected data")
        SURVEY = "survey", _("Survey")

    code = models.CharField(_("code"), max_length=12)
    version = models.CharField(_("version"), max_length=16, help_text="content hash")
    pack = models.CharField(_("pack"), max_length=40)
    family = models.PositiveSmallIntegerField(_("number in pack"))
    name_sv = models.CharField(_("name (Swedish)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    definition_sv = models.TextField(_("definition (Swedish)"))
    definition_en = models.TextField(_("definition (English)"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    polarity = models.CharField(_("polarity"), max_length=16, choices=Polarity.choices)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    citation = models.TextField(_("citation"))
    breakdowns = models.JSONField(_("breakdowns"), default=list)
    period_types = models.JSONField(_("period types"), default=list)
    multiplier = models.FloatField(_("multiplier"), help_text="100 for per cent, 1000 per 1,000")
    target = models.JSONField(_("target"), null=True, blank=True)
    spec = models.JSONField(_("specification"), help_text="the definition as hashed")
    is_current = models.BooleanField(_("current"), default=True)
    first_loaded = models.DateTimeField(_("first loaded"), auto_now_add=True)

    class Meta:
        ordering = ["pack", "family", "code", "-first_loaded"]
        verbose_name = _("indicator definition")
        verbose_name_plural = _("indicator definitions")
        constraints = [
            models.UniqueConstraint(
                fields=["code", "version"], name="indicator_definition_version"
            ),
            models.UniqueConstraint(
                fields=["code"], condition=models.Q(is_current=True), name="indicator_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_sv}"

    def name(self, language: str = "sv") -> str:
        return self.name_sv if language == "sv" else self.name_en


class ComputationRun(models.Model):
    """One run of the engine for a region: who started it, when, what it computed and from
    which extract versions."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    region = models.ForeignKey(
        "organisation.Region", on_delete=models.PROTECT, related_name="computation_runs"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    full = models.BooleanField(_("full run"), default=True)
    requested_periods = models.JSONField(
        _("changed data periods"), null=True, blank=True, help_text="null: everything"
    )
    requested_tables = models.JSONField(_("changed tables"), null=True, blank=True)
    computed = models.JSONField(
        _("computed periods"), default=dict, help_text="indicator code -> result periods"
    )
    full_versions = models.JSONField(
        _("computed in full"),
        default=dict,
        help_text="indicator code -> definition version, for indicators computed for every period",
    )
    extract_versions = models.ManyToManyField(
        "extracts.ExtractVersion", related_name="computation_runs", blank=True
    )
    results_written = models.PositiveIntegerField(_("results written"), default=0)
    results_replaced = models.PositiveIntegerField(_("results replaced"), default=0)
    results_unchanged = models.PositiveIntegerField(_("results unchanged"), default=0)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("computation run")
        verbose_name_plural = _("computation runs")

    def __str__(self) -> str:
        return f"{self.region} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class InputSet(models.Model):
    """The inputs a figure was computed from: the extract files (id, table, period, version,
    SHA-256) its period's data window touches (the dependency rule of ``engine.py``), and
    fingerprints of the registry's listing rows (of the months computed in that run) or
    staffing rows it used.

    Shared by every result with the same inputs; ``fingerprint`` is the SHA-256 of
    ``extracts`` and ``collected``, so identical inputs are stored once.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    extracts = models.JSONField(default=list)
    collected = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("input set")
        verbose_name_plural = _("input sets")

    def __str__(self) -> str:
        return self.fingerprint[:12]

    @property
    def checksums(self) -> list[str]:
        return [e["checksum"] for e in self.extracts]


class IndicatorResult(models.Model):
    """One figure: an indicator for a unit (or the region, ``unit`` null), a period, a sex
    (K, M or T) and a report age band (or 'alla'), with numerator, denominator, value and 95 %
    interval on the indicator's display scale.

    ``suppressed``/``suppression_reason`` hold the *public* disclosure-control pattern (what
    every role without unsuppressed access sees); pages must still read results through
    ``services.results_for``, which applies the pattern for the viewer (a unit manager's own
    unit is shown unsuppressed, with the pattern recomputed around it). ``comparison`` is the
    funnel-plot class against the region at 99.8 % limits. ``is_complete`` is false when the
    period's figure depends on data outside the extracts loaded (e.g. the 90-day follow-up of
    the latest months).
    """

    class Comparison(models.TextChoices):
        BETTER = "better", _("Better than the region")
        SIMILAR = "similar", _("Similar to the region")
        WORSE = "worse", _("Worse than the region")
        HIGHER = "higher", _("Higher than the region")
        LOWER = "lower", _("Lower than the region")
        NOT_COMPARED = "not_compared", _("Not compared")

    class PeriodKind(models.TextChoices):
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        YEAR = "year", _("Year")

    # No index of their own on the foreign keys: the indexes below begin with the definition
    # or the unit, and a recompute gives some hundred thousand kept rows its run and inputs.
    # On PostgreSQL the table's pages are also left half full (migration 0003), so that
    # those updates stay on their page and touch no index (HOT updates); see
    # docs/indicators.md, "Performance".
    definition = models.ForeignKey(
        IndicatorDefinition, on_delete=models.PROTECT, related_name="results", db_index=False
    )
    definition_version = models.CharField(_("definition version"), max_length=16)
    region = models.ForeignKey(
        "organisation.Region",
        on_delete=models.CASCADE,
        related_name="indicator_results",
        db_index=False,
    )
    unit = models.ForeignKey(
        "organisation.CareUnit",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="indicator_results",
        db_index=False,
    )
    period = models.CharField(_("period"), max_length=7)
    period_kind = models.CharField(_("period kind"), max_length=7, choices=PeriodKind.choices)
    sex = models.CharField(_("sex"), max_length=1, choices=SEX_CHOICES)
    age_band = models.CharField(_("age band"), max_length=5, choices=AGE_BAND_CHOICES)
    numerator = models.FloatField(_("numerator"), null=True, blank=True)
    denominator = models.FloatField(_("denominator"), null=True, blank=True)
    value = models.FloatField(_("value"), null=True, blank=True)
    lower = models.FloatField(_("lower limit"), null=True, blank=True)
    upper = models.FloatField(_("upper limit"), null=True, blank=True)
    suppressed = models.BooleanField(_("suppressed"), default=False)
    suppression_reason = models.CharField(
        _("suppression reason"),
        max_length=10,
        blank=True,
        choices=[("primary", _("Primary")), ("secondary", _("Secondary"))],
    )
    comparison = models.CharField(
        _("compared with the region"),
        max_length=12,
        choices=Comparison.choices,
        default=Comparison.NOT_COMPARED,
    )
    is_complete = models.BooleanField(_("complete"), default=True)
    run = models.ForeignKey(
        ComputationRun, on_delete=models.PROTECT, related_name="results", db_index=False
    )
    inputs = models.ForeignKey(
        InputSet, on_delete=models.PROTECT, related_name="results", db_index=False
    )

    class Meta:
        verbose_name = _("indicator result")
        verbose_name_plural = _("indicator results")
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "region", "unit", "period", "sex", "age_band"],
                condition=models.Q(unit__isnull=False),
                name="indicator_result_unit_cell",
            ),
            models.UniqueConstraint(
                fields=["definition", "region", "period", "sex", "age_band"],
                condition=models.Q(unit__isnull=True),
                name="indicator_result_region_cell",
            ),
        ]
        indexes = [
            # Funnel plot / unit table: every unit for one indicator, period, sex, age band.
            models.Index(
                fields=["definition", "region", "period", "sex", "age_band"],
                name="indres_def_period",
            ),
            # Time series of one unit (or the region) for one indicator.
            models.Index(
                fields=["definition", "unit", "sex", "age_band", "period_kind", "period"],
                name="indres_def_unit_series",
            ),
            # Unit page: every indicator for one unit and period.
            models.Index(fields=["unit", "period"], name="indres_unit_period"),
        ]

    def __str__(self) -> str:
        where = self.unit_id or "region"
        return f"{self.definition_id} {where} {self.period} {self.sex} {self.age_band}"
