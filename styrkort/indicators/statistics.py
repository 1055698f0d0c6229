"""Indicator statistics: point estimates, confidence intervals and funnel-plot limits.

Plain functions over plain numbers (no Django, no database) so that the indicator engine,
exports and tests can all call the same code. The methods follow public-health practice as
implemented in the UK package PHEindicatormethods (the package behind Fingertips), and are
tested against that package's reference vectors; see ``docs/statistics.md`` for the formulas,
references and the places where Styrkort deliberately differs.

Conventions used throughout:

* ``confidence`` is a two-sided level strictly between 0 and 1 (0.95, 0.998), never a
  percentage; ``alpha = 1 - confidence``.
* ``multiplier`` scales values and limits (1 = fraction, 100 = per cent, 1000 = per 1,000).
* A missing input (``None`` or NaN) gives a result whose value and limits are all ``None``,
  never an exception, because missing figures are normal in registers. Impossible input
  (negative counts, a numerator above its denominator for a proportion) raises ``ValueError``.
* Statistics are floats. Money is never computed here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DSR_MIN_COUNT",
    "EXACT_POISSON_BELOW",
    "Direction",
    "FunnelBand",
    "FunnelCurve",
    "FunnelCurveBand",
    "FunnelLimits",
    "Interval",
    "Judgement",
    "Polarity",
    "SampleSummary",
    "byars",
    "classify",
    "compare_to_limits",
    "compare_to_target",
    "count_interval",
    "dsr",
    "dsr_nonindependent",
    "expected_events",
    "funnel_curve_rate",
    "funnel_curve_ratio",
    "funnel_limits_proportion",
    "funnel_limits_rate",
    "funnel_limits_ratio",
    "funnel_point_rate",
    "funnel_significance",
    "indirectly_standardised_rate",
    "indirectly_standardised_ratio",
    "mean_interval",
    "rate_interval",
    "wilson",
]

#: Counts below this use exact Poisson limits; from here on Byar's approximation is used.
#: Same switch as PHEindicatormethods (and Fingertips): Byar's is accurate from about 10 events.
EXACT_POISSON_BELOW = 10

#: Directly standardised rates (and their limits) are not calculated below this total count,
#: as in PHEindicatormethods: with so few events the Dobson interval is unreliable.
DSR_MIN_COUNT = 10

Polarity = Literal["higher_better", "lower_better", "none"]
Direction = Literal["higher", "similar", "lower", "not_compared"]
Judgement = Literal["better", "similar", "worse", "not_compared", "higher", "lower"]


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, on the ``multiplier`` scale.

    ``numerator`` and ``denominator`` are kept as given (for a DSR: total events and total
    population; for an indirectly standardised ratio: observed and expected events; for a
    mean: the sum and the number of values) so that disclosure control and exports can use
    the same object. ``value``/``lower``/``upper`` are ``None`` when they cannot be
    calculated (missing input, zero denominator, too few events for a DSR).
    """

    value: float | None
    lower: float | None
    upper: float | None
    numerator: float | None
    denominator: float | None
    confidence: float
    method: str
    multiplier: float = 1


@dataclass(frozen=True)
class SampleSummary:
    """Summary of a sample for :func:`mean_interval`: size, mean and SD (with ``n - 1``).

    A separate type (rather than a bare ``(n, mean, sd)`` tuple) so that a three-value sample
    can never be mistaken for a summary.
    """

    n: int
    mean: float
    sd: float


@dataclass(frozen=True)
class FunnelBand:
    """Control limits at one level (e.g. 0.95 or 0.998) on the ``multiplier`` scale."""

    level: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class FunnelLimits:
    """Funnel-plot control limits around ``target`` for one unit size.

    ``denominator`` is what the limits depend on: the denominator of a proportion, the
    person-time of a rate, or the expected count of a standardised ratio. A zero denominator
    gives bands without limits, so the unit is "not compared".
    """

    target: float
    denominator: float
    bands: tuple[FunnelBand, ...]

    def band(self, level: float) -> FunnelBand:
        """Return the band at ``level``; ``KeyError`` if it was not calculated."""
        for band in self.bands:
            if math.isclose(band.level, level, rel_tol=0, abs_tol=1e-12):
                return band
        raise KeyError(f"no funnel band at level {level}")


@dataclass(frozen=True)
class FunnelCurveBand:
    """One level of a funnel curve drawn through a given event count.

    On the lower curve, ``events`` lie exactly on the lower limit when the denominator (or
    expected count) is ``lower_denominator``; the limit there is ``lower``. Likewise upper.
    """

    level: float
    lower: float | None
    lower_denominator: float | None
    upper: float | None
    upper_denominator: float | None


