"""Small listing and staffing data for the page, query and API tests (not a test module)."""

from __future__ import annotations

from decimal import Decimal

from styrkort.organisation.models import CareUnit, Listing, Staffing

MONTHS = ("2024-11", "2024-12", "2025-01")


def add_listings(unit: CareUnit, months=MONTHS, *, base: int = 100) -> None:
    """Per month: women 20-24 `base`+i, men 20-24 `base`//2, women 85+ 10 (i = month index)."""
    rows = []
    for i, month in enumerate(months):
        rows += [
            Listing(unit=unit, month=month, sex="K", age_band="20-24", listed=base + i),
            Listing(unit=unit, month=month, sex="M", age_band="20-24", listed=base // 2),
            Listing(unit=unit, month=month, sex="K", age_band="85+", listed=10),
        ]
    Listing.objects.bulk_create(rows)


def add_staffing(unit: CareUnit, period: str, **fte: str) -> None:
    Staffing.objects.bulk_create(
        Staffing(unit=unit, period=period, profession=p, fte=Decimal(v)) for p, v in fte.items()
    )
