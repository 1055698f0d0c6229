from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from styrkort import breakdowns
from styrkort.identifiers import format_org_nr, normalise_org_nr, validate_hsa_id
from styrkort.periods import PeriodError, validate_period


def _org_nr_validator(value: str) -> None:
    try:
        normalise_org_nr(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="org_nr")


def _hsa_validator(value: str) -> None:
    try:
        validate_hsa_id(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="hsa_id")


def _month_validator(value: str) -> None:
    try:
        validate_period(value, "month")
    except PeriodError as exc:
        raise ValidationError(str(exc), code="month")


def _period_validator(value: str) -> None:
    try:
        validate_period(value)
    except PeriodError as exc:
        raise ValidationError(str(exc), code="period")


class Region(models.Model):
    """A Swedish region (län) that orders primary care; the top of every hierarchy here."""

    name = models.CharField(_("name"), max_length=100)
    lan_code = models.CharField(_("county code"), max_length=2, unique=True)
    org_nr = models.CharField(
        _("organisation number"), max_length=10, blank=True, validators=[_org_nr_validator]
    )

    class Meta:
        ordering = ["lan_code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def __str__(self) -> str:
        return self.name


class Provider(models.Model):
    """An organisation that runs care units: the region itself or a private company (utförare)."""

    class Kind(models.TextChoices):
        REGION = "region", _("Run by the region")
        PRIVATE = "private", _("Private")

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="providers")
    name = models.CharField(_("name"), max_length=200)
    org_nr = models.CharField(
        _("organisation number"), max_length=10, validators=[_org_nr_validator]
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)

    class Meta:
        ordering = ["name"]
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        constraints = [
            models.UniqueConstraint(fields=["region", "org_nr"], name="provider_unique_org_nr")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def org_nr_display(self) -> str:
        return format_org_nr(self.org_nr)


class CareUnit(models.Model):
    """A primary care centre (vårdcentral / hälsocentral), identified by its HSA-id."""

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="units")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="units")
    hsa_id = models.CharField(_("HSA-id"), max_length=40, unique=True, validators=[_hsa_validator])
    name = models.CharField(_("name"), max_length=200)
    municipality = models.CharField(_("municipality"), max_length=100)
    opened = models.DateField(_("opened"), null=True, blank=True)
    closed = models.DateField(_("closed"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("care unit")
        verbose_name_plural = _("care units")

    def __str__(self) -> str:
        return self.name

    def is_active(self, on: date | None = None) -> bool:
        on = on or date.today()
        return (self.opened is None or self.opened <= on) and (
            self.closed is None or self.closed > on
        )

    def clean(self) -> None:
        if self.opened and self.closed and self.closed <= self.opened:
            raise ValidationError({"closed": _("A unit must close after it opened.")})


class Listing(models.Model):
    """Listed patients (listade) at a unit in one month, by sex and age band.

    The capitation base, and the denominator of rates per 1,000 listed."""

    unit = models.ForeignKey(CareUnit, on_delete=models.CASCADE, related_name="listings")
    month = models.CharField(_("month"), max_length=7, validators=[_month_validator])
    sex = models.CharField(
        _("sex"), max_length=1, choices=[(s, breakdowns.SEX_LABELS[s]) for s in breakdowns.SEXES]
    )
    age_band = models.CharField(
        _("age band"), max_length=6, choices=[(b, b) for b in breakdowns.AGE_BANDS]
    )
    listed = models.PositiveIntegerField(_("listed"), validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["unit", "month", "sex", "age_band"]
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "month", "sex", "age_band"], name="listing_unique_cell"
            )
        ]
        indexes = [models.Index(fields=["month"])]

    def __str__(self) -> str:
        return f"{self.unit} {self.month} {self.sex} {self.age_band}: {self.listed}"


class Profession(models.TextChoices):
    LAKARE = "lakare", _("Physician")
    SJUKSKOTERSKA = "sjukskoterska", _("Nurse")
    PSYKOLOG = "psykolog", _("Psychologist")
    PTP_PSYKOLOG = "ptp_psykolog", _("Psychologist in training (PTP)")
    KURATOR = "kurator", _("Counsellor (kurator)")
    PSYKOTERAPEUT = "psykoterapeut", _("Psychotherapist")
    FYSIOTERAPEUT = "fysioterapeut", _("Physiotherapist")
    ARBETSTERAPEUT = "arbetsterapeut", _("Occupational therapist")
    VARDSAMORDNARE = "vardsamordnare", _("Care co-ordinator")
    REHABKOORDINATOR = "rehabkoordinator", _("Rehabilitation co-ordinator")
    ANNAN = "annan", _("Other")


PSYCHOSOCIAL_PROFESSIONS = (
    Profession.PSYKOLOG,
    Profession.PTP_PSYKOLOG,
    Profession.KURATOR,
    Profession.PSYKOTERAPEUT,
)


class Staffing(models.Model):
    """Full-time equivalents of one profession at a unit in a period (collected data)."""

    unit = models.ForeignKey(CareUnit, on_delete=models.CASCADE, related_name="staffing")
    period = models.CharField(_("period"), max_length=7, validators=[_period_validator])
    profession = models.CharField(_("profession"), max_length=20, choices=Profession.choices)
    fte = models.DecimalField(
        _("full-time equivalents"),
        max_digits=7,
        decimal_places=2,
        validators=[MinValueValidator(0)],
    )

    class Meta:
        ordering = ["unit", "period", "profession"]
        verbose_name = _("staffing")
        verbose_name_plural = _("staffing")
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "period", "profession"], name="staffing_unique_cell"
            )
        ]

    def __str__(self) -> str:
        return f"{self.unit} {self.period} {self.profession}: {self.fte}"
