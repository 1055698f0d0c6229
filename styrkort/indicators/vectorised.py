"""The statistics of :mod:`styrkort.indicators.statistics`, on numpy arrays.

One engine run produces some 300,000 result cells; calling the scalar functions cell by cell
would spend most of the run in the Python interpreter. These functions apply *the same
formulas* to whole columns at once. They are not a second implementation to be trusted on
their own: ``tests/test_vectorised.py`` checks every one of them against the scalar function
it mirrors (and its edge cases: 0 of n, n of n, n = 0, 0 events, 9 vs 10 events, a zero or
full region proportion) so that a figure is the same whichever path computed it.

Conventions: inputs are float arrays in which ``NaN`` means missing; outputs are float arrays
with ``NaN`` where the scalar function returns ``None``. Comparisons return object arrays of
the judgement strings of :func:`statistics.classify`.
"""

from __future__ import annotations

import numpy as np

from styrkort.indicators.statistics import EXACT_POISSON_BELOW

__all__ = [
    "classify_mean",
    "classify_proportion",
    "classify_rate",
    "judge",
    "mean_interval",
    "rate_interval",
    "wilson",
]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _z(confidence: float) -> float:
    from scipy import stats  # on first use, as in statistics._z

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _f(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def wilson(x, n, confidence: float = 0.95, multiplier: float = 1) -> Arrays:
    """:func:`statistics.wilson` on arrays: value, lower, upper (NaN where n is 0 or missing)."""
    x, n = _f(x), _f(n)
    z = _z(confidence)
    ok = np.isfinite(x) & np.isfinite(n) & (n > 0)
    if np.any(ok & ((x < 0) | (x > n))):
        raise ValueError("numerator outside 0..denominator for a proportion")
    safe_n = np.where(ok, n, 1.0)
    safe_x = np.where(ok, x, 0.0)
    root = z * np.sqrt(z**2 + 4 * safe_x * (1 - safe_x / safe_n))
    lower = np.maximum(0.0, (2 * safe_x + z**2 - root) / 2 / (safe_n + z**2))
    upper = np.minimum(1.0, (2 * safe_x + z**2 + root) / 2 / (safe_n + z**2))
    nan = np.nan
    return (
        np.where(ok, safe_x / safe_n * multiplier, nan),
        np.where(ok, lower * multiplier, nan),
        np.where(ok, upper * multiplier, nan),
    )


def _exact_lower(x: np.ndarray, confidence: float) -> np.ndarray:
    from scipy import stats

    alpha = 1 - confidence
    with np.errstate(invalid="ignore"):
        low = stats.chi2.ppf(alpha / 2, 2 * x) / 2
    return np.where(x == 0, 0.0, low)


def _exact_upper(x: np.ndarray, confidence: float) -> np.ndarray:
    from scipy import stats

    alpha = 1 - confidence
    return stats.chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2


def count_limits(x, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Poisson limits of counts: exact below 10 events, Byar's from 10 (NaN lower = None)."""
    x = _f(x)
    z = _z(confidence)
    safe = np.where(np.isfinite(x) & (x >= 0), x, 0.0)
    exact = safe < EXACT_POISSON_BELOW
    with np.errstate(divide="ignore", invalid="ignore"):
        byars_low = safe * (1 - 1 / (9 * safe) - z / (3 * np.sqrt(safe))) ** 3
        byars_low = np.where((safe > 0) & (byars_low >= 0), byars_low, np.nan)
    byars_up = (safe + 1) * (1 - 1 / (9 * (safe + 1)) + z / (3 * np.sqrt(safe + 1))) ** 3
    lower = np.where(exact, _exact_lower(safe, confidence), byars_low)
    upper = np.where(exact, _exact_upper(safe, confidence), byars_up)
    missing = ~np.isfinite(x)
    return np.where(missing, np.nan, lower), np.where(missing, np.nan, upper)


def rate_interval(x, n, multiplier: float = 1000, confidence: float = 0.95) -> Arrays:
    """:func:`statistics.rate_interval` on arrays (NaN where n is 0 or missing)."""
    x, n = _f(x), _f(n)
    if np.any(np.isfinite(x) & (x < 0)) or np.any(np.isfinite(n) & (n < 0)):
        raise ValueError("counts and denominators must be >= 0")
    ok = np.isfinite(x) & np.isfinite(n) & (n > 0)
    lower, upper = count_limits(np.where(ok, x, 0.0), confidence)
    safe_n = np.where(ok, n, 1.0)
    nan = np.nan
    return (
        np.where(ok, x / safe_n * multiplier, nan),
        np.where(ok, lower / safe_n * multiplier, nan),
        np.where(ok, upper / safe_n * multiplier, nan),
    )


def mean_interval(n, mean, sd, confidence: float = 0.95, multiplier: float = 1) -> Arrays:
    """:func:`statistics.mean_interval` from summaries (n, mean, SD with n - 1) on arrays.

    n = 0 gives NaN throughout; n = 1 gives the mean without limits, as the scalar function.
    """
    from scipy import stats

    n, mean, sd = _f(n), _f(mean), _f(sd)
    ok = np.isfinite(n) & (n > 0) & np.isfinite(mean)
    limits = ok & (n > 1) & np.isfinite(sd)
    dof = np.where(limits, n - 1, 1.0)
    half = (
        stats.t.ppf(0.5 + confidence / 2, dof)
        * np.where(limits, sd, 0.0)
        / np.sqrt(np.where(limits, n, 1.0))
    )
    nan = np.nan
    return (
        np.where(ok, mean * multiplier, nan),
        np.where(limits, (mean - half) * multiplier, nan),
        np.where(limits, (mean + half) * multiplier, nan),
    )


_JUDGEMENTS = {
    "higher_better": {"higher": "better", "lower": "worse"},
    "lower_better": {"higher": "worse", "lower": "better"},
    "none": {"higher": "higher", "lower": "lower"},
}


def judge(direction: np.ndarray, polarity: str) -> np.ndarray:
    """Map directions (higher/similar/lower/not_compared) to judgements as ``classify`` does."""
    if polarity not in _JUDGEMENTS:
        raise ValueError(f"unknown polarity {polarity!r}")
    mapping = _JUDGEMENTS[polarity]
    out = direction.astype(object).copy()
    for src, dst in mapping.items():
        out[direction == src] = dst
    return out


def _directions(higher: np.ndarray, lower: np.ndarray, compared: np.ndarray) -> np.ndarray:
    out = np.full(higher.shape, "similar", dtype=object)
    out[lower] = "lower"
    out[higher] = "higher"
    out[~compared] = "not_compared"
    return out


def classify_proportion(x, n, target_p, polarity: str, level: float = 0.998) -> np.ndarray:
    """Funnel class of proportions ``x / n`` against ``target_p`` (a fraction, per cell).

    Same decision as ``classify(value, funnel_limits_proportion(target_p, n), polarity,
    level)``: strictly outside ``target_p -/+ z sqrt(target_p (1 - target_p) / n)``, with the
    limits clipped to [0, 1]. No denominator or no target: not compared.
    """
    x, n, p = _f(x), _f(n), _f(target_p)
    z = _z(level)
    compared = np.isfinite(x) & np.isfinite(n) & (n > 0) & np.isfinite(p)
    safe_n = np.where(compared, n, 1.0)
    safe_p = np.clip(np.where(compared, p, 0.0), 0.0, 1.0)
    se = np.sqrt(safe_p * (1 - safe_p) / safe_n)
    value = np.where(compared, x, 0.0) / safe_n
    low = np.maximum(0.0, safe_p - z * se)
    high = np.minimum(1.0, safe_p + z * se)
    return judge(_directions(value > high, value < low, compared), polarity)


def classify_rate(x, n, target_rate, multiplier: float, polarity: str, level: float = 0.998):
    """Funnel class of crude rates ``x / n * multiplier`` against ``target_rate`` (per cell).

    ``funnel_limits_rate`` draws exact Poisson limits around ``mu = target / multiplier * n``
    expected events, and a unit is outside them exactly when ``mu`` lies outside the exact
    interval of its own count (its docstring proves the equivalence). That form needs no
    root finding, so it vectorises: higher when the exact lower limit of ``x`` exceeds ``mu``,
    lower when the exact upper limit is below it.
    """
    x, n, rate = _f(x), _f(n), _f(target_rate)
    compared = np.isfinite(x) & np.isfinite(n) & (n > 0) & np.isfinite(rate)
    safe_x = np.where(compared, x, 0.0)
    mu = np.where(compared, rate, 0.0) / multiplier * np.where(compared, n, 0.0)
    higher = _exact_lower(safe_x, level) > mu
    lower = _exact_upper(safe_x, level) < mu
    return judge(_directions(higher, lower, compared), polarity)


def classify_mean(n, mean, target_mean, target_sd, polarity: str, level: float = 0.998):
    """Funnel class of means: outside ``target -/+ z * target_sd / sqrt(n)`` (normal funnel).

    ``statistics.py`` has no funnel for means; this is Spiegelhalter's normal-approximation
    funnel with the region's standard deviation (documented in ``docs/indicators.md``).
    """
    n, mean, target, sd = _f(n), _f(mean), _f(target_mean), _f(target_sd)
    z = _z(level)
    compared = np.isfinite(n) & (n > 0) & np.isfinite(mean) & np.isfinite(target) & np.isfinite(sd)
    half = z * np.where(compared, sd, 0.0) / np.sqrt(np.where(compared, n, 1.0))
    safe_mean = np.where(compared, mean, 0.0)
    safe_target = np.where(compared, target, 0.0)
    higher = safe_mean > safe_target + half
    lower = safe_mean < safe_target - half
    return judge(_directions(higher, lower, compared), polarity)
