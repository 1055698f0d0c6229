"""Read functions for the organisation registry: plain values in, plain values out.

Pages, the API and reports use these; they never check rights themselves. Callers pass a
queryset already scoped by `styrkort.accounts.access` (e.g. `visible_units(user)`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Count,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from styrkort import breakdowns
from styrkort.history.models import ChangeRecord
from styrkort.history.services import object_type_of
from styrkort.organisation.models import (
    PSYCHOSOCIAL_PROFESSIONS,
    CareUnit,
    Listing,
    Profession,
    Provider,
    Staffing,
)
from styrkort.periods import Period, PeriodError
from styrkort.textsearch import contains_any

PER = 10_000
HUNDREDTH = Decimal("0.01")
PSYCHOSOCIAL = tuple(str(p) for p in PSYCHOSOCIAL_PROFESSIONS)

# Sort keys offered on the unit list (page and API); "-key" sorts descending.
UNIT_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "hsa_id"),
    "municipality": ("municipality", "name"),
    "provider": ("provider__name", "name"),
    "listed": ("listed_latest", "name"),
}
ACTIVE_CHOICES = ("yes", "no", "all")


# --- units ---------------------------------------------------------------------------------


def active_q(on: date | None = None, prefix: str = "") -> Q:
    """Units open on a day: opened on or before it (or unknown) and not yet closed.

    `prefix` reaches the unit through a relation, e.g. "units__" from a provider."""
    on = on or date.today()
    return (Q(**{f"{prefix}opened__isnull": True}) | Q(**{f"{prefix}opened__lte": on})) & (
        Q(**{f"{prefix}closed__isnull": True}) | Q(**{f"{prefix}closed__gt": on})
    )


def filter_units(
    units: QuerySet[CareUnit],
    *,
    q: str = "",
    provider: int | str | None = None,
    kind: str = "",
    municipality: str = "",
    active: str = "all",
    on: date | None = None,
) -> QuerySet[CareUnit]:
    """The unit list's search (name, HSA-id, municipality) and filters."""
    q = (q or "").strip()
    if q:
        units = contains_any(units, ["name", "hsa_id", "municipality"], q)
    if provider is not None and provider != "":
        try:
            units = units.filter(provider_id=int(provider))
        except (TypeError, ValueError):
            units = units.none()
    if kind:
        units = units.filter(provider__kind=kind)
    if municipality:
        units = units.filter(municipality=municipality)
    if active == "yes":
        units = units.filter(active_q(on))
    elif active == "no":
        units = units.exclude(active_q(on))
    return units


def annotate_listed(units: QuerySet[CareUnit], month: str | None) -> QuerySet[CareUnit]:
    """Adds `listed_latest`: the unit's listed total in `month` (0 without data)."""
    if month is None:
        return units.annotate(listed_latest=Value(0, output_field=IntegerField()))
    total = (
        Listing.objects.filter(unit=OuterRef("pk"), month=month)
        .order_by()
        .values("unit")
        .annotate(total=Sum("listed"))
        .values("total")
    )
    return units.annotate(listed_latest=Coalesce(Subquery(total, output_field=IntegerField()), 0))


def sort_units(units: QuerySet[CareUnit], sort: str) -> tuple[QuerySet[CareUnit], str]:
    """Sort by one of UNIT_SORTS ("-key" for descending); returns the queryset and the key used.

    Sorting by "listed" needs `annotate_listed` first.
    """
    key = sort.lstrip("-") if sort else "name"
    if key not in UNIT_SORTS:
        key, sort = "name", "name"
    descending = sort.startswith("-")
    fields = UNIT_SORTS[key]
    order = [("-" if descending and i == 0 else "") + f for i, f in enumerate(fields)]
    return units.order_by(*order), ("-" if descending else "") + key


def municipalities(units: QuerySet[CareUnit]) -> list[str]:
    return sorted(set(units.order_by().values_list("municipality", flat=True)))


def units_by_provider(units: QuerySet[CareUnit], on: date | None = None) -> list[dict]:
    """Per provider: name, kind, number of units and of active units (providers without units
    in `units` are left out)."""
    rows = (
        units.order_by()
        .values("provider_id", "provider__name", "provider__kind", "provider__org_nr")
        .annotate(units=Count("id"), active=Count("id", filter=active_q(on)))
        .order_by("provider__kind", "provider__name")
    )
    kinds = dict(Provider.Kind.choices)
    return [
        {
            "provider_id": r["provider_id"],
            "provider": r["provider__name"],
            "kind": r["provider__kind"],
            "kind_label": str(kinds.get(r["provider__kind"], r["provider__kind"])),
            "units": r["units"],
            "active": r["active"],
        }
        for r in rows
    ]


