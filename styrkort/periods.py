"""One way to say a period everywhere: year ``2025``, quarter ``2025Q1``, month ``2025-03``.

Periods are immutable values with arithmetic (``p + 1`` is the next period of the same kind),
containment (``Period.parse("2025").contains("2025-03")``) and conversion to dates. They are
stored as their canonical string, which sorts correctly within one kind.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

YEAR, QUARTER, MONTH = "year", "quarter", "month"
KINDS = (YEAR, QUARTER, MONTH)
_PATTERNS = {
    YEAR: re.compile(r"^(\d{4})$"),
    QUARTER: re.compile(r"^(\d{4})Q([1-4])$"),
    MONTH: re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"),
}
_PER_YEAR = {YEAR: 1, QUARTER: 4, MONTH: 12}


class PeriodError(ValueError):
    """A string that is not a period in the form 2025, 2025Q1 or 2025-03."""


@dataclass(frozen=True, order=True)
class Period:
    """A calendar year, quarter or month; ``index`` is 1 for years, 1–4 or 1–12 otherwise."""

    year: int
    kind_order: int
    index: int

    @property
    def kind(self) -> str:
        return KINDS[self.kind_order]

    @classmethod
    def of(cls, kind: str, year: int, index: int = 1) -> Period:
        if kind not in KINDS:
            raise PeriodError(f"unknown period kind {kind!r}")
        if not 1 <= index <= _PER_YEAR[kind]:
            raise PeriodError(f"{kind} index {index} out of range")
        if not 1900 <= year <= 2999:
            raise PeriodError(f"year {year} out of range")
        return cls(year, KINDS.index(kind), index)

    @classmethod
    def parse(cls, value: str | Period) -> Period:
        if isinstance(value, Period):
            return value
        text = str(value).strip()
        for kind, pattern in _PATTERNS.items():
            m = pattern.match(text)
            if m:
                index = int(m.group(2)) if kind != YEAR else 1
                return cls.of(kind, int(m.group(1)), index)
        raise PeriodError(
            f"{text!r} is not a period; "
            "write a year (2025), a quarter (2025Q1) or a month (2025-03)"
        )

    @classmethod
    def month_of(cls, day: date) -> Period:
        return cls.of(MONTH, day.year, day.month)

    def __str__(self) -> str:
        if self.kind == YEAR:
            return f"{self.year:04d}"
        if self.kind == QUARTER:
            return f"{self.year:04d}Q{self.index}"
        return f"{self.year:04d}-{self.index:02d}"

    def __repr__(self) -> str:
        return f"Period({str(self)!r})"

    def __add__(self, steps: int) -> Period:
        per = _PER_YEAR[self.kind]
        ordinal = self.year * per + (self.index - 1) + steps
        return Period.of(self.kind, ordinal // per, ordinal % per + 1)

    def __sub__(self, steps: int) -> Period:
        return self + (-steps)

    def distance(self, other: str | Period) -> int:
        """Number of steps from self to other (same kind)."""
        o = Period.parse(other)
        if o.kind != self.kind:
            raise PeriodError("periods of different kinds")
        per = _PER_YEAR[self.kind]
        return (o.year * per + o.index) - (self.year * per + self.index)

    @property
    def first_month(self) -> int:
        return {YEAR: 1, QUARTER: 3 * (self.index - 1) + 1, MONTH: self.index}[self.kind]

    @property
    def last_month(self) -> int:
        return {YEAR: 12, QUARTER: 3 * self.index, MONTH: self.index}[self.kind]

    @property
    def start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """Last day, inclusive."""
        last = self.last_month
        return date(self.year, last, calendar.monthrange(self.year, last)[1])

    def months(self) -> list[Period]:
        return [
            Period.of(MONTH, self.year, m) for m in range(self.first_month, self.last_month + 1)
        ]

    def contains(self, other: str | date | Period) -> bool:
        if isinstance(other, date):
            return self.start <= other <= self.end
        o = Period.parse(other)
        return self.start <= o.start and o.end <= self.end

    def quarter(self) -> Period:
        if self.kind == YEAR:
            raise PeriodError("a year is not inside a quarter")
        return Period.of(QUARTER, self.year, (self.first_month - 1) // 3 + 1)

    def as_year(self) -> Period:
        return Period.of(YEAR, self.year)


def period_range(first: str | Period, last: str | Period) -> list[Period]:
    """All periods from first to last inclusive (same kind)."""
    a, b = Period.parse(first), Period.parse(last)
    return [a + i for i in range(a.distance(b) + 1)]


def validate_period(value: str, kind: str | None = None) -> str:
    """Return the canonical string or raise PeriodError; used by model and form validators."""
    p = Period.parse(value)
    if kind and p.kind != kind:
        raise PeriodError(f"{value!r} is a {p.kind}, expected a {kind}")
    return str(p)