@dataclass(frozen=True)
class FunnelCurve:
    """Points of exact Poisson funnel curves parameterised by event count (for plotting)."""

    events: float
    target: float
    bands: tuple[FunnelCurveBand, ...]

    def band(self, level: float) -> FunnelCurveBand:
        """Return the band at ``level``; ``KeyError`` if it was not calculated."""
        for band in self.bands:
            if math.isclose(band.level, level, rel_tol=0, abs_tol=1e-12):
                return band
        raise KeyError(f"no funnel band at level {level}")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile, e.g. 1.959964 for 0.95."""
    # scipy is imported on first use: at module level it added 1.3 s to every process that
    # starts Django (every command and test worker), most of which never compute an interval.
    from scipy import stats

    return float(stats.norm.ppf(0.5 + _check_confidence(confidence) / 2))


def _empty(
    numerator: float | None,
    denominator: float | None,
    confidence: float,
    method: str,
    multiplier: float,
) -> Interval:
    return Interval(None, None, None, numerator, denominator, confidence, method, multiplier)


def _poisson_lower(x: float, confidence: float) -> float:
    """Exact (Garwood) lower limit for a Poisson count: chi2(alpha/2, 2x) / 2; 0 for x = 0."""
    from scipy import stats

    if x == 0:
        return 0.0
    alpha = 1 - confidence
    return float(stats.chi2.ppf(alpha / 2, 2 * x)) / 2


def _poisson_upper(x: float, confidence: float) -> float:
    """Exact (Garwood) upper limit for a Poisson count: chi2(1 - alpha/2, 2x + 2) / 2."""
    from scipy import stats

    alpha = 1 - confidence
    return float(stats.chi2.ppf(1 - alpha / 2, 2 * x + 2)) / 2


def _byars_lower(x: float, confidence: float) -> float | None:
    if x == 0:
        return None
    z = _z(confidence)
    lower = x * (1 - 1 / (9 * x) - z / (3 * math.sqrt(x))) ** 3
    return lower if lower >= 0 else None


def _byars_upper(x: float, confidence: float) -> float:
    z = _z(confidence)
    return (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * math.sqrt(x + 1))) ** 3


def _count_limits(x: float, confidence: float) -> tuple[float | None, float, str]:
    """Count limits with the PHEindicatormethods switch: exact below 10, Byar's from 10."""
    if x < EXACT_POISSON_BELOW:
        return _poisson_lower(x, confidence), _poisson_upper(x, confidence), "exact"
    return _byars_lower(x, confidence), _byars_upper(x, confidence), "byars"


