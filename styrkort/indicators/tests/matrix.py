"""The indicators' part of the access matrix (styrkort/organisation/tests/test_access_matrix.py):
the indicator whose code fills the ``code`` path parameter, with stored results.

``indicator_world(world)`` stores PO09 results for unit_a and unit_b (January–March 2025, small
numbers so that suppression is in play), once per matrix world. Not a test module.
"""

from __future__ import annotations

from styrkort.indicators.tests.builders import monthly_counts, store_results

CODE = "PO09"
MONTHLY = {
    "A": {("K", "25-44"): (1, 3), ("M", "25-44"): (4, 9)},
    "B": {("K", "25-44"): (6, 12), ("M", "25-44"): (5, 10)},
}


def indicator_world(world) -> str:
    if getattr(world, "_indicators", None) is None:
        units = {"A": world.unit_a, "B": world.unit_b}
        store_results(
            world.unit_a.region,
            CODE,
            monthly_counts(units, MONTHLY, months=("2025-01", "2025-02", "2025-03")),
        )
        world._indicators = CODE
    return world._indicators


PATH_PARAMS = {"code": indicator_world}
