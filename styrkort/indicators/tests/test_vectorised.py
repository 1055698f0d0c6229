"""The column-wise statistics give the same figures and classes as the scalar functions of
statistics.py, including the edge cases (0 of n, n of n, n = 0, 0 events, 9 vs 10 events)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from styrkort.indicators import statistics as st
from styrkort.indicators import vectorised as vs


def close(a: float, b: float | None) -> bool:
    if b is None:
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def _cases(seed=4):
    rng = random.Random(seed)
    pairs = [(0, 10), (10, 10), (0, 0), (1, 1), (9, 40), (10, 40), (3, 7)]
    pairs += [(rng.randint(0, n), n) for n in (rng.randint(1, 3000) for _ in range(200))]
    return pairs


@pytest.mark.parametrize("confidence", [0.95, 0.998])
def test_it_matches_wilson(confidence):
    x, n = map(np.array, zip(*_cases(), strict=True))
    value, lower, upper = vs.wilson(x, n, confidence, 100)
    for i, (xi, ni) in enumerate(_cases()):
        ref = st.wilson(xi, ni, confidence, 100)
        assert close(value[i], ref.value)
        assert close(lower[i], ref.lower)
        assert close(upper[i], ref.upper)


@pytest.mark.parametrize("confidence", [0.95, 0.998])
def test_it_matches_rate_intervals_on_both_sides_of_the_method_switch(confidence):
    counts = [0, 1, 5, 9, 10, 11, 50, 400, 3000]
    x = np.array([c for c in counts for _ in range(3)], dtype=float)
    n = np.array([d for _ in counts for d in (0, 1000, 25000.5)], dtype=float)
    value, lower, upper = vs.rate_interval(x, n, 1000, confidence)
    for i in range(len(x)):
        ref = st.rate_interval(x[i], n[i], 1000, confidence)
        assert close(value[i], ref.value)
        assert close(lower[i], ref.lower)
        assert close(upper[i], ref.upper)


def test_it_matches_mean_intervals():
    rng = random.Random(7)
    samples = [[], [3.0], [1.0, 2.0]] + [
        [rng.gauss(10, 4) for _ in range(rng.randint(2, 60))] for _ in range(30)
    ]
    n = np.array([len(s) for s in samples], dtype=float)
    mean = np.array([sum(s) / len(s) if s else np.nan for s in samples])
    sd = np.array([np.std(s, ddof=1) if len(s) > 1 else np.nan for s in samples])
    value, lower, upper = vs.mean_interval(n, mean, sd)
    for i, s in enumerate(samples):
        ref = st.mean_interval(s)
        assert math.isclose(value[i], ref.value, rel_tol=1e-9) if s else math.isnan(value[i])
        assert close(lower[i], ref.lower) or math.isclose(lower[i], ref.lower, rel_tol=1e-9)
        assert close(upper[i], ref.upper) or math.isclose(upper[i], ref.upper, rel_tol=1e-9)


@pytest.mark.parametrize("polarity", ["higher_better", "lower_better", "none"])
def test_it_classes_proportions_as_the_funnel_does(polarity):
    rng = random.Random(11)
    rows = [(0, 50, 0.0), (50, 50, 1.0), (3, 50, 0.0), (10, 0, 0.3), (0, 40, 0.3)]
    rows += [
        (rng.randint(0, n), n, rng.random()) for n in (rng.randint(1, 500) for _ in range(300))
    ]
    x, n, p = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    got = vs.classify_proportion(x, n, p, polarity)
    for i, (xi, ni, pi) in enumerate(rows):
        value = xi / ni * 100 if ni else None
        ref = st.classify(value, st.funnel_limits_proportion(pi, ni, multiplier=100), polarity)
        assert got[i] == ref, (xi, ni, pi)


@pytest.mark.parametrize("polarity", ["higher_better", "lower_better", "none"])
def test_it_classes_rates_as_the_exact_poisson_funnel_does(polarity):
    rng = random.Random(12)
    rows = [(0, 1000, 2.0), (0, 0, 2.0), (0, 5000, 0.0), (3, 5000, 0.0), (9, 1000, 4.0)]
    rows += [
        (rng.randint(0, 60), rng.choice([500, 2000, 7000.5]), rng.uniform(0.5, 12))
        for _ in range(150)
    ]
    x, n, rate = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    got = vs.classify_rate(x, n, rate, 1000, polarity)
    for i, (xi, ni, ri) in enumerate(rows):
        value = xi / ni * 1000 if ni else None
        ref = st.classify(value, st.funnel_limits_rate(ri, ni), polarity)
        assert got[i] == ref, (xi, ni, ri)


def test_it_does_not_compare_without_a_target_or_denominator():
    got = vs.classify_proportion([1, 1], [0, 10], [0.5, np.nan], "higher_better")
    assert list(got) == ["not_compared", "not_compared"]
    got = vs.classify_mean([0, 10], [1.0, 5.0], [1.0, 5.0], [np.nan, 1.0], "lower_better")
    assert list(got) == ["not_compared", "similar"]


def test_it_classes_means_against_a_normal_funnel():
    got = vs.classify_mean([100, 100, 4], [12.0, 8.0, 12.0], [10.0] * 3, [4.0] * 3, "lower_better")
    # z(99.8 %) * 4 / sqrt(100) = 1.24: 12 and 8 lie outside, 12 of 4 inside (+/- 6.2).
    assert list(got) == ["worse", "better", "similar"]


def test_it_matches_count_limits():
    x = np.array([0, 1, 9, 10, 100], dtype=float)
    lower, upper = vs.count_limits(x)
    for i, xi in enumerate(x):
        ref = st.count_interval(xi)
        assert close(lower[i], ref.lower)
        assert close(upper[i], ref.upper)