def _check_count(name: str, value: float) -> float:
    value = float(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _count_or_zero(name: str, value: float | None) -> float:
    """A count where missing means none (upstream's ``na.zero``)."""
    if value is None or _is_missing(value):
        return 0.0
    return _check_count(name, value)


# --------------------------------------------------------------------------------------------
# Proportions, counts, rates, means
# --------------------------------------------------------------------------------------------


def wilson(
    x: float | None, n: float | None, confidence: float = 0.95, multiplier: float = 1
) -> Interval:
    """Proportion ``x / n`` with the Wilson score interval (no continuity correction).

    Formula, with ``z`` the two-sided normal quantile::

        p      = x / n
        limits = (2x + z^2 -/+ z * sqrt(z^2 + 4x(1 - x/n))) / (2(n + z^2))

    Wilson's interval stays inside [0, 1] and behaves well for 0 of n and n of n, unlike
    the Wald interval, which is why it is the public-health standard for proportions.
    ``n = 0`` gives value and limits ``None`` (0 of 0 is not a proportion). A non-integer
    numerator is allowed (weighted counts), as upstream.

    Reference: Wilson EB. Probable inference, the law of succession, and statistical
    inference. J Am Stat Assoc 1927;22:209-212; Newcombe RG, Altman DG in Statistics with
    Confidence (2nd ed.) 2000, pp. 46-48; PHEindicatormethods ``phe_proportion``.
    """
    confidence = _check_confidence(confidence)
    if x is None or n is None or _is_missing(x) or _is_missing(n):
        return _empty(x, n, confidence, "wilson", multiplier)
    x = _check_count("numerator", x)
    n = _check_count("denominator", n)
    if x > n:
        raise ValueError(f"numerator {x} exceeds denominator {n} for a proportion")
    if n == 0:
        return _empty(x, n, confidence, "wilson", multiplier)
    z = _z(confidence)
    root = z * math.sqrt(z**2 + 4 * x * (1 - x / n))
    lower = (2 * x + z**2 - root) / 2 / (n + z**2)
    upper = (2 * x + z**2 + root) / 2 / (n + z**2)
    lower, upper = max(0.0, lower), min(1.0, upper)
    return Interval(
        x / n * multiplier,
        lower * multiplier,
        upper * multiplier,
        x,
        n,
        confidence,
        "wilson",
        multiplier,
    )


def byars(x: float | None, confidence: float = 0.95) -> Interval:
    """Byar's approximate Poisson limits for a count ``x`` (raw formula, no exact switch)::

        lower = x (1 - 1/(9x) - z / (3 sqrt(x)))^3
        upper = (x+1) (1 - 1/(9(x+1)) + z / (3 sqrt(x+1)))^3

    A negative lower limit (tiny counts at high confidence) is returned as ``None``, as
    upstream; so is the lower limit of 0 events. Prefer :func:`count_interval`, which uses
    exact limits below 10 events; this raw form exists for the reference vectors and for
    callers that need Byar's on its own.

    Reference: Breslow NE, Day NE. Statistical methods in cancer research, vol. II. Lyon:
    IARC; 1987 (Byar's method); PHEindicatormethods ``byars_lower``/``byars_upper``.
    """
    confidence = _check_confidence(confidence)
    if x is None or _is_missing(x):
        return _empty(x, None, confidence, "byars", 1)
    x = _check_count("count", x)
    return Interval(
        x, _byars_lower(x, confidence), _byars_upper(x, confidence), x, None, confidence, "byars"
    )


def count_interval(x: float | None, confidence: float = 0.95) -> Interval:
    """Poisson limits for a count: exact below :data:`EXACT_POISSON_BELOW` events, else Byar's.

    Exact limits are the chi-square (equivalently gamma) quantiles::

        lower = chi2_{alpha/2}(2x) / 2   (0 when x = 0)
        upper = chi2_{1-alpha/2}(2x + 2) / 2

    Reference: Garwood F. Biometrika 1936;28:437-442; Breslow & Day 1987 for Byar's.
    """
    confidence = _check_confidence(confidence)
    if x is None or _is_missing(x):
        return _empty(x, None, confidence, "exact", 1)
    x = _check_count("count", x)
    lower, upper, method = _count_limits(x, confidence)
    return Interval(x, lower, upper, x, None, confidence, method)


def rate_interval(
    x: float | None, n: float | None, multiplier: float = 1000, confidence: float = 0.95
) -> Interval:
    """Crude rate ``x / n * multiplier`` with Poisson limits (see :func:`count_interval`).

    The count limits are divided by ``n``: exact limits below 10 events, Byar's from 10,
    the same switch as PHEindicatormethods ``phe_rate``; ``method`` says which was used.
    ``x > n`` is allowed (several events per person). ``n = 0`` gives ``None`` values.

    References: Breslow & Day 1987 (Byar's); Garwood 1936 (exact); PHEindicatormethods.
    """
    confidence = _check_confidence(confidence)
    if x is None or n is None or _is_missing(x) or _is_missing(n):
        return _empty(x, n, confidence, "exact", multiplier)
    x = _check_count("numerator", x)
    n = _check_count("denominator", n)
    lower, upper, method = _count_limits(x, confidence)
    if n == 0:
        return _empty(x, n, confidence, method, multiplier)
    return Interval(
        x / n * multiplier,
        None if lower is None else lower / n * multiplier,
        upper / n * multiplier,
        x,
        n,
        confidence,
        method,
        multiplier,
    )


def mean_interval(
    data: Iterable[float] | SampleSummary, confidence: float = 0.95, multiplier: float = 1
) -> Interval:
    """Mean with Student's t interval: ``mean -/+ t_{1-alpha/2, n-1} * sd / sqrt(n)``.

    ``data`` is either the values themselves or a :class:`SampleSummary` (n, mean, sd with
    ``n - 1`` in the denominator). No values gives ``None``; one value gives the mean without
    limits (the SD is undefined). Missing values inside ``data`` raise ``ValueError``: the
    caller must decide whether they mean "exclude" or "zero".

    Reference: Student. The probable error of a mean. Biometrika 1908;6:1-25;
    PHEindicatormethods ``phe_mean``.
    """
    from scipy import stats

    confidence = _check_confidence(confidence)
    if isinstance(data, SampleSummary):
        n, mean, sd = int(data.n), float(data.mean), float(data.sd)
        if n < 0 or sd < 0:
            raise ValueError("n and sd must be >= 0")
        total = mean * n
    else:
        values = [float(v) for v in data]
        if any(math.isnan(v) for v in values):
            raise ValueError("missing value in data")
        n = len(values)
        total = math.fsum(values)
        mean = total / n if n else math.nan
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    if n == 0:
        return _empty(0.0, 0, confidence, "students_t", multiplier)
    if n == 1:
        return Interval(
            mean * multiplier, None, None, total, n, confidence, "students_t", multiplier
        )
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(
        mean * multiplier,
        (mean - half) * multiplier,
        (mean + half) * multiplier,
        total,
        n,
        confidence,
        "students_t",
        multiplier,
    )


# --------------------------------------------------------------------------------------------
# Standardisation
# --------------------------------------------------------------------------------------------


def _strata_populations(
    population_by_stratum: Mapping[str, float | None],
    standard_by_stratum: Mapping[str, float],
) -> dict[str, tuple[float, float]]:
    """Join population and standard on the stratum key; both must have the same strata."""
    if set(population_by_stratum) != set(standard_by_stratum):
        missing = set(standard_by_stratum) ^ set(population_by_stratum)
        raise ValueError(f"population and standard strata differ: {sorted(map(str, missing))}")
    joined: dict[str, tuple[float, float]] = {}
    for key, weight in standard_by_stratum.items():
        pop = population_by_stratum[key]
        if pop is None or _is_missing(pop) or pop <= 0:
            raise ValueError(
                f"population of stratum {key!r} must be > 0 for a DSR, got {pop!r}; "
                "merge strata with no population before standardising"
            )
        if _is_missing(weight) or weight < 0:
            raise ValueError(f"standard weight of stratum {key!r} must be >= 0")
        joined[key] = (float(pop), float(weight))
    return joined


def _check_strata(events_keys: Iterable[str], strata: Mapping[str, object]) -> None:
    extra = set(events_keys) - set(strata)
    if extra:
        raise ValueError(f"events for unknown strata: {sorted(map(str, extra))}")


def _dobson(
    total: float,
    value: float,
    variance: float,
    total_pop: float,
    multiplier: float,
    confidence: float,
    method: str,
) -> Interval:
    """Dobson's interval: scale Byar's count limits by the DSR's standard error per event.

    ``lower = DSR + sqrt(var(DSR) / O) * (O_lower - O)`` and likewise upper, where ``O`` is
    the total count and ``O_lower``/``O_upper`` its Byar's limits.
    """
    if total < DSR_MIN_COUNT:
        return _empty(total, total_pop, confidence, method, multiplier)
    lower_count = _byars_lower(total, confidence)
    upper_count = _byars_upper(total, confidence)
    scale = math.sqrt(variance / total)
    lower = None if lower_count is None else value + scale * (lower_count - total)
    upper = value + scale * (upper_count - total)
    return Interval(
        value * multiplier,
        None if lower is None else lower * multiplier,
        upper * multiplier,
        total,
        total_pop,
        confidence,
        method,
        multiplier,
    )


def dsr(
    events_by_stratum: Mapping[str, float | None],
    population_by_stratum: Mapping[str, float],
    standard_by_stratum: Mapping[str, float],
    multiplier: float = 100000,
    confidence: float = 0.95,
) -> Interval:
    """Directly standardised rate with Dobson's confidence interval.

    Strata (age bands, age x sex) are joined by key, never by position. With ``x_i`` events,
    ``n_i`` population and ``w_i`` standard population in stratum ``i`` and ``W = sum w_i``::

        DSR      = sum(w_i * x_i / n_i) / W
        var(DSR) = sum(x_i * (w_i / n_i)^2) / W^2
        limits   = DSR + sqrt(var(DSR) / O) * (O_limit - O),   O = sum x_i

    with ``O_limit`` Byar's limits for ``O`` (Dobson's method). When ``O < 10`` value and
    limits are ``None`` (unreliable), as in PHEindicatormethods. Missing or absent events in
    a stratum count as 0; events for a stratum not in the standard raise ``ValueError`` (a
    mistyped band must not vanish silently). Every stratum needs a population > 0.

    References: Dobson AJ, Kuulasmaa K, Eberle E, Scherer J. Confidence intervals for
    weighted sums of Poisson parameters. Stat Med 1991;10:457-462; Breslow & Day 1987;
    PHEindicatormethods ``calculate_dsr``.
    """
    confidence = _check_confidence(confidence)
    strata = _strata_populations(population_by_stratum, standard_by_stratum)
    _check_strata(events_by_stratum, strata)
    total_weight = math.fsum(w for _, w in strata.values())
    if total_weight <= 0:
        raise ValueError("the standard population must have a positive total")
    weighted, squared, total = [], [], []
    for key, (pop, weight) in strata.items():
        x = _count_or_zero(f"events in {key!r}", events_by_stratum.get(key))
        weighted.append(x * weight / pop)
        squared.append(x * (weight / pop) ** 2)
        total.append(x)
    total_pop = math.fsum(pop for pop, _ in strata.values())
    return _dobson(
        math.fsum(total),
        math.fsum(weighted) / total_weight,
        math.fsum(squared) / total_weight**2,
        total_pop,
        multiplier,
        confidence,
        "dobson",
    )


def dsr_nonindependent(
    persons_by_stratum: Mapping[str, Mapping[float, float | None]],
    population_by_stratum: Mapping[str, float],
    standard_by_stratum: Mapping[str, float],
    multiplier: float = 100000,
    confidence: float = 0.95,
) -> Interval:
    """DSR with Dobson's interval widened for non-independent events (repeat events).

    When one person can contribute several events (e.g. several visits), events are not
    independent Poisson counts and the ordinary variance is too small. The input gives, per
    stratum, the number of persons ``p_if`` with each event frequency ``f`` (e.g.
    ``{1: 75, 2: 16, 3: 4}``). Then::

        x_i      = sum_f f * p_if                       (events in stratum i)
        DSR      = sum(w_i * x_i / n_i) / W             (as in :func:`dsr`)
        var(DSR) = sum_i (w_i / n_i)^2 * sum_f f^2 * p_if / W^2
        limits   = DSR + sqrt(var(DSR) / O) * (O_limit - O)

    i.e. each person is a Poisson unit whose contribution is scaled by ``f``. Same ``O < 10``
    rule and stratum checks as :func:`dsr`; missing person counts are 0.

    Reference: PHEindicatormethods ``calculate_dsr(independent_events = FALSE)`` and its DSR
    vignette; Dobson et al. 1991.
    """
    confidence = _check_confidence(confidence)
    strata = _strata_populations(population_by_stratum, standard_by_stratum)
    _check_strata(persons_by_stratum, strata)
    total_weight = math.fsum(w for _, w in strata.values())
    if total_weight <= 0:
        raise ValueError("the standard population must have a positive total")
    weighted, squared, total = [], [], []
    for key, (pop, weight) in strata.items():
        events = 0.0
        events_sq = 0.0
        for freq, persons in persons_by_stratum.get(key, {}).items():
            count = _count_or_zero(f"persons in {key!r}", persons)
            freq = _check_count("event frequency", freq)
            events += freq * count
            events_sq += freq**2 * count
        weighted.append(events * weight / pop)
        squared.append(events_sq * (weight / pop) ** 2)
        total.append(events)
    total_pop = math.fsum(pop for pop, _ in strata.values())
    return _dobson(
        math.fsum(total),
        math.fsum(weighted) / total_weight,
        math.fsum(squared) / total_weight**2,
        total_pop,
        multiplier,
        confidence,
        "dobson_nonindependent",
    )


def _reference_rates(
    ref_events_by_stratum: Mapping[str, float | None],
    ref_population_by_stratum: Mapping[str, float],
) -> dict[str, float]:
    rates: dict[str, float] = {}
    for key, ref_pop in ref_population_by_stratum.items():
        if _is_missing(ref_pop) or ref_pop <= 0:
            raise ValueError(f"reference population of stratum {key!r} must be > 0")
        rates[key] = _count_or_zero("reference events", ref_events_by_stratum.get(key)) / ref_pop
    _check_strata(ref_events_by_stratum, rates)
    return rates


def expected_events(
    population_by_stratum: Mapping[str, float | None],
    ref_events_by_stratum: Mapping[str, float | None],
    ref_population_by_stratum: Mapping[str, float],
) -> float:
    """Expected events ``E = sum_i n_i * X_i / N_i`` from the reference's stratum rates.

    A missing or zero local population contributes nothing. Strata of the local population
    that the reference lacks raise ``ValueError``.
    """
    rates = _reference_rates(ref_events_by_stratum, ref_population_by_stratum)
    _check_strata(population_by_stratum, rates)
    return math.fsum(
        _count_or_zero(f"population of {key!r}", pop) * rates[key]
        for key, pop in population_by_stratum.items()
    )


def _observed_total(observed: Mapping[str, float | None] | float) -> float:
    if isinstance(observed, Mapping):
        return math.fsum(_count_or_zero("observed events", x) for x in observed.values())
    return _check_count("observed events", observed)


def indirectly_standardised_ratio(
    observed: Mapping[str, float | None] | float,
    population_by_stratum: Mapping[str, float | None],
    ref_events_by_stratum: Mapping[str, float | None],
    ref_population_by_stratum: Mapping[str, float],
    multiplier: float = 1,
    confidence: float = 0.95,
) -> Interval:
    """Indirectly standardised ratio (SMR-type) ``O / E`` with Poisson limits on ``O``.

    ``O`` is the observed total (per stratum or already summed), ``E`` from
    :func:`expected_events`. Limits are :func:`count_interval` limits of ``O`` (exact below
    10, Byar's from 10) divided by ``E``; ``multiplier`` 100 gives the ratio as a
    percentage. ``E = 0`` gives ``None`` values.

    Reference: Breslow & Day 1987; PHEindicatormethods ``calculate_ISRatio``.
    """
    confidence = _check_confidence(confidence)
    obs = _observed_total(observed)
    exp = expected_events(population_by_stratum, ref_events_by_stratum, ref_population_by_stratum)
    lower, upper, method = _count_limits(obs, confidence)
    if exp == 0:
        return _empty(obs, exp, confidence, method, multiplier)
    return Interval(
        obs / exp * multiplier,
        None if lower is None else lower / exp * multiplier,
        upper / exp * multiplier,
        obs,
        exp,
        confidence,
        method,
        multiplier,
    )


def indirectly_standardised_rate(
    observed: Mapping[str, float | None] | float,
    population_by_stratum: Mapping[str, float | None],
    ref_events_by_stratum: Mapping[str, float | None],
    ref_population_by_stratum: Mapping[str, float],
    multiplier: float = 100000,
    confidence: float = 0.95,
) -> Interval:
    """Indirectly standardised rate: the ratio ``O / E`` times the reference's crude rate.

    ``ISR = O / E * sum(X_i) / sum(N_i) * multiplier`` with the ratio's limits scaled the
    same way. Reference: PHEindicatormethods ``calculate_ISRate``.
    """
    ratio = indirectly_standardised_ratio(
        observed,
        population_by_stratum,
        ref_events_by_stratum,
        ref_population_by_stratum,
        multiplier=1,
        confidence=confidence,
    )
    _reference_rates(ref_events_by_stratum, ref_population_by_stratum)  # validates
    ref_total = math.fsum(
        _count_or_zero("reference events", x) for x in ref_events_by_stratum.values()
    )
    ref_rate = ref_total / math.fsum(ref_population_by_stratum.values()) * multiplier

    def scaled(v: float | None) -> float | None:
        return None if v is None else v * ref_rate

    return Interval(
        scaled(ratio.value),
        scaled(ratio.lower),
        scaled(ratio.upper),
        ratio.numerator,
        ratio.denominator,
        ratio.confidence,
        ratio.method,
        multiplier,
    )


# --------------------------------------------------------------------------------------------
# Funnel plots
# --------------------------------------------------------------------------------------------


def _check_levels(levels: Iterable[float]) -> tuple[float, ...]:
    checked = tuple(_check_confidence(level) for level in levels)
    if not checked:
        raise ValueError("at least one funnel level is needed")
    return checked


def funnel_limits_proportion(
    target_p: float,
    n: float,
    levels: Iterable[float] = (0.95, 0.998),
    multiplier: float = 1,
) -> FunnelLimits:
    """Funnel limits for a proportion at denominator ``n`` (Spiegelhalter, normal approx.)::

        limits = target_p -/+ z * sqrt(target_p (1 - target_p) / n)

    clipped to the possible range [0, 1] and then scaled by ``multiplier``. ``target_p`` is
    a fraction (0-1), typically the region's pooled proportion; limits and ``target`` of the
    result are on the ``multiplier`` scale. ``n = 0`` gives no limits (not compared).

    Deliberate difference from PHEindicatormethods: upstream clips the upper limit at 100
    whatever the multiplier, which is only right for percentages (with multiplier 1 it never
    clips, with 1000 it cuts the funnel at 10 %). Here the clip is at ``multiplier``, i.e. at
    a proportion of 1.

    Reference: Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat
    Med 2005;24:1185-1202; PHEindicatormethods ``calculate_funnel_limits``.
    """
    levels = _check_levels(levels)
    if not 0 <= target_p <= 1:
        raise ValueError(f"target_p must be a fraction in [0, 1], got {target_p!r}")
    n = _check_count("n", n)
    if n == 0:
        bands = tuple(FunnelBand(level, None, None) for level in levels)
        return FunnelLimits(target_p * multiplier, n, bands)
    se = math.sqrt(target_p * (1 - target_p) / n)
    bands = tuple(
        FunnelBand(
            level,
            max(0.0, target_p - _z(level) * se) * multiplier,
            min(1.0, target_p + _z(level) * se) * multiplier,
        )
        for level in levels
    )
    return FunnelLimits(target_p * multiplier, n, bands)


def _solve_count(func: Callable[[float], float], target: float, low: float) -> float:
    """Solve ``func(c) = target`` for a count ``c > low`` (func increasing in c)."""
    from scipy import optimize

    def gap(c: float) -> float:
        return func(c) - target

    high = max(1.0, target) * 2 + 10
    while gap(high) < 0:
        high *= 2
    return float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=1e-14, maxiter=500))


