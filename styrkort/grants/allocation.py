"""Allocation of state-grant money in whole kronor: plain functions over plain values.

Why this module exists: a state grant (e.g. the 496 MSEK of 2025 for primary care's work with
mental ill-health) is split nationally by population and regionally by listed patients, and
every split must add up to the krona. Rounding each share on its own does not (the pennies
drift), and floats cannot even represent the shares exactly. So:

* every share is computed exactly with :class:`fractions.Fraction` (weights may be ``int``,
  ``Decimal`` or ``Fraction``; ``float`` and ``bool`` are refused);
* whole kronor are handed out by the largest-remainder (Hamilton) method, so the amounts sum
  exactly to the total and each differs from its exact share by less than one krona.

Tie rule (used everywhere below, documented once): after every key has received the integer
part of its exact share, the kronor left over go one each to the keys ordered by

1. larger fractional remainder first,
2. then larger weight,
3. then the key's natural sort order (ascending; so keys must be mutually sortable, e.g. all
   ``str`` or all ``int``).

The rule looks only at values, never at the order of the mapping, so the result is the same
however the input was ordered. A key with weight zero, or whose exact share is a whole number,
never receives a leftover krona.

Errors are :class:`AllocationError` (a ``ValueError``) with a stable ``code`` and ``params`` so
the UI can translate; ``str(error)`` is an English message naming the figures.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple, TypeVar

from styrkort.money import format_kronor, from_ore, whole_kronor

K = TypeVar("K", bound=Hashable)
Weight = int | Decimal | Fraction

__all__ = [
    "AllocationError",
    "AllocationResult",
    "Change",
    "LanShare",
    "allocate_with_bounds",
    "compare_allocations",
    "largest_remainder",
    "national_distribution",
    "plan_regional_allocation",
]


class AllocationError(ValueError):
    """An allocation that cannot be made, with a translatable ``code`` and its ``params``.

    ``params`` holds the raw figures (ints in whole kronor, or strings) so a Swedish message
    can be built from the code; the English message is ``str(error)``.
    """

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params
        self.message = message


def _kr(amount: int | Fraction) -> str:
    """Format kronor for an error message; exact fractions are shown with öre."""
    if isinstance(amount, Fraction) and amount.denominator != 1:
        return format_kronor(from_ore(round(amount * 100)), 2)
    return format_kronor(int(amount))


def _param(amount: Fraction) -> int | Decimal:
    """An exact amount as an error parameter: int if whole, else Decimal rounded to öre."""
    if amount.denominator == 1:
        return int(amount)
    return from_ore(round(amount * 100))


# --------------------------------------------------------------------------------------------
# Validation helpers


def _check_total(total: object) -> int:
    """A total to split must be a non-negative ``int`` (whole kronor); bool is not an int here."""
    if isinstance(total, bool) or not isinstance(total, int):
        raise AllocationError(
            "total_not_int",
            f"The total must be a whole number of kronor (int), not {total!r}",
            value=repr(total),
        )
    if total < 0:
        raise AllocationError(
            "negative_total",
            f"The total to allocate cannot be negative ({_kr(total)})",
            total=total,
        )
    return total


def _as_fraction(value: object, what: str, key: object) -> Fraction:
    """Convert an int/Decimal/Fraction exactly; floats are refused because they are inexact."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | Fraction):
        raise AllocationError(
            "invalid_weight",
            f"The {what} for {key!r} must be an int, Decimal or Fraction, not {value!r}",
            key=str(key),
            value=repr(value),
            what=what,
        )
    if isinstance(value, Decimal) and not value.is_finite():
        raise AllocationError(
            "invalid_weight",
            f"The {what} for {key!r} must be a finite number, not {value}",
            key=str(key),
            value=str(value),
            what=what,
        )
    result = Fraction(value)
    if result < 0:
        raise AllocationError(
            "negative_weight",
            f"The {what} for {key!r} cannot be negative ({value})",
            key=str(key),
            value=str(value),
            what=what,
        )
    return result


def _check_weights(weights: Mapping[K, Weight]) -> dict[K, Fraction]:
    if not weights:
        raise AllocationError("no_weights", "There is nothing to allocate to (no keys)")
    exact = {key: _as_fraction(w, "weight", key) for key, w in weights.items()}
    _sorted_keys(exact)  # fail early, with a clear message, if keys cannot be ordered
    return exact


