"""Tests for styrkort.indicators.statistics.

Every row of every reference-vector file in ``../shared/data/stats`` (PHEindicatormethods
v2.1.0 test data, independently re-checked) is its own parametrised test, checked within the
tolerances given in that folder's README. Hand-made edge cases follow the vectors.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from styrkort.indicators.statistics import (
    FunnelLimits,
    Interval,
    SampleSummary,
    byars,
    classify,
    compare_to_limits,
    compare_to_target,
    count_interval,
    dsr,
    dsr_nonindependent,
    expected_events,
    funnel_curve_rate,
    funnel_curve_ratio,
    funnel_limits_proportion,
    funnel_limits_rate,
    funnel_limits_ratio,
    funnel_point_rate,
    funnel_significance,
    indirectly_standardised_rate,
    indirectly_standardised_ratio,
    mean_interval,
    rate_interval,
    wilson,
)

STATS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "stats"
MISSING_REASON = f"reference vectors not found at {STATS_DIR} (../shared beside the repository)"

# Tolerances from shared/data/README.md, "stats/".
REL = 1e-9  # proportions, rates, means, DSR, ISR
REL_FUNNEL_PROPORTION = 1e-6  # inputs rounded
REL_FUNNEL_POISSON = 1e-4  # upstream bisection

# Upstream typo in the DSR/ISR inputs: 55-69 stands for 55-59.
BAND_TYPOS = {"55-69": "55-59"}


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _read(name: str) -> list[dict[str, str | None]]:
    with (STATS_DIR / name).open(encoding="utf-8", newline="") as fh:
        return [
            {k: (None if v in ("", "NA") else v) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def _figure(value: str | None) -> float:
    """A figure the reference file always gives (a blank one means the file is broken)."""
    assert value is not None
    return float(value)


def _params(name: str, id_of: Any = None) -> list[Any]:
    """One pytest.param per row, or one skipped param if the vectors are absent."""
    if not STATS_DIR.is_dir():
        return [pytest.param(None, id=name, marks=pytest.mark.skip(reason=MISSING_REASON))]
    rows = _read(name)
    return [
        pytest.param(row, id=id_of(row, i) if id_of else f"{name}:row{i + 2}")
        for i, row in enumerate(rows)
    ]


def _f(value: str | None) -> float | None:
    return None if value is None else float(value)


def _band(label: str) -> str:
    """Normalise an age-band label: fix the upstream typo and drop leading zeros (00-04)."""
    label = BAND_TYPOS.get(label, label)
    parts = label.replace("+", "").split("-")
    normal = "-".join(str(int(p)) for p in parts)
    return normal + ("+" if label.endswith("+") else "")


def assert_close(actual: float | None, expected: float | None, rel: float, what: str) -> None:
    if expected is None:
        assert actual is None, f"{what}: expected missing, got {actual!r}"
        return
    assert actual is not None, f"{what}: expected {expected!r}, got None"
    if expected == 0:
        assert abs(actual) <= rel, f"{what}: expected 0, got {actual!r}"
    else:
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=0), (
            f"{what}: expected {expected!r}, got {actual!r} "
            f"(rel. diff {abs(actual - expected) / abs(expected):.3g} > {rel})"
        )


def assert_interval(result: Interval, row: dict[str, Any], rel: float = REL) -> None:
    assert_close(result.value, _f(row["value"]), rel, "value")
    assert_close(result.lower, _f(row["lowercl"]), rel, "lowercl")
    assert_close(result.upper, _f(row["uppercl"]), rel, "uppercl")


def _case_id(row: dict[str, Any], _i: int) -> str:
    return str(row["case_id"])


# --------------------------------------------------------------------------------------------
# Proportions, counts, rates, means
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", _params("proportion_wilson.csv", _case_id))
def test_wilson_vectors(row: dict[str, Any]) -> None:
    result = wilson(
        _f(row["numerator"]),
        _f(row["denominator"]),
        confidence=float(row["confidence"]),
        multiplier=float(row["multiplier"]),
    )
    assert_interval(result, row)
    assert result.method == "wilson"


@pytest.mark.parametrize("row", _params("rate_byars_exact.csv", _case_id))
def test_rate_vectors(row: dict[str, Any]) -> None:
    result = rate_interval(
        _f(row["numerator"]),
        _f(row["denominator"]),
        multiplier=float(row["multiplier"]),
        confidence=float(row["confidence"]),
    )
    assert_interval(result, row)
    if row["method"] is not None:
        assert result.method == row["method"].lower()


@pytest.mark.parametrize("row", _params("poisson_count_byars_raw.csv", _case_id))
def test_byars_raw_vectors(row: dict[str, Any]) -> None:
    result = byars(float(row["count"]), confidence=float(row["confidence"]))
    assert_close(result.value, float(row["count"]), REL, "value")
    assert_close(result.lower, _f(row["lowercl"]), REL, "lowercl")
    assert_close(result.upper, _f(row["uppercl"]), REL, "uppercl")


def _mean_values() -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for item in _read("mean_inputs.csv"):
        value = float(item["value"])  # type: ignore[arg-type]
        groups[str(item["area"])].append(value)
        groups["ALL"].append(value)
    return groups


def _mean_id(row: dict[str, Any], i: int) -> str:
    return f"{row['group']}@{row['confidence']}"


@pytest.mark.parametrize("row", _params("mean_students_t.csv", _mean_id))
def test_mean_vectors_from_values(row: dict[str, Any]) -> None:
    values = _mean_values()[row["group"]]
    assert len(values) == int(row["n"])
    result = mean_interval(values, confidence=float(row["confidence"]))
    assert_interval(result, row)
    assert_close(result.numerator, float(row["sum"]), REL, "sum")
    assert result.denominator == int(row["n"])


@pytest.mark.parametrize("row", _params("mean_students_t.csv", _mean_id))
def test_mean_vectors_from_summary(row: dict[str, Any]) -> None:
    n = int(row["n"])
    summary = SampleSummary(n, float(row["sum"]) / n, float(row["sd"]))
    assert_interval(mean_interval(summary, confidence=float(row["confidence"])), row)


def test_mean_sd_matches_vectors() -> None:
    if not STATS_DIR.is_dir():
        pytest.skip(MISSING_REASON)
    groups = _mean_values()
    for row in _read("mean_students_t.csv"):
        values = groups[str(row["group"])]
        mean = math.fsum(values) / len(values)
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        assert_close(sd, _f(row["sd"]), REL, f"sd of {row['group']}")


# --------------------------------------------------------------------------------------------
# Standardisation
# --------------------------------------------------------------------------------------------


def _esp2013_19() -> dict[str, float]:
    """The 19-band ESP 2013 (0-4 ... 90+) summed from the 21-band file, keyed by band."""
    weights: dict[str, float] = defaultdict(float)
    for row in _read("esp2013.csv"):
        weights[_band(str(row["band_19"]))] += float(row["weight"])  # type: ignore[arg-type]
    return dict(weights)


def _shuffled(mapping: dict[str, Any], seed: int) -> dict[str, Any]:
    """Same mapping in another order: joins must be on the key, never on position."""
    items = list(mapping.items())
    random.Random(seed).shuffle(items)
    return dict(items)


def _standard_for(area_rows: list[dict[str, Any]]) -> dict[str, float]:
    """Join ESP 2013 on the band (checking the row's stdpop column agrees).

    The 1976 European Standard Population is not in the shared data, so the one area that
    uses it takes its weights from the input rows, still keyed by band.
    """
    esp = _esp2013_19()
    standard = {}
    for item in area_rows:
        band = _band(item["ageband"])
        given = float(item["stdpop"])
        if str(item.get("stdpop_name") or "esp2013").startswith("esp1976"):
            standard[band] = given
        else:
            assert esp[band] == given, f"ESP 2013 weight for {band}"
            standard[band] = esp[band]
    return standard


@pytest.mark.parametrize("row", _params("dsr_dobson.csv", _case_id))
def test_dsr_vectors(row: dict[str, Any]) -> None:
    inputs = [r for r in _read(row["inputs_file"]) if r["area"] == row["area"]]
    assert inputs, f"no inputs for {row['area']}"
    by_band: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in inputs:
        by_band[_band(str(item["ageband"]))].append(item)
    population = {band: float(items[0]["pop"]) for band, items in by_band.items()}
    standard = _standard_for([items[0] for items in by_band.values()])
    multiplier = float(row["multiplier"])
    confidence = float(row["confidence"])
    if row["method"] == "dobson":
        events = {band: _f(items[0]["count"]) for band, items in by_band.items()}
        result = dsr(
            _shuffled(events, 1),
            _shuffled(population, 2),
            _shuffled(standard, 3),
            multiplier=multiplier,
            confidence=confidence,
        )
    else:
        persons = {
            band: {float(i["event_frequency"]): _f(i["persons"]) for i in items}
            for band, items in by_band.items()
        }
        for band, items in by_band.items():  # the file's per-band totals agree with the split
            total = sum(k * (v or 0) for k, v in persons[band].items())
            assert total == float(items[0]["band_total_events"]), band
        result = dsr_nonindependent(
            _shuffled(persons, 1),
            _shuffled(population, 2),
            _shuffled(standard, 3),
            multiplier=multiplier,
            confidence=confidence,
        )
        assert result.method == "dobson_nonindependent"
    assert result.numerator == float(row["total_count"])
    assert result.denominator == float(row["total_pop"])
    # dsr_nonindependent expectations are printed to 8 decimals: 1e-9 relative still holds.
    assert_interval(result, row)


def _isr_id(row: dict[str, Any], _i: int) -> str:
    return f"{row['case_id']}:{row['area']}:{row['statistic']}x{row['scale']}@{row['confidence']}"


@pytest.mark.parametrize("row", _params("isr_indirect.csv", _isr_id))
def test_isr_vectors(row: dict[str, Any]) -> None:
    inputs = [r for r in _read("isr_inputs.csv") if r["area"] == row["area"]]
    observed = {_band(str(r["ageband"])): _f(r["count"]) for r in inputs}
    population = {_band(str(r["ageband"])): _f(r["pop"]) for r in inputs}
    ref_events = {_band(str(r["ageband"])): _f(r["refcount"]) for r in inputs}
    ref_pop = {_band(str(r["ageband"])): float(r["refpop"]) for r in inputs}  # type: ignore[arg-type]
    args = (
        _shuffled(observed, 4),
        _shuffled(population, 5),
        _shuffled(ref_events, 6),
        _shuffled(ref_pop, 7),
    )
    scale, confidence = float(row["scale"]), float(row["confidence"])
    if row["statistic"] == "isratio":
        result = indirectly_standardised_ratio(*args, multiplier=scale, confidence=confidence)
    else:
        result = indirectly_standardised_rate(*args, multiplier=scale, confidence=confidence)
        ref_rate = sum(v or 0 for v in ref_events.values()) / sum(ref_pop.values()) * scale
        assert_close(ref_rate, _f(row["ref_rate"]), REL, "ref_rate")
    assert_close(result.numerator, float(row["observed"]), REL, "observed")
    assert_close(result.denominator, float(row["expected"]), REL, "expected")
    assert_close(expected_events(population, ref_events, ref_pop), _f(row["expected"]), REL, "E")
    assert_interval(result, row)
    assert result.method == str(row["method"]).lower()


# --------------------------------------------------------------------------------------------
# Funnels
# --------------------------------------------------------------------------------------------


def _proportion_target(scenario: str) -> float:
    rows = _read("funnel_proportion_inputs.csv")
    if scenario == "axis_variation_subset":
        rows = [r for r in rows if r["in_axis_variation_subset"] == "1"]
    num = math.fsum(float(r["numerator"]) for r in rows)  # type: ignore[arg-type]
    den = math.fsum(float(r["denominator"]) for r in rows)  # type: ignore[arg-type]
    return num / den


def _funnel_prop_id(row: dict[str, Any], _i: int) -> str:
    return f"{row['scenario']}:n={row['population']}"


@pytest.mark.parametrize("row", _params("funnel_proportion_limits.csv", _funnel_prop_id))
def test_funnel_proportion_limit_vectors(row: dict[str, Any]) -> None:
    target = _proportion_target(row["scenario"])
    limits = funnel_limits_proportion(
        target, float(row["population"]), levels=(0.95, 0.998), multiplier=float(row["multiplier"])
    )
    rel = REL_FUNNEL_PROPORTION
    assert_close(limits.target, float(row["baseline"]), rel, "baseline")
    assert_close(limits.band(0.95).lower, float(row["lower_95"]), rel, "lower_95")
    assert_close(limits.band(0.95).upper, float(row["upper_95"]), rel, "upper_95")
    assert_close(limits.band(0.998).lower, float(row["lower_998"]), rel, "lower_998")
    assert_close(limits.band(0.998).upper, float(row["upper_998"]), rel, "upper_998")


UPSTREAM_LABELS = {
    ("higher", 0.998): "High (0.001)",
    ("higher", 0.95): "High (0.025)",
    ("lower", 0.998): "Low (0.001)",
    ("lower", 0.95): "Low (0.025)",
    ("similar", None): "Not significant",
}


def _label_from_interval(make: Any, target: float) -> str:
    """Upstream's label from the unit's own interval at 99.8 % and then 95 %."""
    for level in (0.998, 0.95):
        direction = compare_to_target(make(level), target)
        if direction != "similar":
            return UPSTREAM_LABELS[(direction, level)]
    return UPSTREAM_LABELS[("similar", None)]


@pytest.mark.parametrize(
    "row", _params("funnel_proportion_inputs.csv", lambda r, i: f"row{i + 2}:{r['area']}")
)
def test_funnel_proportion_significance_vectors(row: dict[str, Any]) -> None:
    target = _proportion_target("all_areas")
    n = float(row["denominator"])
    limits = funnel_limits_proportion(target, n)
    position = funnel_significance(float(row["numerator"]) / n, limits)
    assert UPSTREAM_LABELS[position] == row["expected_significance"]


def _ratio_limit_id(row: dict[str, Any], _i: int) -> str:
    return f"O={row['observed_events']}"


@pytest.mark.parametrize("row", _params("funnel_ratio_limits.csv", _ratio_limit_id))
def test_funnel_ratio_limit_vectors(row: dict[str, Any]) -> None:
    observed = float(row["observed_events"])
    counts = funnel_curve_ratio(observed, levels=(0.95, 0.998), multiplier=1)
    isrs = funnel_curve_ratio(observed, levels=(0.95, 0.998), multiplier=100)
    rel = REL_FUNNEL_POISSON
    for level, tag in ((0.95, "95"), (0.998, "998")):
        band, isr = counts.band(level), isrs.band(level)
        assert band.lower is not None
        assert band.upper is not None
        assert_close(band.lower_denominator, float(row[f"lower_{tag}_exp_events"]), rel, tag)
        assert_close(band.upper_denominator, float(row[f"upper_{tag}_exp_events"]), rel, tag)
        # The "count" columns are the ratio minus 1 (relative excess), "isr" the ratio x 100.
        assert_close(band.lower - 1, float(row[f"lower_{tag}_count"]), rel, f"lower_{tag}_count")
        assert_close(band.upper - 1, float(row[f"upper_{tag}_count"]), rel, f"upper_{tag}_count")
        assert_close(isr.lower, float(row[f"lower_{tag}_isr"]), rel, f"lower_{tag}_isr")
        assert_close(isr.upper, float(row[f"upper_{tag}_isr"]), rel, f"upper_{tag}_isr")


@pytest.mark.parametrize("row", _params("funnel_ratio_inputs.csv"))
def test_funnel_ratio_significance_vectors(row: dict[str, Any]) -> None:
    observed, expected = float(row["observed"]), float(row["expected"])
    label = _label_from_interval(
        lambda level: rate_interval(observed, expected, multiplier=1, confidence=level), 1.0
    )
    assert label == row["expected_significance"]


def _rate_average(scenario: str) -> float:
    """Upstream's pooled rate for a scenario (per unit, not per multiplier)."""
    multiplier = 100000.0
    rows = [r for r in _read("funnel_rate_limits_inputs.csv") if r["scenario"] == scenario]
    events, denominators = [], []
    for r in rows:
        ev, rate = float(r["ev"]), float(r["rate"])  # type: ignore[arg-type]
        events.append(ev)
        if r["denominator"] is not None:
            denominators.append(float(r["denominator"]))
        elif ev > 0:
            denominators.append(multiplier * ev / rate)
    return math.fsum(events) / math.fsum(denominators)


def _rate_limit_id(row: dict[str, Any], _i: int) -> str:
    return f"{row['scenario']}:events={row['events']}"


@pytest.mark.parametrize("row", _params("funnel_rate_limits.csv", _rate_limit_id))
def test_funnel_rate_limit_vectors(row: dict[str, Any]) -> None:
    multiplier = float(row["multiplier"])
    target = _rate_average(row["scenario"]) * multiplier
    rel = REL_FUNNEL_POISSON
    assert_close(target, float(row["baseline"]), rel, "baseline")
    curve = funnel_curve_rate(
        target,
        float(row["events"]),
        levels=(0.95, 0.998),
        multiplier=multiplier,
        years_of_data=float(row["years_of_data"]),
    )
    for level, tag in ((0.95, "95"), (0.998, "998")):
        band = curve.band(level)
        for side in ("lower", "upper"):
            assert_close(
                getattr(band, f"{side}_denominator"),
                float(row[f"{side}_{tag}_population_1_year"]),
                rel,
                f"{side}_{tag}_population_1_year",
            )
            assert_close(
                getattr(band, side), float(row[f"{side}_{tag}_limit"]), rel, f"{side}_{tag}_limit"
            )


def _rate_point_id(row: dict[str, Any], i: int) -> str:
    return f"{row['scenario']}:row{i + 2}:ev={row['ev']}"


@pytest.mark.parametrize("row", _params("funnel_rate_points.csv", _rate_point_id))
def test_funnel_rate_point_vectors(row: dict[str, Any]) -> None:
    rate_chart, denominator = funnel_point_rate(
        float(row["ev"]),
        _f(row["rate"]),
        float(row["multiplier"]),
        denominator=_f(row["denominator"]),
        standardised=row["rate_type"] == "dsr",
        years_of_data=float(row["years_of_data"]),
    )
    # Expectations are printed to ten significant digits.
    assert_close(rate_chart, _f(row["expected_rate_chart"]), 1e-9, "rate_chart")
    assert_close(denominator, _f(row["expected_denominator_derived"]), 1e-9, "denominator")


RATE_SIGNIFICANCE_COLUMNS = [
    (kind, per, zeros)
    for kind in ("dsr", "crude")
    for per in ("100000", "100")
    for zeros in ("with_0", "without_0")
]


def _rate_significance_params() -> list[Any]:
    if not STATS_DIR.is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING_REASON))]
    rows = _read("funnel_rate_significance_inputs.csv")
    return [
        pytest.param(i, column, id=f"row{i + 2}:{'_'.join(column)}")
        for column in RATE_SIGNIFICANCE_COLUMNS
        for i in range(len(rows))
        if not (column[2] == "without_0" and rows[i]["count"] == "0")
    ]