def _poisson_funnel_counts(mu: float, level: float) -> tuple[float, float]:
    """Exact Poisson funnel limits (as continuous counts) around expected count ``mu``.

    The lower limit is the count ``L`` whose exact upper confidence limit equals ``mu``,
    the upper limit the count ``U`` whose exact lower limit equals ``mu``. A unit with ``O``
    events is outside the funnel exactly when ``mu`` lies outside the exact interval of
    ``O``, so the funnel and "target outside the unit's exact interval" always agree.
    """
    if mu == 0:
        return 0.0, 0.0
    if _poisson_upper(0, level) >= mu:
        lower = 0.0
    else:
        lower = _solve_count(lambda c: _poisson_upper(c, level), mu, 0.0)
    upper = _solve_count(lambda c: _poisson_lower(c, level), mu, 1e-12)
    return lower, upper


def funnel_limits_rate(
    target_rate: float,
    denominator: float,
    levels: Iterable[float] = (0.95, 0.998),
    multiplier: float = 1000,
) -> FunnelLimits:
    """Exact Poisson funnel limits for a crude rate at ``denominator`` (person-time).

    With ``mu = target_rate / multiplier * denominator`` expected events, the limits are the
    continuous counts ``L`` and ``U`` with ``chi2_{1-a/2}(2L+2)/2 = mu`` and
    ``chi2_{a/2}(2U)/2 = mu`` (the inverse of the exact interval), divided by the
    denominator and scaled. ``target_rate`` is on the ``multiplier`` scale. A zero
    denominator gives no limits.

    These are the same curves PHEindicatormethods draws (it parameterises them by event
    count; see :func:`funnel_curve_rate`). Reference: Spiegelhalter 2005.
    """
    levels = _check_levels(levels)
    if target_rate < 0:
        raise ValueError("target_rate must be >= 0")
    denominator = _check_count("denominator", denominator)
    if denominator == 0:
        return FunnelLimits(target_rate, 0.0, tuple(FunnelBand(lv, None, None) for lv in levels))
    mu = target_rate / multiplier * denominator
    bands = []
    for level in levels:
        low, high = _poisson_funnel_counts(mu, level)
        bands.append(
            FunnelBand(level, low / denominator * multiplier, high / denominator * multiplier)
        )
    return FunnelLimits(target_rate, denominator, tuple(bands))


