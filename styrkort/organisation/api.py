"""The organisation registry's API: regions, providers, units, listings, staffing, history.

Same access rules as the pages (objects through `styrkort.accounts.access`, writes through
`styrkort.organisation.services`). Units are addressed by database id or HSA-id.

No `from __future__ import annotations` here: django-ninja reads the annotations at import time.
"""

from datetime import date
from decimal import Decimal
from typing import Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import field_validator

from styrkort import breakdowns
from styrkort.accounts import access
from styrkort.history.api import ChangeOut
from styrkort.organisation import queries, services
from styrkort.organisation.models import CareUnit, Profession, Provider, Staffing
from styrkort.periods import Period, PeriodError

router = Router()

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def _stored(fte: Decimal) -> Decimal:
    """FTE as stored (two decimals) when that loses nothing; more decimals are left for the
    model's validation to refuse rather than rounded silently."""
    rounded = fte.quantize(Decimal("0.01")) if fte.is_finite() else fte
    return rounded if rounded == fte else fte


def _period(value: str) -> str:
    try:
        return str(Period.parse(value))
    except PeriodError as exc:
        raise HttpError(422, str(exc))


# --- schemas -------------------------------------------------------------------------------


class RegionOut(Schema):
    id: int
    name: str
    lan_code: str
    org_nr: str


class ProviderOut(Schema):
    id: int
    name: str
    org_nr: str
    kind: str
    units: int
    active_units: int


class UnitOut(Schema):
    id: int
    hsa_id: str
    name: str
    municipality: str
    provider_id: int
    provider: str
    kind: str
    opened: date | None
    closed: date | None
    active: bool
    listed_month: str | None = Field(None, description="The latest month with listings")
    listed: int = Field(0, description="Listed patients in listed_month")


class UnitFilter(Schema):
    q: str = Field("", description="Search in name, HSA-id and municipality")
    provider: int | None = Field(None, description="Provider id")
    kind: Literal["region", "private"] | None = None
    municipality: str = ""
    active: Literal["yes", "no", "all"] = "all"
    sort: Literal[
        "name", "-name", "municipality", "-municipality", "provider", "-provider", "listed",
        "-listed",
    ] = "name"  # fmt: skip


class MonthRange(Schema):
    from_month: str | None = Field(None, pattern=MONTH_PATTERN, description="YYYY-MM, inclusive")
    to_month: str | None = Field(None, pattern=MONTH_PATTERN, description="YYYY-MM, inclusive")
    sex: Literal["K", "M"] | None = None
    age_band: str | None = Field(None, description="A fine age band such as 25-29 or 85+")

    @field_validator("age_band")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        if value is not None:
            breakdowns.validate_age_band(value)
        return value


class ListingOut(Schema):
    month: str
    sex: str
    age_band: str
    listed: int


class MonthTotalOut(Schema):
    month: str
    K: int = Field(description="Women")
    M: int = Field(description="Men")
    T: int = Field(description="All")


class RegionListingFilter(MonthRange):
    provider: int | None = None
    kind: Literal["region", "private"] | None = None
    municipality: str = ""
    active: Literal["yes", "no", "all"] = "all"


class StaffingOut(Schema):
    unit_id: int
    hsa_id: str
    period: str
    profession: str
    fte: Decimal

    @staticmethod
    def resolve_hsa_id(obj):
        return obj.unit.hsa_id


class StaffingFilter(Schema):
    period: str | None = Field(None, description="2025, 2025Q1 or 2025-03")
    profession: str | None = None
    unit: str | None = Field(None, description="Unit id or HSA-id")


class PsychosocialOut(Schema):
    unit_id: int
    hsa_id: str
    name: str
    period: str
    fte: Decimal
    listed: int
    per_10000: Decimal | None


class UnitPatch(Schema):
    name: str | None = None
    municipality: str | None = None
    provider_id: int | None = None
    opened: date | None = None
    closed: date | None = Field(None, description="null reopens the unit")


