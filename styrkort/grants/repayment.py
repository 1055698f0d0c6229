"""What must be paid back: plain functions over plain values (whole kronor).

The rule (seed 003: "Medel som inte har använts för avsett ändamål ska återbetalas"):

* per unit, unused = allocated − used; a unit that used more than it was allocated is flagged
  as over-using and owes nothing, and its over-use is **never** netted against other units'
  unused money (the state pays for what each unit was given, not for a pooled sum);
* per central effort likewise: unspent = planned − used, over-spending flagged, not netted;
* money never allocated (the grant's total minus the plan's total, normally zero) is unused;
  a plan larger than the grant (the grant's amount was lowered after the plan was decided)
  gives a negative remainder, shown as a warning and not subtracted from anything;
* the region repays the sum of the positive unused amounts of the units, the unspent central
  money and the positive unallocated remainder.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Line", "Repayment", "compute_repayment"]

# Keys are unit ids and central effort names; generic so that callers keep their key type.
K = TypeVar("K", bound=Hashable)
U = TypeVar("U", bound=Hashable)
C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True)
class Line(Generic[K]):
    """One unit's or central effort's balance: ``unused`` may be negative (over-use)."""

    key: K
    allocated: int
    used: int

    @property
    def unused(self) -> int:
        return self.allocated - self.used

    @property
    def over_use(self) -> int:
        """Kronor used beyond the allocation (0 if none)."""
        return max(self.used - self.allocated, 0)

    @property
    def repay(self) -> int:
        """Kronor this line must pay back: its unused money, never less than zero."""
        return max(self.unused, 0)

    @property
    def over_using(self) -> bool:
        return self.used > self.allocated


@dataclass(frozen=True)
class Repayment(Generic[U, C]):
    """The whole grant's balance; ``total_repay`` is what the region pays back."""

    grant_total: int
    units: list[Line[U]]
    central: list[Line[C]]
    unallocated: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def units_allocated(self) -> int:
        return sum(line.allocated for line in self.units)

    @property
    def units_used(self) -> int:
        return sum(line.used for line in self.units)

    @property
    def units_repay(self) -> int:
        return sum(line.repay for line in self.units)

    @property
    def central_allocated(self) -> int:
        return sum(line.allocated for line in self.central)

    @property
    def central_used(self) -> int:
        return sum(line.used for line in self.central)

    @property
    def central_repay(self) -> int:
        return sum(line.repay for line in self.central)

    @property
    def over_use_total(self) -> int:
        return sum(line.over_use for line in self.units) + sum(
            line.over_use for line in self.central
        )

    @property
    def over_using_units(self) -> list[Line[U]]:
        return [line for line in self.units if line.over_using]

    @property
    def over_planned(self) -> bool:
        """The plan allocates more than the grant (the grant's amount was lowered)."""
        return self.unallocated < 0

    @property
    def total_repay(self) -> int:
        return self.units_repay + self.central_repay + max(self.unallocated, 0)

    @property
    def total_used(self) -> int:
        return self.units_used + self.central_used


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be whole kronor (int), not {value!r}")
    if value < 0:
        raise ValueError(f"{what} cannot be negative ({value})")
    return value


def compute_repayment(
    grant_total: int,
    unit_allocated: Mapping[U, int],
    unit_used: Mapping[U, int],
    central_allocated: Mapping[C, int] | None = None,
    central_used: Mapping[C, int] | None = None,
) -> Repayment[U, C]:
    """Balance a grant: every allocated unit and central effort with what it used.

    A key missing from ``*_used`` used nothing. Used amounts for keys that were not allocated
    anything count as over-use of a zero allocation. Raises ``ValueError`` for negative or
    non-integer figures.
    """
    _whole(grant_total, "the grant's total")
    central_allocated = central_allocated or {}
    central_used = central_used or {}

    def lines(allocated: Mapping[K, int], used: Mapping[K, int]) -> list[Line[K]]:
        keys = list(allocated) + [k for k in used if k not in allocated]
        return [
            Line(
                key,
                _whole(allocated.get(key, 0), f"the allocation of {key}"),
                _whole(used.get(key, 0), f"the amount used by {key}"),
            )
            for key in keys
        ]

    units = lines(unit_allocated, unit_used)
    central = lines(central_allocated, central_used)
    planned = sum(line.allocated for line in units) + sum(line.allocated for line in central)
    return Repayment(grant_total, units, central, grant_total - planned)
