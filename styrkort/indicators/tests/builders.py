"""Stored indicator results for the page, API and matrix tests, without running DuckDB.

``store_results`` turns monthly counts per unit, sex and report age band into every stored
cell the engine would write (months, quarters, the year; K, M, T; each band and "alla"; every
unit and the region), with values, Wilson or Poisson intervals, funnel classes against the
region and the public suppression pattern from ``services.suppression_pattern``: the same
shape as a real run, so ``services.results_for`` treats it as it treats the engine's output.
Not a test module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from styrkort.breakdowns import ALL_AGES
from styrkort.indicators import services, vectorised
from styrkort.indicators.models import (
    ComputationRun,
    IndicatorDefinition,
    IndicatorResult,
    InputSet,
)
from styrkort.organisation.models import CareUnit
from styrkort.periods import Period

#: (unit, month, sex K/M, report band) -> (numerator, denominator)
Counts = Mapping[tuple[CareUnit, str, str, str], tuple[float, float]]


def _periods(months: Iterable[str]) -> dict[str, list[str]]:
    """Result period -> its months among ``months``."""
    out: dict[str, list[str]] = defaultdict(list)
    for m in months:
        p = Period.parse(m)
        for period in (p, p.quarter(), p.as_year()):
            out[str(period)].append(m)
    return out


def store_results(
    region,
    code: str,
    counts: Counts,
    *,
    incomplete: Iterable[str] = (),
) -> IndicatorDefinition:
    """Store results of indicator ``code`` for ``region`` from monthly ``counts`` of units
    (CareUnit objects). ``incomplete``: result periods stored with ``is_complete`` False.
    Rates: the denominator is the listed population, averaged over a period's months."""
    definitions = services.sync_definitions()
    definition = definitions[code]
    kind, multiplier = definition.kind, definition.multiplier
    months = sorted({m for (_u, m, _s, _b) in counts})
    units = sorted({u for (u, _m, _s, _b) in counts}, key=lambda u: u.pk)
    bands = sorted({b for (_u, _m, _s, b) in counts})
    cells: dict[tuple, list[float]] = {}
    for period, its_months in _periods(months).items():
        for unit in units:
            for sex in ("K", "M"):
                for band in bands:
                    num = sum(counts.get((unit, m, sex, band), (0, 0))[0] for m in its_months)
                    dens = [counts.get((unit, m, sex, band), (0, 0))[1] for m in its_months]
                    den = sum(dens) / len(dens) if kind == "rate_per_1000" else sum(dens)
                    cells[(unit, period, sex, band)] = [num, den]
    # Totals: sexes, age bands and the region add up.
    for (unit, period, sex, band), (num, den) in list(cells.items()):
        for key in ((unit, period, "T", band), (unit, period, sex, ALL_AGES),
                    (unit, period, "T", ALL_AGES)):  # fmt: skip
            total = cells.setdefault(key, [0.0, 0.0])
            total[0] += num
            total[1] += den
    for (unit, period, sex, band), (num, den) in list(cells.items()):
        if unit is None:
            continue
        total = cells.setdefault((None, period, sex, band), [0.0, 0.0])
        total[0] += num
        total[1] += den
    keys = list(cells)
    x = np.array([cells[k][0] for k in keys], dtype=float)
    n = np.array([cells[k][1] for k in keys], dtype=float)
    reg_x = np.array([cells[(None, *k[1:])][0] for k in keys], dtype=float)
    reg_n = np.array([cells[(None, *k[1:])][1] for k in keys], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "proportion":
            value, lower, upper = vectorised.wilson(x, n, 0.95, multiplier)
            comparison = vectorised.classify_proportion(
                x, n, np.where(reg_n > 0, reg_x / reg_n, np.nan), definition.polarity
            )
        elif kind == "rate_per_1000":
            value, lower, upper = vectorised.rate_interval(x, n, multiplier, 0.95)
            comparison = vectorised.classify_rate(
                x, n, np.where(reg_n > 0, reg_x / reg_n * multiplier, np.nan), multiplier,
                definition.polarity,
            )  # fmt: skip
        else:
            raise ValueError(f"store_results handles proportions and rates, not {kind}")
    hsa = {u: u.hsa_id for u in units}
    scells = []
    for i, (unit, period, sex, band) in enumerate(keys):
        tested_num, tested_den = services.suppression_counts(kind, x[i], n[i])
        scells.append(
            services.SCell(i, hsa.get(unit, ""), period, sex, band, tested_num, tested_den)
        )
    hidden = services.suppression_pattern(scells)
    run = ComputationRun.objects.create(region=region, status=ComputationRun.Status.DONE)
    inputs, _created = InputSet.objects.get_or_create(fingerprint=f"test-{code}-{region.pk}")
    incomplete = set(incomplete)

    def nan_none(v: float) -> float | None:
        return None if v != v else float(v)

    IndicatorResult.objects.bulk_create(
        IndicatorResult(
            definition=definition,
            definition_version=definition.version,
            region=region,
            unit=unit,
            period=period,
            period_kind=Period.parse(period).kind,
            sex=sex,
            age_band=band,
            numerator=float(x[i]),
            denominator=float(n[i]),
            value=nan_none(value[i]),
            lower=nan_none(lower[i]),
            upper=nan_none(upper[i]),
            suppressed=i in hidden,
            suppression_reason=hidden.get(i, ""),
            comparison="not_compared" if unit is None else str(comparison[i]),
            is_complete=period not in incomplete,
            run=run,
            inputs=inputs,
        )
        for i, (unit, period, sex, band) in enumerate(keys)
    )
    return definition


MONTHS = tuple(f"2025-{m:02d}" for m in range(1, 7))

#: PO09 (share of mental-health contacts with a psychosocial profession, higher is better):
#: per unit name, monthly (numerator, denominator) by (sex, band). Unit A has small numbers
#: (suppressed for viewers), E is clearly below the region and F clearly above.
PO09_MONTHLY = {
    "A": {("K", "25-44"): (1, 3), ("K", "45-64"): (0, 2), ("M", "25-44"): (1, 2),
          ("M", "45-64"): (1, 2)},
    "B": {("K", "25-44"): (10, 20), ("K", "45-64"): (8, 16), ("M", "25-44"): (6, 14),
          ("M", "45-64"): (5, 12)},
    "D": {("K", "25-44"): (12, 20), ("K", "45-64"): (10, 18), ("M", "25-44"): (8, 15),
          ("M", "45-64"): (7, 14)},
    "E": {("K", "25-44"): (3, 30), ("K", "45-64"): (2, 25), ("M", "25-44"): (2, 20),
          ("M", "45-64"): (1, 18)},
    "F": {("K", "25-44"): (25, 30), ("K", "45-64"): (20, 24), ("M", "25-44"): (18, 22),
          ("M", "45-64"): (15, 19)},
}  # fmt: skip


def monthly_counts(units: Mapping[str, object], monthly: Mapping, months=MONTHS) -> dict:
    """Counts for ``store_results`` with the same figures every month."""
    return {
        (units[name], m, sex, band): figures
        for name, cells in monthly.items()
        for m in months
        for (sex, band), figures in cells.items()
    }