class StaffingIn(Schema):
    period: str = Field(description="2025, 2025Q1 or 2025-03")
    fte: dict[str, Decimal] = Field(
        description="Full-time equivalents per profession code; professions left out are kept"
    )


# --- helpers -------------------------------------------------------------------------------


def _unit_out(unit: CareUnit, month: str | None, listed: int) -> dict:
    return {
        "id": unit.pk,
        "hsa_id": unit.hsa_id,
        "name": unit.name,
        "municipality": unit.municipality,
        "provider_id": unit.provider_id,
        "provider": unit.provider.name,
        "kind": unit.provider.kind,
        "opened": unit.opened,
        "closed": unit.closed,
        "active": unit.is_active(),
        "listed_month": month,
        "listed": listed,
    }


def _unit_detail(user, unit: CareUnit) -> dict:
    units = access.visible_units(user)
    month = queries.latest_month(units)
    listed = queries.listed_in_month(units.filter(pk=unit.pk), month).get(unit.pk, 0)
    return _unit_out(unit, month, listed)


# --- read endpoints ------------------------------------------------------------------------


@router.get("/regions", response=list[RegionOut], summary="The user's region")
def regions(request):
    access.require(request.auth, "view")
    return [access.get_region_for_user(request.auth)]


@router.get("/providers", response=list[ProviderOut], summary="Providers of the region")
def providers(request):
    access.require(request.auth, "view")
    rows = queries.provider_rows(
        Provider.objects.filter(region=access.get_region_for_user(request.auth)), None
    )
    return [
        {
            "id": r["provider"].pk, "name": r["provider"].name, "org_nr": r["provider"].org_nr,
            "kind": r["provider"].kind, "units": r["units"], "active_units": r["active"],
        }
        for r in rows
    ]  # fmt: skip


@router.get("/units", response=list[UnitOut], summary="Care units, searched and filtered")
@paginate(LimitOffsetPagination)
def units(request, filters: Query[UnitFilter]):
    access.require(request.auth, "view")
    visible = access.visible_units(request.auth).select_related("provider")
    month = queries.latest_month(visible)
    found = queries.filter_units(
        visible, q=filters.q, provider=filters.provider, kind=filters.kind or "",
        municipality=filters.municipality, active=filters.active,
    )  # fmt: skip
    found, _sort = queries.sort_units(queries.annotate_listed(found, month), filters.sort)
    return [_unit_out(u, month, getattr(u, "listed_latest", 0)) for u in found]


@router.get("/units/{unit_ref}", response=UnitOut, summary="One care unit (id or HSA-id)")
def unit(request, unit_ref: str):
    found = access.get_unit_for_user(request.auth, unit_ref)
    return _unit_detail(request.auth, found)


@router.get(
    "/units/{unit_ref}/listings",
    response=list[ListingOut],
    summary="A unit's listed patients by month, sex and age band",
)
def unit_listings(request, unit_ref: str, filters: Query[MonthRange]):
    found = access.get_unit_for_user(request.auth, unit_ref)
    return queries.listing_rows(found, **filters.dict())


@router.get(
    "/units/{unit_ref}/staffing",
    response=list[StaffingOut],
    summary="A unit's staffing by period and profession",
)
def unit_staffing(request, unit_ref: str, period: str | None = None):
    found = access.get_unit_for_user(request.auth, unit_ref)
    rows = Staffing.objects.filter(unit=found).select_related("unit")
    if period:
        rows = rows.filter(period=_period(period))
    return sorted(rows, key=lambda r: (queries.period_sort_key(r.period), r.profession))


@router.get(
    "/units/{unit_ref}/history",
    response=list[ChangeOut],
    summary="Changes of a unit and of its listings and staffing, newest first",
)
@paginate(LimitOffsetPagination)
def unit_history(request, unit_ref: str):
    found = access.get_unit_for_user(request.auth, unit_ref)
    if not access.can_view_unit_history(request.auth, found):
        raise PermissionDenied("view_history")
    return queries.unit_changes(found)