@pytest.mark.parametrize(("index", "column"), _rate_significance_params())
def test_funnel_rate_significance_vectors(index: int, column: tuple[str, str, str]) -> None:
    kind, per, zeros = column
    multiplier = float(per)
    rows = _read("funnel_rate_significance_inputs.csv")
    keep = [r for r in rows if r["count"] != "0"] if zeros == "without_0" else rows
    rate_field = "rate_dsr" if kind == "dsr" else f"rate_crude_per_{per}"

    def derived(r: dict[str, Any]) -> float | None:
        count = float(r["count"])
        if count == 0:
            return None if kind == "dsr" else float(r["pop"])
        return count / float(r[rate_field]) * multiplier

    denominators = [derived(r) for r in keep]
    average = math.fsum(_figure(r["count"]) for r in keep) / math.fsum(
        d for d in denominators if d is not None
    )
    row = rows[index]
    expected = row[f"expected_sig_{kind}_per_{per}_{zeros}"]
    count = _figure(row["count"])
    if kind == "dsr" and count < 10:
        assert expected == "Not applicable for events less than 10 for dsrs"
        return
    denominator = derived(row)
    assert denominator is not None
    label = _label_from_interval(
        lambda level: rate_interval(count, denominator, multiplier=1, confidence=level), average
    )
    assert label == expected


