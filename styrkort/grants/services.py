"""Every write to the grants goes through these functions.

Each takes the acting user first, checks rights through :mod:`styrkort.accounts.access` (via
:mod:`styrkort.grants.queries`), validates everything before writing anything, runs in one
transaction and writes its history rows in that same transaction. Pages, the API and the
command line call these; none of them writes the models directly.

Refusals: ``PermissionDenied`` (role or unit), ``Http404`` (outside the region),
:class:`GrantError` (bad input or a step not allowed now; ``message`` is for the user,
``errors`` lists every problem), :class:`~styrkort.grants.allocation.AllocationError` and
:class:`~styrkort.grants.population.PopulationFileError` from the domain logic (see
:func:`describe_error`). On any refusal nothing has changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from styrkort import breakdowns
from styrkort.accounts import access
from styrkort.grants import queries
from styrkort.grants.allocation import (
    AllocationError,
    AllocationResult,
    compare_allocations,
    national_distribution,
    plan_regional_allocation,
)
from styrkort.grants.models import (
    DEFAULT_CATEGORIES,
    STATE_ORDER,
    AccountAttachment,
    AccountEvent,
    AccountLine,
    AccountStatus,
    AllocationPlan,
    CentralSpending,
    Grant,
    GrantCategory,
    GrantState,
    GrantTransition,
    NationalDistribution,
    PlanCentralItem,
    PlanDecision,
    PlanStatus,
    PlanUnitAmount,
    StateReport,
    UnitAccount,
    Weighting,
    deadline_passed,
)
from styrkort.grants.population import LAN, RULES, PopulationFileError, parse_population_csv
from styrkort.grants.repayment import Repayment, compute_repayment
from styrkort.history.services import record, snapshot
from styrkort.money import format_kronor, whole_kronor
from styrkort.organisation.models import CareUnit, Listing
from styrkort.periods import Period, PeriodError


class GrantError(ValueError):
    """A refused grant operation: ``message`` (translated, for the user), a stable ``code``
    and ``errors`` (every problem found, so that a form can be fixed in one go)."""

    def __init__(self, code: str, message: str, errors: Iterable[str] = (), **params: Any):
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.errors = [str(e) for e in errors] or [self.message]
        self.params = params


# ------------------------------------------------------------------------------------------
# Messages for the domain errors (allocation.py and population.py speak English with codes)


def _kr(amount) -> str:
    return format_kronor(amount) if amount is not None else "–"


def describe_allocation_error(exc: AllocationError) -> str:
    p = exc.params
    messages = {
        "floors_exceed_total": lambda: (
            _("The floors sum to %(floors)s but only %(total)s is left for the units.")
            % {"floors": _kr(p.get("floors")), "total": _kr(p.get("total"))}
        ),
        "caps_below_total": lambda: (
            _("The caps sum to %(caps)s but %(total)s must be allocated to the units.")
            % {"caps": _kr(p.get("caps")), "total": _kr(p.get("total"))}
        ),
        "capacity_below_total": lambda: (
            _(
                "With these caps at most %(capacity)s can be allocated to the units, "
                "but %(total)s must be."
            )
            % {"capacity": _kr(p.get("capacity")), "total": _kr(p.get("total"))}
        ),
        "floor_above_cap": lambda: (
            _("The floor (%(floor)s) is above the cap (%(cap)s).")
            % {"floor": _kr(p.get("floor")), "cap": _kr(p.get("cap"))}
        ),
        "central_exceeds_total": lambda: (
            _("The central efforts need %(central)s but the grant is only %(total)s.")
            % {"central": _kr(p.get("central")), "total": _kr(p.get("total"))}
        ),
        "all_weights_zero": lambda: _(
            "No unit has any listed patients (or weight) to allocate by."
        ),
        "need_index_mismatch": lambda: (
            _("The need index is missing for these units: %(missing)s.")
            % {"missing": ", ".join(p.get("missing", [])) or "–"}
        ),
        "no_units": lambda: _("There are no active units to allocate to."),
        "total_not_whole_kronor": lambda: (
            _("The total %(value)s is not a whole number of kronor.") % {"value": p.get("value")}
        ),
        "total_not_int": lambda: _("The total must be a whole number of kronor."),
        "negative_total": lambda: _("The total cannot be negative."),
        "negative_weight": lambda: (
            _("A weight or share cannot be negative (%(value)s).") % {"value": p.get("value")}
        ),
        "duplicate_central_item": lambda: (
            _("The central effort %(name)s is listed twice.") % {"name": p.get("name")}
        ),
    }
    make = messages.get(exc.code)
    return make() if make else str(exc)


POPULATION_RULES = {
    "not_utf8": lambda: _("the file is not UTF-8 text"),
    "empty_file": lambda: _("the file is empty"),
    "missing_column": lambda: _("a required column is missing from the header"),
    "unknown_lan": lambda: _("not one of the 21 county codes"),
    "duplicate_lan": lambda: _("this county appears more than once"),
    "missing_lan": lambda: _("this county is missing from the file"),
    "empty_value": lambda: _("the value is empty"),
    "negative": lambda: _("a population cannot be negative"),
    "not_integer": lambda: _("a population is a whole number"),
    "not_a_number": lambda: _("not a number"),
}
assert set(POPULATION_RULES) == set(RULES)


def describe_population_errors(exc: PopulationFileError) -> list[str]:
    lines = []
    for e in exc.errors:
        rule = POPULATION_RULES.get(e.rule, lambda e=e: e.rule)()
        where = _("File") if e.row is None else _("Row %(row)s") % {"row": e.row}
        if e.column:
            where += ", " + _("column %(column)s") % {"column": e.column}
        detail = f" ({e.detail})" if e.detail else ""
        lines.append(f"{where}: “{e.value}”: {rule}{detail}")
    return lines


def describe_error(exc: Exception) -> list[str]:
    """User-facing messages (translated) for any refusal from this module or the domain."""
    if isinstance(exc, GrantError):
        return exc.errors
    if isinstance(exc, AllocationError):
        return [describe_allocation_error(exc)]
    if isinstance(exc, PopulationFileError):
        return [_("The population file was not imported:")] + describe_population_errors(exc)
    if isinstance(exc, ValidationError):
        return [str(m) for m in exc.messages]
    return [str(exc)]


# ------------------------------------------------------------------------------------------
# Input parsing (forms, API and CLI give text or numbers; money is never a float)


def parse_kronor(value: object, what: str, *, required: bool = True) -> int | None:
    """Whole kronor from an int or text such as "14 446 372"; refuses öre, floats, negatives."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise GrantError("required", _("%(what)s is required.") % {"what": what})
        return None
    if isinstance(value, float | bool):
        raise GrantError(
            "not_whole_kronor",
            _("%(what)s must be a whole number of kronor, not %(value)s.")
            % {"what": what, "value": value},
        )
    try:
        amount = whole_kronor(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GrantError(
            "not_whole_kronor",
            _("%(what)s must be a whole number of kronor, not “%(value)s”.")
            % {"what": what, "value": value},
        )
    if amount < 0:
        raise GrantError(
            "negative",
            _("%(what)s cannot be negative (%(value)s).") % {"what": what, "value": value},
        )
    return amount


def parse_decimal(value: object, what: str, *, places: int = 2) -> Decimal:
    """A non-negative decimal (FTE, need index, weights) with at most ``places`` decimals."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal(0)
    if isinstance(value, float | bool):
        raise GrantError(
            "not_a_number",
            _("%(what)s is not a number: %(value)s") % {"what": what, "value": value},
        )
    text = str(value).strip().replace("\xa0", "").replace(" ", "").replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise GrantError(
            "not_a_number",
            _("%(what)s is not a number: “%(value)s”.") % {"what": what, "value": value},
        )
    if not number.is_finite():
        raise GrantError(
            "not_a_number",
            _("%(what)s is not a number: “%(value)s”.") % {"what": what, "value": value},
        )
    if number < 0:
        raise GrantError(
            "negative",
            _("%(what)s cannot be negative (%(value)s).") % {"what": what, "value": value},
        )
    if number != number.quantize(Decimal(10) ** -places):
        raise GrantError(
            "too_many_decimals",
            _("%(what)s has more than %(places)s decimals (%(value)s).")
            % {"what": what, "places": places, "value": value},
        )
    return number


def parse_count(value: object, what: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, (bool, float)):
        raise GrantError("not_a_number", _("%(what)s is not a whole number.") % {"what": what})
    try:
        number = int(str(value).strip())
    except ValueError:
        raise GrantError(
            "not_a_number",
            _("%(what)s is not a whole number: “%(value)s”.") % {"what": what, "value": value},
        )
    if number < 0:
        raise GrantError(
            "negative",
            _("%(what)s cannot be negative (%(value)s).") % {"what": what, "value": value},
        )
    return number


def parse_month(value: object) -> str:
    try:
        period = Period.parse(str(value or "").strip())
    except PeriodError:
        period = None
    if period is None or period.kind != "month":
        raise GrantError(
            "bad_month",
            _("The reference month must be a month such as 2025-10, not “%(value)s”.")
            % {"value": value},
        )
    return str(period)


def _run(errors: list[str], fn, *args, **kwargs):
    """Call a parser, collecting its message instead of stopping at the first problem."""
    try:
        return fn(*args, **kwargs)
    except GrantError as exc:
        errors.append(exc.message)
        return None


# ------------------------------------------------------------------------------------------
# Rights


def _require_manager(actor, grant: Grant | None = None) -> None:
    access.require(actor, "manage_grants")
    if grant is not None and grant.region_id != access.get_region_for_user(actor).pk:
        raise PermissionDenied("grant outside the region")


def _require_reporting_unit(actor, grant: Grant, unit: CareUnit) -> None:
    """The user may account for this unit: own units for a unit manager, any for analysts."""
    access.require(actor, "report_grant_use")
    if unit.region_id != grant.region_id or grant.region_id != access.get_region_for_user(actor).pk:
        raise PermissionDenied("unit outside the region")
    if not access.grant_reporting_units(actor).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")


# ------------------------------------------------------------------------------------------
# The grant register

GRANT_FIELDS = (
    "name",
    "dnr",
    "authority",
    "purpose",
    "conditions",
    "total",
    "national_total",
    "first_year",
    "last_year",
    "accounts_deadline",
    "report_deadline",
    "repayment_deadline",
    "national_distribution_id",
)


def _grant_snapshot(grant: Grant) -> dict:
    data = snapshot(grant, [f.replace("_id", "") for f in GRANT_FIELDS])
    data["categories"] = [
        {"code": c.code, "name": c.name, "allowed": c.allowed} for c in grant.categories.all()
    ]
    return data


def _clean_grant_values(values: Mapping[str, Any]) -> dict:
    errors: list[str] = []
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("total", "national_total"):
            what = _("The region's amount") if key == "total" else _("The national total")
            clean[key] = _run(errors, parse_kronor, value, what, required=key == "total")
        elif key in ("first_year", "last_year"):
            year = _run(errors, parse_count, value, _("The year"))
            if year is not None and not 2000 <= year <= 2100:
                errors.append(_("The year %(year)s is not plausible.") % {"year": year})
            clean[key] = year
        elif key.endswith("_deadline"):
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value.strip())
                except ValueError:
                    errors.append(_("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": value})
                    continue
            if not isinstance(value, date):
                errors.append(_("A deadline is required."))
                continue
            clean[key] = value
        elif key in ("name", "dnr", "authority", "purpose", "conditions"):
            clean[key] = str(value or "").strip()
        elif key == "national_distribution":
            clean[key] = value
        else:
            raise TypeError(f"unknown grant field {key!r}")
    if "name" in clean and not clean["name"]:
        errors.append(_("The grant needs a name."))
    first, last = clean.get("first_year"), clean.get("last_year")
    if first and last and last < first:
        errors.append(_("The last year cannot be before the first year."))
    if errors:
        raise GrantError("invalid", errors[0], errors)
    return clean


@transaction.atomic
def create_grant(
    actor,
    *,
    name: str,
    total: int | str,
    first_year: int | str,
    accounts_deadline: date | str,
    report_deadline: date | str,
    repayment_deadline: date | str,
    last_year: int | str | None = None,
    dnr: str = "",
    authority: str = "Socialstyrelsen",
    purpose: str = "",
    conditions: str = "",
    national_total: int | str | None = None,
    national_distribution: NationalDistribution | None = None,
    categories: Sequence[tuple[str, str]] = DEFAULT_CATEGORIES,
    note: str = "",
) -> Grant:
    """Register a grant in the actor's region, with its categories and the state 'decided'."""
    _require_manager(actor)
    region = access.get_region_for_user(actor)
    values = _clean_grant_values(
        {
            "name": name,
            "total": total,
            "first_year": first_year,
            "last_year": first_year if last_year in (None, "") else last_year,
            "accounts_deadline": accounts_deadline,
            "report_deadline": report_deadline,
            "repayment_deadline": repayment_deadline,
            "dnr": dnr,
            "authority": authority,
            "purpose": purpose,
            "conditions": conditions,
            "national_total": national_total,
        }
    )
    if national_distribution is not None and national_distribution.region_id != region.pk:
        raise PermissionDenied("distribution outside the region")
    grant = Grant(region=region, national_distribution=national_distribution, **values)
    grant.full_clean()
    grant.save()
    for position, (code, cat_name) in enumerate(categories):
        GrantCategory.objects.create(grant=grant, code=code, name=cat_name, position=position)
    GrantTransition.objects.create(grant=grant, state=GrantState.DECIDED, by=actor, note=note)
    record(actor, "create", grant, after=_grant_snapshot(grant), note=note)
    return grant


@transaction.atomic
def update_grant(actor, grant: Grant, **changes) -> Grant:
    """Change a grant's register fields (not its state, which moves by :func:`transition`).

    The amount may change after a plan was decided (the state revised it); the plan in force
    then no longer matches and the grant's page asks for a new plan version."""
    _require_manager(actor, grant)
    values = _clean_grant_values(changes)
    locked = Grant.objects.select_for_update().get(pk=grant.pk)
    before = _grant_snapshot(locked)
    for key, value in values.items():
        setattr(locked, key, value)
    locked.full_clean()
    locked.save()
    after = _grant_snapshot(locked)
    if after != before:
        record(actor, "update", locked, before=before, after=after)
    return locked


@transaction.atomic
def set_categories(actor, grant: Grant, rows: Sequence[Mapping[str, Any]]) -> list[GrantCategory]:
    """Set the grant's cost categories: ``rows`` of {code, name, allowed}. Existing categories
    missing from ``rows`` are disallowed, never deleted (accounts may refer to them)."""
    _require_manager(actor, grant)
    errors: list[str] = []
    seen: set[str] = set()
    clean = []
    for row in rows:
        code = str(row.get("code") or "").strip().lower()
        name = str(row.get("name") or "").strip()
        if not code or not all(ch.isalnum() or ch in "_-" for ch in code):
            errors.append(
                _("“%(code)s” is not a category code (letters, digits, _ and -).") % {"code": code}
            )
            continue
        if code in seen:
            errors.append(_("The category %(code)s is listed twice.") % {"code": code})
            continue
        if not name:
            errors.append(_("The category %(code)s needs a name.") % {"code": code})
            continue
        seen.add(code)
        clean.append((code, name[:100], bool(row.get("allowed", True))))
    if errors:
        raise GrantError("invalid_categories", errors[0], errors)
    before = _grant_snapshot(grant)
    existing = {c.code: c for c in grant.categories.all()}
    for position, (code, name, allowed) in enumerate(clean):
        cat = existing.pop(code, None) or GrantCategory(grant=grant, code=code)
        cat.name, cat.allowed, cat.position = name, allowed, position
        cat.save()
    for cat in existing.values():
        if cat.allowed:
            cat.allowed = False
            cat.save()
    after = _grant_snapshot(grant)
    if after != before:
        record(actor, "update", grant, before=before, after=after, note="categories")
    return list(grant.categories.all())


def next_states(grant: Grant) -> list[str]:
    """The states a grant may move to now (one step forward)."""
    state = grant.state
    if state is None:
        return [GrantState.DECIDED]
    index = STATE_ORDER.index(state)
    return STATE_ORDER[index + 1 : index + 2]


@transaction.atomic
def transition(actor, grant: Grant, state: str, note: str = "") -> GrantTransition:
    """Move a grant one step forward. 'allocated' needs a decided plan, 'reported' a submitted
    report; no step may be skipped or taken back."""
    _require_manager(actor, grant)
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    return _transition(actor, grant, state, note)


def _transition(actor, grant: Grant, state: str, note: str = "") -> GrantTransition:
    current = grant.state
    if state not in STATE_ORDER:
        raise GrantError("unknown_state", _("“%(state)s” is not a grant state.") % {"state": state})
    if state not in next_states(grant):
        raise GrantError(
            "transition_not_allowed",
            _("A grant in state “%(current)s” cannot move to “%(state)s”; next is %(next)s.")
            % {
                "current": grant.get_state_display(),
                "state": GrantState(state).label,
                "next": ", ".join(str(GrantState(s).label) for s in next_states(grant)) or "–",
            },
        )
    if state == GrantState.ALLOCATED and grant.decided_plan() is None:
        raise GrantError(
            "no_decided_plan", _("A grant is allocated when an allocation plan has been decided.")
        )
    if state == GrantState.REPORTED and not grant.reports.filter(submitted_at__isnull=False):
        raise GrantError(
            "no_submitted_report", _("A grant is reported when a report has been submitted.")
        )
    row = GrantTransition.objects.create(grant=grant, state=state, by=actor, note=note)
    record(actor, "transition", grant, before={"state": current}, after={"state": state}, note=note)
    return row


# ------------------------------------------------------------------------------------------
# National distribution


@dataclass(frozen=True)
class DistributionPreview:
    """A national split before it is saved: rows as stored, the region's own row if any."""

    total: int
    populations: dict[str, int]
    rows: list[dict]

    @property
    def national_population(self) -> int:
        return sum(self.populations.values())

    def row_for(self, lan_code: str) -> dict | None:
        return next((r for r in self.rows if r["lan_code"] == lan_code), None)


def preview_national_distribution(
    total: int | str, population_file: str | bytes | os.PathLike[str]
) -> DistributionPreview:
    """Read and validate the SCB file and split the total (no write; any role may try)."""
    if isinstance(total, str):
        total = total.strip()
    if isinstance(total, float):
        raise GrantError("not_whole_kronor", _("The total must be a whole number of kronor."))
    populations = parse_population_csv(population_file)
    shares = national_distribution(total, populations)
    rows: list[dict[str, Any]] = [
        {
            "lan_code": s.lan_code,
            "lan_name": LAN[s.lan_code],
            "population": populations[s.lan_code],
            "amount": s.amount,
            "share_percent": str(s.share_percent),
        }
        for s in shares
    ]
    return DistributionPreview(sum(r["amount"] for r in rows), populations, rows)


@transaction.atomic
def save_national_distribution(
    actor,
    *,
    name: str,
    total: int | str,
    population_file: str | bytes | os.PathLike[str],
    reference_date: date | str,
    source_name: str = "",
) -> NationalDistribution:
    """Validate, split and store a national distribution (analyst)."""
    _require_manager(actor)
    if isinstance(reference_date, str):
        try:
            reference_date = date.fromisoformat(reference_date.strip())
        except ValueError:
            raise GrantError(
                "bad_date",
                _("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": reference_date},
            )
    name = (name or "").strip()
    if not name:
        raise GrantError("required", _("The distribution needs a name."))
    preview = preview_national_distribution(total, population_file)
    dist = NationalDistribution.objects.create(
        region=access.get_region_for_user(actor),
        name=name[:200],
        total=preview.total,
        reference_date=reference_date,
        source_name=os.path.basename(source_name)[:255],
        populations=preview.populations,
        rows=preview.rows,
        created_by=actor,
    )
    record(
        actor,
        "import",
        dist,
        after={
            "total": dist.total,
            "reference_date": reference_date.isoformat(),
            "source": dist.source_name,
            "populations": preview.populations,
        },
    )
    return dist


# ------------------------------------------------------------------------------------------
# Allocation plans


@dataclass
class CentralInput:
    """A central effort as entered: a fixed amount (kr) or a share (fraction of the total)."""

    name: str
    fixed_amount: int | None = None
    share: Decimal | None = None
    category: str | None = None


@dataclass
class PlanInput:
    """Everything that defines a plan version, parsed and checked."""

    reference_month: str
    weighting: str = Weighting.NONE
    central_items: list[CentralInput] = field(default_factory=list)
    need_index: dict[str, Decimal] = field(default_factory=dict)
    age_sex_weights: dict[str, Decimal] = field(default_factory=dict)
    floor: int | None = None
    cap: int | None = None
    note: str = ""


def parse_percent(value: object, what: str) -> Decimal | None:
    """A share typed as percent ("15", "12,5") -> Decimal fraction (0.15, 0.125)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    percent = parse_decimal(value, what, places=4)
    if percent > 100:
        raise GrantError(
            "share_above_100", _("%(what)s cannot be more than 100 %%.") % {"what": what}
        )
    return (percent / 100).quantize(Decimal("0.000001"))


def parse_need_index(text: str) -> dict[str, Decimal]:
    """Lines "HSA-id;index" (or comma/tab separated) -> {hsa_id: Decimal}."""
    errors: list[str] = []
    result: dict[str, Decimal] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.lower().startswith(("hsa", "#")):
            continue
        # ";" or tab separates; "," only when neither is used (then it cannot be a decimal mark)
        sep = ";" if ";" in line or "\t" in line else ","
        parts = [p.strip() for p in line.replace("\t", ";").split(sep)]
        if len(parts) < 2:
            errors.append(_("Line %(n)s: write “HSA-id;index”.") % {"n": number})
            continue
        index = _run(errors, parse_decimal, parts[1], _("The need index"), places=6)
        if index is not None:
            result[parts[0]] = index
    if errors:
        raise GrantError("bad_need_index", errors[0], errors)
    return result


def parse_age_sex_weights(text: str) -> dict[str, Decimal]:
    """Lines "K;0-4;1.2" (sex, fine age band, weight) -> {"K:0-4": Decimal}."""
    errors: list[str] = []
    result: dict[str, Decimal] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.lower().startswith(("sex", "kön", "#")):
            continue
        parts = [p.strip() for p in line.replace("\t", ";").split(";")]
        if len(parts) != 3:
            errors.append(
                _("Line %(n)s: write “sex;age band;weight”, e.g. K;0-4;1.2.") % {"n": number}
            )
            continue
        sex, band, raw = parts
        if sex not in breakdowns.SEXES or band not in breakdowns.AGE_BANDS:
            errors.append(
                _("Line %(n)s: unknown sex or age band “%(sex)s;%(band)s”.")
                % {"n": number, "sex": sex, "band": band}
            )
            continue
        weight = _run(errors, parse_decimal, raw, _("The weight"), places=6)
        if weight is not None:
            result[f"{sex}:{band}"] = weight
    if errors:
        raise GrantError("bad_weights", errors[0], errors)
    return result


@dataclass(frozen=True)
class PlanComputation:
    """A computed plan: the allocation (keys: HSA-ids) and what it was computed from."""

    result: AllocationResult
    units: dict[str, CareUnit]
    listed: dict[str, int]
    categories: dict[str, GrantCategory | None]


def active_units_at(grant: Grant, month: str) -> list[CareUnit]:
    end = Period.parse(month).end
    units = CareUnit.objects.filter(region_id=grant.region_id).order_by("hsa_id")
    return [u for u in units if u.is_active(on=end)]


def _listing_months(grant: Grant) -> list[str]:
    months = (
        Listing.objects.filter(unit__region_id=grant.region_id)
        .order_by("-month")
        .values_list("month", flat=True)
        .distinct()
    )
    return list(months[:6])


def compute_plan(grant: Grant, spec: PlanInput) -> PlanComputation:
    """Compute a plan without writing: central efforts, then every unit active at the end of the
    reference month by its listed patients (× need index or age–sex weights), floors and caps.
    Raises GrantError (no listings, unknown category) or AllocationError."""
    month = parse_month(spec.reference_month)
    units = {u.hsa_id: u for u in active_units_at(grant, month)}
    if not units:
        raise GrantError(
            "no_units", _("There are no active units in %(month)s.") % {"month": month}
        )
    cells = Listing.objects.filter(unit__in=units.values(), month=month).values_list(
        "unit__hsa_id", "sex", "age_band", "listed"
    )
    listed = dict.fromkeys(units, 0)
    by_cell: dict[str, list[tuple[str, int]]] = {hsa: [] for hsa in units}
    for hsa, sex, band, count in cells:
        listed[hsa] += count
        by_cell[hsa].append((f"{sex}:{band}", count))
    if sum(listed.values()) == 0:
        months = _listing_months(grant)
        raise GrantError(
            "no_listings",
            _(
                "There are no listed patients in %(month)s for the active units; import the "
                "listings for that month or choose another reference month (months with "
                "listings: %(months)s)."
            )
            % {"month": month, "months": ", ".join(months) or "–"},
        )
    need: dict[str, Fraction] | None = None
    if spec.weighting == Weighting.NEED_INDEX:
        missing = sorted(set(units) - set(spec.need_index))
        if missing:
            raise GrantError(
                "need_index_missing",
                _("The need index is missing for these units: %(units)s.")
                % {"units": ", ".join(f"{units[h].name} ({h})" for h in missing)},
            )
        need = {hsa: Fraction(spec.need_index[hsa]) for hsa in units}
    elif spec.weighting == Weighting.AGE_SEX:
        need = {}
        for hsa in units:
            weighted = sum(
                (
                    Fraction(spec.age_sex_weights.get(cell, Decimal(1))) * count
                    for cell, count in by_cell[hsa]
                ),
                Fraction(0),
            )
            need[hsa] = weighted / listed[hsa] if listed[hsa] else Fraction(1)
    elif spec.weighting != Weighting.NONE:
        raise GrantError("bad_weighting", _("Unknown weighting “%(w)s”.") % {"w": spec.weighting})

    categories = {c.code: c for c in grant.categories.all()}
    central_categories: dict[str, GrantCategory | None] = {}
    for item in spec.central_items:
        if item.category and item.category not in categories:
            raise GrantError(
                "unknown_category",
                _("The grant has no category “%(code)s”.") % {"code": item.category},
            )
        central_categories[item.name] = categories.get(item.category) if item.category else None
    floors = dict.fromkeys(units, spec.floor) if spec.floor is not None else None
    caps = dict.fromkeys(units, spec.cap) if spec.cap is not None else None
    result = plan_regional_allocation(
        grant.total,
        [(item.name, item.fixed_amount, item.share) for item in spec.central_items],
        listed,
        need,
        floors,
        caps,
    )
    return PlanComputation(result, units, listed, central_categories)


def plan_input_from_values(values: Mapping[str, Any]) -> PlanInput:
    """Parse a plan's parameters as a form or the API gives them; every problem is collected.

    ``central_items`` is a list of {name, amount, percent | share, category}: ``amount`` in
    whole kronor or ``percent`` of the total (API clients may give ``share`` as a fraction).
    ``need_index`` and ``age_sex_weights`` may be text (lines) or mappings.
    """
    errors: list[str] = []
    month = _run(errors, parse_month, values.get("reference_month"))
    weighting = str(values.get("weighting") or Weighting.NONE)
    if weighting not in Weighting.values:
        errors.append(_("Unknown weighting “%(w)s”.") % {"w": weighting})
    items: list[CentralInput] = []
    names: set[str] = set()
    for raw in values.get("central_items") or []:
        name = str(raw.get("name") or "").strip()
        amount_raw, percent_raw = raw.get("amount"), raw.get("percent")
        share_raw = raw.get("share")
        given = [v for v in (amount_raw, percent_raw, share_raw) if v not in (None, "")]
        if not name and not given:
            continue  # an empty form row
        if not name:
            errors.append(_("A central effort needs a name."))
            continue
        if name in names:
            errors.append(_("The central effort %(name)s is listed twice.") % {"name": name})
            continue
        names.add(name)
        if len(given) != 1:
            errors.append(
                _(
                    "The central effort %(name)s needs either an amount in kronor or a share in "
                    "percent, not both or neither."
                )
                % {"name": name}
            )
            continue
        what = _("The amount for %(name)s") % {"name": name}
        item = CentralInput(name=name[:200], category=(raw.get("category") or None))
        if amount_raw not in (None, ""):
            item.fixed_amount = _run(errors, parse_kronor, amount_raw, what)
        elif percent_raw not in (None, ""):
            item.share = _run(errors, parse_percent, percent_raw, what)
        else:
            share = _run(errors, parse_decimal, share_raw, what, places=6)
            if share is not None and share > 1:
                errors.append(_("%(what)s is a share between 0 and 1.") % {"what": what})
            item.share = share
        items.append(item)
    need_raw = values.get("need_index") or {}
    age_raw = values.get("age_sex_weights") or {}
    need: dict[str, Decimal] = {}
    weights: dict[str, Decimal] = {}
    try:
        if isinstance(need_raw, str):
            need = parse_need_index(need_raw)
        else:
            need = {
                str(k): parse_decimal(v, _("The need index"), places=6) for k, v in need_raw.items()
            }
        if isinstance(age_raw, str):
            weights = parse_age_sex_weights(age_raw)
        else:
            text = "\n".join(f"{k.replace(':', ';')};{v}" for k, v in age_raw.items())
            weights = parse_age_sex_weights(text)
    except GrantError as exc:
        errors.extend(exc.errors)
    if weighting == Weighting.NEED_INDEX and not need and not errors:
        errors.append(_("Weighting by need index needs an index for every unit."))
    floor = _run(errors, parse_kronor, values.get("floor"), _("The floor"), required=False)
    cap = _run(errors, parse_kronor, values.get("cap"), _("The cap"), required=False)
    if errors:
        raise GrantError("invalid_plan", errors[0], errors)
    return PlanInput(
        reference_month=month,
        weighting=weighting,
        central_items=items,
        need_index=need if weighting == Weighting.NEED_INDEX else {},
        age_sex_weights=weights if weighting == Weighting.AGE_SEX else {},
        floor=floor,
        cap=cap,
        note=str(values.get("note") or "").strip(),
    )


def plan_input_of(plan: AllocationPlan) -> PlanInput:
    """The stored parameters of a plan, to edit it or start the next version from it."""
    return PlanInput(
        reference_month=plan.reference_month,
        weighting=plan.weighting,
        central_items=[
            CentralInput(i.name, i.fixed_amount, i.share, i.category.code if i.category else None)
            for i in plan.central_items.select_related("category")
        ],
        need_index={k: Decimal(v) for k, v in plan.need_index.items()},
        age_sex_weights={k: Decimal(v) for k, v in plan.age_sex_weights.items()},
        floor=plan.floor,
        cap=plan.cap,
        note=plan.note,
    )


def _plan_snapshot(plan: AllocationPlan) -> dict:
    data = snapshot(
        plan,
        [
            "version",
            "reference_month",
            "weighting",
            "floor",
            "cap",
            "region_total",
            "note",
            "need_index",
            "age_sex_weights",
        ],
    )
    data["central"] = {i.name: i.amount for i in plan.central_items.all()}
    data["units"] = {a.unit.hsa_id: a.amount for a in plan.unit_amounts.select_related("unit")}
    return data


def _store_computation(plan: AllocationPlan, spec: PlanInput, comp: PlanComputation) -> None:
    plan.reference_month = spec.reference_month
    plan.weighting = spec.weighting
    plan.need_index = {k: str(v) for k, v in spec.need_index.items()}
    plan.age_sex_weights = {k: str(v) for k, v in spec.age_sex_weights.items()}
    plan.floor, plan.cap = spec.floor, spec.cap
    plan.region_total = comp.result.region_total
    plan.note = spec.note
    plan.full_clean(exclude=["grant", "created_by"])
    plan.save()
    plan.central_items.all().delete()
    plan.unit_amounts.all().delete()
    for position, item in enumerate(spec.central_items):
        PlanCentralItem.objects.create(
            plan=plan,
            position=position,
            name=item.name,
            category=comp.categories.get(item.name),
            fixed_amount=item.fixed_amount,
            share=item.share,
            amount=comp.result.central[item.name],
        )
    PlanUnitAmount.objects.bulk_create(
        [
            PlanUnitAmount(
                plan=plan,
                unit=unit,
                listed=comp.listed[hsa],
                weight=_decimal_6(comp.result.unit_weights[hsa]),
                amount=comp.result.units[hsa],
                per_listed=comp.result.per_listed[hsa],
            )
            for hsa, unit in comp.units.items()
        ]
    )


def _decimal_6(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"))


@transaction.atomic
def create_plan(actor, grant: Grant, spec: PlanInput) -> AllocationPlan:
    """A new draft version, computed and stored (nothing is written if it cannot be computed)."""
    _require_manager(actor, grant)
    Grant.objects.select_for_update().get(pk=grant.pk)  # serialise version numbers
    comp = compute_plan(grant, spec)
    last = grant.plans.order_by("-version").values_list("version", flat=True).first() or 0
    plan = AllocationPlan(grant=grant, version=last + 1, created_by=actor, region_total=0)
    _store_computation(plan, spec, comp)
    record(actor, "create", plan, after=_plan_snapshot(plan))
    return plan


@transaction.atomic
def update_plan(actor, plan: AllocationPlan, spec: PlanInput) -> AllocationPlan:
    """Recompute and store a draft with new parameters; a decided plan is refused."""
    _require_manager(actor, plan.grant)
    plan = AllocationPlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status != PlanStatus.DRAFT:
        raise GrantError(
            "plan_frozen",
            _("Version %(v)s has been decided and cannot be changed; make a new version.")
            % {"v": plan.version},
        )
    comp = compute_plan(plan.grant, spec)
    before = _plan_snapshot(plan)
    _store_computation(plan, spec, comp)
    after = _plan_snapshot(plan)
    if after != before:
        record(actor, "update", plan, before=before, after=after)
    return plan


@dataclass(frozen=True)
class PreviewRow:
    """One unit in a plan preview, with the previous version's amount and the difference."""

    unit: CareUnit
    listed: int
    weight: Decimal
    amount: int | None
    per_listed: Decimal | None
    previous: int | None
    diff: int


@dataclass(frozen=True)
class PlanPreview:
    plan: AllocationPlan
    previous: AllocationPlan | None
    central: list[PlanCentralItem]
    rows: list[PreviewRow]

    @property
    def central_total(self) -> int:
        return sum(i.amount for i in self.central)

    @property
    def units_total(self) -> int:
        return sum(r.amount or 0 for r in self.rows)

    @property
    def listed_total(self) -> int:
        return sum(r.listed for r in self.rows)

    @property
    def total(self) -> int:
        return self.central_total + self.units_total

    @property
    def balanced(self) -> bool:
        return self.total == self.plan.region_total

    @property
    def diff_total(self) -> int:
        return sum(r.diff for r in self.rows)


def preview_plan(plan: AllocationPlan) -> PlanPreview:
    """Each unit's amount and amount per listed patient, and the difference against the
    previous version (see :func:`queries.previous_plan`)."""
    previous = queries.previous_plan(plan)
    amounts = {a.unit_id: a for a in plan.unit_amounts.select_related("unit")}
    prev_amounts = (
        {a.unit_id: a for a in previous.unit_amounts.select_related("unit")} if previous else {}
    )
    changes = compare_allocations(
        {k: a.amount for k, a in prev_amounts.items()}, {k: a.amount for k, a in amounts.items()}
    )
    rows = []
    for unit_id, change in changes.items():
        current = amounts.get(unit_id)
        base = current or prev_amounts[unit_id]
        rows.append(
            PreviewRow(
                unit=base.unit,
                listed=current.listed if current else 0,
                weight=current.weight if current else Decimal(0),
                amount=change.current,
                per_listed=current.per_listed if current else None,
                previous=change.previous,
                diff=change.diff if previous else 0,
            )
        )
    rows.sort(key=lambda r: r.unit.name)
    return PlanPreview(plan, previous, list(plan.central_items.select_related("category")), rows)


@transaction.atomic
def decide_plan(actor, plan: AllocationPlan, *, dnr: str, reason: str = "") -> PlanDecision:
    """Decide a draft as previewed (by whom, when, Dnr). If another version is in force it is
    superseded, which needs a reason. A grant in state 'decided' moves to 'allocated'."""
    _require_manager(actor, plan.grant)
    grant = Grant.objects.select_for_update().get(pk=plan.grant_id)
    plan = AllocationPlan.objects.get(pk=plan.pk)
    if plan.status != PlanStatus.DRAFT:
        raise GrantError(
            "plan_frozen", _("Version %(v)s has already been decided.") % {"v": plan.version}
        )
    dnr = (dnr or "").strip()
    reason = (reason or "").strip()
    if not dnr:
        raise GrantError("dnr_required", _("A decision needs its reference number (Dnr)."))
    total = sum(plan.central_items.values_list("amount", flat=True)) + sum(
        plan.unit_amounts.values_list("amount", flat=True)
    )
    if plan.region_total != grant.total or total != grant.total:
        raise GrantError(
            "plan_stale",
            _(
                "The grant's amount is %(total)s but this draft allocates %(planned)s; save the "
                "draft again to recompute it before deciding."
            )
            % {"total": format_kronor(grant.total), "planned": format_kronor(total)},
        )
    in_force = grant.decided_plan()
    if in_force is not None and not reason:
        raise GrantError(
            "reason_required",
            _("Version %(v)s is in force; give a reason for superseding it.")
            % {"v": in_force.version},
        )
    now = timezone.now()
    if in_force is not None:
        PlanDecision.objects.create(
            plan=in_force,
            kind=PlanStatus.SUPERSEDED,
            by=actor,
            at=now,
            reason=reason,
            superseded_by=plan,
        )
        record(
            actor,
            "transition",
            in_force,
            before={"status": PlanStatus.DECIDED},
            after={"status": PlanStatus.SUPERSEDED, "superseded_by": plan.version},
            note=reason,
        )
    decision = PlanDecision.objects.create(
        plan=plan, kind=PlanStatus.DECIDED, by=actor, at=now, dnr=dnr, reason=reason
    )
    record(
        actor,
        "transition",
        plan,
        before={"status": PlanStatus.DRAFT},
        after={"status": PlanStatus.DECIDED, "dnr": dnr},
        note=reason,
    )
    if grant.state == GrantState.DECIDED:
        _transition(
            actor,
            grant,
            GrantState.ALLOCATED,
            _("Allocation plan version %(v)s decided (%(dnr)s).") % {"v": plan.version, "dnr": dnr},
        )
    return decision


# ------------------------------------------------------------------------------------------
# Units' accounts of use

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
# Extension -> (content type, magic prefixes accepted; empty = text checked as UTF-8).
ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF",)),
    "png": ("image/png", (b"\x89PNG",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", (b"PK\x03\x04",)),
    "csv": ("text/csv", ()),
    "txt": ("text/plain", ()),
}


def allocated_to(grant: Grant, unit: CareUnit) -> int | None:
    """The unit's amount in the plan in force, or None if it has none."""
    plan = grant.decided_plan()
    if plan is None:
        return None
    row = plan.unit_amounts.filter(unit=unit).first()
    return row.amount if row else None


def account_snapshot(account: UnitAccount) -> dict:
    lines = {
        line.category.code: {
            "category": line.category.name,
            "used": line.used,
            "persons": line.persons,
            "fte_added": str(line.fte_added),
            "measures": line.measures,
        }
        for line in account.lines.select_related("category")
    }
    return {
        "unit": account.unit.hsa_id,
        "comment": account.comment,
        "lines": lines,
        "used_total": sum(v["used"] for v in lines.values()),
        "attachments": [a.name for a in account.attachments.all()],
    }


def parse_account_lines(
    grant: Grant, lines: Mapping[str, Mapping[str, Any]]
) -> dict[GrantCategory, dict]:
    """Check an account's lines ({category code: {used, persons, fte_added, measures}}) against
    the grant's allowed categories; every problem is collected. Empty lines are dropped."""
    allowed = {c.code: c for c in grant.allowed_categories()}
    known = {c.code: c for c in grant.categories.all()}
    errors: list[str] = []
    clean: dict[GrantCategory, dict] = {}
    for code, raw in lines.items():
        if code not in allowed:
            if code in known:
                errors.append(
                    _("The grant does not allow the category “%(name)s”.")
                    % {"name": known[code].name}
                )
            else:
                errors.append(
                    _("“%(code)s” is not a category of this grant; allowed are: %(allowed)s.")
                    % {"code": code, "allowed": ", ".join(allowed) or "–"}
                )
            continue
        name = allowed[code].name
        used = _run(
            errors, parse_kronor, raw.get("used"), _("Used for %(c)s") % {"c": name}, required=False
        )
        persons = _run(
            errors, parse_count, raw.get("persons"), _("Persons for %(c)s") % {"c": name}
        )
        fte = _run(errors, parse_decimal, raw.get("fte_added"), _("FTE for %(c)s") % {"c": name})
        measures = str(raw.get("measures") or "").strip()
        if used is None and persons in (None, 0) and not fte and not measures:
            continue
        clean[allowed[code]] = {
            "used": used or 0,
            "persons": persons or 0,
            "fte_added": fte or Decimal(0),
            "measures": measures,
        }
    if errors:
        raise GrantError("invalid_account", errors[0], errors)
    return clean


def _editable_account(grant: Grant, unit: CareUnit) -> UnitAccount | None:
    account = UnitAccount.objects.select_for_update().filter(grant=grant, unit=unit).first()
    if account is not None and not account.editable:
        raise GrantError(
            "account_locked",
            _("The account is %(status)s and cannot be changed; the analyst can return it.")
            % {"status": account.get_status_display().lower()},
        )
    return account


def _require_allocation(grant: Grant, unit: CareUnit) -> int:
    amount = allocated_to(grant, unit)
    if amount is None:
        raise GrantError(
            "no_allocation",
            _("%(unit)s has no amount in a decided allocation plan of this grant.")
            % {"unit": unit.name},
        )
    return amount


@transaction.atomic
def save_account(
    actor,
    grant: Grant,
    unit: CareUnit,
    *,
    lines: Mapping[str, Mapping[str, Any]],
    comment: str | None = None,
) -> UnitAccount:
    """Save a unit's account as a draft. ``lines`` replaces all lines (categories left out are
    removed). Own units only for unit managers; negative amounts or a category the grant does
    not allow refuse the whole save."""
    _require_reporting_unit(actor, grant, unit)
    _require_allocation(grant, unit)
    clean = parse_account_lines(grant, lines)
    account = _editable_account(grant, unit)
    created = account is None
    if account is None:
        account = UnitAccount.objects.create(grant=grant, unit=unit)
    before = None if created else account_snapshot(account)
    if comment is not None:
        account.comment = comment.strip()
        account.save()
    account.lines.exclude(category__in=list(clean)).delete()
    for category, values in clean.items():
        AccountLine.objects.update_or_create(account=account, category=category, defaults=values)
    AccountEvent.objects.create(account=account, kind=AccountStatus.DRAFT, by=actor)
    after = account_snapshot(account)
    record(actor, "create" if created else "update", account, before=before, after=after)
    return account


@transaction.atomic
def submit_account(actor, account: UnitAccount, *, at: datetime | None = None) -> AccountEvent:
    """Submit a draft (or returned) account for review. After the deadline it is still
    accepted but marked late. ``at`` is for replaying history (the demo); pages and the API
    never pass it."""
    _require_reporting_unit(actor, account.grant, account.unit)
    _require_allocation(account.grant, account.unit)
    locked = _editable_account(account.grant, account.unit)
    assert locked is not None
    status = locked.status
    at = at or timezone.now()
    late = deadline_passed(account.grant.accounts_deadline, at)
    event = AccountEvent.objects.create(
        account=locked,
        kind=AccountStatus.SUBMITTED,
        by=actor,
        at=at,
        late=late,
        snapshot=account_snapshot(locked),
    )
    record(
        actor,
        "transition",
        locked,
        before={"status": status},
        after={"status": AccountStatus.SUBMITTED, "late": late},
        note=_("Submitted after the deadline %(d)s.") % {"d": account.grant.accounts_deadline}
        if late
        else "",
    )
    return event


def _review(actor, account: UnitAccount, kind: str, comment: str, allowed: tuple[str, ...]):
    _require_manager(actor, account.grant)
    locked = UnitAccount.objects.select_for_update().get(pk=account.pk)
    status = locked.status
    if status not in allowed:
        raise GrantError(
            "not_reviewable",
            _("An account that is %(status)s cannot be %(action)s.")
            % {
                "status": locked.get_status_display().lower(),
                "action": AccountStatus(kind).label.lower(),
            },
        )
    event = AccountEvent.objects.create(account=locked, kind=kind, by=actor, comment=comment)
    record(
        actor, "transition", locked, before={"status": status}, after={"status": kind}, note=comment
    )
    return event


@transaction.atomic
def return_account(actor, account: UnitAccount, comment: str) -> AccountEvent:
    """Send a submitted (or approved) account back to the unit with a comment (analyst)."""
    comment = (comment or "").strip()
    if not comment:
        raise GrantError("comment_required", _("Say what the unit should correct."))
    return _review(
        actor,
        account,
        AccountStatus.RETURNED,
        comment,
        (AccountStatus.SUBMITTED, AccountStatus.APPROVED),
    )


@transaction.atomic
def approve_account(actor, account: UnitAccount, comment: str = "") -> AccountEvent:
    """Approve a submitted account (analyst)."""
    return _review(
        actor, account, AccountStatus.APPROVED, (comment or "").strip(), (AccountStatus.SUBMITTED,)
    )


def _check_upload(upload: UploadedFile) -> tuple[str, str]:
    name = os.path.basename(upload.name or "")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ATTACHMENT_TYPES:
        raise GrantError(
            "bad_file_type",
            _("%(name)s: files of this type are not accepted; use %(types)s.")
            % {"name": name, "types": ", ".join(sorted(ATTACHMENT_TYPES))},
        )
    if upload.size is None or upload.size > MAX_ATTACHMENT_BYTES:
        raise GrantError(
            "file_too_large",
            _("%(name)s is larger than %(mb)s MB.")
            % {"name": name, "mb": MAX_ATTACHMENT_BYTES // (1024 * 1024)},
        )
    if upload.size == 0:
        raise GrantError("empty_file", _("%(name)s is empty.") % {"name": name})
    content_type, magics = ATTACHMENT_TYPES[ext]
    upload.seek(0)
    head = upload.read(2048)
    upload.seek(0)
    if magics and not any(head.startswith(m) for m in magics):
        raise GrantError(
            "bad_file_content",
            _("%(name)s does not look like a %(ext)s file.") % {"name": name, "ext": ext},
        )
    if not magics:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
                raise GrantError(
                    "bad_file_content",
                    _("%(name)s is not UTF-8 text.") % {"name": name},
                )
    return name, content_type


@transaction.atomic
def add_attachment(actor, grant: Grant, unit: CareUnit, upload: UploadedFile) -> AccountAttachment:
    """Attach a document to a unit's account (while it can be edited); size and type limited."""
    _require_reporting_unit(actor, grant, unit)
    _require_allocation(grant, unit)
    name, content_type = _check_upload(upload)
    assert upload.size is not None  # _check_upload refuses a file without a size
    account = _editable_account(grant, unit)
    if account is None:
        account = UnitAccount.objects.create(grant=grant, unit=unit)
        record(actor, "create", account, after=account_snapshot(account))
    attachment = AccountAttachment(
        account=account,
        name=name,
        size=upload.size,
        content_type=content_type,
        uploaded_by=actor,
    )
    attachment.file.save(name, upload, save=False)
    attachment.save()
    record(actor, "create", attachment, after={"name": name, "size": upload.size})
    return attachment


@transaction.atomic
def remove_attachment(actor, attachment: AccountAttachment) -> None:
    account = attachment.account
    _require_reporting_unit(actor, account.grant, account.unit)
    _editable_account(account.grant, account.unit)
    before = {"name": attachment.name, "size": attachment.size}
    storage, path = attachment.file.storage, attachment.file.name
    record(actor, "delete", attachment, before=before)
    attachment.delete()
    transaction.on_commit(lambda: storage.delete(path))


# ------------------------------------------------------------------------------------------
# Central spending and repayment


@transaction.atomic
def save_central_spending(
    actor, grant: Grant, rows: Sequence[Mapping[str, Any]]
) -> list[CentralSpending]:
    """What the region spent on each central effort of the plan in force (analyst)."""
    _require_manager(actor, grant)
    plan = grant.decided_plan()
    if plan is None:
        raise GrantError("no_decided_plan", _("There is no decided allocation plan yet."))
    items = {i.name: i for i in plan.central_items.select_related("category")}
    errors: list[str] = []
    clean = []
    for row in rows:
        name = str(row.get("name") or "")
        if name not in items:
            errors.append(
                _("“%(name)s” is not a central effort of the plan in force.") % {"name": name}
            )
            continue
        used = _run(
            errors, parse_kronor, row.get("used"), _("Used for %(c)s") % {"c": name}, required=False
        )
        persons = _run(
            errors, parse_count, row.get("persons"), _("Persons for %(c)s") % {"c": name}
        )
        fte = _run(errors, parse_decimal, row.get("fte_added"), _("FTE for %(c)s") % {"c": name})
        clean.append(
            (
                items[name],
                used or 0,
                persons or 0,
                fte or Decimal(0),
                str(row.get("measures") or "").strip(),
            )
        )
    if errors:
        raise GrantError("invalid_central", errors[0], errors)
    result = []
    for item, used, persons, fte, measures in clean:
        existing = CentralSpending.objects.filter(grant=grant, name=item.name).first()
        before = snapshot(existing) if existing else None
        spending = existing or CentralSpending(grant=grant, name=item.name)
        spending.category = item.category
        spending.used, spending.persons = used, persons
        spending.fte_added, spending.measures = fte, measures
        spending.save()
        after = snapshot(spending)
        if after != before:
            record(actor, "update" if before else "create", spending, before=before, after=after)
        result.append(spending)
    return result


COUNTED_STATUSES = (AccountStatus.APPROVED,)


def repayment_of(grant: Grant) -> tuple[Repayment[int, str], dict[int, dict[str, Any]]]:
    """Balance the grant: approved accounts count as used; a unit without an approved account
    has used nothing (yet). Returns the Repayment (keys: unit ids and central effort names)
    and per-unit facts for display: {unit_id: {unit, account, status, late, pending_used}}."""
    plan = grant.decided_plan()
    allocated: dict[int, int] = {}
    central_alloc: dict[str, int] = {}
    facts: dict[int, dict[str, Any]] = {}
    if plan is not None:
        for row in plan.unit_amounts.select_related("unit").order_by("unit__name"):
            allocated[row.unit_id] = row.amount
            facts[row.unit_id] = {
                "unit": row.unit,
                "listed": row.listed,
                "account": None,
                "status": AccountStatus.NOT_STARTED,
                "late": False,
                "pending_used": None,
            }
        central_alloc = {i.name: i.amount for i in plan.central_items.all()}
    used: dict[int, int] = {}
    accounts = grant.accounts.select_related("unit").prefetch_related("lines", "events")
    for account in accounts:
        events = sorted(account.events.all(), key=lambda e: e.id)
        status = events[-1].kind if events else AccountStatus.NOT_STARTED
        total = sum(line.used for line in account.lines.all())
        submissions = [e for e in events if e.kind == AccountStatus.SUBMITTED]
        info = facts.setdefault(
            account.unit_id,
            {
                "unit": account.unit,
                "listed": 0,
                "account": None,
                "status": status,
                "late": False,
                "pending_used": None,
            },
        )
        info.update(account=account, status=status, late=bool(submissions and submissions[-1].late))
        if status in COUNTED_STATUSES:
            used[account.unit_id] = total
        elif status == AccountStatus.SUBMITTED:
            info["pending_used"] = total
    central_used = dict(grant.central_spending.values_list("name", "used"))
    result = compute_repayment(grant.total, allocated, used, central_alloc, central_used)
    return result, facts


# ------------------------------------------------------------------------------------------
# Report to the state

REPORT_TEXT_FIELDS = (
    "measures_summary",
    "gender_equality",
    "childrens_rights",
    "disability",
    "other_comments",
)


def build_report_data(grant: Grant, report: StateReport | None = None) -> dict:
    """Every figure of the report, as plain JSON values (frozen at submission)."""
    plan = grant.decided_plan()
    repayment, facts = repayment_of(grant)
    categories = list(grant.categories.all())
    by_cat: dict[int, dict[str, Any]] = {
        c.pk: {
            "code": c.code,
            "name": c.name,
            "allowed": c.allowed,
            "units_used": 0,
            "central_used": 0,
            "persons": 0,
            "fte": Decimal(0),
        }
        for c in categories
    }
    measures: list[dict] = []
    counted_units = {k for k, info in facts.items() if info["status"] in COUNTED_STATUSES}
    lines = (
        AccountLine.objects.filter(account__grant=grant, account__unit_id__in=counted_units)
        .select_related("category", "account__unit")
        .order_by("account__unit__name", "category__position")
    )
    for line in lines:
        cat = by_cat[line.category_id]
        cat["units_used"] += line.used
        cat["persons"] += line.persons
        cat["fte"] += line.fte_added
        if line.measures:
            measures.append(
                {
                    "by": line.account.unit.name,
                    "category": line.category.name,
                    "text": line.measures,
                }
            )
    central_rows = []
    spending = {s.name: s for s in grant.central_spending.select_related("category")}
    for entry in repayment.central:
        spent = spending.get(entry.key)
        if spent is not None:
            if spent.category_id in by_cat:
                cat = by_cat[spent.category_id]
                cat["central_used"] += spent.used
                cat["persons"] += spent.persons
                cat["fte"] += spent.fte_added
            if spent.measures:
                measures.append(
                    {
                        "by": _("Central: %(name)s") % {"name": entry.key},
                        "category": spent.category.name if spent.category else "",
                        "text": spent.measures,
                    }
                )
        central_rows.append(
            {
                "name": entry.key,
                "planned": entry.allocated,
                "used": entry.used,
                "unspent": entry.repay,
                "over_use": entry.over_use,
            }
        )
    category_rows = [
        {**c, "used": c["units_used"] + c["central_used"], "fte": str(c["fte"])}
        for c in by_cat.values()
        if c["allowed"] or c["units_used"] or c["central_used"]
    ]
    statuses = [info["status"] for info in facts.values()]
    unit_rows = []
    for balance in repayment.units:
        info = facts.get(balance.key, {})
        unit = info.get("unit")
        unit_rows.append(
            {
                "hsa_id": unit.hsa_id if unit else str(balance.key),
                "name": unit.name if unit else str(balance.key),
                "listed": info.get("listed", 0),
                "allocated": balance.allocated,
                "used": balance.used,
                "unused": balance.unused,
                "repay": balance.repay,
                "over_use": balance.over_use,
                "status": str(info.get("status", AccountStatus.NOT_STARTED)),
                "late": bool(info.get("late")),
            }
        )
    texts = {f: getattr(report, f, "") if report else "" for f in REPORT_TEXT_FIELDS}
    decision = plan.decision if plan else None
    return {
        "grant": {
            "name": grant.name,
            "dnr": grant.dnr,
            "authority": grant.authority,
            "years": grant.years,
            "region": grant.region.name,
            "purpose": grant.purpose,
            "conditions": grant.conditions,
            "repayment_deadline": grant.repayment_deadline.isoformat(),
            "report_deadline": grant.report_deadline.isoformat(),
        },
        "received": grant.total,
        "plan": {
            "version": plan.version,
            "reference_month": plan.reference_month,
            "dnr": decision.dnr if decision else "",
            "decided_at": decision.at.date().isoformat() if decision else "",
        }
        if plan
        else None,
        "central": central_rows,
        "central_planned": repayment.central_allocated,
        "central_used": repayment.central_used,
        "units_allocated": repayment.units_allocated,
        "units_used": repayment.units_used,
        "total_used": repayment.total_used,
        "categories": category_rows,
        "persons_total": sum(c["persons"] for c in by_cat.values()),
        "fte_total": str(sum((c["fte"] for c in by_cat.values()), Decimal(0))),
        "measures": measures,
        "accounts": {
            "units": len(facts),
            "approved": statuses.count(AccountStatus.APPROVED),
            "submitted": statuses.count(AccountStatus.SUBMITTED),
            "not_submitted": len(statuses)
            - statuses.count(AccountStatus.APPROVED)
            - statuses.count(AccountStatus.SUBMITTED),
            "late": sum(1 for info in facts.values() if info["late"]),
        },
        "units": unit_rows,
        "over_use_total": repayment.over_use_total,
        "over_using_units": [r["name"] for r in unit_rows if r["over_use"]],
        "repayment": {
            "units": repayment.units_repay,
            "central": repayment.central_repay,
            "unallocated": repayment.unallocated,
            "total": repayment.total_repay,
            "deadline": grant.repayment_deadline.isoformat(),
        },
        "texts": texts,
    }


def report_data(report: StateReport) -> dict:
    """The report's figures: frozen if submitted, computed now if a draft."""
    if report.snapshot is not None:
        return report.snapshot
    return build_report_data(report.grant, report)


@dataclass(frozen=True)
class ReportLine:
    key: str
    label: str
    value: Any
    kind: str  # "kr", "number", "fte", "text"


def report_lines(data: dict) -> list[ReportLine]:
    """The report flattened into labelled lines: what a version comparison compares."""
    lines = [
        ReportLine("received", _("Received"), data["received"], "kr"),
        ReportLine("central_used", _("Central spending"), data["central_used"], "kr"),
        ReportLine("units_allocated", _("Allocated to units"), data["units_allocated"], "kr"),
        ReportLine("units_used", _("Used by units"), data["units_used"], "kr"),
    ]
    for c in data["categories"]:
        lines.append(
            ReportLine(
                f"category:{c['code']}:used",
                _("Spending: %(c)s") % {"c": c["name"]},
                c["used"],
                "kr",
            )
        )
        lines.append(
            ReportLine(
                f"category:{c['code']}:persons",
                _("Persons: %(c)s") % {"c": c["name"]},
                c["persons"],
                "number",
            )
        )
        lines.append(
            ReportLine(
                f"category:{c['code']}:fte", _("FTE: %(c)s") % {"c": c["name"]}, c["fte"], "fte"
            )
        )
    lines += [
        ReportLine("persons_total", _("Persons, total"), data["persons_total"], "number"),
        ReportLine("fte_total", _("FTE, total"), data["fte_total"], "fte"),
        ReportLine("over_use_total", _("Over-use (not netted)"), data["over_use_total"], "kr"),
        ReportLine("repay_units", _("Unused by units"), data["repayment"]["units"], "kr"),
        ReportLine("repay_central", _("Unspent central"), data["repayment"]["central"], "kr"),
        ReportLine("repay_total", _("To repay"), data["repayment"]["total"], "kr"),
    ]
    for u in data["units"]:
        lines.append(
            ReportLine(
                f"unit:{u['hsa_id']}:used", _("Used: %(u)s") % {"u": u["name"]}, u["used"], "kr"
            )
        )
    labels = {
        "measures_summary": _("Measures taken"),
        "gender_equality": _("Gender-equality perspective"),
        "childrens_rights": _("Children's-rights perspective"),
        "disability": _("Disability perspective"),
        "other_comments": _("Other comments"),
    }
    for key, label in labels.items():
        lines.append(ReportLine(f"text:{key}", label, data["texts"].get(key, ""), "text"))
    return lines


@dataclass(frozen=True)
class ReportChange:
    key: str
    label: str
    previous: Any
    current: Any
    kind: str


def diff_reports(previous: dict, current: dict) -> list[ReportChange]:
    """What changed between two versions' figures and texts (only changed lines)."""
    before = {line.key: line for line in report_lines(previous)}
    after = {line.key: line for line in report_lines(current)}
    changes = []
    for key in list(after) + [k for k in before if k not in after]:
        old, new = before.get(key), after.get(key)
        if (old.value if old else None) != (new.value if new else None):
            ref = new or old
            assert ref is not None
            changes.append(
                ReportChange(
                    key, ref.label, old.value if old else None, new.value if new else None, ref.kind
                )
            )
    return changes


@transaction.atomic
def start_report(actor, grant: Grant, *, correction_reason: str = "") -> StateReport:
    """The draft report: the existing draft, or a new version (texts copied from the latest),
    e.g. to correct a submitted report."""
    _require_manager(actor, grant)
    Grant.objects.select_for_update().get(pk=grant.pk)
    latest = grant.reports.order_by("-version").first()
    if latest is not None and not latest.is_submitted:
        return latest
    report = StateReport(
        grant=grant,
        version=(latest.version + 1) if latest else 1,
        created_by=actor,
        correction_reason=(correction_reason or "").strip(),
    )
    if latest is not None:
        for name in REPORT_TEXT_FIELDS:
            setattr(report, name, getattr(latest, name))
    report.save()
    record(actor, "create", report, after=snapshot(report))
    return report


@transaction.atomic
def update_report(actor, report: StateReport, **texts: str) -> StateReport:
    """Change a draft report's texts (measures, the three perspectives, comments)."""
    _require_manager(actor, report.grant)
    unknown = set(texts) - set(REPORT_TEXT_FIELDS) - {"correction_reason"}
    if unknown:
        raise TypeError(f"not report texts: {sorted(unknown)}")
    locked = StateReport.objects.select_for_update().get(pk=report.pk)
    if locked.is_submitted:
        raise GrantError(
            "report_frozen",
            _("Version %(v)s has been submitted and cannot change; start a new version.")
            % {"v": locked.version},
        )
    before = snapshot(locked)
    for key, value in texts.items():
        setattr(locked, key, (value or "").strip())
    locked.save()
    after = snapshot(locked)
    if after != before:
        record(actor, "update", locked, before=before, after=after)
    return locked


@transaction.atomic
def submit_report(actor, report: StateReport) -> StateReport:
    """Freeze the report: every figure and text is stored as submitted. A grant in state
    'accounting' moves to 'reported'."""
    _require_manager(actor, report.grant)
    grant = Grant.objects.select_for_update().get(pk=report.grant_id)
    locked = StateReport.objects.select_for_update().get(pk=report.pk)
    if locked.is_submitted:
        raise GrantError(
            "report_frozen", _("Version %(v)s has already been submitted.") % {"v": locked.version}
        )
    missing = [
        f
        for f in ("gender_equality", "childrens_rights", "disability")
        if not getattr(locked, f).strip()
    ]
    if missing:
        labels = {
            "gender_equality": _("gender equality"),
            "childrens_rights": _("children's rights"),
            "disability": _("disability"),
        }
        raise GrantError(
            "perspectives_required",
            _("The conditions require the perspectives of %(list)s to be described.")
            % {"list": ", ".join(str(labels[m]) for m in missing)},
        )
    data = build_report_data(grant, locked)
    data["version"] = locked.version
    now = timezone.now()
    data["submitted_at"] = now.isoformat()
    locked.snapshot = data
    locked.submitted_at = now
    locked.submitted_by = actor
    locked.save()
    record(
        actor,
        "transition",
        locked,
        before={"status": "draft"},
        after={"status": "submitted", "repay_total": data["repayment"]["total"]},
    )
    if grant.state == GrantState.ACCOUNTING:
        _transition(
            actor,
            grant,
            GrantState.REPORTED,
            _("Report version %(v)s submitted.") % {"v": locked.version},
        )
    return locked
