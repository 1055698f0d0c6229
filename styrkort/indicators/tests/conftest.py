"""Fixtures of the indicator page, chart and API tests: five units with stored PO09 and PO03A
results (``builders.store_results``). None is autouse, so the engine's tests in this directory
are not affected; modules use them by name. (Cheap password hashing for every test is in the
root conftest.)"""

from __future__ import annotations

from datetime import date

import pytest

from styrkort.indicators.tests.builders import PO09_MONTHLY, monthly_counts, store_results
from styrkort.organisation.models import CareUnit

#: PO03A (recorded depression per 1,000 listed, no judgement): monthly (cases, listed).
PO03A_MONTHLY = {
    "A": {("K", "25-44"): (2, 300), ("M", "25-44"): (1, 280)},
    "B": {("K", "25-44"): (9, 900), ("M", "25-44"): (4, 850)},
    "D": {("K", "25-44"): (8, 1000), ("M", "25-44"): (5, 950)},
    "E": {("K", "25-44"): (30, 1100), ("M", "25-44"): (15, 1000)},
    "F": {("K", "25-44"): (1, 1200), ("M", "25-44"): (1, 1100)},
}


@pytest.fixture
def units(region, provider_region, unit_a, unit_b, users) -> dict[str, CareUnit]:
    """unit_a, unit_b and three more units of the region (D, E, F)."""
    made = {
        name: CareUnit.objects.create(
            region=region,
            provider=provider_region,
            hsa_id=f"SE2321000016-{name}00{i}",
            name=f"Vårdcentralen {town}",
            municipality="Västervik",
            opened=date(2012, 1, 1),
        )  # fmt: skip
        for i, (name, town) in enumerate((("D", "Dalby"), ("E", "Ekby"), ("F", "Fjällby")), 4)
    }
    return {"A": unit_a, "B": unit_b, **made}


@pytest.fixture
def po09(region, units) -> dict[str, CareUnit]:
    """PO09 January–June 2025 (the year 2025 stored as incomplete)."""
    store_results(region, "PO09", monthly_counts(units, PO09_MONTHLY), incomplete={"2025"})
    return units


@pytest.fixture
def po03a(region, units) -> dict[str, CareUnit]:
    """PO03A January–June 2025 (a rate per 1,000 listed)."""
    store_results(region, "PO03A", monthly_counts(units, PO03A_MONTHLY), incomplete={"2025"})
    return units
