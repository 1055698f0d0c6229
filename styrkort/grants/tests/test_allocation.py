"""Tests of the grant-allocation domain logic: exact sums, the tie rule, bounds and errors.

The national case uses the real SCB population of 31 Dec 2024 from the project's reference
data, so the figures here can be checked against the state-grant decision (seed 003):
496 MSEK over the regions, Region Örebro län ≈ 14.5 MSEK, 2.9 %.
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styrkort.grants.allocation import (
    AllocationError,
    AllocationResult,
    Change,
    LanShare,
    allocate_with_bounds,
    compare_allocations,
    largest_remainder,
    national_distribution,
    plan_regional_allocation,
)
from styrkort.grants.population import parse_population_csv

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
POPULATION_FILE = SHARED_DATA / "population_lan_2024-12-31.csv"
needs_shared = pytest.mark.skipif(
    not POPULATION_FILE.exists(), reason="reference data ../shared/data not present"
)

# --------------------------------------------------------------------------------------------
# National distribution of the 2025 grant


@needs_shared
def test_national_distribution_496_msek_sums_exactly_and_orebro_gets_2_9126_percent() -> None:
    populations = parse_population_csv(POPULATION_FILE)
    rows = national_distribution(496_000_000, populations)

    assert [r.lan_code for r in rows] == sorted(populations)
    assert sum(r.amount for r in rows) == 496_000_000
    orebro = next(r for r in rows if r.lan_code == "18")
    # Exact share 496 000 000 × 308 375 / 10 587 710 = 14 446 372.256…; its remainder is too
    # small to win one of the leftover kronor.
    assert orebro == LanShare("18", 14_446_372, Decimal("2.9126"))
    assert orebro.share_percent.as_tuple().exponent == -4
    assert abs(orebro.amount - 14_450_000) < 5_000  # "14,5 miljoner kronor" in the decision
    stockholm = next(r for r in rows if r.lan_code == "01")
    assert stockholm.amount == 115_866_441  # 115 866 440.618… rounded up by its remainder
    for r in rows:
        exact = Fraction(496_000_000 * populations[r.lan_code], sum(populations.values()))
        assert abs(r.amount - exact) < 1


def test_national_distribution_accepts_form_text_but_not_ore() -> None:
    rows = national_distribution("1 000", {"01": 1, "03": 3})
    assert [(r.lan_code, r.amount) for r in rows] == [("01", 250), ("03", 750)]
    assert rows[1].share_percent == Decimal("75.0000")

    with pytest.raises(AllocationError) as info:
        national_distribution("1000,50", {"01": 1, "03": 3})
    assert info.value.code == "total_not_whole_kronor"
    assert info.value.params == {"value": "1000,50"}
    assert "1000,50" in str(info.value)
    assert "not a whole number of kronor" in str(info.value)


@pytest.mark.parametrize("bad", ["tusen", "12.345", "-5", 1.5])
def test_national_distribution_refuses_bad_totals(bad: object) -> None:
    with pytest.raises(AllocationError) as info:
        national_distribution(bad, {"01": 1})  # type: ignore[arg-type]
    assert info.value.code in {"total_not_whole_kronor", "negative_total"}


def test_national_distribution_refuses_float_population() -> None:
    with pytest.raises(AllocationError) as info:
        national_distribution(100, {"01": 1.5})  # type: ignore[dict-item]
    assert info.value.code == "invalid_weight"


# --------------------------------------------------------------------------------------------
# largest_remainder: examples and the tie rule


def test_largest_remainder_simple() -> None:
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(100, {"a": 1, "b": 3}) == {"a": 25, "b": 75}
    assert largest_remainder(0, {"a": 1, "b": 3}) == {"a": 0, "b": 0}


def test_tie_rule_remainder_then_weight_then_key() -> None:
    # Remainders 2/3, 2/3... equal; then the larger weight wins.
    # 7 over weights 1, 2: exact 7/3 and 14/3, remainders 1/3 and 2/3 -> b gets the krona.
    assert largest_remainder(7, {"a": 1, "b": 2}) == {"a": 2, "b": 5}
    # Equal remainders (1/2 each), different weights: 5 over {x: 1, y: 3} -> 1.25, 3.75;
    # here remainders differ; construct equal remainders with different weights instead:
    # 3 over {x: 1, y: 1, z: 4}: 0.5, 0.5, 2 -> leftover 1 goes to x (key order), weights equal.
    assert largest_remainder(3, {"z": 4, "y": 1, "x": 1}) == {"z": 2, "y": 0, "x": 1}
    # Equal remainders, different weights: 6 over {a: 1, b: 5, c: 6}: 0.5, 2.5, 3 -> b (heavier).
    assert largest_remainder(6, {"a": 1, "b": 5, "c": 6}) == {"a": 0, "b": 3, "c": 3}
    # Integer keys sort numerically.
    assert largest_remainder(1, {10: 1, 9: 1}) == {10: 0, 9: 1}


def test_result_keeps_input_order_of_keys() -> None:
    assert list(largest_remainder(5, {"b": 1, "a": 1})) == ["b", "a"]


def test_decimal_and_fraction_weights_are_exact() -> None:
    # 0.1 + 0.2 is exactly 0.3 in Decimal; a float would not be.
    assert largest_remainder(
        600, {"a": Decimal("0.1"), "b": Decimal("0.2"), "c": Decimal("0.3")}
    ) == {"a": 100, "b": 200, "c": 300}
    assert largest_remainder(3, {"a": Fraction(1, 3), "b": Fraction(2, 3)}) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("total", "weights", "code"),
    [
        (-1, {"a": 1}, "negative_total"),
        (10.0, {"a": 1}, "total_not_int"),
        (Decimal(10), {"a": 1}, "total_not_int"),
        ("10", {"a": 1}, "total_not_int"),
        (True, {"a": 1}, "total_not_int"),
        (10, {}, "no_weights"),
        (10, {"a": 0, "b": 0}, "all_weights_zero"),
        (10, {"a": -1, "b": 2}, "negative_weight"),
        (10, {"a": Decimal("-0.5"), "b": 2}, "negative_weight"),
        (10, {"a": 0.5, "b": 2}, "invalid_weight"),
        (10, {"a": True, "b": 2}, "invalid_weight"),
        (10, {"a": Decimal("NaN"), "b": 2}, "invalid_weight"),
        (10, {"a": Decimal("Infinity")}, "invalid_weight"),
        (10, {"a": 1, 2: 1}, "unsortable_keys"),
    ],
)
def test_largest_remainder_errors(total: object, weights: dict, code: str) -> None:
    with pytest.raises(AllocationError) as info:
        largest_remainder(total, weights)  # type: ignore[arg-type]
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------------
# Properties

keys_st = st.text(alphabet="abcdefghij", min_size=1, max_size=3)
weight_st = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
)
weights_st = st.dictionaries(keys_st, weight_st, min_size=1, max_size=25).filter(
    lambda w: any(v > 0 for v in w.values())
)
total_st = st.integers(min_value=0, max_value=10**12)


def _exact(total: int, weights: dict) -> dict:
    s = sum((Fraction(w) for w in weights.values()), Fraction(0))
    return {k: total * Fraction(w) / s for k, w in weights.items()}


@settings(max_examples=200, deadline=None)
@given(total=total_st, weights=weights_st)
def test_property_sum_exact_within_one_krona_zero_weight_zero(total: int, weights: dict) -> None:
    amounts = largest_remainder(total, weights)
    assert set(amounts) == set(weights)
    assert sum(amounts.values()) == total
    assert all(isinstance(a, int) and not isinstance(a, bool) for a in amounts.values())
    for key, exact in _exact(total, weights).items():
        assert abs(amounts[key] - exact) < 1
        if weights[key] == 0:
            assert amounts[key] == 0


@settings(max_examples=200, deadline=None)
@given(
    total=total_st,
    n=st.integers(min_value=1, max_value=40),
    weight=st.one_of(st.integers(min_value=1, max_value=10**6), st.just(Decimal("0.37"))),
)
def test_property_equal_weights_differ_by_at_most_one(
    total: int, n: int, weight: int | Decimal
) -> None:
    amounts = largest_remainder(total, {f"u{i:02d}": weight for i in range(n)})
    assert max(amounts.values()) - min(amounts.values()) <= 1
    assert sum(amounts.values()) == total


@settings(max_examples=200, deadline=None)
@given(total=total_st, weights=weights_st, seed=st.integers(min_value=0, max_value=2**32))
def test_property_independent_of_order(total: int, weights: dict, seed: int) -> None:
    items = list(weights.items())
    random.Random(seed).shuffle(items)
    assert largest_remainder(total, dict(items)) == largest_remainder(total, weights)


@settings(max_examples=200, deadline=None)
@given(total=total_st, weights=weights_st)
def test_property_bounds_without_bounds_equal_plain_split(total: int, weights: dict) -> None:
    assert allocate_with_bounds(total, weights) == largest_remainder(total, weights)


@st.composite
def bounded_cases(draw: st.DrawFn) -> tuple[int, dict, dict, dict]:
    """A feasible problem: floors sum ≤ total ≤ what the caps (and zero weights) can absorb."""
    n = draw(st.integers(min_value=1, max_value=12))
    keys = [f"k{i:02d}" for i in range(n)]
    weights = {k: draw(st.integers(min_value=0, max_value=1000)) for k in keys}
    if not any(weights.values()):
        weights[keys[0]] = 1
    floors: dict = {}
    caps: dict = {}
    for k in keys:
        lo = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)))
        hi = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=20_000)))
        if lo is not None:
            floors[k] = lo
        if hi is not None:
            caps[k] = max(hi, lo or 0)
    floor_sum = sum(floors.values())
    positive = [k for k in keys if weights[k] > 0]
    if all(k in caps for k in positive):
        capacity = sum(caps[k] for k in positive) + sum(
            floors.get(k, 0) for k in keys if weights[k] == 0
        )
    else:
        capacity = floor_sum + 10**7
    total = draw(st.integers(min_value=floor_sum, max_value=max(floor_sum, capacity)))
    return total, weights, floors, caps


@settings(max_examples=200, deadline=None)
@given(case=bounded_cases())
def test_property_bounds_respected_and_sum_exact(case: tuple[int, dict, dict, dict]) -> None:
    total, weights, floors, caps = case
    amounts = allocate_with_bounds(total, weights, floors, caps)
    assert sum(amounts.values()) == total
    assert list(amounts) == list(weights)
    for key, amount in amounts.items():
        assert amount >= floors.get(key, 0)
        assert amount <= caps.get(key, total)
    # Monotone in weight among units not held by a bound: more weight never gets less money
    # (up to the one krona of rounding).
    free = [k for k in weights if floors.get(k, -1) < amounts[k] < caps.get(k, total + 1)]
    for a in free:
        for b in free:
            if weights[a] > weights[b]:
                assert amounts[a] >= amounts[b] - 1


# --------------------------------------------------------------------------------------------
# Floors and caps: examples and infeasible cases


def test_cap_redistributes_to_the_others() -> None:
    # c's share 800 is above its cap 500; the 500 left go to a and b equally; a's floor holds.
    assert allocate_with_bounds(1000, {"a": 1, "b": 1, "c": 8}, {"a": 200}, {"c": 500}) == {
        "a": 250,
        "b": 250,
        "c": 500,
    }


def test_floor_takes_from_the_others_proportionally() -> None:
    # Small unit a gets 100 (share 10); 900 left over b:c = 1:2.
    result = allocate_with_bounds(1000, {"a": 1, "b": 33, "c": 66}, floors={"a": 100})
    assert result == {"a": 100, "b": 300, "c": 600}


def test_iteration_fixes_in_several_rounds() -> None:
    # Capping a pushes b over its cap in the second round; c takes the rest.
    result = allocate_with_bounds(1000, {"a": 6, "b": 3, "c": 1}, caps={"a": 400, "b": 350})
    assert result == {"a": 400, "b": 350, "c": 250}


def test_zero_weight_unit_gets_its_floor() -> None:
    assert allocate_with_bounds(100, {"a": 0, "b": 1}, floors={"a": 30}) == {"a": 30, "b": 70}


def test_all_weights_zero_with_floors_summing_to_total_is_feasible() -> None:
    assert allocate_with_bounds(50, {"a": 0, "b": 0}, floors={"a": 20, "b": 30}) == {
        "a": 20,
        "b": 30,
    }


def test_exact_bounds_are_hit_exactly() -> None:
    assert allocate_with_bounds(300, {"a": 1, "b": 1}, {"a": 100}, {"a": 100, "b": 200}) == {
        "a": 100,
        "b": 200,
    }


def test_floors_exceeding_total_is_refused_with_the_figures() -> None:
    weights = {"a": 1, "b": 2}
    floors = {"a": 600_000, "b": 600_000}
    with pytest.raises(AllocationError) as info:
        allocate_with_bounds(1_000_000, weights, floors)
    err = info.value
    assert err.code == "floors_exceed_total"
    assert err.params == {"floors": 1_200_000, "total": 1_000_000}
    nbsp = "\xa0"
    assert str(err) == (
        f"The floors sum to 1{nbsp}200{nbsp}000{nbsp}kr but only "
        f"1{nbsp}000{nbsp}000{nbsp}kr is available to allocate"
    )
    # No partial result: the inputs are untouched.
    assert floors == {"a": 600_000, "b": 600_000}
    assert weights == {"a": 1, "b": 2}


def test_caps_below_total_is_refused() -> None:
    with pytest.raises(AllocationError) as info:
        allocate_with_bounds(1000, {"a": 1, "b": 2}, caps={"a": 100, "b": 200})
    assert info.value.code == "caps_below_total"
    assert info.value.params == {"caps": 300, "total": 1000}


@pytest.mark.parametrize(
    ("weights", "floors", "caps", "code"),
    [
        ({"a": 1}, {"a": 10}, {"a": 5}, "floor_above_cap"),
        ({"a": 1}, {"x": 10}, None, "unknown_key"),
        ({"a": 1}, None, {"a": -1}, "invalid_bound"),
        ({"a": 1}, {"a": Decimal("1.5")}, None, "invalid_bound"),
        # b (weight 0) can only take its floor 0, a is capped at 50: 100 cannot be placed.
        ({"a": 1, "b": 0}, None, {"a": 50}, "capacity_below_total"),
        ({"a": 0, "b": 0}, {"a": 10}, None, "all_weights_zero"),
    ],
)
def test_other_infeasible_bounds(weights: dict, floors: dict, caps: dict, code: str) -> None:
    with pytest.raises(AllocationError) as info:
        allocate_with_bounds(100, weights, floors, caps)
    assert info.value.code == code


# --------------------------------------------------------------------------------------------
# Regional plan


def test_regional_plan_orebro_style() -> None:
    result = plan_regional_allocation(
        14_446_372,
        [("Utbildningsinsatser", 1_000_000, None), ("Samordning", None, Decimal("0.05"))],
        {"VC A": 12_001, "VC B": 8_000, "VC C": 0},
        need_index={"VC A": Decimal("1.1"), "VC B": Decimal("0.95"), "VC C": 1},
    )
    assert isinstance(result, AllocationResult)
    # 5 % of 14 446 372 = 722 318.6 -> 722 319 (its remainder beats the pot's 0.4).
    assert result.central == {"Utbildningsinsatser": 1_000_000, "Samordning": 722_319}
    assert result.units_total == 14_446_372 - 1_722_319
    assert result.central_total + result.units_total == result.region_total
    assert result.balanced
    assert result.units["VC C"] == 0
    assert result.per_listed["VC C"] is None
    # Weights 13 201.1 and 7 600 exactly (no float): VC A gets 13201.1 / 20801.1 of the pot.
    assert result.unit_weights["VC A"] == Fraction("13201.1")
    exact_a = Fraction(result.units_total) * Fraction("13201.1") / Fraction("20801.1")
    assert abs(result.units["VC A"] - exact_a) < 1
    per_a = result.per_listed["VC A"]
    assert per_a == (Decimal(result.units["VC A"]) / 12_001).quantize(Decimal("0.01"))
    assert per_a.as_tuple().exponent == -2


def test_regional_plan_without_central_items_or_need_index() -> None:
    result = plan_regional_allocation(1000, [], {"a": 1, "b": 3})
    assert result.central == {}
    assert result.units == {"a": 250, "b": 750}
    assert result.per_listed == {"a": Decimal("250.00"), "b": Decimal("250.00")}


def test_regional_plan_with_floors_and_caps() -> None:
    result = plan_regional_allocation(
        10_000, [("Utbildning", 2_000, None)], {"a": 10, "b": 10, "c": 80}, None,
        floors={"a": 1_000}, caps={"c": 5_000},
    )  # fmt: skip
    assert result.central == {"Utbildning": 2_000}
    assert result.units == {"a": 1_500, "b": 1_500, "c": 5_000}


def test_regional_plan_share_items_rounded_together_with_the_pot() -> None:
    # Three thirds of 100: exact 33⅓ each; the pot is 0 and one krona goes to the first.
    third = Fraction(1, 3)
    result = plan_regional_allocation(
        100, [("x", None, third), ("y", None, third), ("z", None, third)], {"a": 1}
    )
    assert result.central == {"x": 34, "y": 33, "z": 33}
    assert result.units == {"a": 0}
    assert result.balanced


def test_regional_plan_central_items_exceeding_total() -> None:
    with pytest.raises(AllocationError) as info:
        plan_regional_allocation(100, [("x", 60, None), ("y", None, Decimal("0.5"))], {"a": 1})
    assert info.value.code == "central_exceeds_total"
    assert info.value.params == {"central": 110, "total": 100}


@pytest.mark.parametrize(
    ("items", "units", "need", "code"),
    [
        ([("x", 1, Decimal("0.1"))], {"a": 1}, None, "invalid_central_item"),
        ([("x", None, None)], {"a": 1}, None, "invalid_central_item"),
        ([("x", "12,50", None)], {"a": 1}, None, "invalid_central_item"),
        ([("x", -5, None)], {"a": 1}, None, "invalid_central_item"),
        ([("x", None, Decimal("1.5"))], {"a": 1}, None, "invalid_central_item"),
        ([("x", None, Decimal("-0.1"))], {"a": 1}, None, "negative_weight"),
        ([("x", 1, None), ("x", 2, None)], {"a": 1}, None, "duplicate_central_item"),
        ([], {}, None, "no_units"),
        ([], {"a": 1, "b": 1}, {"a": 1}, "need_index_mismatch"),
        ([], {"a": 1}, {"a": 1, "z": 1}, "need_index_mismatch"),
        ([], {"a": 1.0}, None, "invalid_weight"),
        ([], {"a": 0, "b": 0}, None, "all_weights_zero"),
    ],
)
def test_regional_plan_errors(items: list, units: dict, need: dict, code: str) -> None:
    with pytest.raises(AllocationError) as info:
        plan_regional_allocation(100, items, units, need)
    assert info.value.code == code


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**9),
    fixed=st.lists(st.integers(min_value=0, max_value=10**6), max_size=3),
    shares=st.lists(st.decimals(min_value=0, max_value=Decimal("0.2"), places=4), max_size=3),
    listed=st.dictionaries(
        st.text(alphabet="xyz", min_size=1, max_size=4),
        st.integers(min_value=1, max_value=50_000),
        min_size=1,
        max_size=10,
    ),
)
def test_property_regional_plan_balances(
    total: int, fixed: list, shares: list, listed: dict
) -> None:
    items = [(f"f{i}", amount, None) for i, amount in enumerate(fixed)]
    items += [(f"s{i}", None, share) for i, share in enumerate(shares)]
    if sum(fixed) + total * sum(shares) > total:
        with pytest.raises(AllocationError):
            plan_regional_allocation(total, items, listed)
        return
    result = plan_regional_allocation(total, items, listed)
    assert result.central_total + result.units_total == total
    for i, share in enumerate(shares):
        assert abs(result.central[f"s{i}"] - total * Fraction(share)) < 1
    for i, amount in enumerate(fixed):
        assert result.central[f"f{i}"] == amount


# --------------------------------------------------------------------------------------------
# Comparison with a previous version


def test_compare_allocations() -> None:
    previous = {"a": 100, "b": 200, "gone": 50}
    current = {"b": 180, "a": 120, "new": 30}
    diff = compare_allocations(previous, current)
    assert list(diff) == ["b", "a", "new", "gone"]
    assert diff["a"] == Change(100, 120, 20)
    assert diff["b"] == (200, 180, -20)
    assert diff["new"] == Change(None, 30, 30)
    assert diff["gone"] == Change(50, None, -50)
    assert sum(c.diff for c in diff.values()) == sum(current.values()) - sum(previous.values())
