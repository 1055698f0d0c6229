"""How indicator results read on a page: numbers the Swedish way, classes in words, periods.

Plain functions over the dicts ``services.results_for`` returns; no figures are computed or
hidden here (disclosure control happened in ``results_for``). Values are on the indicator's
display scale already (per cent for proportions, per 1,000 or 10,000 listed for rates).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from styrkort.breakdowns import ALL_AGES, REPORT_AGE_BANDS, SEX_LABELS
from styrkort.indicators.models import IndicatorResult
from styrkort.periods import MONTH, QUARTER, YEAR, Period

MISSING = "–"
PERIOD_KINDS = (MONTH, QUARTER, YEAR)
PERIOD_KIND_LABELS = {
    MONTH: gettext_lazy("Month"),
    QUARTER: gettext_lazy("Quarter"),
    YEAR: gettext_lazy("Year"),
}
PERIOD_KIND_PLURALS = {
    MONTH: gettext_lazy("Months"),
    QUARTER: gettext_lazy("Quarters"),
    YEAR: gettext_lazy("Years"),
}
#: Words for the funnel classes (the model's labels, "Better than the region", …).
CLASS_LABELS = dict(IndicatorResult.Comparison.choices)
#: A CSS class per funnel class: colour is never the only cue (the label is always shown).
CLASS_CSS = {
    "better": "class-better",
    "worse": "class-worse",
    "similar": "class-similar",
    "higher": "class-similar",
    "lower": "class-similar",
    "not_compared": "muted",
}


def value_decimals(kind: str, multiplier: float = 1) -> int:
    """Decimals a value is shown with: one for shares and rates (two per 10,000), none for a
    median of days or a count."""
    if kind == "proportion":
        return 1
    if kind == "rate_per_1000":
        return 2 if multiplier > 1000 else 1
    if kind == "mean":
        return 1
    return 0


def number(value: float | None, decimals: int = 0) -> str:
    """A number in the active language, rounded half up: 1 234,5 in Swedish, 1,234.5 in
    English. (Django's number_format cuts decimals off rather than rounding.)"""
    if value is None or value != value:  # None or NaN
        return MISSING
    rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return number_format(rounded, decimal_pos=decimals, use_l10n=True, force_grouping=True)


def count(value: float | None) -> str:
    """A numerator or denominator: whole numbers as such; FTE and mean listed populations
    (not whole) with two decimals."""
    if value is None or value != value:
        return MISSING
    if abs(value - round(value)) < 1e-9:
        return number(round(value), 0)
    return number(value, 2)


def value_text(value: float | None, kind: str, multiplier: float = 1, unit: str = "") -> str:
    """A value with its unit: "23,4 %" or "12,3 per 1 000 listade"."""
    text = number(value, value_decimals(kind, multiplier))
    if text == MISSING or not unit:
        return text
    return f"{text}\u00a0{unit}" if unit == "%" else f"{text} {unit}"


def interval_text(lower: float | None, upper: float | None, decimals: int) -> str:
    """A 95 % interval as "20,1–26,8"."""
    if lower is None or upper is None or lower != lower or upper != upper:
        return MISSING
    return f"{number(lower, decimals)}–{number(upper, decimals)}"


def sex_label(sex: str) -> str:
    return str(SEX_LABELS.get(sex, sex))


def age_label(band: str) -> str:
    return _("All ages") if band == ALL_AGES else band


def class_label(comparison: str) -> str:
    return str(CLASS_LABELS.get(comparison, CLASS_LABELS["not_compared"]))


def decorate(row: Mapping, kind: str, multiplier: float) -> dict:
    """A result dict with its figures as text for tables (``*_text``) and its class in words.

    Suppressed cells keep their None figures and read "Suppressed"."""
    decimals = value_decimals(kind, multiplier)
    out = dict(row)
    out.update(
        value_text=number(row.get("value"), decimals),
        interval_text=interval_text(row.get("lower"), row.get("upper"), decimals),
        numerator_text=count(row.get("numerator")),
        denominator_text=count(row.get("denominator")),
        class_label=class_label(row.get("comparison", "not_compared")),
        class_css=CLASS_CSS.get(row.get("comparison", "not_compared"), "muted"),
        sex_label=sex_label(row.get("sex", "")),
        age_label=age_label(row.get("age_band", "")),
        hidden_from_others=bool(row.get("publicly_suppressed")),
    )
    return out


def period_sort_key(period: str) -> tuple:
    p = Period.parse(period)
    return (p.start, -p.kind_order)


def periods_by_kind(rows: Iterable[Mapping]) -> dict[str, list[str]]:
    """Distinct periods of the rows per kind, latest first (for period selects)."""
    out: dict[str, set[str]] = {k: set() for k in PERIOD_KINDS}
    for r in rows:
        out.setdefault(r["period_kind"], set()).add(r["period"])
    return {k: sorted(v, key=period_sort_key, reverse=True) for k, v in out.items() if v}


def default_period(rows: Sequence[Mapping]) -> str | None:
    """The period a page opens on: the latest complete quarter, else the latest complete year,
    then month; else the latest period of any kind (everything is incomplete)."""
    for kind in (QUARTER, YEAR, MONTH):
        complete = [r["period"] for r in rows if r["period_kind"] == kind and r["is_complete"]]
        if complete:
            return max(complete, key=period_sort_key)
    if rows:
        return max((r["period"] for r in rows), key=period_sort_key)
    return None


def default_period_kind(period_types: Sequence[str]) -> str:
    return QUARTER if QUARTER in period_types else (period_types[0] if period_types else QUARTER)


def band_order() -> tuple[str, ...]:
    return (*REPORT_AGE_BANDS, ALL_AGES)