def funnel_limits_ratio(
    expected: float,
    levels: Iterable[float] = (0.95, 0.998),
    multiplier: float = 1,
) -> FunnelLimits:
    """Exact Poisson funnel limits for an observed/expected ratio at ``expected`` events.

    As :func:`funnel_limits_rate` with ``mu = expected``; limits are ``L / E`` and ``U / E``
    times ``multiplier`` (100 for an SMR in per cent), around the target ratio 1.
    Reference: Spiegelhalter 2005; PHEindicatormethods ``calculate_funnel_limits(statistic =
    "ratio")``.
    """
    levels = _check_levels(levels)
    expected = _check_count("expected", expected)
    if expected == 0:
        return FunnelLimits(multiplier, 0.0, tuple(FunnelBand(lv, None, None) for lv in levels))
    bands = []
    for level in levels:
        low, high = _poisson_funnel_counts(expected, level)
        bands.append(FunnelBand(level, low / expected * multiplier, high / expected * multiplier))
    return FunnelLimits(float(multiplier), expected, tuple(bands))


def funnel_curve_ratio(
    observed: float,
    levels: Iterable[float] = (0.95, 0.998),
    multiplier: float = 1,
) -> FunnelCurve:
    """Points of the ratio funnel through ``observed`` events (for drawing the curves).

    Lower curve: expected ``E = chi2_{1-a/2}(2O+2)/2`` (the exact upper limit of ``O``),
    ratio ``O / E``. Upper curve: ``E = chi2_{a/2}(2O)/2``, ratio ``O / E``. For 0 events
    the upper curve does not exist (``None``). Matches PHEindicatormethods' funnel tables.
    """
    levels = _check_levels(levels)
    observed = _check_count("observed", observed)
    bands = []
    for level in levels:
        low_exp = _poisson_upper(observed, level)
        up_exp = _poisson_lower(observed, level)
        bands.append(
            FunnelCurveBand(
                level,
                observed / low_exp * multiplier,
                low_exp,
                observed / up_exp * multiplier if up_exp > 0 else None,
                up_exp if up_exp > 0 else None,
            )
        )
    return FunnelCurve(observed, float(multiplier), tuple(bands))


