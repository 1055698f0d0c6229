"""Small-number disclosure control: primary and secondary cell suppression.

Plain functions over plain cells (no Django, no database). Every figure that leaves the
analyst role (other units' figures for unit managers, viewers, public pages, exports) goes
through :func:`suppress` first; :func:`describe_method` gives the sentence that must be shown
where the figures are published. See ``docs/statistics.md`` for the rule and its reasons.

The model: a published table is, per *stratum* (indicator x period x age band, whatever the
caller puts in ``Cell.stratum``), a grid of units (plus the region total) by sex (K, M and
T = K + M). Numerators and denominators both add up along both axes::

    K + M = T                      for every unit and for the region total
    sum of units = region total    for every sex

A hidden cell can be worked out by subtraction when it is the only hidden cell in one of
these equations. Secondary suppression hides one more cell in every such equation, and
repeats until no equation has exactly one hidden cell. With three sex columns this also rules
out derivation by any combination of the equations (see the docs for the argument).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

__all__ = [
    "DEFAULT_THRESHOLD",
    "Cell",
    "Reason",
    "SuppressionError",
    "describe_method",
    "is_primary",
    "suppress",
]

#: Default small-number threshold: counts of 1-4 and groups smaller than 5 are hidden.
DEFAULT_THRESHOLD = 5

Reason = Literal["primary", "secondary"]

_PARTS = ("K", "M")
_TOTAL = "T"


class SuppressionError(ValueError):
    """The table cannot be protected as given (e.g. a needed total cell is missing)."""


class Cell(NamedTuple):
    """One published cell.

    ``key`` is the caller's identifier, returned in the result. ``unit`` identifies the care
    unit (for a region-total cell, the region). ``sex`` is ``"K"``, ``"M"`` or ``"T"``; other
    codes take no part in the sex equation. ``region`` is the region the unit's figures add
    up to (``None``: the cell is in no unit equation). ``stratum`` is everything else that
    must be equal for cells to add up (indicator, period, age band). ``is_region_total``
    marks the region's own cell, which equals the sum of its units. A named tuple rather
    than a frozen dataclass: disclosure control of a recompute makes some hundred thousand.

    ``numerator``/``denominator`` are counts; ``None`` means the quantity does not exist for
    this cell (e.g. a mean has no count numerator). A cell with both ``None`` is not
    published at all.
    """

    key: Hashable
    unit: str
    sex: str
    numerator: int | None
    denominator: int | None
    region: str | None = None
    stratum: Hashable = None
    is_region_total: bool = False

    @property
    def available(self) -> bool:
        return self.numerator is not None or self.denominator is not None


def _check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2:
        raise ValueError(f"threshold must be an integer >= 2, got {threshold!r}")
    return threshold


def is_primary(
    numerator: int | None, denominator: int | None, threshold: int = DEFAULT_THRESHOLD
) -> bool:
    """Primary suppression: ``0 < numerator < threshold`` or ``denominator < threshold``.

    A zero numerator is shown when the denominator reaches the threshold: "0 of 40" is
    often exactly the signal an indicator exists for (no one got treatment in time), and it
    names no individual that a group of 40 does not already hide. A zero out of a small
    group would reveal something about every member, but that group is already suppressed
    by its denominator. Missing quantities (``None``) are not tested.
    """
    return _is_primary(numerator, denominator, _check_threshold(threshold))


def _is_primary(numerator: int | None, denominator: int | None, threshold: int) -> bool:
    if numerator is not None and 0 < numerator < threshold:
        return True
    return denominator is not None and denominator < threshold


@dataclass
class _Equation:
    """``sum(parts) = margin``; absent parts are unknown, an absent margin is known."""

    parts: list[Cell]
    margin: Cell | None
    absent_parts: int


def _as_cell(item: Cell | Mapping[str, Any]) -> Cell:
    return item if isinstance(item, Cell) else Cell(**item)


def _equations(cells: list[Cell]) -> list[_Equation]:
    equations: list[_Equation] = []

    sex_groups: dict[Hashable, dict[str, Cell]] = {}
    for cell in cells:
        if cell.sex not in (*_PARTS, _TOTAL):
            continue
        group = (cell.stratum, cell.region, cell.unit, cell.is_region_total)
        members = sex_groups.setdefault(group, {})
        if cell.sex in members:
            raise ValueError(f"two cells for sex {cell.sex} in {group!r}")
        members[cell.sex] = cell
    for members in sex_groups.values():
        parts = [members[s] for s in _PARTS if s in members]
        equations.append(_Equation(parts, members.get(_TOTAL), len(_PARTS) - len(parts)))

    unit_groups: dict[Hashable, tuple[list[Cell], list[Cell]]] = {}
    for cell in cells:
        if cell.region is None:
            continue
        units, totals = unit_groups.setdefault((cell.stratum, cell.region, cell.sex), ([], []))
        (totals if cell.is_region_total else units).append(cell)
    for unit_group, (units, totals) in unit_groups.items():
        if len(totals) > 1:
            raise ValueError(f"more than one region-total cell in {unit_group!r}")
        if len({u.unit for u in units}) != len(units):
            raise ValueError(f"a unit appears twice in {unit_group!r}")
        # Units of a region must all be given; a missing one is not assumed to exist.
        equations.append(_Equation(units, totals[0] if totals else None, 0))
    return equations


def _size(cell: Cell) -> tuple[int, int, str]:
    """Order among complementary candidates: smallest numerator, then denominator, then key.

    The smallest shown cell loses the least information; the key makes ties deterministic.
    """
    big = 1 << 62
    numerator = cell.numerator if cell.numerator is not None else big
    denominator = cell.denominator if cell.denominator is not None else big
    return (numerator, denominator, str(cell.key))


def suppress(
    cells: Iterable[Cell | Mapping[str, Any]], threshold: int = DEFAULT_THRESHOLD
) -> dict[Hashable, Reason]:
    """Return the keys of the cells to hide, each with ``"primary"`` or ``"secondary"``.

    1. Primary: every cell for which :func:`is_primary` holds.
    2. Secondary, repeated until stable: in every equation (K + M = T per unit and for the
       region; units = region total per sex) with exactly one hidden cell, also hide the
       smallest shown cell of that equation (by numerator, then denominator), preferring a
       part (K/M, a unit) over the total, so that totals stay published where possible.
       For K/M/T this means: K hidden -> hide M, and vice versa. Hiding a cell for one
       equation can leave another with one hidden cell, hence the repetition.

    Cells not in the input: a missing K or M (or an unpublished cell, both values ``None``)
    counts as unknown; a missing total (T, region) counts as *known*, because totals are
    the most widely published figures. All units of a region must be given. When an
    equation cannot be protected from the cells given (the only other cell is a total that
    is not in the input), ``SuppressionError`` is raised rather than publishing a leak.
    """
    threshold = _check_threshold(threshold)
    table = [_as_cell(item) for item in cells]
    if len({c.key for c in table}) != len(table):
        raise ValueError("cell keys must be unique")

    hidden: dict[Hashable, Reason] = {
        c.key: "primary"
        for c in table
        if c.available and _is_primary(c.numerator, c.denominator, threshold)
    }
    # What does not change while cells are hidden, worked out once per equation: its cells
    # and how many of them are unknown anyway.
    equations = [
        (eq, present, eq.absent_parts + sum(1 for c in present if not c.available))
        for eq in _equations(table)
        for present in [eq.parts + ([eq.margin] if eq.margin is not None else [])]
    ]

    changed = True
    while changed:
        changed = False
        for eq, present, unknown in equations:
            if unknown > 1:
                continue
            suppressed = [c for c in present if c.key in hidden]
            if unknown + len(suppressed) != 1 or not suppressed:
                continue
            if not eq.parts and not eq.absent_parts:
                # A total with no parts in the table (a unit manager's view with own units
                # taken out): nothing in it can be worked out from the total.
                continue
            candidates = [c for c in eq.parts if c.available and c.key not in hidden]
            if not candidates and eq.margin is not None and eq.margin.available:
                candidates = [eq.margin] if eq.margin.key not in hidden else []
            if not candidates:
                raise SuppressionError(
                    f"cell {suppressed[0].key!r} could be derived from a total that is not in "
                    "the table; include the total cell so that it can be suppressed"
                )
            hidden[min(candidates, key=_size).key] = "secondary"
            changed = True
    return hidden


def describe_method(threshold: int = DEFAULT_THRESHOLD) -> dict[str, str]:
    """The sentence shown where figures are published, in Swedish (``sv``) and English."""
    threshold = _check_threshold(threshold)
    top = threshold - 1
    numerator_range = "1" if top == 1 else f"1–{top}"
    return {
        "sv": (
            f"Små tal döljs för att skydda enskilda personer: ett värde visas inte när "
            f"täljaren är {numerator_range} eller när nämnaren är mindre än {threshold} "
            "(primär sekretess). Dessutom döljs värden som annars skulle göra det möjligt "
            "att räkna fram ett dolt värde ur summor, till exempel kvinnor + män = totalt "
            "eller enheterna tillsammans = regionen (sekundär sekretess)."
        ),
        "en": (
            f"Small numbers are suppressed to protect individuals: a figure is not shown "
            f"when its numerator is {numerator_range} or its denominator is below {threshold} "
            "(primary suppression). Figures that would otherwise let a hidden figure be "
            "worked out from totals, such as women + men = total or the units adding up to "
            "the region, are hidden as well (secondary suppression)."
        ),
    }