def units_by_kind(units: QuerySet[CareUnit], on: date | None = None) -> list[dict]:
    """Units and active units per provider kind (region / private)."""
    totals: dict[str, dict] = {}
    for row in units_by_provider(units, on):
        t = totals.setdefault(
            row["kind"],
            {"kind": row["kind"], "kind_label": row["kind_label"], "providers": 0, "units": 0,
             "active": 0},
        )  # fmt: skip
        t["providers"] += 1
        t["units"] += row["units"]
        t["active"] += row["active"]
    return [totals[k] for k in Provider.Kind.values if k in totals]


def provider_rows(providers: QuerySet[Provider], month: str | None, on: date | None = None):
    """Providers with their number of units, active units and listed total in `month`."""
    listed = {}
    if month:
        listed = dict(
            Listing.objects.filter(unit__provider__in=providers, month=month)
            .order_by()
            .values("unit__provider")
            .annotate(total=Sum("listed"))
            .values_list("unit__provider", "total")
        )
    rows = providers.annotate(
        unit_count=Count("units", distinct=True),
        active_count=Count("units", filter=active_q(on, "units__"), distinct=True),
    ).order_by("kind", "name")
    return [
        {
            "provider": p,
            "units": p.unit_count,
            "active": p.active_count,
            "listed": listed.get(p.pk, 0),
        }
        for p in rows
    ]


# --- listings ------------------------------------------------------------------------------


def listing_months(units: QuerySet[CareUnit]) -> list[str]:
    """Months with any listing for these units, oldest first."""
    return sorted(
        set(Listing.objects.filter(unit__in=units).order_by().values_list("month", flat=True))
    )


def latest_month(units: QuerySet[CareUnit]) -> str | None:
    return Listing.objects.filter(unit__in=units).order_by().aggregate(m=Max("month"))["m"]


def listed_by_month(
    units: QuerySet[CareUnit],
    *,
    from_month: str | None = None,
    to_month: str | None = None,
    sex: str | None = None,
    age_band: str | None = None,
) -> list[dict]:
    """Listed per month summed over the units: [{"month", "K", "M", "T"}], oldest first."""
    rows = Listing.objects.filter(unit__in=units)
    if from_month:
        rows = rows.filter(month__gte=from_month)
    if to_month:
        rows = rows.filter(month__lte=to_month)
    if sex:
        rows = rows.filter(sex=sex)
    if age_band:
        rows = rows.filter(age_band=age_band)
    by_month: dict[str, dict] = {}
    for r in rows.order_by().values("month", "sex").annotate(total=Sum("listed")):
        m = by_month.setdefault(r["month"], {"month": r["month"], "K": 0, "M": 0, "T": 0})
        m[r["sex"]] += r["total"]
        m["T"] += r["total"]
    return [by_month[k] for k in sorted(by_month)]


def listed_in_month(units: QuerySet[CareUnit], month: str | None) -> dict[int, int]:
    """Each unit's listed total in a month: {unit_id: listed} (units without data left out)."""
    if not month:
        return {}
    return dict(
        Listing.objects.filter(unit__in=units, month=month)
        .order_by()
        .values("unit")
        .annotate(total=Sum("listed"))
        .values_list("unit", "total")
    )


def pyramid(unit: CareUnit, month: str | None) -> list[dict]:
    """Listed by age band and sex in one month, youngest band first: [{"age_band", "K", "M"}].

    Every age band is present (0 where there is no row), so the pyramid has no gaps.
    """
    cells: dict[str, dict[str, Any]] = {
        band: {"age_band": band, "K": 0, "M": 0} for band in breakdowns.AGE_BANDS
    }
    if month:
        for r in Listing.objects.filter(unit=unit, month=month).values("age_band", "sex", "listed"):
            if r["age_band"] in cells and r["sex"] in breakdowns.SEXES:
                cells[r["age_band"]][r["sex"]] += r["listed"]
    return list(cells.values())