def _sorted_keys(keys: Iterable[K]) -> list[K]:
    try:
        return sorted(keys)  # type: ignore[type-var]
    except TypeError:
        raise AllocationError(
            "unsortable_keys",
            "The keys must be mutually sortable (e.g. all str or all int) for the tie rule",
        )


def _check_bounds(
    bounds: Mapping[K, int] | None, keys: Mapping[K, object], what: str
) -> dict[K, int]:
    """Floors and caps are non-negative whole kronor for known keys."""
    if not bounds:
        return {}
    checked: dict[K, int] = {}
    for key, value in bounds.items():
        if key not in keys:
            raise AllocationError(
                "unknown_key",
                f"A {what} is given for {key!r}, which is not among the keys to allocate to",
                key=str(key),
                what=what,
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise AllocationError(
                "invalid_bound",
                f"The {what} for {key!r} must be whole kronor (int), not {value!r}",
                key=str(key),
                value=repr(value),
                what=what,
            )
        if value < 0:
            raise AllocationError(
                "invalid_bound",
                f"The {what} for {key!r} cannot be negative ({_kr(value)})",
                key=str(key),
                value=repr(value),
                what=what,
            )
        checked[key] = value
    return checked


# --------------------------------------------------------------------------------------------
# Core: exact quotas -> whole kronor


def _round_quotas(
    total: int, quotas: Mapping[K, Fraction], weights: Mapping[K, Fraction]
) -> dict[K, int]:
    """Round exact quotas (summing to ``total``) to whole kronor by the Hamilton method.

    Each key gets ``floor(quota)``; the leftover kronor (fewer than the number of keys with a
    non-zero remainder) go one each by the module's tie rule. Because a key only ever gets its
    floor or its ceiling, any integer bound its quota respects is respected by the result.
    """
    assert sum(quotas.values(), Fraction(0)) == total
    amounts = {key: q.numerator // q.denominator for key, q in quotas.items()}
    leftover = total - sum(amounts.values())
    if leftover:
        # Sort by value only (see the module docstring): remainder desc, weight desc, key asc.
        # Two passes of a stable sort: key ascending first, then the numeric criteria.
        ordered = _sorted_keys(quotas)
        ordered.sort(key=lambda k: (quotas[k] - amounts[k], weights[k]), reverse=True)
        for key in ordered[:leftover]:
            amounts[key] += 1
    return amounts


def largest_remainder(total: int, weights: Mapping[K, Weight]) -> dict[K, int]:
    """Split ``total`` whole kronor over the keys in proportion to non-negative ``weights``.

    The amounts sum exactly to ``total``; each is the floor or the ceiling of its exact share
    ``total * weight / sum(weights)``; weight zero gives zero. Ties are broken by the module's
    rule (remainder, then weight, then key order), independent of the mapping's order.

    Raises :class:`AllocationError` if the total is not a non-negative ``int``, there are no
    keys, a weight is negative, a float or not finite, every weight is zero, or the keys cannot
    be sorted.
    """
    total = _check_total(total)
    exact = _check_weights(weights)
    weight_sum = sum(exact.values(), Fraction(0))
    if weight_sum == 0:
        raise AllocationError(
            "all_weights_zero",
            f"All weights are zero, so {_kr(total)} cannot be split in proportion to them",
            total=total,
        )
    quotas = {key: total * w / weight_sum for key, w in exact.items()}
    return _round_quotas(total, quotas, exact)


def allocate_with_bounds(
    total: int,
    weights: Mapping[K, Weight],
    floors: Mapping[K, int] | None = None,
    caps: Mapping[K, int] | None = None,
) -> dict[K, int]:
    """Split ``total`` in proportion to ``weights`` with a floor and/or cap (kronor) per key.

    Algorithm (iterative, exact, then rounded once):

    1. All keys are *free*. Share what is not yet fixed among the free keys in proportion to
       their weights, exactly (Fractions).
    2. Compare each free key's share with its bounds. Let *D* be the total shortfall of the keys
       below their floor and *E* the total excess of the keys above their cap.

       * D > E: the free keys together would need more than there is, so the final common
         rate is lower; every key below its floor stays below it. Fix those at their floor.
       * E > D: symmetrically, fix the keys above their cap at their cap.
       * D == E (both zero, or exactly balancing): fix both groups; the rest keep their share.

       Re-split what remains among the still-free keys and repeat. Each round fixes at least
       one key, so it ends after at most ``len(weights)`` rounds.
    3. Round the exact result to whole kronor with :func:`largest_remainder`'s method. Floors
       and caps are whole kronor and every amount is the floor or ceiling of its exact value,
       so the bounds hold exactly after rounding and the sum is exact.

    The result equals ``clamp(rate * weight, floor, cap)`` with a single rate for all keys:
    a key with weight zero gets its floor. Feasible iff ``sum(floors) <= total`` and the total
    can be absorbed: by the caps of keys with positive weight (an uncapped one absorbs any
    amount) plus the floors of the keys with weight zero.

    Raises :class:`AllocationError` (codes ``floors_exceed_total``, ``caps_below_total``,
    ``floor_above_cap``, ``capacity_below_total``, ``all_weights_zero`` and those of
    :func:`largest_remainder`). Nothing is returned on error, and the inputs are not modified.
    """
    total = _check_total(total)
    exact = _check_weights(weights)
    low = _check_bounds(floors, exact, "floor")
    high = _check_bounds(caps, exact, "cap")

    for key in _sorted_keys(low.keys() & high.keys()):
        if low[key] > high[key]:
            raise AllocationError(
                "floor_above_cap",
                f"The floor for {key!r} ({_kr(low[key])}) is above its cap ({_kr(high[key])})",
                key=str(key),
                floor=low[key],
                cap=high[key],
            )
    floor_sum = sum(low.values())
    if floor_sum > total:
        raise AllocationError(
            "floors_exceed_total",
            f"The floors sum to {_kr(floor_sum)} but only {_kr(total)} is available to allocate",
            floors=floor_sum,
            total=total,
        )
    if len(high) == len(exact):
        cap_sum = sum(high.values())
        if cap_sum < total:
            raise AllocationError(
                "caps_below_total",
                f"The caps sum to {_kr(cap_sum)} but {_kr(total)} must be allocated",
                caps=cap_sum,
                total=total,
            )
    positive = [key for key, w in exact.items() if w > 0]
    if not positive and total > floor_sum:
        raise AllocationError(
            "all_weights_zero",
            f"All weights are zero, so only the floors ({_kr(floor_sum)}) can be allocated, "
            f"not {_kr(total)}",
            total=total,
            floors=floor_sum,
        )
    if all(key in high for key in positive):
        capacity = sum(high[k] for k in positive) + sum(
            low.get(k, 0) for k, w in exact.items() if w == 0
        )
        if capacity < total:
            raise AllocationError(
                "capacity_below_total",
                f"Keys with weight zero receive only their floor, so at most {_kr(capacity)} "
                f"can be allocated but {_kr(total)} must be",
                capacity=capacity,
                total=total,
            )

    fixed: dict[K, Fraction] = {}
    free = dict(exact)
    while free:
        remaining = total - sum(fixed.values(), Fraction(0))
        weight_sum = sum(free.values(), Fraction(0))
        if weight_sum == 0:
            # Only zero-weight keys are left; they take their floors (feasibility checked).
            for key in free:
                fixed[key] = Fraction(low.get(key, 0))
            free = {}
            break
        share = {key: remaining * w / weight_sum for key, w in free.items()}
        below = {k: low[k] - s for k, s in share.items() if k in low and s < low[k]}
        above = {k: s - high[k] for k, s in share.items() if k in high and s > high[k]}
        shortfall = sum(below.values(), Fraction(0))
        excess = sum(above.values(), Fraction(0))
        if not below and not above:
            fixed.update(share)
            free = {}
        elif shortfall > excess:
            for key in below:
                fixed[key] = Fraction(low[key])
                del free[key]
        elif excess > shortfall:
            for key in above:
                fixed[key] = Fraction(high[key])
                del free[key]
        else:
            for key in below:
                fixed[key] = Fraction(low[key])
            for key in above:
                fixed[key] = Fraction(high[key])
            fixed.update({k: s for k, s in share.items() if k not in below and k not in above})
            free = {}

    if sum(fixed.values(), Fraction(0)) != total:  # pragma: no cover - guarded by the checks
        raise AllocationError(
            "infeasible",
            f"The bounds cannot be met while allocating exactly {_kr(total)}",
            total=total,
        )
    return _round_quotas(total, {key: fixed[key] for key in exact}, exact)  # input order


# --------------------------------------------------------------------------------------------
# Regional plan: central efforts + units by listed patients (× need index)


@dataclass(frozen=True)
class AllocationResult:
    """A regional plan: central efforts, the units' amounts and the checks a reader wants.

    ``per_listed`` is kronor per listed patient (Decimal, 2 decimals, half-even), ``None`` for a
    unit with no listed patients. ``unit_weights`` are the exact weights used (listed × need).
    """

    region_total: int
    central: dict[str, int]
    units: dict[Any, int]
    per_listed: dict[Any, Decimal | None]
    unit_weights: dict[Any, Fraction] = field(repr=False)

    @property
    def central_total(self) -> int:
        return sum(self.central.values())

    @property
    def units_total(self) -> int:
        return sum(self.units.values())

    @property
    def allocated_total(self) -> int:
        return self.central_total + self.units_total

    @property
    def balanced(self) -> bool:
        """True when central + units is exactly the region's total (always, by construction)."""
        return self.allocated_total == self.region_total


def plan_regional_allocation(
    region_total: int,
    central_items: Sequence[tuple[str, int | Decimal | None, Decimal | Fraction | None]],
    unit_weights: Mapping[K, int],
    need_index: Mapping[K, Weight] | None = None,
    floors: Mapping[K, int] | None = None,
    caps: Mapping[K, int] | None = None,
) -> AllocationResult:
    """Plan a region's grant: central efforts first, the rest to units by listed patients.

    ``central_items`` are ``(name, fixed_amount, share)`` with exactly one of the two given:
    a fixed amount in whole kronor, or a share of ``region_total`` (Decimal/Fraction in
    [0, 1], e.g. ``Decimal("0.10")``). Share items are rounded in one largest-remainder step
    together with the units' pot and nothing else: the exact quotas are
    ``region_total × share`` for each share item and ``region_total − fixed − Σ shares`` for
    the pot; ties follow the module rule with the item's position as the final key (the pot
    last). So each share item is within one krona of its exact amount and
    central + units == ``region_total`` exactly.

    The pot is then split over units by ``listed × need_index`` (need index optional, default
    1; when given it must cover exactly the units) with :func:`allocate_with_bounds`.

    Raises :class:`AllocationError`: ``central_exceeds_total`` when the central items need
    more than the total, ``invalid_central_item``, ``duplicate_central_item``,
    ``need_index_mismatch``, ``no_units`` and the codes of :func:`allocate_with_bounds`.
    """
    region_total = _check_total(region_total)
    fixed_amounts: dict[str, int] = {}
    shares: dict[str, Fraction] = {}
    names: list[str] = []
    for item in central_items:
        if len(item) != 3:
            raise AllocationError(
                "invalid_central_item",
                f"A central item is (name, fixed amount, share), not {item!r}",
                item=repr(item),
            )
        name, fixed, share = item
        if name in names:
            raise AllocationError(
                "duplicate_central_item",
                f"The central item {name!r} is listed twice",
                name=str(name),
            )
        names.append(name)
        if (fixed is None) == (share is None):
            raise AllocationError(
                "invalid_central_item",
                f"The central item {name!r} needs exactly one of a fixed amount or a share",
                name=str(name),
            )
        if fixed is not None:
            try:
                amount = whole_kronor(fixed)  # refuses floats and öre
            except (TypeError, ValueError) as exc:
                raise AllocationError(
                    "invalid_central_item",
                    f"The amount for {name!r} is not whole kronor: {exc}",
                    name=str(name),
                    value=repr(fixed),
                )
            if amount < 0:
                raise AllocationError(
                    "invalid_central_item",
                    f"The amount for {name!r} cannot be negative ({_kr(amount)})",
                    name=str(name),
                    value=repr(fixed),
                )
            fixed_amounts[name] = amount
        else:
            exact_share = _as_fraction(share, "share", name)
            if exact_share > 1:
                raise AllocationError(
                    "invalid_central_item",
                    f"The share for {name!r} is a fraction of the total, at most 1, not {share}",
                    name=str(name),
                    value=str(share),
                )
            shares[name] = exact_share

    fixed_sum = sum(fixed_amounts.values())
    share_exact = {name: region_total * s for name, s in shares.items()}
    central_exact = fixed_sum + sum(share_exact.values(), Fraction(0))
    if central_exact > region_total:
        raise AllocationError(
            "central_exceeds_total",
            f"The central efforts need {_kr(central_exact)} but the region has only "
            f"{_kr(region_total)}",
            central=_param(central_exact),
            total=region_total,
        )

    # One Hamilton step over the share items and the units' pot (keys are positions).
    pot_index = len(names)
    quotas: dict[int, Fraction] = {
        i: share_exact[name] for i, name in enumerate(names) if name in shares
    }
    quotas[pot_index] = region_total - central_exact
    rounded = _round_quotas(region_total - fixed_sum, quotas, quotas)
    central = {
        name: fixed_amounts[name] if name in fixed_amounts else rounded[i]
        for i, name in enumerate(names)
    }
    pot = rounded[pot_index]

    if not unit_weights:
        raise AllocationError("no_units", "There are no units to allocate to")
    if need_index is not None and set(need_index) != set(unit_weights):
        missing = _sorted_keys(set(unit_weights) - set(need_index))
        extra = _sorted_keys(set(need_index) - set(unit_weights))
        raise AllocationError(
            "need_index_mismatch",
            f"The need index must cover exactly the units; missing {missing}, unknown {extra}",
            missing=[str(k) for k in missing],
            unknown=[str(k) for k in extra],
        )
    weights: dict[K, Fraction] = {}
    for key, listed in unit_weights.items():
        if isinstance(listed, bool) or not isinstance(listed, int):
            raise AllocationError(
                "invalid_weight",
                f"The number of listed patients for {key!r} must be an int, not {listed!r}",
                key=str(key),
                value=repr(listed),
                what="listed",
            )
        need = Fraction(1) if need_index is None else _as_fraction(need_index[key], "need", key)
        weights[key] = _as_fraction(listed, "listed", key) * need

    units = allocate_with_bounds(pot, weights, floors, caps)
    per_listed: dict[K, Decimal | None] = {}
    for key, amount in units.items():
        listed = unit_weights[key]
        per_listed[key] = from_ore(round(Fraction(amount * 100, listed))) if listed else None
    result = AllocationResult(
        region_total=region_total,
        central=central,
        units=units,
        per_listed=per_listed,
        unit_weights=weights,
    )
    assert result.balanced
    return result


# --------------------------------------------------------------------------------------------
# Comparison and national distribution


class Change(NamedTuple):
    """One key's amount in the previous and current plan; ``None`` where the key is absent."""

    previous: int | None
    current: int | None
    diff: int


def compare_allocations(previous: Mapping[K, int], current: Mapping[K, int]) -> dict[K, Change]:
    """Compare two plan versions key by key, for the preview before a new version is saved.

    Keys of ``current`` come first in their order, then keys only in ``previous`` (removed).
    A missing side is ``None`` and counts as 0 in ``diff`` (= current − previous).
    """
    result: dict[K, Change] = {}
    for key, cur in current.items():
        prev = previous.get(key)
        result[key] = Change(prev, cur, cur - (prev or 0))
    for key, prev in previous.items():
        if key not in current:
            result[key] = Change(prev, None, -prev)
    return result


class LanShare(NamedTuple):
    """A county's (län's) part of a national grant; ``share_percent`` has 4 decimals."""

    lan_code: str
    amount: int
    share_percent: Decimal


def _percent_4dp(part: int, whole: int) -> Decimal:
    """part/whole in percent, rounded half-even to 4 decimals exactly (no float on the way)."""
    ten_thousandths = round(Fraction(part * 100 * 10**4, whole))
    return (Decimal(ten_thousandths) / 10**4).quantize(Decimal("0.0001"))


def national_distribution(
    total: int | str | Decimal, populations: Mapping[str, int]
) -> list[LanShare]:
    """Split a national grant over the län by population, as Socialstyrelsen does.

    ``total`` may be text from a form ("496 000 000"); it goes through
    :func:`styrkort.money.whole_kronor`, so "1000,50" is refused (``total_not_whole_kronor``).
    Amounts are whole kronor summing exactly to the total (largest remainder). The share is
    population / national population in percent, rounded half-even to 4 decimals for display
    (so the shares need not add to exactly 100.0000). Sorted by län code.
    """
    try:
        kronor = whole_kronor(total)
    except (TypeError, ValueError) as exc:
        raise AllocationError(
            "total_not_whole_kronor",
            f"The total {total!r} is not a whole number of kronor: {exc}",
            value=str(total),
        )
    for code, population in populations.items():
        if isinstance(population, bool) or not isinstance(population, int):
            raise AllocationError(
                "invalid_weight",
                f"The population of län {code} must be an int, not {population!r}",
                key=str(code),
                value=repr(population),
                what="population",
            )
    amounts = largest_remainder(kronor, populations)
    national = sum(populations.values())
    return [
        LanShare(
            code,
            amounts[code],
            _percent_4dp(populations[code], national),
        )
        for code in _sorted_keys(populations)
    ]
