"""One way to say a breakdown: sex as Kolada and SCB write it, and age bands.

Listings and standardisation use the fine bands; indicator results are broken down by the
report bands, each of which is a union of fine bands.
"""

from __future__ import annotations

import functools

from django.utils.translation import gettext_lazy as _

WOMEN, MEN, TOTAL = "K", "M", "T"
SEXES = (WOMEN, MEN)
SEXES_WITH_TOTAL = (WOMEN, MEN, TOTAL)
SEX_LABELS = {WOMEN: _("Women"), MEN: _("Men"), TOTAL: _("All")}

ALL_AGES = "alla"

# Fine bands: five-year bands as in ESP 2013, with 15–19 split at 18 so that adults (18+) and
# children (0–17) are whole bands.
AGE_BANDS = (
    "0-4", "5-9", "10-14", "15-17", "18-19", "20-24", "25-29", "30-34", "35-39", "40-44",
    "45-49", "50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85+",
)  # fmt: skip

REPORT_AGE_BANDS = ("0-17", "18-24", "25-44", "45-64", "65-79", "80+")


def band_bounds(band: str) -> tuple[int, int | None]:
    """(lowest age, highest age or None for open-ended) of a band such as '25-44' or '85+'."""
    if band.endswith("+"):
        return int(band[:-1]), None
    low, high = band.split("-")
    return int(low), int(high)


def age_band(age: int, bands: tuple[str, ...] = AGE_BANDS) -> str:
    for band in bands:
        low, high = band_bounds(band)
        if age >= low and (high is None or age <= high):
            return band
    raise ValueError(f"no age band for age {age}")


@functools.cache
@functools.cache
def report_band(fine_band: str) -> str:
    """The report band that contains a fine band (cached: asked once per listing row)."""
    return age_band(band_bounds(fine_band)[0], REPORT_AGE_BANDS)


def fine_bands_of(report: str) -> list[str]:
    return [b for b in AGE_BANDS if report_band(b) == report]


def validate_age_band(value: str) -> str:
    if value not in AGE_BANDS:
        raise ValueError(f"{value!r} is not an age band; use one of {', '.join(AGE_BANDS)}")
    return value


def validate_sex(value: str, allow_total: bool = False) -> str:
    allowed = SEXES_WITH_TOTAL if allow_total else SEXES
    if value not in allowed:
        raise ValueError(f"sex must be {' or '.join(allowed)}, not {value!r}")
    return value