# --------------------------------------------------------------------------------------------
# Edge cases and properties (hand-made)
# --------------------------------------------------------------------------------------------


def test_wilson_zero_of_n() -> None:
    result = wilson(0, 40)
    assert result.value == 0
    assert result.lower == 0
    assert result.upper is not None
    assert 0 < result.upper < 0.1


def test_wilson_n_of_n() -> None:
    result = wilson(40, 40)
    assert result.value == 1
    assert result.upper == 1
    assert result.lower is not None
    assert 0.9 < result.lower < 1


def test_wilson_zero_denominator_has_no_value() -> None:
    result = wilson(0, 0)
    assert (result.value, result.lower, result.upper) == (None, None, None)
    assert (result.numerator, result.denominator) == (0, 0)


def test_wilson_rejects_impossible_input() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        wilson(5, 4)
    with pytest.raises(ValueError, match=">= 0"):
        wilson(-1, 4)


@pytest.mark.parametrize("confidence", [0, 1, 95, -0.5])
def test_confidence_must_be_a_fraction(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson(1, 10, confidence=confidence)


def test_higher_confidence_is_wider() -> None:
    narrow, wide = wilson(20, 100, 0.95), wilson(20, 100, 0.998)
    assert wide.lower < narrow.lower < narrow.value < narrow.upper < wide.upper  # type: ignore[operator]
    narrow, wide = rate_interval(20, 1000, 1000, 0.95), rate_interval(20, 1000, 1000, 0.998)
    assert wide.lower < narrow.lower < narrow.upper < wide.upper  # type: ignore[operator]
    assert wide.confidence == 0.998


def test_rate_zero_events() -> None:
    result = rate_interval(0, 2000, multiplier=1000)
    assert result.value == 0
    assert result.lower == 0
    assert result.method == "exact"
    # Exact upper limit for 0 events is -ln(alpha/2) = 3.6889 events.
    assert result.upper == pytest.approx(-math.log(0.025) / 2000 * 1000, rel=1e-12)


def test_rate_zero_denominator() -> None:
    result = rate_interval(3, 0)
    assert (result.value, result.lower, result.upper) == (None, None, None)


def test_rate_method_switches_between_9_and_10_events() -> None:
    nine, ten = rate_interval(9, 1000, 1000), rate_interval(10, 1000, 1000)
    assert nine.method == "exact"
    assert ten.method == "byars"
    # Byar's is close to exact at the switch, so the limits still increase with the count.
    assert nine.lower < ten.lower  # type: ignore[operator]
    assert nine.upper < ten.upper  # type: ignore[operator]
    exact_ten_upper = count_interval(9.999999, 0.95).upper
    assert ten.upper == pytest.approx(exact_ten_upper, rel=2e-3)  # type: ignore[union-attr]


def test_count_interval_matches_chi_square() -> None:
    from scipy.stats import chi2

    result = count_interval(4, 0.998)
    assert result.lower == pytest.approx(chi2.ppf(0.001, 8) / 2, rel=1e-12)
    assert result.upper == pytest.approx(chi2.ppf(0.999, 10) / 2, rel=1e-12)


def test_byars_zero_events_has_no_lower_limit() -> None:
    result = byars(0)
    assert result.lower is None
    assert result.upper == pytest.approx((1 - 1 / 9 + 1.959963984540054 / 3) ** 3, rel=1e-12)


def test_mean_small_samples() -> None:
    empty = mean_interval([])
    assert (empty.value, empty.lower, empty.upper) == (None, None, None)
    single = mean_interval([4.0])
    assert single.value == 4
    assert (single.lower, single.upper) == (None, None)
    with pytest.raises(ValueError, match="missing"):
        mean_interval([1.0, float("nan")])


def test_mean_three_values_are_values_not_a_summary() -> None:
    result = mean_interval((3, 10.0, 2.0))
    assert result.value == pytest.approx(5.0)
    assert result.denominator == 3


BANDS = ["0-17", "18-64", "65+"]


def test_dsr_below_ten_events_is_not_calculated() -> None:
    result = dsr(
        {"0-17": 2, "18-64": 4, "65+": 3}, dict.fromkeys(BANDS, 1000), dict.fromkeys(BANDS, 1)
    )
    assert (result.value, result.lower, result.upper) == (None, None, None)
    assert result.numerator == 9


def test_dsr_with_equal_rates_is_the_crude_rate() -> None:
    result = dsr(
        {"0-17": 10, "18-64": 20, "65+": 30},
        {"0-17": 1000, "18-64": 2000, "65+": 3000},
        {"0-17": 5, "18-64": 3, "65+": 2},
        multiplier=1000,
    )
    assert result.value == pytest.approx(10.0)
    assert result.lower < 10 < result.upper  # type: ignore[operator]


def test_dsr_joins_on_keys_and_rejects_unknown_strata() -> None:
    pop = {"0-17": 1000, "18-64": 2000, "65+": 3000}
    std = {"0-17": 5, "18-64": 3, "65+": 2}
    one = dsr({"0-17": 10, "18-64": 30, "65+": 60}, pop, std)
    two = dsr({"65+": 60, "0-17": 10, "18-64": 30}, dict(reversed(pop.items())), std)
    assert one == two
    with pytest.raises(ValueError, match="unknown strata"):
        dsr({"0-17": 10, "18-46": 30}, pop, std)
    with pytest.raises(ValueError, match="strata differ"):
        dsr({}, {"0-17": 1000}, std)
    with pytest.raises(ValueError, match="> 0"):
        dsr({"0-17": 10}, {**pop, "65+": 0}, std)


def test_dsr_nonindependent_with_single_events_equals_independent() -> None:
    pop = {"0-17": 1000, "18-64": 2000, "65+": 3000}
    std = {"0-17": 5, "18-64": 3, "65+": 2}
    events = {"0-17": 10, "18-64": 30, "65+": 60}
    independent = dsr(events, pop, std)
    single = dsr_nonindependent({k: {1: v} for k, v in events.items()}, pop, std)
    assert single.value == pytest.approx(independent.value, rel=1e-15)
    assert single.lower == pytest.approx(independent.lower, rel=1e-15)
    repeated = dsr_nonindependent({k: {2: v / 2} for k, v in events.items()}, pop, std)
    assert repeated.value == pytest.approx(independent.value, rel=1e-15)
    assert repeated.lower < independent.lower  # type: ignore[operator]


def test_isr_zero_expected_has_no_value() -> None:
    result = indirectly_standardised_ratio({"a": 3}, {"a": 0}, {"a": 5}, {"a": 100})
    assert result.value is None
    assert result.denominator == 0


def test_funnel_proportion_clips_at_the_multiplier_not_at_100() -> None:
    # Upstream clips at 100 whatever the multiplier; per 1,000 that would cut the funnel at
    # 10 % and per 1 never clip at all.
    per_thousand = funnel_limits_proportion(0.5, 2, multiplier=1000).band(0.998)
    assert per_thousand.upper == 1000
    assert per_thousand.lower == 0
    fraction = funnel_limits_proportion(0.5, 2, multiplier=1).band(0.95)
    assert fraction.upper == 1
    wide = funnel_limits_proportion(0.5, 10_000, multiplier=1000).band(0.95)
    assert 490 < wide.lower < 500 < wide.upper < 510  # type: ignore[operator]


def test_funnel_zero_denominator_is_not_compared() -> None:
    for limits in (
        funnel_limits_proportion(0.3, 0),
        funnel_limits_rate(20, 0),
        funnel_limits_ratio(0),
    ):
        assert all(b.lower is None and b.upper is None for b in limits.bands)
        assert compare_to_limits(0.0, limits) == "not_compared"
        assert classify(0.0, limits, "higher_better") == "not_compared"
        assert funnel_significance(0.0, limits) == ("not_compared", None)


@pytest.mark.parametrize("mu", [0.3, 2.0, 7.5, 40.0, 600.0])
@pytest.mark.parametrize("level", [0.95, 0.998])
def test_exact_rate_funnel_agrees_with_exact_intervals(mu: float, level: float) -> None:
    """A count is outside the funnel around mu exactly when mu is outside its exact interval."""
    denominator = 1000.0
    limits = funnel_limits_rate(mu, denominator, levels=(level,), multiplier=denominator)
    for observed in range(0, int(mu * 3 + 15)):
        by_funnel = compare_to_limits(float(observed), limits, level)
        exact = count_interval(observed, level)
        if observed >= 10:  # count_interval switches to Byar's; compare with exact limits
            from scipy.stats import chi2

            alpha = 1 - level
            exact = Interval(
                observed,
                chi2.ppf(alpha / 2, 2 * observed) / 2,
                chi2.ppf(1 - alpha / 2, 2 * observed + 2) / 2,
                observed,
                None,
                level,
                "exact",
            )
        assert by_funnel == compare_to_target(exact, mu), observed


def test_rate_funnel_limits_meet_the_curves() -> None:
    """funnel_limits_rate at the curve's denominator returns the curve's limit."""
    curve = funnel_curve_rate(116.17, 25, multiplier=100000)
    for band in curve.bands:
        at_lower = funnel_limits_rate(116.17, band.lower_denominator, multiplier=100000)  # type: ignore[arg-type]
        at_upper = funnel_limits_rate(116.17, band.upper_denominator, multiplier=100000)  # type: ignore[arg-type]
        assert at_lower.band(band.level).lower == pytest.approx(band.lower, rel=1e-9)
        assert at_upper.band(band.level).upper == pytest.approx(band.upper, rel=1e-9)
    ratio_curve = funnel_curve_ratio(25)
    for band in ratio_curve.bands:
        limits = funnel_limits_ratio(band.lower_denominator)  # type: ignore[arg-type]
        assert limits.band(band.level).lower == pytest.approx(band.lower, rel=1e-9)


def test_funnel_rate_small_expected_has_zero_lower_limit() -> None:
    limits = funnel_limits_rate(1.0, 1000, multiplier=1000)  # one expected event
    assert limits.band(0.95).lower == 0
    assert limits.band(0.95).upper > 1  # type: ignore[operator]


@pytest.mark.parametrize(
    ("polarity", "above", "below"),
    [
        ("higher_better", "better", "worse"),
        ("lower_better", "worse", "better"),
        ("none", "higher", "lower"),
    ],
)
def test_classify_polarity(polarity: str, above: str, below: str) -> None:
    limits = funnel_limits_proportion(0.6, 200, multiplier=100)
    assert classify(95.0, limits, polarity) == above  # type: ignore[arg-type]
    assert classify(20.0, limits, polarity) == below  # type: ignore[arg-type]
    assert classify(60.0, limits, polarity) == "similar"  # type: ignore[arg-type]
    assert classify(None, limits, polarity) == "not_compared"  # type: ignore[arg-type]
    unit = wilson(190, 200, multiplier=100)
    assert classify(unit, 60.0, polarity) == above  # type: ignore[arg-type]
    assert classify(wilson(0, 0), 60.0, polarity) == "not_compared"  # type: ignore[arg-type]


def test_classify_level_and_funnel_significance() -> None:
    limits = funnel_limits_proportion(0.6, 400)
    inner = limits.band(0.95)
    outer = limits.band(0.998)
    between = (inner.upper + outer.upper) / 2  # type: ignore[operator]
    assert classify(between, limits, "higher_better") == "similar"  # 99.8 % by default
    assert classify(between, limits, "higher_better", level=0.95) == "better"
    assert funnel_significance(between, limits) == ("higher", 0.95)
    assert funnel_significance(outer.upper + 0.01, limits) == ("higher", 0.998)  # type: ignore[operator]
    assert funnel_significance(0.6, limits) == ("similar", None)


def test_classify_rejects_mixed_inputs() -> None:
    limits = funnel_limits_proportion(0.6, 400)
    with pytest.raises(ValueError, match="polarity"):
        classify(0.5, limits, "up")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        classify(wilson(1, 2), limits, "none")
    with pytest.raises(TypeError):
        classify(0.5, 0.6, "none")  # type: ignore[arg-type]
    assert isinstance(limits, FunnelLimits)
