"""The indicators' API: definitions, results (JSON and CSV) and starting a computation.

Results come from ``services.results_for`` / ``services.export_results``, with exactly the
disclosure control of the pages: analysts see every figure, a unit manager sees own units
unsuppressed, everyone else gets small numbers suppressed (figures null, ``suppressed`` true).
Reading never changes anything; computing is a background job (status at /api/jobs/{id}).

No ``from __future__ import annotations`` here: django-ninja reads the annotations at import
time.
"""

from typing import Literal

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.pagination import LimitOffsetPagination, paginate

from styrkort.accounts import access
from styrkort.indicators import services
from styrkort.indicators.catalogue import catalogue_for_display
from styrkort.indicators.views import (
    catalogue_entry,
    parse_filters,
    results,
    stored_definition,
)
from styrkort.periods import Period, PeriodError

router = Router()

AgeBand = Literal["0-17", "18-24", "25-44", "45-64", "65-79", "80+", "alla"]


# --- schemas -------------------------------------------------------------------------------


class IndicatorTargetOut(Schema):
    value: float
    direction: str = Field(description="at_least or at_most")
    text: str
    source: str


class IndicatorDefinitionOut(Schema):
    code: str
    version: str = Field(description="Content hash of the definition")
    pack: str
    pack_name: str
    name_sv: str
    name_en: str
    definition_sv: str
    definition_en: str
    numerator: str = Field(description="The numerator in words (in the request's language)")
    denominator: str = Field(description="The denominator in words")
    kind: str = Field(description="proportion, rate_per_1000, mean, median or count")
    unit_label: str = Field(description="What the values are: %, per 1 000 listed, days, …")
    multiplier: float = Field(description="Scale of values: 100 for per cent, 1000 per 1,000")
    polarity: str = Field(description="higher_better, lower_better or none")
    source: str
    citation: str
    breakdowns: list[str]
    period_types: list[str]
    compared: bool = Field(description="Whether units are classed against the region")
    target: IndicatorTargetOut | None


class IndicatorResultOut(Schema):
    indicator: str
    version: str = Field(description="The definition version the figure was computed with")
    unit_id: int | None = Field(description="null for the region")
    unit_hsa_id: str | None
    unit_name: str | None
    period: str
    period_type: str
    sex: str = Field(description="K, M or T (all)")
    age_band: str = Field(description="A report age band or 'alla'")
    numerator: float | None
    denominator: float | None
    value: float | None = Field(description="On the indicator's scale (see multiplier)")
    lower: float | None = Field(description="Lower limit of the 95 % interval")
    upper: float | None = Field(description="Upper limit of the 95 % interval")
    comparison: str = Field(
        description="better, similar, worse, higher, lower or not_compared (99.8 % funnel)"
    )
    suppressed: bool = Field(description="Figures withheld from you by disclosure control")
    suppression_reason: str = Field(description="primary, secondary or empty")
    is_complete: bool


class IndicatorResultFilter(Schema):
    indicator: str = Field(description="Indicator code, e.g. PO04")
    unit: str | None = Field(
        None, description="Unit id or HSA-id, or 'region' for the region's own figures"
    )
    period: str | None = Field(None, description="2025, 2025Q1 or 2025-03")
    period_type: Literal["month", "quarter", "year"] | None = None
    sex: Literal["K", "M", "T"] | None = None
    age_band: AgeBand | None = None


class IndicatorComputeIn(Schema):
    periods: list[str] | None = Field(
        default=None,
        description="Data periods that changed (recompute what depends on them); "
        "omit to compute everything",
    )
    stale: bool = Field(default=False, description="Recompute what changed since the last run")


class IndicatorJobStarted(Schema):
    job: str
    status: str
    status_url: str


# --- helpers -------------------------------------------------------------------------------


def _definition(entry: dict) -> dict:
    return {
        **entry,
        "pack_name": entry["pack"]["name"],
        "pack": entry["pack"]["code"],
    }


def _results(user, filters: IndicatorResultFilter) -> tuple[str, list[dict]]:
    """The filtered results for ``user`` (404 for an unknown indicator or a unit outside the
    region, 422 for a malformed period)."""
    catalogue_entry(filters.indicator)
    query = {k: v for k, v in filters.dict().items() if v is not None and k != "indicator"}
    try:
        parsed = parse_filters(query)
    except ValueError as exc:
        raise HttpError(422, str(exc))
    return filters.indicator, results(user, stored_definition(filters.indicator), parsed)


# --- endpoints -----------------------------------------------------------------------------


@router.get(
    "/definitions", response=list[IndicatorDefinitionOut], summary="Every indicator definition"
)
def definitions(request):
    access.require(request.auth, "view")
    return [_definition(e) for e in catalogue_for_display()]


@router.get(
    "/definitions/{code}", response=IndicatorDefinitionOut, summary="One indicator definition"
)
def definition(request, code: str):
    access.require(request.auth, "view")
    return _definition(catalogue_entry(code))


@router.get(
    "/results",
    response=list[IndicatorResultOut],
    summary="Results of one indicator, suppressed as your role requires",
)
@paginate(LimitOffsetPagination)
def result_list(request, filters: Query[IndicatorResultFilter]):
    code, rows = _results(request.auth, filters)
    return [
        {**r, "indicator": code, "period_type": r["period_kind"], "suppressed": r["suppressed"]}
        for r in rows
    ]


@router.get(
    "/results.csv",
    summary="Results of one indicator as CSV, suppressed as your role requires",
    response={200: str},
    openapi_extra={
        "responses": {200: {"description": "CSV (UTF-8 with BOM)", "content": {"text/csv": {}}}}
    },
)
def result_csv(request, filters: Query[IndicatorResultFilter]):
    catalogue_entry(filters.indicator)
    query = {k: v for k, v in filters.dict().items() if v is not None and k != "indicator"}
    try:
        parsed = parse_filters(query)
    except ValueError as exc:
        raise HttpError(422, str(exc))
    stored = stored_definition(filters.indicator)
    if stored is None:
        access.require(request.auth, "view")
        raise HttpError(404, "No results have been computed for this indicator.")
    export = services.export_results(request.auth, stored, parsed, "csv")
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@router.post(
    "/compute",
    response={202: IndicatorJobStarted},
    summary="Compute every indicator for your region as a background job (admin, analyst)",
)
def compute(request, body: IndicatorComputeIn | None = None):
    body = body or IndicatorComputeIn()
    access.require(request.auth, "compute")
    try:
        periods = [str(Period.parse(p)) for p in body.periods] if body.periods else None
    except PeriodError as exc:
        raise HttpError(422, str(exc))
    job = services.enqueue_compute(request.auth, periods, stale=body.stale)
    return Status(
        202, {"job": str(job.pk), "status": job.status, "status_url": f"/api/jobs/{job.pk}"}
    )