def funnel_curve_rate(
    target_rate: float,
    events: float,
    levels: Iterable[float] = (0.95, 0.998),
    multiplier: float = 1000,
    years_of_data: float = 1,
) -> FunnelCurve:
    """Points of the rate funnel through ``events`` (for drawing the curves).

    As :func:`funnel_curve_ratio` with the expected count turned into a denominator:
    ``denominator = E / (target_rate / multiplier)``, reported per year
    (``/ years_of_data``) as upstream, so that pooled multi-year data can be plotted against
    annual populations. The limit is ``events / denominator * multiplier`` (before the per
    year division).
    """
    levels = _check_levels(levels)
    if target_rate <= 0:
        raise ValueError("target_rate must be > 0 to draw a rate funnel")
    if years_of_data <= 0:
        raise ValueError("years_of_data must be > 0")
    events = _check_count("events", events)
    per_unit = target_rate / multiplier
    bands = []
    for level in levels:
        low_exp = _poisson_upper(events, level)
        up_exp = _poisson_lower(events, level)
        bands.append(
            FunnelCurveBand(
                level,
                events / low_exp * per_unit * multiplier,
                low_exp / per_unit / years_of_data,
                events / up_exp * per_unit * multiplier if up_exp > 0 else None,
                up_exp / per_unit / years_of_data if up_exp > 0 else None,
            )
        )
    return FunnelCurve(events, target_rate, tuple(bands))