def listing_rows(
    unit: CareUnit,
    *,
    from_month: str | None = None,
    to_month: str | None = None,
    sex: str | None = None,
    age_band: str | None = None,
) -> QuerySet[Listing]:
    """A unit's listing cells, filtered (API)."""
    rows = Listing.objects.filter(unit=unit)
    if from_month:
        rows = rows.filter(month__gte=from_month)
    if to_month:
        rows = rows.filter(month__lte=to_month)
    if sex:
        rows = rows.filter(sex=sex)
    if age_band:
        rows = rows.filter(age_band=age_band)
    return rows.order_by("month", "sex", "age_band")


# --- staffing ------------------------------------------------------------------------------


def period_sort_key(period: str) -> tuple:
    """Chronological order across kinds: by end date, then the shorter period last (so a
    quarter sorts after the year that ends on the same day)."""
    try:
        p = Period.parse(period)
    except PeriodError:
        return (date.max, 0, period)
    return (p.end, p.start, period)


def staffing_periods(units: QuerySet[CareUnit]) -> list[str]:
    """Periods with any staffing for these units, oldest first."""
    rows = Staffing.objects.filter(unit__in=units).order_by()
    periods = set(rows.values_list("period", flat=True))
    return sorted(periods, key=period_sort_key)


def latest_staffing_period(units: QuerySet[CareUnit]) -> str | None:
    periods = staffing_periods(units)
    return periods[-1] if periods else None


