"""Tests for styrkort.indicators.suppression.

Besides hand-made cases, every table is run through two independent checkers that play the
attacker: one repeatedly subtracts along the published equations (K + M = T, units = region)
the way a reader with a spreadsheet would, the other asks linear algebra whether any hidden
cell is determined by all the equations together.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pytest

from styrkort.indicators.suppression import (
    DEFAULT_THRESHOLD,
    Cell,
    SuppressionError,
    describe_method,
    is_primary,
    suppress,
)

# --------------------------------------------------------------------------------------------
# Table builder and attacker checkers (written independently of the module's internals)
# --------------------------------------------------------------------------------------------

Counts = dict[str, tuple[int, int]]  # sex -> (numerator, denominator) for K and M


def table(units: dict[str, Counts], region: str = "R", stratum: Hashable = "2025") -> list[Cell]:
    """K, M and T = K + M for each unit, plus the region total for each sex."""
    cells: list[Cell] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for unit, counts in units.items():
        sexes = {**counts, "T": tuple(a + b for a, b in zip(counts["K"], counts["M"], strict=True))}
        for sex, (num, den) in sexes.items():
            cells.append(Cell(f"{unit}-{sex}", unit, sex, num, den, region, stratum))
            totals[sex][0] += num
            totals[sex][1] += den
    for sex, (num, den) in totals.items():
        cells.append(Cell(f"{region}-{sex}", region, sex, num, den, region, stratum, True))
    return cells


def _equations(cells: Iterable[Cell]) -> list[tuple[list[Hashable], Hashable]]:
    """(parts, total) for every additive relation whose cells are all in the table."""
    by_group: dict[tuple, dict[str, Hashable]] = defaultdict(dict)
    by_sex: dict[tuple, tuple[list[Hashable], list[Hashable]]] = defaultdict(lambda: ([], []))
    for c in cells:
        by_group[(c.stratum, c.region, c.unit, c.is_region_total)][c.sex] = c.key
        if c.region is not None:
            parts, total = by_sex[(c.stratum, c.region, c.sex)]
            (total if c.is_region_total else parts).append(c.key)
    equations = [([g["K"], g["M"]], g["T"]) for g in by_group.values() if len(g) == 3]
    # A region total with no units in the table is no equation: "the total of nothing".
    equations += [(parts, total[0]) for parts, total in by_sex.values() if total and parts]
    return equations


def derivable_by_subtraction(cells: list[Cell], hidden: Iterable[Hashable]) -> set[Hashable]:
    """Hidden cells a reader can recover by repeated subtraction along the equations."""
    unknown = set(hidden)
    recovered: set[Hashable] = set()
    equations = _equations(cells)
    progress = True
    while progress:
        progress = False
        for parts, total in equations:
            missing = [k for k in [*parts, total] if k in unknown]
            if len(missing) == 1:
                unknown.discard(missing[0])
                recovered.add(missing[0])
                progress = True
    return recovered


def derivable_by_algebra(cells: list[Cell], hidden: Iterable[Hashable]) -> set[Hashable]:
    """Hidden cells determined by the equations together (row-space test on the unknowns)."""
    unknowns = sorted(hidden, key=str)
    if not unknowns:
        return set()
    column = {k: i for i, k in enumerate(unknowns)}
    rows = []
    for parts, total in _equations(cells):
        row = np.zeros(len(unknowns))
        for k in parts:
            if k in column:
                row[column[k]] += 1
        if total in column:
            row[column[total]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    found = set()
    for k, i in column.items():
        unit_row = np.zeros(len(unknowns))
        unit_row[i] = 1
        if np.linalg.matrix_rank(np.vstack([matrix, unit_row])) == rank:
            found.add(k)
    return found


def assert_safe(cells: list[Cell], result: Mapping[Hashable, str], threshold: int) -> None:
    by_key = {c.key: c for c in cells}
    for c in cells:  # every primary cell is hidden, and labelled as such
        if is_primary(c.numerator, c.denominator, threshold):
            assert result.get(c.key) == "primary", c.key
    for key, reason in result.items():
        assert reason in ("primary", "secondary")
        if reason == "secondary":
            c = by_key[key]
            assert not is_primary(c.numerator, c.denominator, threshold)
    assert derivable_by_subtraction(cells, result) == set()
    assert derivable_by_algebra(cells, result) == set()


# --------------------------------------------------------------------------------------------
# Primary suppression
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 100, False),  # a zero out of a large group is shown
        (1, 100, True),
        (4, 100, True),
        (5, 100, False),
        (0, 4, True),  # ... but not out of a small one
        (0, 0, True),
        (3, 3, True),
        (12, 4, True),  # rate with more events than persons: small denominator
        (None, 4, True),  # a mean of four values
        (None, 5, False),
        (7, None, False),  # a count without denominator
        (3, None, True),
    ],
)
def test_primary_rule(numerator: int | None, denominator: int | None, expected: bool) -> None:
    assert is_primary(numerator, denominator) is expected


def test_threshold_is_a_parameter() -> None:
    assert DEFAULT_THRESHOLD == 5
    assert is_primary(7, 100, threshold=10)
    assert not is_primary(7, 100, threshold=5)
    assert is_primary(2, 100, threshold=3)
    assert not is_primary(3, 100, threshold=3)
    for bad in (1, 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="threshold"):
            is_primary(1, 10, threshold=bad)  # type: ignore[arg-type]


def test_primary_only_table_has_no_secondary() -> None:
    cells = table({"A": {"K": (3, 50), "M": (2, 60)}, "B": {"K": (4, 40), "M": (4, 70)}})
    result = suppress(cells)
    # Both K and M of both units are primary; T and the region survive (two unknowns each).
    assert result == {"A-K": "primary", "A-M": "primary", "B-K": "primary", "B-M": "primary"}
    assert_safe(cells, result, DEFAULT_THRESHOLD)


def test_small_region_total_is_primary_and_protected() -> None:
    cells = table({"A": {"K": (3, 50), "M": (2, 60)}, "B": {"K": (1, 40), "M": (4, 70)}})
    result = suppress(cells)
    # The region's K (4) is itself small; its M is hidden so that K = T - M cannot be done.
    assert result["R-K"] == "primary"
    assert result["R-M"] == "secondary"
    assert "R-T" not in result
    assert_safe(cells, result, DEFAULT_THRESHOLD)


# --------------------------------------------------------------------------------------------
# Secondary suppression
# --------------------------------------------------------------------------------------------


def test_secondary_across_sex() -> None:
    cells = [
        Cell("A-K", "A", "K", 3, 50),
        Cell("A-M", "A", "M", 20, 60),
        Cell("A-T", "A", "T", 23, 110),
    ]
    result = suppress(cells)
    assert result == {"A-K": "primary", "A-M": "secondary"}  # M, not the total T
    assert_safe(cells, result, DEFAULT_THRESHOLD)
    flipped = suppress(
        [
            Cell("A-K", "A", "K", 20, 60),
            Cell("A-M", "A", "M", 3, 50),
            Cell("A-T", "A", "T", 23, 110),
        ]
    )
    assert flipped == {"A-M": "primary", "A-K": "secondary"}


def test_missing_total_counts_as_published() -> None:
    # T is not in the input, but totals are assumed published elsewhere: K + M = T is known.
    cells = [Cell("A-K", "A", "K", 20, 60, stratum=1), Cell("A-M", "A", "M", 3, 50, stratum=1)]
    # Without a T cell the sex equation has no margin present: treated as known.
    assert suppress(cells) == {"A-M": "primary", "A-K": "secondary"}


def test_missing_part_counts_as_unknown() -> None:
    # Only K and T are published; M is not, so K cannot be derived from T.
    cells = [Cell("A-K", "A", "K", 3, 50), Cell("A-T", "A", "T", 23, 110)]
    assert suppress(cells) == {"A-K": "primary"}


def test_secondary_across_units_and_region_total_stays() -> None:
    units = {
        "A": (2, 40),
        "B": (10, 100),
        "C": (7, 80),
        "D": (30, 300),
    }
    cells = [Cell(f"{u}-T", u, "T", n, d, "R") for u, (n, d) in units.items()]
    cells.append(Cell("R-T", "R", "T", 49, 520, "R", is_region_total=True))
    result = suppress(cells)
    # The next smallest unit (C, 7) is hidden too; the region total is fine.
    assert result == {"A-T": "primary", "C-T": "secondary"}
    assert "R-T" not in result
    assert_safe(cells, result, DEFAULT_THRESHOLD)


def test_secondary_needs_region_total_when_it_is_the_only_other_cell() -> None:
    cells = [
        Cell("A-T", "A", "T", 3, 40, "R"),
        Cell("R-T", "R", "T", 3, 40, "R", is_region_total=True),
    ]
    # A one-unit region: the total is the unit, so it is hidden as well (primary here).
    assert suppress(cells) == {"A-T": "primary", "R-T": "primary"}
    bigger = [
        Cell("A-T", "A", "T", 3, 40, "R"),
        Cell("B-T", "B", "T", 0, 0, "R"),
        Cell("R-T", "R", "T", 3, 40, "R", is_region_total=True),
    ]
    assert suppress(bigger) == {"A-T": "primary", "B-T": "primary", "R-T": "primary"}


def test_unprotectable_table_raises() -> None:
    # One unit, its region total not in the table (so assumed published): cannot be protected.
    with pytest.raises(SuppressionError, match="total"):
        suppress([Cell("A-T", "A", "T", 3, 40, "R")])


def test_chain_needs_iteration_across_both_dimensions() -> None:
    cells = table(
        {
            "A": {"K": (3, 100), "M": (30, 120)},
            "B": {"K": (8, 90), "M": (40, 110)},
            "C": {"K": (20, 95), "M": (6, 105)},
        }
    )
    result = suppress(cells)
    # A-K primary -> A-M (sex) and B-K (units, next smallest K) -> C-M (units, M column:
    # A-M alone hidden, C-M = 6 is the smallest) -> B-M and C-K (sex equations of B and C).
    assert result == {
        "A-K": "primary",
        "A-M": "secondary",
        "B-K": "secondary",
        "C-M": "secondary",
        "B-M": "secondary",
        "C-K": "secondary",
    }
    # All T cells and the region totals stay published.
    assert not any(str(k).endswith("-T") or str(k).startswith("R-") for k in result)
    assert_safe(cells, result, DEFAULT_THRESHOLD)


def test_checkers_do_find_leaks() -> None:
    """The attacker checkers are not vacuous: primary suppression alone leaks here."""
    cells = table(
        {
            "A": {"K": (3, 100), "M": (30, 120)},
            "B": {"K": (8, 90), "M": (40, 110)},
            "C": {"K": (20, 95), "M": (6, 105)},
        }
    )
    primary_only = {c.key for c in cells if is_primary(c.numerator, c.denominator)}
    assert derivable_by_subtraction(cells, primary_only) == {"A-K"}
    assert derivable_by_algebra(cells, primary_only) == {"A-K"}
    # A pattern where every equation has two hidden cells is safe for both checkers.
    rectangle = {"A-K", "A-M", "B-K", "B-M"}
    assert derivable_by_subtraction(cells, rectangle) == set()
    assert derivable_by_algebra(cells, rectangle) == set()


def test_threshold_changes_the_result() -> None:
    cells = table(
        {
            "A": {"K": (3, 100), "M": (30, 120)},
            "B": {"K": (8, 90), "M": (40, 110)},
            "C": {"K": (20, 95), "M": (16, 105)},
        }
    )
    assert suppress(cells, threshold=3) == {}
    at_ten = suppress(cells, threshold=10)
    assert {k for k, r in at_ten.items() if r == "primary"} == {"A-K", "B-K"}
    assert_safe(cells, at_ten, 10)
    at_five = suppress(cells, threshold=5)
    assert {k for k, r in at_five.items() if r == "primary"} == {"A-K"}
    assert_safe(cells, at_five, 5)


def test_strata_and_regions_are_independent() -> None:
    first = table({"A": {"K": (3, 100), "M": (30, 120)}, "B": {"K": (8, 90), "M": (40, 110)}})
    second = table(
        {"A": {"K": (13, 100), "M": (30, 120)}, "B": {"K": (8, 90), "M": (40, 110)}},
        stratum="2026",
    )
    second = [
        Cell(
            f"2026:{c.key}",
            c.unit,
            c.sex,
            c.numerator,
            c.denominator,
            c.region,
            c.stratum,
            c.is_region_total,
        )
        for c in second
    ]
    result = suppress(first + second)
    assert not any(str(k).startswith("2026:") for k in result)
    assert result == suppress(first)


def test_plain_dicts_are_accepted() -> None:
    cells = [
        {"key": "A-K", "unit": "A", "sex": "K", "numerator": 3, "denominator": 50},
        {"key": "A-M", "unit": "A", "sex": "M", "numerator": 20, "denominator": 60},
        {"key": "A-T", "unit": "A", "sex": "T", "numerator": 23, "denominator": 110},
    ]
    assert suppress(cells) == {"A-K": "primary", "A-M": "secondary"}


def test_unpublished_cells_count_as_unknown() -> None:
    cells = [
        Cell("A-K", "A", "K", 3, 50),
        Cell("A-M", "A", "M", None, None),  # not published at all
        Cell("A-T", "A", "T", 23, 110),
    ]
    assert suppress(cells) == {"A-K": "primary"}


def test_rejects_malformed_tables() -> None:
    with pytest.raises(ValueError, match="unique"):
        suppress([Cell("x", "A", "K", 10, 50), Cell("x", "A", "M", 10, 50)])
    with pytest.raises(ValueError, match="two cells"):
        suppress([Cell("x", "A", "K", 10, 50), Cell("y", "A", "K", 10, 50)])


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_are_safe(seed: int) -> None:
    rng = random.Random(seed)
    threshold = rng.choice([3, 5, 10])
    units = {
        f"U{i}": {
            "K": (rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40]), rng.choice([3, 8, 30, 200])),
            "M": (rng.choice([0, 1, 2, 5, 7, 12, 60]), rng.choice([2, 6, 25, 300])),
        }
        for i in range(rng.randint(1, 7))
    }
    cells = table(units)
    result = suppress(cells, threshold=threshold)
    assert_safe(cells, result, threshold)


# --------------------------------------------------------------------------------------------
# Method description
# --------------------------------------------------------------------------------------------


def test_describe_method_states_threshold_in_both_languages() -> None:
    text = describe_method(5)
    assert set(text) == {"sv", "en"}
    assert "1–4" in text["sv"]
    assert "mindre än 5" in text["sv"]
    assert "sekundär" in text["sv"]
    assert "below 5" in text["en"]
    assert "secondary" in text["en"]
    assert "1–9" in describe_method(10)["en"]
    with pytest.raises(ValueError, match="threshold"):
        describe_method(1)


def test_a_lone_small_total_with_no_parts_needs_no_secondary() -> None:
    # What a unit manager's table looks like when the region's only units are their own.
    cells = [Cell("R-K", "R", "K", 2, 40, "R", is_region_total=True),
             Cell("R-M", "R", "M", 9, 60, "R", is_region_total=True),
             Cell("R-T", "R", "T", 11, 100, "R", is_region_total=True)]  # fmt: skip
    result = suppress(cells)
    assert result["R-K"] == "primary"
    assert result["R-M"] == "secondary"
    assert_safe(cells, result, DEFAULT_THRESHOLD)


def test_a_unit_managers_own_units_leave_nothing_to_derive() -> None:
    from styrkort.indicators.services import SCell, suppression_pattern

    cells = [
        SCell(("A", s), "A", "2025-01", s, "alla", n, d)
        for s, n, d in (("K", 2, 40), ("M", 9, 60), ("T", 11, 100))
    ] + [
        SCell(("R", s), "", "2025-01", s, "alla", n, d)
        for s, n, d in (("K", 2, 40), ("M", 9, 60), ("T", 11, 100))
    ]
    hidden = suppression_pattern(cells, limit=5, known_units=["A"])
    # The region equals unit A, which the manager sees anyway; the region's small K is still
    # hidden (primary) and its M with it, so that K = T - M cannot be done.
    assert hidden == {("R", "K"): "primary", ("R", "M"): "secondary"}
    # For anyone else, unit A's cells are protected as well.
    assert ("A", "K") in suppression_pattern(cells, limit=5)