def funnel_point_rate(
    events: float,
    rate: float | None,
    multiplier: float,
    *,
    denominator: float | None = None,
    standardised: bool = False,
    years_of_data: float = 1,
) -> tuple[float | None, float | None]:
    """Where a unit's rate is drawn on a rate funnel: ``(rate, denominator per year)``.

    The horizontal position is the denominator implied by the rate,
    ``multiplier * events / rate / years_of_data``: for a crude rate that is the real
    denominator, for a DSR the population at which a crude rate with the same count would
    equal the DSR (the usual way to put DSRs on a Poisson funnel). DSRs with fewer than 10
    events are not drawn (``(None, None)``), as they are not calculated. A crude rate with
    0 events needs ``denominator``. Matches PHEindicatormethods ``calculate_funnel_points``.
    """
    if years_of_data <= 0:
        raise ValueError("years_of_data must be > 0")
    events = _check_count("events", events)
    if standardised:
        if events < DSR_MIN_COUNT or _is_missing(rate) or not rate:
            return None, None
        return float(rate), multiplier * events / rate / years_of_data
    if events == 0:
        if denominator is None:
            return (None if _is_missing(rate) else rate), None
        return (None if _is_missing(rate) else rate), denominator / years_of_data
    if _is_missing(rate) or not rate:
        return None, None
    return float(rate), multiplier * events / rate / years_of_data