def per_10000(fte: Decimal | int | None, listed: int | None) -> Decimal | None:
    """Full-time equivalents per 10,000 listed, to two decimals; None without listed patients."""
    if fte is None or not listed:
        return None
    return (Decimal(fte) * PER / Decimal(listed)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def listed_for_period(units: QuerySet[CareUnit], period: str) -> dict[int, int]:
    """The listed total that a staffing period is compared with, per unit: the unit's latest
    month with listings on or before the period's last month (staffing is reported for a period,
    listings monthly; the latest month in the period is the population served at its end)."""
    last = str(Period.parse(period).months()[-1])
    rows = (
        Listing.objects.filter(unit__in=units, month__lte=last)
        .order_by()
        .values("unit", "month")
        .annotate(total=Sum("listed"))
    )
    best: dict[int, tuple[str, int]] = {}
    for r in rows:
        current = best.get(r["unit"])
        if current is None or r["month"] > current[0]:
            best[r["unit"]] = (r["month"], r["total"])
    return {unit_id: total for unit_id, (_m, total) in best.items()}


def psychosocial_fte(units: QuerySet[CareUnit], period: str) -> dict[int, Decimal]:
    """Summed FTE of the psychosocial professions per unit in a period (units with rows only)."""
    return {
        r["unit"]: r["fte"]
        for r in Staffing.objects.filter(unit__in=units, period=period, profession__in=PSYCHOSOCIAL)
        .order_by()
        .values("unit")
        .annotate(fte=Sum("fte"))
    }


def psychosocial_by_unit(units: QuerySet[CareUnit], period: str | None) -> list[dict]:
    """Psychosocial staffing per 10,000 listed for each unit that reported staffing in the
    period: [{"unit_id", "hsa_id", "name", "fte", "listed", "per_10000"}], by name.

    A unit that reported staffing but no psychosocial profession counts with 0 FTE.
    """
    if not period:
        return []
    reported = set(
        Staffing.objects.filter(unit__in=units, period=period)
        .order_by()
        .values_list("unit", flat=True)
        .distinct()
    )
    fte = psychosocial_fte(units, period)
    listed = listed_for_period(units, period)
    rows = []
    for unit in units.filter(pk__in=reported).order_by("name"):
        value = fte.get(unit.pk, Decimal("0"))
        rows.append(
            {
                "unit_id": unit.pk,
                "hsa_id": unit.hsa_id,
                "name": unit.name,
                "fte": value,
                "listed": listed.get(unit.pk, 0),
                "per_10000": per_10000(value, listed.get(unit.pk, 0)),
            }
        )
    return rows


def staffing_matrix(unit: CareUnit) -> dict:
    """A unit's staffing as a table, newest period first.

    `periods` are the column heads; `professions` the rows that occur (in the model's order),
    each with its FTE per period (None where not reported); `psychosocial`, `listed` and
    `per_10000` are the summary rows: psychosocial FTE, the listed total it is compared with
    and psychosocial FTE per 10,000 listed. `rows` gives the same per period.
    """
    found = list(Staffing.objects.filter(unit=unit).values("period", "profession", "fte"))
    present = {r["profession"] for r in found}
    codes = [p for p in Profession.values if p in present]
    by_period: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in found:
        by_period[r["period"]][r["profession"]] = r["fte"]
    periods = sorted(by_period, key=period_sort_key, reverse=True)
    units = CareUnit.objects.filter(pk=unit.pk)
    rows = []
    for period in periods:
        cells = by_period[period]
        psych = sum((cells.get(p, Decimal("0")) for p in PSYCHOSOCIAL), Decimal("0"))
        listed = listed_for_period(units, period).get(unit.pk, 0)
        rows.append(
            {
                "period": period,
                "fte": [cells.get(p) for p in codes],
                "psychosocial": psych,
                "listed": listed,
                "per_10000": per_10000(psych, listed),
            }
        )
    labels = dict(Profession.choices)
    return {
        "periods": periods,
        "professions": [
            {
                "code": code,
                "label": labels[code],
                "psychosocial": code in PSYCHOSOCIAL,
                "values": [by_period[p].get(code) for p in periods],
            }
            for code in codes
        ],
        "psychosocial": [r["psychosocial"] for r in rows],
        "listed": [r["listed"] for r in rows],
        "per_10000": [r["per_10000"] for r in rows],
        "rows": rows,
    }


def staffing_for(unit: CareUnit, period: str) -> dict[str, Decimal]:
    """{profession: fte} of a unit in one period."""
    return dict(Staffing.objects.filter(unit=unit, period=period).values_list("profession", "fte"))


# --- the region ----------------------------------------------------------------------------


def key_figures(
    units: QuerySet[CareUnit], on: date | None = None, series: list[dict] | None = None
) -> dict:
    """The overview's headline numbers for a set of units (usually a region's); `series` is
    `listed_by_month(units)` when the caller has it already."""
    month = latest_month(units)
    if series is None:
        series = listed_by_month(units)
    by_month = {r["month"]: r["T"] for r in series}
    listed = by_month.get(month, 0) if month else 0
    year_before = str(Period.parse(month) - 12) if month else None
    listed_year_before = by_month.get(year_before) if year_before else None
    period = latest_staffing_period(units)
    psych = psychosocial_by_unit(units, period)
    psych_fte = sum((r["fte"] for r in psych), Decimal("0"))
    psych_listed = sum(r["listed"] for r in psych)
    kinds = {k["kind"]: k for k in units_by_kind(units, on)}
    return {
        "units": units.count(),
        "active_units": units.filter(active_q(on)).count(),
        "providers": units.order_by().values("provider").distinct().count(),
        "private_units": kinds.get("private", {}).get("active", 0),
        "latest_month": month,
        "listed": listed,
        "year_before": year_before,
        "listed_year_before": listed_year_before,
        "listed_change": (listed - listed_year_before) if listed_year_before else None,
        "staffing_period": period,
        "psychosocial_fte": psych_fte,
        "psychosocial_per_10000": per_10000(psych_fte, psych_listed),
        "units_without_psychologist": _units_without_psychologist(units, period),
    }


def _units_without_psychologist(units: QuerySet[CareUnit], period: str | None) -> int | None:
    """Units that reported staffing for the period but no psychologist FTE at all."""
    if not period:
        return None
    reported = set(
        Staffing.objects.filter(unit__in=units, period=period).values_list("unit", flat=True)
    )
    with_psychologist = set(
        Staffing.objects.filter(
            unit__in=units,
            period=period,
            profession__in=(Profession.PSYKOLOG, Profession.PTP_PSYKOLOG),
            fte__gt=0,
        ).values_list("unit", flat=True)
    )
    return len(reported - with_psychologist)


# --- history -------------------------------------------------------------------------------


def unit_changes(unit: CareUnit) -> QuerySet[ChangeRecord]:
    """A unit's own changes and those of its listings and staffing, newest first.

    Listing and staffing changes are recorded against their own rows (with the unit's region);
    they are found through the unit_id in their before or after snapshot, so rows since deleted
    still show.
    """
    own = Q(object_type=object_type_of(CareUnit), object_id=str(unit.pk))
    children = Q(object_type__in=(object_type_of(Listing), object_type_of(Staffing))) & (
        Q(after__unit_id=unit.pk) | Q(before__unit_id=unit.pk)
    )
    return (
        ChangeRecord.objects.filter(region_id=unit.region_id)
        .filter(own | children)
        .select_related("actor")
    )