@router.get(
    "/listings",
    response=list[MonthTotalOut],
    summary="Listed patients of the region (or filtered units) summed by month",
)
def listings(request, filters: Query[RegionListingFilter]):
    access.require(request.auth, "view")
    found = queries.filter_units(
        access.visible_units(request.auth), provider=filters.provider, kind=filters.kind or "",
        municipality=filters.municipality, active=filters.active,
    )  # fmt: skip
    return queries.listed_by_month(
        found, from_month=filters.from_month, to_month=filters.to_month, sex=filters.sex,
        age_band=filters.age_band,
    )  # fmt: skip


@router.get("/staffing", response=list[StaffingOut], summary="Staffing of the region's units")
@paginate(LimitOffsetPagination)
def staffing(request, filters: Query[StaffingFilter]):
    access.require(request.auth, "view")
    rows = Staffing.objects.filter(unit__in=access.visible_units(request.auth)).select_related(
        "unit"
    )
    if filters.period:
        rows = rows.filter(period=_period(filters.period))
    if filters.profession:
        if filters.profession not in Profession.values:
            raise HttpError(422, f"unknown profession {filters.profession!r}")
        rows = rows.filter(profession=filters.profession)
    if filters.unit:
        rows = rows.filter(unit=access.get_unit_for_user(request.auth, filters.unit))
    return rows.order_by("unit__name", "period", "profession")


@router.get(
    "/psychosocial",
    response=list[PsychosocialOut],
    summary="Psychosocial FTE per 10,000 listed by unit (default: the latest staffing period)",
)
def psychosocial(request, period: str | None = None):
    access.require(request.auth, "view")
    visible = access.visible_units(request.auth)
    period = _period(period) if period else queries.latest_staffing_period(visible)
    return [{**r, "period": period} for r in queries.psychosocial_by_unit(visible, period)]


# --- write endpoints -----------------------------------------------------------------------


@router.patch(
    "/units/{unit_ref}",
    response=UnitOut,
    summary="Change a unit's registry fields (analyst, admin)",
)
def update_unit(request, unit_ref: str, payload: UnitPatch):
    access.require(request.auth, "manage_registry")
    found = access.get_unit_for_user(request.auth, unit_ref, write=True)
    changes = payload.dict(exclude_unset=True)
    if "provider_id" in changes:
        provider = Provider.objects.filter(
            region=access.get_region_for_user(request.auth), pk=changes.pop("provider_id")
        ).first()
        if provider is None:
            raise HttpError(422, "provider_id: no such provider in the region")
        changes["provider"] = provider
    for key in ("name", "municipality"):
        if key in changes and not (changes[key] or "").strip():
            raise HttpError(422, f"{key}: may not be empty")
    try:
        updated = services.update_unit(request.auth, found, **changes)
    except ValidationError as exc:
        raise HttpError(422, _error_text(exc))
    updated = CareUnit.objects.select_related("provider").get(pk=updated.pk)
    return _unit_detail(request.auth, updated)


@router.put(
    "/units/{unit_ref}/staffing",
    response=list[StaffingOut],
    summary="Set FTE per profession for a period (the unit's manager, analyst, admin)",
)
def put_staffing(request, unit_ref: str, payload: StaffingIn):
    access.require(request.auth, "edit_unit_data")
    found = access.get_unit_for_user(request.auth, unit_ref, write=True)
    period = _period(payload.period)
    unknown = sorted(set(payload.fte) - set(Profession.values))
    if unknown:
        raise HttpError(422, f"unknown profession: {', '.join(unknown)}")
    try:
        with transaction.atomic():
            for profession, fte in payload.fte.items():
                services.set_staffing(request.auth, found, period, profession, _stored(fte))
    except ValidationError as exc:
        raise HttpError(422, _error_text(exc))
    return Staffing.objects.filter(unit=found, period=period).select_related("unit")