# --------------------------------------------------------------------------------------------
# Comparison and classification
# --------------------------------------------------------------------------------------------


def compare_to_limits(
    value: float | None, limits: FunnelLimits | None, level: float = 0.998
) -> Direction:
    """Place ``value`` against the funnel band at ``level``: strictly outside is a signal.

    ``value`` must be on the same scale as the limits. No value, no limits or a unit with
    zero denominator (no limits) gives ``"not_compared"``.
    """
    if value is None or _is_missing(value) or limits is None:
        return "not_compared"
    band = limits.band(level)
    if band.lower is None or band.upper is None:
        return "not_compared"
    if value < band.lower:
        return "lower"
    if value > band.upper:
        return "higher"
    return "similar"


def compare_to_target(interval: Interval | None, target: float | None) -> Direction:
    """Compare a unit's own interval with a target: ``higher`` if the whole interval is above.

    This is the comparison PHEindicatormethods uses for rates and ratios on funnel plots
    (and Fingertips for "compared with benchmark"). With exact Poisson limits it is the same
    decision as the funnel; with Byar's (10+ events) it differs only on the knife edge.
    """
    if interval is None or interval.value is None or target is None or _is_missing(target):
        return "not_compared"
    if interval.lower is not None and interval.lower > target:
        return "higher"
    if interval.upper is not None and interval.upper < target:
        return "lower"
    return "similar"


def funnel_significance(
    value: float | None, limits: FunnelLimits | None
) -> tuple[Direction, float | None]:
    """The direction and the widest band the value falls outside (e.g. 0.998 before 0.95).

    Returns ``("higher", 0.998)`` for a value above the 99.8 % limit, ``("higher", 0.95)``
    for one above only the 95 % limit, and ``("similar", None)`` or
    ``("not_compared", None)`` otherwise - the same information as upstream's
    "High (0.001)" / "High (0.025)" labels.
    """
    if limits is None:
        return "not_compared", None
    outcome: Direction = "similar"
    for band in sorted(limits.bands, key=lambda b: b.level, reverse=True):
        direction = compare_to_limits(value, limits, band.level)
        if direction == "not_compared":
            return direction, None
        if direction != "similar":
            return direction, band.level
        outcome = direction
    return outcome, None


_JUDGEMENTS: dict[str, dict[Direction, Judgement]] = {
    "higher_better": {
        "higher": "better",
        "lower": "worse",
        "similar": "similar",
        "not_compared": "not_compared",
    },
    "lower_better": {
        "higher": "worse",
        "lower": "better",
        "similar": "similar",
        "not_compared": "not_compared",
    },
    "none": {
        "higher": "higher",
        "lower": "lower",
        "similar": "similar",
        "not_compared": "not_compared",
    },
}


def classify(
    value_or_interval: float | Interval | None,
    limits_or_target: FunnelLimits | float | None,
    polarity: Polarity,
    level: float = 0.998,
) -> Judgement:
    """Class a unit as ``better`` / ``similar`` / ``worse`` / ``not_compared``.

    Two ways in:

    * a value and :class:`FunnelLimits` (computed at the unit's denominator): the value is
      compared with the band at ``level`` (default 99.8 %, the usual funnel "alarm" limit;
      pass 0.95 for the inner funnel);
    * an :class:`Interval` and a target value: the target is compared with the unit's own
      interval (at the interval's confidence; ``level`` is not used).

    ``polarity`` maps the direction to a judgement: ``"higher_better"`` (higher -> better),
    ``"lower_better"`` (higher -> worse), or ``"none"`` for indicators that carry no
    judgement, which return the neutral ``"higher"`` / ``"similar"`` / ``"lower"`` instead
    of better/worse. Units without a denominator or value are ``"not_compared"``.
    """
    if polarity not in _JUDGEMENTS:
        raise ValueError(f"unknown polarity {polarity!r}")
    if isinstance(value_or_interval, Interval):
        if isinstance(limits_or_target, FunnelLimits):
            raise TypeError("compare an Interval with a target value, not with funnel limits")
        direction = compare_to_target(value_or_interval, limits_or_target)
    else:
        if limits_or_target is not None and not isinstance(limits_or_target, FunnelLimits):
            raise TypeError("compare a value with FunnelLimits, or an Interval with a target")
        direction = compare_to_limits(value_or_interval, limits_or_target, level)
    return _JUDGEMENTS[polarity][direction]
