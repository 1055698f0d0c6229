"""Synthetic visit-level extracts for the demo region, Region Exempel (DESIGN §4, issue 3 §2).

`generate(out_dir, seed=…, scale=…)` writes every table of the canonical extract
(`styrkort.extracts.schema`) for each month, one directory per month and one file per table
(``OUT/2025-03/contacts.parquet`` …), plus ``OUT/manifest.json`` with the seed, the scale and
a SHA-256 per file. Each month directory is an upload of its own: the tables are consistent with
each other, pass `styrkort.extracts.validation.validate_extract` for that month, and the
`listings` table is exactly the demo registry's listings (`build_demo_registry(seed)`).

How it is built, and why:

* **Vectorised, month by month.** Nothing loops over rows in Python: every draw is a numpy
  array operation (`numpy.random.default_rng`), every table a pyarrow table written once. The
  simulation walks month by month; what a month starts (mental-health episodes with their
  follow-ups, treatment courses, ratings and sick leave) is kept in a small buffer until the
  months it falls in are written, so memory is bounded by a few months of events, not by the
  whole run. Ten million contacts take well under a minute (see the final report of the issue).
* **Deterministic and independent of the range.** Each month draws from its own random stream,
  keyed by (seed, purpose, month); the simulation always starts twelve months before the
  registry's first month (a burn-in, so that long sick leave and follow-ups are in force from
  the first month). So a month's files do not depend on which other months are generated:
  ``--months 2025-03:2025-03`` gives the same ``2025-03`` files as the full two years.
* **Patients come from the listings.** Each unit gets a pool of pseudonymous patients with the
  sex and five-year age band mix of its mean listed population times `scale`; contacts are drawn
  from the pool in proportion to the month's listed count (so a unit that opens fills up, and a
  closed unit has no data after closing). The listings table itself is never scaled: at a scale
  other than 1, counts per 1,000 listed are scaled too, proportions are not.
* **Calibrated on published facts.** About 30 % of new visits (nybesök) concern mental
  ill-health and about 60 % of ongoing sick-leave cases longer than 90 days have a psychiatric
  diagnosis (seed 004, Region Västmanland); depression and anxiety are diagnosed about twice as
  often in women; mental ill-health peaks at 18–44; primary care has about 2.5 contacts per
  listed person and year. The tests assert each of these with a tolerance.
* **Units differ as their `UnitProfile` says.** Psychosocial staffing decides who treats and how
  often (units without a psychologist register few psychological-treatment KVÅ codes), the
  performance level moves treatment within 90 days, waiting time, follow-up 10–56 days after a
  new depression, symptom rating and outcome; `group_treatment` units hold group courses
  (contact_type ``grupp``); `digital_share` sets the share of remote contacts; `care_need` the
  incidence. The "low" units fall outside the 99.8 % funnel limits below the region and the
  "high" unit outside them above, at the demo volume.
* **No direct identifiers.** Patient keys are ``p-`` and sixteen letters (a bijective 64-bit
  hash of seed and patient number written as hexadecimal with the letters a–p for digits),
  contact ids ``K<yymm>`` and seven letters: no value holds a run of ten digits, so nothing can
  be taken for a personal identity number.

Volumes at scale 1 (about 300,000 listed): about 1.5 million contacts over 2024–2025; the
other tables in proportion. `--scale` multiplies patients and therefore every event count.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from styrkort.breakdowns import AGE_BANDS, SEXES, band_bounds
from styrkort.extracts.schema import (
    CONTACT_TYPES,
    INSTRUMENTS,
    PROFESSIONS,
    SCHEMA_VERSION,
    TABLE_NAMES,
    icd10se_chapter_f_codes,
)
from styrkort.organisation.demo import (
    DEFAULT_SEED,
    FIRST_MONTH,
    MONTHS,
    DemoRegistry,
    DemoUnit,
    build_demo_registry,
)
from styrkort.periods import Period, PeriodError, period_range

__all__ = [
    "BENCH_SCALE",
    "DEMO_SCALE",
    "FORMATS",
    "GENERATOR_VERSION",
    "SynthError",
    "SynthResult",
    "demo_settings",
    "generate",
    "iter_months",
    "month_files",
    "parse_months",
    "read_manifest",
    "synth_step",
]

# Bump when the output for a given seed and scale changes (recorded in the manifest).
GENERATOR_VERSION = 1
FORMATS = ("parquet", "csv")
MANIFEST = "manifest.json"
# The demo's volume: realistic for its ~300,000 listed (about 1.5 million contacts in two years,
# generated in a few seconds; validating a month takes about a second whatever the scale).
# STYRKORT_DEMO_SCALE lowers it on a slow machine: proportions stay, counts per 1,000 listed
# shrink with the scale and the funnel limits widen.
DEMO_SCALE = 1.0
DEMO_DIR_NAME = "synth"
MAX_SCALE = 200.0
# About ten million contacts (two years), the benchmark's volume (issue 3 §9).
BENCH_SCALE = 6.6
# Months simulated before the registry's first month, so that episodes and sick leave that
# began earlier are in force (and their follow-ups happen) from the first month on.
BURN_IN_MONTHS = 12


class SynthError(ValueError):
    """Arguments the generator cannot honour (an unknown month, a scale out of range …)."""


# ---------------------------------------------------------------------------------------------
# Code lists. Indexes into one table of ICD-10 codes and one of KVÅ codes keep every event a
# row of small integers until a month is written.
# ---------------------------------------------------------------------------------------------

# Age groups the rates below are given for (lower bounds): 0–12, 13–17, 18–24, 25–44, 45–64,
# 65–79, 80+.
_GROUP_EDGES = np.array([0, 13, 18, 25, 45, 65, 80])
_N_GROUPS = len(_GROUP_EDGES)
_WORKING_GROUPS = np.array([False, False, True, True, True, False, False])

_ICD: list[str] = []
_ICD_INDEX: dict[str, int] = {}


def _icd(code: str) -> int:
    if code not in _ICD_INDEX:
        _ICD_INDEX[code] = len(_ICD)
        _ICD.append(code)
    return _ICD_INDEX[code]


_KVA = ("DU011", "DU022", "DU008", "DU007", "AU011", "DU030", "DU118", "DV200", "XS007")
_KVA_INDEX = {code: i for i, code in enumerate(_KVA)}
_TREATMENT_KVA = np.array([_KVA_INDEX[c] for c in ("DU011", "DU022", "DU008")])
_TREATMENT_KVA_P = np.array([0.84, 0.09, 0.07])  # CBT dominates Swedish primary care
_K_COUNSEL, _K_RATING = _KVA_INDEX["DU007"], _KVA_INDEX["AU011"]
_K_BACKGROUND = np.array([_KVA_INDEX[c] for c in ("DU030", "DU118", "DV200", "XS007")])
_K_BACKGROUND_P = np.array([0.35, 0.2, 0.3, 0.15])

_PROF = {p: i for i, p in enumerate(PROFESSIONS)}
_CTYPE = {c: i for i, c in enumerate(CONTACT_TYPES)}
_INSTR = tuple(INSTRUMENTS)  # PHQ-9, GAD-7, MADRS-S, KEDS, EQ-5D
_I = {name: i for i, name in enumerate(_INSTR)}
_NO = -1


@dataclass(frozen=True)
class _Category:
    """A kind of mental-health episode: its codes, who gets it, and what care follows."""

    name: str
    codes: tuple[tuple[str, float], ...]
    child_codes: tuple[tuple[str, float], ...]  # used below 13 years
    rate_men: float  # new episodes per person and year, men 25–44, before the global factor
    female_ratio: float  # women's rate / men's rate
    age: tuple[float, ...]  # multiplier per age group
    treat: float  # multiplier on the unit's probability of psychological treatment
    follow: float  # multiplier on the unit's probability of a 10–56-day follow-up
    counsel: float  # multiplier on the probability of supportive talks with a counsellor
    sick_leave: float  # probability of sick leave (working ages)
    sick_median: float  # days, median length of that sick leave
    sick_sigma: float  # log-normal spread of the length
    primary: str  # the instrument rated first
    secondary: str | None  # a second instrument sometimes rated alongside
    secondary_p: float
    measure: float  # multiplier on the unit's probability of rating at diagnosis
    group_p: float  # share of courses given as group treatment at units that offer it


# fmt: off
_CATEGORIES: tuple[_Category, ...] = (
    _Category("depression",
              (("F32.0", 0.33), ("F32.1", 0.40), ("F32.2", 0.05), ("F32.9", 0.06),
               ("F33.0", 0.06), ("F33.1", 0.10)),
              (("F32.9", 0.6), ("F32.0", 0.4)),
              0.026, 2.0, (0.03, 0.5, 1.3, 1.2, 1.0, 0.75, 0.7),
              1.0, 1.0, 1.0, 0.2, 75, 0.8, "PHQ-9", "GAD-7", 0.25, 1.0, 0.25),
    _Category("anxiety",
              (("F41.1", 0.30), ("F41.0", 0.20), ("F41.2", 0.20), ("F41.9", 0.20),
               ("F40.1", 0.10)),
              (("F93.0", 0.5), ("F93.9", 0.5)),
              0.026, 2.0, (0.2, 0.9, 1.5, 1.2, 0.9, 0.6, 0.5),
              0.9, 0.7, 1.0, 0.1, 55, 0.8, "GAD-7", "PHQ-9", 0.4, 0.9, 0.45),
    _Category("stress",
              (("F43.2", 0.40), ("F43.0", 0.25), ("F43.9", 0.15), ("Z73.0", 0.20)),
              (("F43.2", 0.6), ("F43.0", 0.4)),
              0.022, 1.5, (0.1, 0.5, 1.1, 1.3, 1.1, 0.4, 0.2),
              0.5, 0.6, 1.2, 0.26, 32, 0.75, "PHQ-9", "GAD-7", 0.4, 0.6, 0.45),
    _Category("exhaustion", (("F43.8A", 1.0),), (("F43.2", 1.0),),
              0.0045, 2.8, (0.0, 0.05, 0.6, 1.4, 1.2, 0.2, 0.0),
              0.8, 0.7, 1.0, 0.8, 165, 0.55, "KEDS", "PHQ-9", 0.5, 1.0, 0.5),
    _Category("sleep", (("F51.0", 1.0),), (("F51.0", 1.0),),
              0.012, 1.3, (0.1, 0.4, 0.6, 0.8, 1.2, 1.4, 1.5),
              0.25, 0.5, 0.3, 0.02, 14, 0.6, "PHQ-9", None, 0.0, 0.3, 0.5),
    _Category("substance", (("F10.1", 0.6), ("F10.2", 0.4)), (("F10.0", 1.0),),
              0.006, 0.45, (0.0, 0.2, 1.0, 1.1, 1.2, 0.8, 0.4),
              0.1, 0.8, 0.6, 0.12, 45, 0.8, "PHQ-9", None, 0.0, 0.2, 0.0),
    _Category("neurodevelopmental", (("F90.0", 1.0),), (("F90.0", 1.0),),
              0.005, 0.7, (0.8, 1.5, 1.6, 1.0, 0.3, 0.05, 0.0),
              0.05, 0.6, 0.4, 0.02, 30, 0.7, "GAD-7", None, 0.0, 0.1, 0.0),
    _Category("other",
              (("F45.0", 0.35), ("F48.0", 0.25), ("F45.4", 0.25), ("F41.8", 0.15)),
              (("F93.9", 0.5), ("F98.0", 0.5)),
              0.010, 1.4, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9),
              0.3, 0.5, 0.6, 0.05, 40, 0.8, "GAD-7", "PHQ-9", 0.3, 0.3, 0.3),
)
# fmt: on
_DEPRESSION = 0

# Symptom level at the start of an episode: mean and spread per category and instrument (PHQ-9,
# GAD-7, MADRS-S, KEDS, EQ-5D index). Depression codes shift the level by severity (F32.0 mild,
# F32.1 moderate, F32.2 severe), which gives about 85–90 % above caseness at baseline.
_BASELINE_MEAN = np.array(
    [
        [15.0, 11.5, 23.0, 26.0, 0.58],  # depression
        [11.5, 13.5, 17.0, 24.0, 0.62],  # anxiety
        [13.0, 11.5, 19.0, 28.0, 0.62],  # stress
        [14.0, 11.0, 21.0, 32.0, 0.55],  # exhaustion
        [12.0, 9.0, 17.0, 22.0, 0.68],  # sleep
        [11.0, 9.5, 16.0, 20.0, 0.65],  # substance
        [10.0, 11.0, 15.0, 20.0, 0.7],  # neurodevelopmental
        [11.5, 12.5, 17.0, 24.0, 0.64],  # other
    ]
)
_BASELINE_SD = np.array([4.0, 3.5, 6.0, 6.0, 0.1])
_SEVERITY_SHIFT = {
    "F32.0": -0.8, "F32.1": 0.25, "F32.2": 1.4, "F33.0": -0.8, "F33.1": 0.25,
}  # fmt: skip
_INSTR_MAX = np.array([INSTRUMENTS[i].maximum for i in _INSTR])
_INSTR_MIN = np.array([INSTRUMENTS[i].minimum for i in _INSTR])

# Background (not mental-health) care: main diagnoses with their weights, the probability that a
# visit for them leads to sick leave, and that sick leave's median length in days and spread.
# fmt: off
_BACKGROUND_DX: tuple[tuple[str, float, float, float, float], ...] = (
    ("J06.9", 10, 0.02, 7, 0.5), ("I10", 9, 0, 0, 0), ("E11.9", 6, 0, 0, 0),
    ("Z76.0", 4, 0, 0, 0), ("Z00.0", 4, 0, 0, 0), ("N39.0", 4, 0.01, 5, 0.4),
    ("J45.9", 3, 0.01, 7, 0.5), ("L30.9", 3, 0, 0, 0), ("J02.9", 3, 0.03, 5, 0.4),
    ("R05", 2.5, 0.01, 7, 0.5), ("R51", 2, 0.02, 5, 0.5), ("R10.4", 2, 0.02, 6, 0.6),
    ("H10.9", 2, 0, 0, 0), ("K59.0", 1.5, 0, 0, 0), ("E78.5", 2, 0, 0, 0),
    ("I48.9", 1.5, 0.02, 14, 0.7), ("J18.9", 1, 0.3, 14, 0.6), ("U07.1", 1, 0.4, 8, 0.5),
    ("G43.9", 1, 0.1, 3, 0.5), ("C50.9", 0.5, 0.5, 150, 0.7), ("I21.9", 0.3, 0.6, 60, 0.7),
    ("D50.9", 1, 0, 0, 0), ("B34.9", 1.5, 0.08, 6, 0.5),
)
_MSK_DX: tuple[tuple[str, float, float, float, float], ...] = (
    ("M54.5", 6, 0.15, 21, 1.0), ("M25.5", 4, 0.05, 14, 0.8), ("M75.1", 2, 0.25, 45, 0.9),
    ("M17.1", 2, 0.15, 60, 0.8), ("M79.1", 2, 0.08, 20, 0.9), ("S93.4", 2, 0.2, 14, 0.7),
    ("S83.5", 0.8, 0.3, 60, 0.8), ("M51.1", 0.8, 0.5, 60, 0.9), ("G56.0", 0.5, 0.3, 30, 0.7),
    ("M77.1", 1.5, 0.1, 21, 0.8),
)
# fmt: on
_SECONDARY_DX = (
    ("I10", 3),
    ("E11.9", 2),
    ("E78.5", 2),
    ("Z72.0", 1),
    ("E66.9", 1.5),
    ("F17.2", 0.5),
)  # fmt: skip
_PSY_SECONDARY_DX = (("Z56.6", 3), ("Z63.0", 2), ("Z60.2", 1), ("Z59.5", 0.5))


def _code_table(rows) -> tuple[np.ndarray, np.ndarray]:
    codes = np.array([_icd(r[0]) for r in rows], dtype=np.int16)
    weights = np.array([r[1] for r in rows], dtype=float)
    return codes, weights / weights.sum()


_BG_CODES, _BG_P = _code_table(_BACKGROUND_DX)
_MSK_CODES, _MSK_P = _code_table(_MSK_DX)
_SEC_CODES, _SEC_P = _code_table(_SECONDARY_DX)
_PSY_SEC_CODES, _PSY_SEC_P = _code_table(_PSY_SECONDARY_DX)
_CAT_CODES = [_code_table(c.codes) for c in _CATEGORIES]
_CAT_CHILD_CODES = [_code_table(c.child_codes) for c in _CATEGORIES]

# Sick leave that does not follow a mental-health episode: the visit diagnoses that lead to it,
# weighted by how often they are seen and how often they lead to sick leave.
_SL_ROWS = tuple(r for r in _BACKGROUND_DX + _MSK_DX if r[2] > 0)
_SL_CODES = np.array([_icd(r[0]) for r in _SL_ROWS], dtype=np.int16)
_SL_P = np.array([r[1] * r[2] for r in _SL_ROWS])
_SL_P /= _SL_P.sum()
_SL_MEDIAN = np.array([r[3] for r in _SL_ROWS], dtype=float)
_SL_SIGMA = np.array([r[4] for r in _SL_ROWS], dtype=float)
_SL_EXTENTS = np.array([100, 75, 50, 25], dtype=np.int16)
_SL_EXTENT_P = np.array([0.55, 0.08, 0.25, 0.12])
_SL_MAX_DAYS = 730

_SEVERITY = np.zeros(len(_ICD), dtype=float)
for _code, _shift in _SEVERITY_SHIFT.items():
    _SEVERITY[_ICD_INDEX[_code]] = _shift

# ---------------------------------------------------------------------------------------------
# Rates. Calibrated so that, at scale 1, the region has about 2.5 contacts per listed person and
# year, 30 % of new visits concern mental ill-health and 60 % of long sick leave is psychiatric.
# ---------------------------------------------------------------------------------------------

# Background contacts per person and year by age group, and by sex (K, M).
_BG_RATE = 1.55
_BG_AGE = np.array([1.1, 0.7, 0.75, 0.8, 1.0, 1.55, 2.2])
_BG_SEX = np.array([1.15, 0.86])
_BG_NEW_P = 0.25  # share of background contacts that are new visits
_BG_PROF_P = np.array([0.44, 0.36, 0.12, 0.03, 0.05])  # lakare, ssk, fysio, arbetsterapeut, annan
_BG_PROFS = np.array(
    [_PROF[p] for p in ("lakare", "sjukskoterska", "fysioterapeut", "arbetsterapeut", "annan")]
)
_BG_SECONDARY_P = 0.18
_BG_PROCEDURE_P = 0.06
# Mental-health episodes: a global factor on the category rates above.
_EPISODE_FACTOR = 1.6
# Sick leave after other care, per person of working age and year.
_BG_SICK_LEAVE_RATE = 0.105
# Calendar months: July is the holiday month, December has the holidays too.
_SEASON = np.array([1.07, 1.06, 1.06, 1.03, 1.01, 0.96, 0.68, 0.92, 1.06, 1.07, 1.05, 0.88])
_SEASON = _SEASON / _SEASON.mean()
_WEEKEND_WEIGHT = 0.03

# What the units' profiles mean for mental-health care.
# psych_team -> (p_treat, wait_mean_days, p_follow, p_measure, outcome, p_counsel, professions
# giving psychological treatment with their shares)
_TEAM = {
    "none": (0.07, 85.0, 0.47, 0.3, 0.38, 0.0, (("sjukskoterska", 0.7), ("lakare", 0.3))),
    "kurator_only": (0.34, 50.0, 0.56, 0.5, 0.42, 0.3, (("kurator", 1.0),)),
    "psychologist": (0.48, 35.0, 0.64, 0.68, 0.45, 0.22, (("psykolog", 0.75), ("kurator", 0.25))),
    "team": (
        0.54,
        28.0,
        0.68,
        0.76,
        0.47,
        0.2,
        (("psykolog", 0.6), ("kurator", 0.2), ("psykoterapeut", 0.2)),
    ),
}
# performance -> (treatment multiplier, wait multiplier, follow-up (absolute), measure
# multiplier, outcome (absolute))
_PERFORMANCE = {
    "low": (0.35, 1.8, 0.26, 0.5, 0.3),
    "typical": (1.0, 1.0, None, 1.0, None),
    "high": (1.5, 0.55, 0.9, 1.25, 0.57),
}
_TREAT_MAX = 0.9
_TAU_DAYS = 30.0  # how fast symptoms fall during treatment
_RATING_NOISE = 1.4


# ---------------------------------------------------------------------------------------------
# Results and arguments
# ---------------------------------------------------------------------------------------------


@dataclass
class SynthResult:
    """What `generate` wrote: the months, the rows per table and where the manifest is."""

    out_dir: Path
    seed: int
    scale: float
    fmt: str
    months: list[str]
    rows: dict[str, int]
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: what was generated, how many rows, how long it took."""
        months = self.months[0] if len(self.months) == 1 else f"{self.months[0]}–{self.months[-1]}"
        rows = ", ".join(f"{name} {_thousands(n)}" for name, n in self.rows.items())
        return (
            f"{len(self.months)} months ({months}), seed {self.seed}, scale {self.scale:g}, "
            f"{self.fmt} in {self.out_dir}: {rows} rows in {self.seconds:.1f} s"
        )


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def parse_months(text: str | None) -> list[str]:
    """``2024-01:2025-12`` (or one month, ``2025-03``) → the months, which must be months of
    the demo registry (its listings exist only for them)."""
    if not text:
        return list(MONTHS)
    first, _, last = text.partition(":")
    try:
        start, end = Period.parse(first), Period.parse(last or first)
    except PeriodError as exc:
        raise SynthError(f"--months: {exc}")
    if start.kind != "month" or end.kind != "month":
        raise SynthError("--months takes months written YYYY-MM, e.g. 2024-01:2025-12")
    if end < start:
        raise SynthError(f"--months: {end} is before {start}")
    months = [str(m) for m in period_range(start, end)]
    outside = [m for m in months if m not in MONTHS]
    if outside:
        raise SynthError(
            f"--months: the demo registry has listings from {MONTHS[0]} to {MONTHS[-1]} only "
            f"({outside[0]} is outside)"
        )
    return months


# ---------------------------------------------------------------------------------------------
# Calendar helpers: days are whole numbers counted from 1970-01-01, as Arrow's date32.
# ---------------------------------------------------------------------------------------------

_EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - _EPOCH).days


@dataclass(frozen=True)
class _Month:
    index: int  # position in the simulation, 0 = the first burn-in month
    label: str
    start: int
    end: int  # last day, inclusive
    calendar_month: int

    @property
    def days(self) -> int:
        return self.end - self.start + 1


def _months_of_simulation(last: str) -> list[_Month]:
    origin = Period.parse(FIRST_MONTH) - BURN_IN_MONTHS
    return [
        _Month(i, str(p), _day(p.start), _day(p.end), p.index)
        for i, p in enumerate(period_range(origin, last))
    ]


def _to_weekday(days: np.ndarray) -> np.ndarray:
    """Move Saturdays and Sundays to the following Monday (care happens on weekdays)."""
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    return days + np.where(dow == 5, 2, np.where(dow == 6, 1, 0))


def _draw_days(rng: np.random.Generator, month: _Month, n: int) -> np.ndarray:
    """Days in the month, weekdays about thirty times as likely as a Saturday or Sunday."""
    days = np.arange(month.start, month.end + 1)
    weights = np.where((days + 3) % 7 >= 5, _WEEKEND_WEIGHT, 1.0)
    cum = np.cumsum(weights)
    picks = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return days[np.minimum(picks, len(days) - 1)].astype(np.int32)


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """An independent random stream per (seed, purpose, month)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index, GENERATOR_VERSION]))


_S_POOL, _S_BACKGROUND, _S_EPISODES, _S_SICK_LEAVE = 1, 2, 3, 4


def _choice(rng: np.random.Generator, values: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(p)
    picks = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return values[np.minimum(picks, len(values) - 1)]


# ---------------------------------------------------------------------------------------------
# Identifiers: letters only, so no value can look like a personal identity number.
# ---------------------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A bijection on 64-bit integers (the SplitMix64 finaliser): distinct in, distinct out."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _letters(values: np.ndarray, width: int, prefix: bytes, alphabet: bytes) -> pa.Array:
    """Unsigned integers written with 16 letters as hexadecimal digits ("hex without digits"),
    the last `width` (at most 16) digits after a prefix, as an Arrow string array built straight
    from a byte matrix (no Python string per row)."""
    n = len(values)
    raw = values.astype(">u8").view(np.uint8).reshape(n, 8)  # big-endian: most significant first
    nibbles = np.empty((n, 16), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 15
    digits = np.frombuffer(alphabet, dtype=np.uint8)
    out = np.empty((n, len(prefix) + width), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    out[:, len(prefix) :] = digits[nibbles[:, 16 - width :]]
    size = out.shape[1]
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))


def _patient_keys(seed: int, n: int) -> pa.Array:
    """``p-`` and 16 letters a–p: all 64 bits of a bijective hash, so keys stay distinct."""
    with np.errstate(over="ignore"):
        salted = np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000001B3)
    return _letters(_splitmix64(salted), 16, b"p-", b"abcdefghijklmnop")


def _contact_ids(month: str, n: int) -> pa.Array:
    """``K2503`` and seven letters A–P numbering the contact within its month (16**7 = 268
    million per month); the month makes ids unique across months."""
    prefix = f"K{month[2:4]}{month[5:7]}".encode()
    return _letters(np.arange(n, dtype=np.uint64), 7, prefix, b"ABCDEFGHIJKLMNOP")


# ---------------------------------------------------------------------------------------------
# The population: a pool of patients per unit drawn from its listings.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Units:
    """Per-unit parameters as arrays (index = position in the registry's unit list)."""

    hsa_ids: list[str]
    open: np.ndarray  # (units, simulation months) bool
    activity: np.ndarray  # (units, simulation months) listed / pool mean
    care_need: np.ndarray
    digital: np.ndarray
    group: np.ndarray  # bool
    has_kurator: np.ndarray  # bool
    p_treat: np.ndarray
    wait_mean: np.ndarray
    p_follow: np.ndarray
    p_measure: np.ndarray
    outcome: np.ndarray
    p_counsel: np.ndarray
    treat_prof_cum: np.ndarray  # (units, professions) cumulative shares
    treat_profs: np.ndarray  # profession indexes matching treat_prof_cum's columns


def _unit_parameters(
    seed: int, units: Sequence[DemoUnit], listed: np.ndarray, months: list[_Month]
) -> _Units:
    rng = _rng(seed, _S_POOL, 10_000)
    n = len(units)
    profs = np.array(
        [_PROF[p] for p in ("lakare", "sjukskoterska", "kurator", "psykolog", "psykoterapeut")]
    )
    cum = np.zeros((n, len(profs)))
    arrays: dict[str, np.ndarray] = {
        k: np.zeros(n)
        for k in (
            "care_need",
            "digital",
            "p_treat",
            "wait",
            "p_follow",
            "p_measure",
            "outcome",
            "p_counsel",
        )
    }
    group = np.zeros(n, dtype=bool)
    kurator = np.zeros(n, dtype=bool)
    for i, unit in enumerate(units):
        profile = unit.profile
        p_treat, wait, follow, measure, outcome, counsel, treaters = _TEAM[profile.psych_team]
        t_mul, w_mul, f_abs, m_mul, o_abs = _PERFORMANCE[profile.performance]
        # A small, seed-dependent unit effect so that typical units are not identical.
        effect = rng.normal(0.0, 1.0, 4)
        arrays["p_treat"][i] = min(
            _TREAT_MAX, p_treat * t_mul * (1.06 if profile.ptp else 1.0) * np.exp(0.06 * effect[0])
        )
        arrays["wait"][i] = wait * w_mul * np.exp(0.08 * effect[1])
        arrays["p_follow"][i] = np.clip(
            (follow if f_abs is None else f_abs) + 0.025 * effect[2], 0.05, 0.95
        )
        arrays["p_measure"][i] = min(0.95, measure * m_mul)
        arrays["outcome"][i] = (outcome if o_abs is None else o_abs) + 0.015 * effect[3]
        arrays["p_counsel"][i] = counsel
        arrays["care_need"][i] = profile.care_need
        arrays["digital"][i] = profile.digital_share
        group[i] = profile.group_treatment
        kurator[i] = profile.psych_team != "none"
        shares = dict(treaters)
        cum[i] = np.cumsum([shares.get(PROFESSIONS[p], 0.0) for p in profs])
    # Activity: the month's listed count over the pool's (mean) size; burn-in months before the
    # registry's first month use that month's count while the unit was open.
    mean = np.array(
        [listed[i][listed[i] > 0].mean() if (listed[i] > 0).any() else 0.0 for i in range(n)]
    )
    activity = np.zeros((n, len(months)))
    first = MONTHS.index(FIRST_MONTH)
    for j, month in enumerate(months):
        if month.label in MONTHS:
            col = listed[:, MONTHS.index(month.label)]
        else:
            p = Period.parse(month.label)
            was_open = np.array(
                [u.opened <= p.start and (u.closed is None or u.closed > p.end) for u in units]
            )
            col = np.where(was_open, listed[:, first], 0.0)
        activity[:, j] = np.divide(col, mean, out=np.zeros(n), where=mean > 0)
    return _Units(
        hsa_ids=[u.hsa_id for u in units],
        open=activity > 0,
        activity=activity,
        care_need=arrays["care_need"],
        digital=arrays["digital"],
        group=group,
        has_kurator=kurator,
        p_treat=arrays["p_treat"],
        wait_mean=arrays["wait"],
        p_follow=arrays["p_follow"],
        p_measure=arrays["p_measure"],
        outcome=arrays["outcome"],
        p_counsel=arrays["p_counsel"],
        treat_prof_cum=cum,
        treat_profs=profs,
    )


@dataclass
class _Population:
    """The patients, ordered by unit, sex and age: their unit, sex (0 = K, 1 = M), birth year,
    age group and key. Rates are the same for every patient of a (unit, sex, age group) cell,
    and the cells are contiguous runs of patients, so events are drawn per cell."""

    unit: np.ndarray
    sex: np.ndarray
    birth_year: np.ndarray
    group: np.ndarray
    keys: pa.Array
    cell_start: np.ndarray
    cell_size: np.ndarray
    cell_unit: np.ndarray
    bg_rate: np.ndarray  # per cell, per person and year
    episode_rate: np.ndarray
    sick_rate: np.ndarray

    def __len__(self) -> int:
        return len(self.unit)


# Episode rates per (sex, age group, category), before the global factor and care need.
_CAT_RATE = np.zeros((2, _N_GROUPS, len(_CATEGORIES)))
for _c, _cat in enumerate(_CATEGORIES):
    _CAT_RATE[1, :, _c] = _cat.rate_men * np.array(_cat.age)
    _CAT_RATE[0, :, _c] = _cat.rate_men * _cat.female_ratio * np.array(_cat.age)
_CAT_TOTAL = _CAT_RATE.sum(axis=2)
_CAT_CUM = np.cumsum(_CAT_RATE, axis=2) / np.maximum(_CAT_TOTAL[:, :, None], 1e-12)


def _population(seed: int, scale: float, registry: DemoRegistry, units: _Units) -> _Population:
    rng = _rng(seed, _S_POOL, 0)
    unit_index = {u.hsa_id: i for i, u in enumerate(registry.units)}
    cells: dict[tuple[int, int, int], list[int]] = {}
    sex_index = {s: i for i, s in enumerate(SEXES)}
    band_index = {b: i for i, b in enumerate(AGE_BANDS)}
    for row in registry.listings:
        key = (unit_index[row.hsa_id], sex_index[row.sex], band_index[row.age_band])
        cells.setdefault(key, []).append(row.listed)
    keys = sorted(cells)
    cell_unit = np.array([k[0] for k in keys], dtype=np.int16)
    cell_sex = np.array([k[1] for k in keys], dtype=np.int8)
    cell_band = np.array([k[2] for k in keys], dtype=np.int16)
    expected = np.array([scale * np.mean(cells[k]) for k in keys])
    # Unbiased rounding, so that small scales keep the totals in proportion.
    counts = np.floor(expected).astype(np.int64)
    counts += rng.random(len(counts)) < expected - counts
    unit = np.repeat(cell_unit, counts)
    sex = np.repeat(cell_sex, counts)
    band = np.repeat(cell_band, counts)
    lows = np.array([band_bounds(b)[0] for b in AGE_BANDS])
    highs = np.array([band_bounds(b)[1] or 104 for b in AGE_BANDS])
    low, high = lows[band], highs[band]
    age = np.where(
        high >= 100,
        np.minimum(low + np.floor(rng.exponential(4.5, len(band))), 104),
        low + np.floor(rng.random(len(band)) * (high - low + 1)),
    ).astype(np.int16)
    order = np.lexsort((age, sex, unit))
    unit, sex, age = unit[order], sex[order], age[order]
    group = (np.searchsorted(_GROUP_EDGES, age, side="right") - 1).astype(np.int8)
    # Rate cells: runs of patients with the same unit, sex and age group.
    change = np.ones(len(unit), dtype=bool)
    change[1:] = (unit[1:] != unit[:-1]) | (sex[1:] != sex[:-1]) | (group[1:] != group[:-1])
    start = np.flatnonzero(change)
    size = np.diff(np.append(start, len(unit)))
    c_unit, c_sex, c_group = unit[start], sex[start], group[start]
    need = units.care_need[c_unit]
    reference_year = Period.parse(FIRST_MONTH).year
    return _Population(
        unit=unit,
        sex=sex,
        birth_year=(reference_year - age).astype(np.int16),
        group=group,
        keys=_patient_keys(seed, len(unit)),
        cell_start=start,
        cell_size=size,
        cell_unit=c_unit,
        bg_rate=_BG_RATE * _BG_AGE[c_group] * _BG_SEX[c_sex] * np.sqrt(need),
        episode_rate=_EPISODE_FACTOR * _CAT_TOTAL[c_sex, c_group] * need,
        # Working ages 18-64 (the age groups are whole there).
        sick_rate=np.where(_WORKING_GROUPS[c_group], _BG_SICK_LEAVE_RATE * np.sqrt(need), 0.0),
    )


def _pick(
    rng: np.random.Generator, rate: np.ndarray, pop: _Population, units: _Units, month: _Month
) -> np.ndarray:
    """Patients with an event this month: a Poisson number of events, spread over the cells in
    proportion to rate × patients × activity, each on a patient of its cell at random (the same
    distribution as one Poisson draw per patient, at a cost proportional to the events)."""
    weights = rate * pop.cell_size * units.activity[pop.cell_unit, month.index]
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(0, dtype=np.int32)
    expected = total * month.days / 365.25 * _SEASON[month.calendar_month - 1]
    n = int(rng.poisson(expected))
    shares = weights / total
    shares[:-1] *= 1 - 1e-12  # numpy refuses shares whose sum rounds to just above 1
    per_cell = rng.multinomial(n, shares)
    cell = np.repeat(np.arange(len(weights)), per_cell)
    offset = np.floor(rng.random(n) * pop.cell_size[cell]).astype(np.int64)
    return (pop.cell_start[cell] + offset).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------

_CONTACT_FIELDS = {
    "pid": np.int32,
    "day": np.int32,
    "prof": np.int8,
    "ctype": np.int8,
    "new": np.bool_,
    "d1": np.int16,
    "d2": np.int16,
    "k1": np.int16,
    "k2": np.int16,
}
_MEASURE_FIELDS = {"pid": np.int32, "day": np.int32, "instr": np.int8, "score": np.float64}
_SICK_FIELDS = {
    "pid": np.int32,
    "start": np.int32,
    "end": np.int32,
    "extent": np.int16,
    "code": np.int16,
}


class _Events:
    """Columns of equal length (numpy arrays); a month's contacts, ratings or sick leave."""

    def __init__(self, fields: dict[str, Any], **columns: Any) -> None:
        n = max((np.size(v) for v in columns.values()), default=0)
        self.cols = {}
        for name, dtype in fields.items():
            value = columns.get(name, _NO if dtype is not np.bool_ else False)
            self.cols[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

    def __len__(self) -> int:
        return len(next(iter(self.cols.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def take(self, index: np.ndarray) -> _Events:
        out = _Events.__new__(_Events)
        out.cols = {k: v[index] for k, v in self.cols.items()}
        return out

    @staticmethod
    def concat(fields: dict[str, Any], parts: list[_Events]) -> _Events:
        parts = [p for p in parts if len(p)]
        if not parts:
            return _Events(fields)
        out = _Events.__new__(_Events)
        out.cols = {k: np.concatenate([p.cols[k] for p in parts]) for k in fields}
        return out


def _remote_types(
    rng: np.random.Generator, n: int, remote_p: np.ndarray, kinds: dict[str, float]
) -> np.ndarray:
    """besok, or with probability remote_p one of the remote kinds (with their shares)."""
    names = list(kinds)
    remote = rng.random(n) < remote_p
    kind = _choice(
        rng, np.array([_CTYPE[k] for k in names]), np.array([kinds[k] for k in names]), n
    )
    return np.where(remote, kind, _CTYPE["besok"]).astype(np.int8)


def _background_contacts(seed: int, pop: _Population, units: _Units, month: _Month) -> _Events:
    rng = _rng(seed, _S_BACKGROUND, month.index)
    pid = _pick(rng, pop.bg_rate, pop, units, month)
    n = len(pid)
    unit = pop.unit[pid]
    prof = _choice(rng, _BG_PROFS, _BG_PROF_P, n)
    ctype = _remote_types(
        rng, n, units.digital[unit], {"telefon": 0.5, "digital": 0.3, "video": 0.2}
    )
    group = pop.group[pid]
    home_p = np.where(group == 6, 0.08, np.where(group == 5, 0.01, 0.0))
    home = (ctype == _CTYPE["besok"]) & (rng.random(n) < home_p)
    ctype = np.where(home, _CTYPE["hembesok"], ctype)
    msk = (prof == _PROF["fysioterapeut"]) | (prof == _PROF["arbetsterapeut"])
    d1 = np.where(
        msk | (rng.random(n) < 0.12),
        _choice(rng, _MSK_CODES, _MSK_P, n),
        _choice(rng, _BG_CODES, _BG_P, n),
    )
    d2 = np.where(rng.random(n) < _BG_SECONDARY_P, _choice(rng, _SEC_CODES, _SEC_P, n), _NO)
    d2 = np.where(d2 == d1, _NO, d2)
    k1 = np.where(
        rng.random(n) < _BG_PROCEDURE_P, _choice(rng, _K_BACKGROUND, _K_BACKGROUND_P, n), _NO
    )
    new = rng.random(n) < np.where(group <= 1, _BG_NEW_P + 0.1, _BG_NEW_P)
    return _Events(
        _CONTACT_FIELDS,
        pid=pid,
        day=_draw_days(rng, month, n),
        prof=prof,
        ctype=ctype,
        new=new,
        d1=d1,
        d2=d2,
        k1=k1,
    )


def _sick_leave_cases(
    seed: int, pop: _Population, units: _Units, month: _Month
) -> tuple[_Events, _Events]:
    """Sick leave after other (not mental-health) care, with the visit that certified it."""
    rng = _rng(seed, _S_SICK_LEAVE, month.index)
    pid = _pick(rng, pop.sick_rate, pop, units, month)
    n = len(pid)
    which = _choice(rng, np.arange(len(_SL_CODES)), _SL_P, n)
    start = _draw_days(rng, month, n)
    length = np.clip(
        np.round(_SL_MEDIAN[which] * np.exp(_SL_SIGMA[which] * rng.standard_normal(n))),
        1,
        _SL_MAX_DAYS,
    ).astype(np.int32)
    cases = _Events(
        _SICK_FIELDS,
        pid=pid,
        start=start,
        end=start + length - 1,
        extent=_choice(rng, _SL_EXTENTS, _SL_EXTENT_P, n),
        code=_SL_CODES[which],
    )
    visits = _Events(
        _CONTACT_FIELDS,
        pid=pid,
        day=start,
        prof=_PROF["lakare"],
        ctype=_CTYPE["besok"],
        new=rng.random(n) < 0.5,
        d1=_SL_CODES[which],
    )
    return cases, visits


def _group_ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per parent: the parent index of each child row and the child's position."""
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    position = np.arange(int(counts.sum())) - np.repeat(starts, counts)
    return parent, position


def _episodes(
    seed: int, pop: _Population, units: _Units, month: _Month
) -> tuple[_Events, _Events, _Events]:
    """Mental-health episodes that start this month, with everything that follows them:
    contacts (diagnosis, follow-up, supportive talks, psychological treatment), ratings and
    sick leave, dated in this or later months."""
    rng = _rng(seed, _S_EPISODES, month.index)
    pid = _pick(rng, pop.episode_rate, pop, units, month)
    n = len(pid)
    unit = pop.unit[pid]
    sex, group = pop.sex[pid], pop.group[pid]
    child = group == 0
    adult = group >= 2
    cat = (rng.random(n)[:, None] > _CAT_CUM[sex, group]).sum(axis=1)
    cat = np.minimum(cat, len(_CATEGORIES) - 1)
    code = np.zeros(n, dtype=np.int16)
    for c in range(len(_CATEGORIES)):
        m = cat == c
        if m.any():
            codes, p = _CAT_CODES[c]
            child_codes, child_p = _CAT_CHILD_CODES[c]
            code[m] = np.where(
                child[m],
                _choice(rng, child_codes, child_p, int(m.sum())),
                _choice(rng, codes, p, int(m.sum())),
            )
    t0 = _draw_days(rng, month, n)
    cat_treat = np.array([c.treat for c in _CATEGORIES])[cat]
    cat_follow = np.array([c.follow for c in _CATEGORIES])[cat]
    cat_counsel = np.array([c.counsel for c in _CATEGORIES])[cat]
    cat_measure = np.array([c.measure for c in _CATEGORIES])[cat]
    digital = units.digital[unit]
    parts: list[_Events] = []

    # The diagnosis: a new visit, mostly with a physician.
    has_kurator = units.has_kurator[unit]
    prof = np.where(rng.random(n) < 0.12, _PROF["sjukskoterska"], _PROF["lakare"])
    prof = np.where(has_kurator & (rng.random(n) < 0.06), _PROF["kurator"], prof)
    measured_dx = rng.random(n) < units.p_measure[unit] * cat_measure * 0.6
    d2 = np.where(rng.random(n) < 0.12, _choice(rng, _PSY_SEC_CODES, _PSY_SEC_P, n), _NO)
    parts.append(
        _Events(
            _CONTACT_FIELDS,
            pid=pid,
            day=t0,
            prof=prof,
            ctype=_remote_types(
                rng, n, 0.6 * digital, {"video": 0.45, "telefon": 0.3, "digital": 0.25}
            ),
            new=True,
            d1=code,
            d2=d2,
            k1=np.where(measured_dx, _K_RATING, _NO),
        )
    )

    # Follow-up by the physician or nurse: for depression 10–56 days after the diagnosis (the
    # weekday shift adds at most two days), otherwise 7–60 days.
    is_dep = cat == _DEPRESSION
    follow = rng.random(n) < units.p_follow[unit] * cat_follow
    offset = np.where(is_dep, rng.integers(10, 55, n), rng.integers(7, 61, n))
    late = (~follow | (rng.random(n) < 0.3)) & (rng.random(n) < 0.35)
    for mask, days in ((follow, offset), (late, rng.integers(60, 151, n))):
        idx = np.flatnonzero(mask)
        k = len(idx)
        parts.append(
            _Events(
                _CONTACT_FIELDS,
                pid=pid[idx],
                day=_to_weekday(t0[idx] + days[idx]),
                prof=np.where(rng.random(k) < 0.8, _PROF["lakare"], _PROF["sjukskoterska"]),
                ctype=_remote_types(
                    rng,
                    k,
                    np.minimum(0.9, digital[idx] + 0.2),
                    {"telefon": 0.5, "video": 0.3, "digital": 0.2},
                ),
                d1=code[idx],
            )
        )

    # Supportive talks with a counsellor (stödsamtal, DU007), where the unit has one.
    counsel = has_kurator & (rng.random(n) < units.p_counsel[unit] * cat_counsel)
    idx = np.flatnonzero(counsel)
    talks = 1 + np.minimum(rng.poisson(1.5, len(idx)), 6)
    parent, position = _group_ranges(talks)
    k = len(parent)
    gaps = np.where(position == 0, rng.integers(5, 26, k), rng.integers(7, 15, k))
    days = t0[idx][parent] + _cumsum_within(gaps, talks)
    parts.append(
        _Events(
            _CONTACT_FIELDS,
            pid=pid[idx][parent],
            day=_to_weekday(days),
            prof=_PROF["kurator"],
            ctype=_remote_types(rng, k, digital[idx][parent], {"video": 0.5, "telefon": 0.5}),
            d1=code[idx][parent],
            k1=_K_COUNSEL,
        )
    )

    # Psychological treatment (KVÅ DU011 CBT, DU022 IPT, DU008 PDT) after a wait.
    treat = rng.random(n) < np.minimum(
        _TREAT_MAX, units.p_treat[unit] * cat_treat * np.where(adult, 1.0, 0.35)
    )
    courses = _courses(rng, np.flatnonzero(treat), pid, unit, cat, code, t0, units)
    parts.append(courses.contacts)

    # Ratings: at the diagnosis, and during the course (baseline, sessions, follow-up).
    severity = rng.standard_normal(n) + _SEVERITY[code]
    ratings = [_diagnosis_ratings(rng, np.flatnonzero(measured_dx), pid, cat, severity, t0)]
    ratings.append(courses.ratings(rng, severity, units))

    # Sick leave following the episode (working ages).
    working = _WORKING_GROUPS[group]
    sl_p = np.array([c.sick_leave for c in _CATEGORIES])[cat] * np.sqrt(units.care_need[unit])
    sick = np.flatnonzero(working & (rng.random(n) < sl_p))
    k = len(sick)
    median = np.array([c.sick_median for c in _CATEGORIES])[cat[sick]]
    sigma = np.array([c.sick_sigma for c in _CATEGORIES])[cat[sick]]
    start = _to_weekday(t0[sick] + rng.integers(0, 4, k))
    length = np.clip(np.round(median * np.exp(sigma * rng.standard_normal(k))), 7, _SL_MAX_DAYS)
    cases = _Events(
        _SICK_FIELDS,
        pid=pid[sick],
        start=start,
        end=start + length.astype(np.int32) - 1,
        extent=_choice(rng, _SL_EXTENTS, np.array([0.45, 0.08, 0.32, 0.15]), k),
        code=code[sick],
    )
    return (
        _Events.concat(_CONTACT_FIELDS, parts),
        _Events.concat(_MEASURE_FIELDS, ratings),
        cases,
    )


def _cumsum_within(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of `counts` consecutive rows."""
    total = np.cumsum(values)
    ends = np.cumsum(counts)
    before = np.concatenate([[0], total[ends[:-1] - 1]]) if len(counts) else np.zeros(0)
    return total - np.repeat(before, counts).astype(total.dtype)


def _score(instr: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Clip to the instrument's range; whole numbers except the EQ-5D index (3 decimals)."""
    eq = instr == _I["EQ-5D"]
    value = np.clip(value, _INSTR_MIN[instr], _INSTR_MAX[instr])
    return np.where(eq, np.round(value, 3), np.round(value))


def _baseline(cat: np.ndarray, instr: np.ndarray, severity: np.ndarray) -> np.ndarray:
    """The episode's symptom level on an instrument (higher is worse, but for EQ-5D)."""
    sign = np.where(instr == _I["EQ-5D"], -1.0, 1.0)
    return _BASELINE_MEAN[cat, instr] + sign * _BASELINE_SD[instr] * severity


def _diagnosis_ratings(
    rng: np.random.Generator,
    idx: np.ndarray,
    pid: np.ndarray,
    cat: np.ndarray,
    severity: np.ndarray,
    t0: np.ndarray,
) -> _Events:
    primary = np.array([_I[c.primary] for c in _CATEGORIES])[cat[idx]]
    value = _baseline(cat[idx], primary, severity[idx])
    value = value + _RATING_NOISE * rng.standard_normal(len(idx))
    return _Events(
        _MEASURE_FIELDS, pid=pid[idx], day=t0[idx], instr=primary, score=_score(primary, value)
    )


@dataclass
class _Courses:
    """Treatment courses of one month's episodes and their session contacts."""

    episode: np.ndarray  # episode index of each course
    start: np.ndarray
    sessions: np.ndarray
    session_course: np.ndarray  # course index of each session
    session_day: np.ndarray
    session_position: np.ndarray
    rated: np.ndarray  # per session
    contacts: _Events
    pid: np.ndarray
    unit: np.ndarray
    cat: np.ndarray

    def ratings(self, rng: np.random.Generator, severity: np.ndarray, units: _Units) -> _Events:
        """Ratings at rated sessions: the primary instrument, sometimes a second one and the
        EQ-5D; symptoms fall towards the course's outcome with noise (and some get worse)."""
        k = len(self.episode)
        if k == 0:
            return _Events(_MEASURE_FIELDS)
        cat = self.cat[self.episode]
        outcome = units.outcome[self.unit[self.episode]]
        # Improvement fraction per course: Beta around the unit's outcome; 7 % get worse.
        g = rng.beta(outcome * 6, (1 - outcome) * 6)
        g = np.where(rng.random(k) < 0.07, -rng.uniform(0.1, 0.4, k), g)
        primary = np.array([_I[c.primary] for c in _CATEGORIES])[cat]
        second = np.array([_I[c.secondary] if c.secondary else _NO for c in _CATEGORIES])[cat]
        second_p = np.array([c.secondary_p for c in _CATEGORIES])[cat]
        second = np.where(rng.random(k) < second_p, second, _NO)
        # A fifth of depression courses are rated with MADRS-S instead of PHQ-9.
        madrs = (primary == _I["PHQ-9"]) & (cat == _DEPRESSION) & (rng.random(k) < 0.2)
        primary = np.where(madrs, _I["MADRS-S"], primary)
        eq = rng.random(k) < 0.12
        parts = []
        s = np.flatnonzero(self.rated)
        c = self.session_course[s]
        last = self.session_position[s] == self.sessions[c] - 1
        first = self.session_position[s] == 0
        for instr, use in (
            (primary[c], np.ones(len(s), dtype=bool)),
            (second[c], second[c] != _NO),
            (np.full(len(s), _I["EQ-5D"]), eq[c] & (first | last)),
        ):
            rows = np.flatnonzero(use)
            cc, ii = c[rows], instr[rows].astype(np.intp)
            t = (self.session_day[s[rows]] - self.start[cc]).astype(float)
            base = _baseline(cat[cc], ii, severity[self.episode[cc]])
            healthy = np.where(ii == _I["EQ-5D"], 0.85, 0.0)
            fall = g[cc] * (1 - np.exp(-t / _TAU_DAYS))
            value = base + (healthy - base) * fall
            noise = np.where(ii == _I["EQ-5D"], 0.04, _RATING_NOISE)
            value = value + noise * rng.standard_normal(len(rows))
            parts.append(
                _Events(
                    _MEASURE_FIELDS,
                    pid=self.pid[self.episode[cc]],
                    day=self.session_day[s[rows]],
                    instr=ii,
                    score=_score(ii, value),
                )
            )
        return _Events.concat(_MEASURE_FIELDS, parts)


def _courses(
    rng: np.random.Generator,
    idx: np.ndarray,
    pid: np.ndarray,
    unit: np.ndarray,
    cat: np.ndarray,
    code: np.ndarray,
    t0: np.ndarray,
    units: _Units,
) -> _Courses:
    k = len(idx)
    u = unit[idx]
    wait = np.round(rng.gamma(2.0, units.wait_mean[u] / 2.0)).astype(np.int32)
    start = _to_weekday(t0[idx] + wait)
    group_p = np.array([c.group_p for c in _CATEGORIES])[cat[idx]]
    group = units.group[u] & (rng.random(k) < group_p)
    sessions = np.where(
        group, 6 + rng.integers(0, 3, k), 1 + np.minimum(rng.poisson(5.5, k), 15)
    ).astype(np.int64)
    remote = _remote_types(rng, k, units.digital[u], {"digital": 0.5, "video": 0.5})
    ctype = np.where(group, _CTYPE["grupp"], remote).astype(np.int8)
    prof_pick = (rng.random(k)[:, None] > units.treat_prof_cum[u]).sum(axis=1)
    prof = units.treat_profs[np.minimum(prof_pick, len(units.treat_profs) - 1)]
    prof = np.where(group & (prof == _PROF["lakare"]), _PROF["sjukskoterska"], prof)
    kva = np.where(group, _KVA_INDEX["DU011"], _choice(rng, _TREATMENT_KVA, _TREATMENT_KVA_P, k))
    course, position = _group_ranges(sessions)
    gaps = np.where(position == 0, 0, np.where(group[course], 7, rng.integers(7, 15, len(course))))
    day = _to_weekday(start[course] + _cumsum_within(gaps, sessions)).astype(np.int32)
    p_measure = units.p_measure[u]
    last = position == sessions[course] - 1
    r = rng.random(len(course))
    rated = np.where((position == 0) | last, r < p_measure[course], r < 0.35 * p_measure[course])
    contacts = _Events(
        _CONTACT_FIELDS,
        pid=pid[idx][course],
        day=day,
        prof=prof[course],
        ctype=ctype[course],
        d1=code[idx][course],
        k1=kva[course],
        k2=np.where(rated, _K_RATING, _NO),
    )
    return _Courses(
        episode=idx,
        start=start,
        sessions=sessions,
        session_course=course,
        session_day=day,
        session_position=position,
        rated=rated,
        contacts=contacts,
        pid=pid,
        unit=unit,
        cat=cat,
    )


# ---------------------------------------------------------------------------------------------
# The simulation: month by month, with a buffer of events due later.
# ---------------------------------------------------------------------------------------------


class _Pending:
    """Events generated in earlier months and dated later; released month by month."""

    def __init__(self, fields: dict[str, Any], day_field: str = "day") -> None:
        self.fields = fields
        self.day_field = day_field
        self.parts: list[_Events] = []

    def add(self, events: _Events) -> None:
        if len(events):
            self.parts.append(events)

    def release(self, last_day: int) -> _Events:
        due, keep = [], []
        for part in self.parts:
            mask = part[self.day_field] <= last_day
            if mask.all():
                due.append(part)
            elif mask.any():
                due.append(part.take(np.flatnonzero(mask)))
                keep.append(part.take(np.flatnonzero(~mask)))
            else:
                keep.append(part)
        self.parts = keep
        return _Events.concat(self.fields, due)


class _SickLeave:
    """Every sick-leave case so far, without overlaps per patient (a patient is on one sick
    leave at a time: a case that starts while another is in force is not certified)."""

    def __init__(self, patients: int) -> None:
        self.last_end = np.full(patients, np.iinfo(np.int32).min, dtype=np.int64)
        self.parts: list[_Events] = []

    def add(self, cases: _Events) -> None:
        if not len(cases):
            return
        order = np.lexsort((cases["start"], cases["pid"]))
        cases = cases.take(order)
        pid = cases["pid"].astype(np.int64)
        base = np.int64(1 << 21)  # days fit in 21 bits relative to 1970 until the year 7700
        key = pid * base + cases["end"]
        running = np.maximum.accumulate(key)
        previous = np.concatenate([[-1], running[:-1]])
        same = previous >= pid * base
        previous_end = np.where(same, previous - pid * base, np.iinfo(np.int32).min)
        blocked = np.maximum(previous_end, self.last_end[pid])
        keep = cases["start"] > blocked
        kept = cases.take(np.flatnonzero(keep))
        np.maximum.at(self.last_end, kept["pid"], kept["end"].astype(np.int64))
        self.parts.append(kept)

    def in_force(self, month: _Month) -> _Events:
        cases = _Events.concat(_SICK_FIELDS, self.parts)
        # Keep only what can still matter for this and later months.
        self.parts = [cases.take(np.flatnonzero(cases["end"] >= month.start))]
        mask = (cases["start"] <= month.end) & (cases["end"] >= month.start)
        return cases.take(np.flatnonzero(mask))


@dataclass
class _World:
    """Everything fixed for a run: the registry, the simulated months, units and patients."""

    seed: int
    scale: float
    registry: DemoRegistry
    months: list[_Month]
    units: _Units
    pop: _Population


def _world(seed: int, scale: float, registry: DemoRegistry, last: str) -> _World:
    months = _months_of_simulation(last)
    index = {m: i for i, m in enumerate(MONTHS)}
    listed = np.zeros((len(registry.units), len(MONTHS)))
    unit_index = {u.hsa_id: i for i, u in enumerate(registry.units)}
    for row in registry.listings:
        listed[unit_index[row.hsa_id], index[row.month]] += row.listed
    units = _unit_parameters(seed, registry.units, listed, months)
    return _World(seed, scale, registry, months, units, _population(seed, scale, registry, units))


def iter_months(
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    months: Sequence[str] | None = None,
    registry: DemoRegistry | None = None,
) -> Iterator[tuple[str, dict[str, pa.Table]]]:
    """Yield (month, {table: Arrow table}) for each requested month, in order, in memory."""
    if not 0 < scale <= MAX_SCALE:
        raise SynthError(f"the scale must be above 0 and at most {MAX_SCALE:g}")
    if seed < 0:
        raise SynthError("the seed must be zero or a positive whole number")
    wanted = list(months) if months is not None else list(MONTHS)
    for m in wanted:
        if m not in MONTHS:
            raise SynthError(f"{m} is not a month of the demo registry ({MONTHS[0]}–{MONTHS[-1]})")
    if registry is None:
        registry = build_demo_registry(seed)
    world = _world(seed, scale, registry, max(wanted))
    listings = _listings_by_month(registry)
    contacts = _Pending(_CONTACT_FIELDS)
    ratings = _Pending(_MEASURE_FIELDS)
    sick = _SickLeave(len(world.pop))
    wanted_set = set(wanted)
    for month in world.months:
        episode_contacts, episode_ratings, episode_cases = _episodes(
            seed, world.pop, world.units, month
        )
        sl_cases, sl_visits = _sick_leave_cases(seed, world.pop, world.units, month)
        contacts.add(episode_contacts)
        contacts.add(sl_visits)
        ratings.add(episode_ratings)
        sick.add(_Events.concat(_SICK_FIELDS, [episode_cases, sl_cases]))
        due_contacts = contacts.release(month.end)
        due_ratings = ratings.release(month.end)
        if month.label not in wanted_set:
            sick.in_force(month)  # prunes cases that ended
            continue
        background = _background_contacts(seed, world.pop, world.units, month)
        tables = _month_tables(
            world,
            month,
            _Events.concat(_CONTACT_FIELDS, [background, due_contacts]),
            due_ratings,
            sick.in_force(month),
            listings.get(month.label, []),
        )
        yield month.label, tables


def _listings_by_month(registry: DemoRegistry) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in registry.listings:
        out.setdefault(row.month, []).append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _icd_array() -> pa.Array:
    return pa.array(_ICD, pa.string())


def _strings(values: Sequence[str]) -> pa.Array:
    # Made when a month is written, not at import: pa.array imports pandas (half a second),
    # and every process that starts Django imports this module.
    return pa.array(values, pa.string())


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def _month_tables(
    world: _World,
    month: _Month,
    contacts: _Events,
    ratings: _Events,
    sick: _Events,
    listing_rows: list,
) -> dict[str, pa.Table]:
    """The month's six tables from its events: ids assigned, codes and names looked up, rows
    of units not open in the month left out, one rating per key."""
    pop, units = world.pop, world.units
    hsa = pa.array(units.hsa_ids, pa.string())
    icd = _icd_array()
    kva = pa.array(_KVA, pa.string())
    month_index = month.index

    # Only units open in the month deliver data for it.
    keep = units.open[pop.unit[contacts["pid"]], month_index]
    contacts = contacts.take(np.flatnonzero(keep & (contacts["day"] >= month.start)))
    order = np.lexsort((contacts["pid"], contacts["day"]))
    contacts = contacts.take(order)
    n = len(contacts)
    pid = contacts["pid"]
    ids = _contact_ids(month.label, n)
    contact_table = pa.table(
        {
            "contact_id": ids,
            "patient_key": pop.keys.take(pa.array(pid)),
            "unit_hsa_id": hsa.take(pa.array(pop.unit[pid])),
            "contact_date": _dates(contacts["day"]),
            "sex": _strings(SEXES).take(pa.array(pop.sex[pid])),
            "birth_year": pa.array(pop.birth_year[pid], pa.int16()),
            "profession": _strings(PROFESSIONS).take(pa.array(contacts["prof"])),
            "contact_type": _strings(CONTACT_TYPES).take(pa.array(contacts["ctype"])),
            "is_new_visit": pa.array(contacts["new"], pa.bool_()),
        }
    )

    def pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.concatenate([np.flatnonzero(first != _NO), np.flatnonzero(second != _NO)])
        codes = np.concatenate([first[first != _NO], second[second != _NO]])
        n_first = int((first != _NO).sum())
        rank = np.where(np.arange(len(rows)) < n_first, 1, 2).astype(np.int16)
        order = np.lexsort((rank, rows))
        return rows[order], codes[order], rank[order]

    rows, codes, rank = pairs(contacts["d1"], contacts["d2"])
    diagnoses = pa.table(
        {
            "contact_id": ids.take(pa.array(rows)),
            "icd10_code": icd.take(pa.array(codes)),
            "rank": pa.array(rank, pa.int16()),
        }
    )
    rows, codes, _ = pairs(contacts["k1"], contacts["k2"])
    procedures = pa.table(
        {"contact_id": ids.take(pa.array(rows)), "kva_code": kva.take(pa.array(codes))}
    )

    # Ratings: one per patient, day and instrument (the key of the table).
    keep = units.open[pop.unit[ratings["pid"]], month_index] & (ratings["day"] >= month.start)
    ratings = ratings.take(np.flatnonzero(keep))
    key = (ratings["pid"].astype(np.int64) * (1 << 22) + ratings["day"]) * 8 + ratings["instr"]
    _, first = np.unique(key, return_index=True)  # sorted by patient, day, instrument
    ratings = ratings.take(first)
    order = np.lexsort((ratings["instr"], ratings["pid"], ratings["day"]))
    ratings = ratings.take(order)
    rpid = ratings["pid"]
    measurements = pa.table(
        {
            "patient_key": pop.keys.take(pa.array(rpid)),
            "unit_hsa_id": hsa.take(pa.array(pop.unit[rpid])),
            "date": _dates(ratings["day"]),
            "instrument": _strings(_INSTR).take(pa.array(ratings["instr"])),
            "score": pa.array(ratings["score"], pa.float64()),
        }
    )

    keep = units.open[pop.unit[sick["pid"]], month_index]
    sick = sick.take(np.flatnonzero(keep))
    order = np.lexsort((sick["pid"], sick["start"]))
    sick = sick.take(order)
    spid = sick["pid"]
    sick_leave = pa.table(
        {
            "patient_key": pop.keys.take(pa.array(spid)),
            "unit_hsa_id": hsa.take(pa.array(pop.unit[spid])),
            "start_date": _dates(sick["start"]),
            "end_date": _dates(sick["end"]),
            "extent": pa.array(sick["extent"], pa.int16()),
            "icd10_code": icd.take(pa.array(sick["code"])),
        }
    )

    listings = pa.table(
        {
            "unit_hsa_id": pa.array([r.hsa_id for r in listing_rows], pa.string()),
            "month": pa.array([r.month for r in listing_rows], pa.string()),
            "sex": pa.array([r.sex for r in listing_rows], pa.string()),
            "age_band": pa.array([r.age_band for r in listing_rows], pa.string()),
            "listed": pa.array([r.listed for r in listing_rows], pa.int32()),
        }
    )
    tables = {
        "contacts": contact_table,
        "diagnoses": diagnoses,
        "procedures": procedures,
        "measurements": measurements,
        "sick_leave": sick_leave,
        "listings": listings,
    }
    return {name: tables[name] for name in TABLE_NAMES}


# ---------------------------------------------------------------------------------------------
# Writing, manifest, idempotence
# ---------------------------------------------------------------------------------------------


# Dictionary encoding pays only for columns with few distinct values.
_DICTIONARY_COLUMNS = [
    "unit_hsa_id", "sex", "profession", "contact_type", "icd10_code", "kva_code", "instrument",
    "month", "age_band",
]  # fmt: skip


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(
            table,
            path,
            compression="snappy",
            use_dictionary=[c for c in _DICTIONARY_COLUMNS if c in table.column_names],
        )
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _header(seed: int, scale: float, fmt: str, months: list[str], registry: DemoRegistry) -> dict:
    return {
        "generator": "styrkort.extracts.synth",
        "generator_version": GENERATOR_VERSION,
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "scale": scale,
        "format": fmt,
        "months": months,
        "registry_digest": registry.digest(),
    }


def generate(
    out_dir: Path | str,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    months: Sequence[str] | None = None,
    fmt: str = "parquet",
    registry: DemoRegistry | None = None,
    progress: Callable[[str], None] | None = None,
) -> SynthResult:
    """Generate the extracts into ``out_dir/<YYYY-MM>/<table>.<fmt>`` and write
    ``out_dir/manifest.json`` last (seed, scale, months, SHA-256 and rows per file)."""
    if fmt not in FORMATS:
        raise SynthError(f"the format must be one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    months = list(months) if months is not None else list(MONTHS)
    if registry is None:
        registry = build_demo_registry(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    rows = dict.fromkeys(TABLE_NAMES, 0)
    for label, tables in iter_months(seed=seed, scale=scale, months=months, registry=registry):
        folder = out / label
        folder.mkdir(exist_ok=True)
        for name, table in tables.items():
            path = folder / f"{name}.{fmt}"
            _write(table, path, fmt)
            files[f"{label}/{path.name}"] = {"rows": table.num_rows, "sha256": _sha256(path)}
            rows[name] += table.num_rows
        if progress is not None:
            progress(label)
    manifest = {**_header(seed, scale, fmt, months, registry), "rows": rows, "files": files}
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return SynthResult(out, seed, scale, fmt, months, rows, time.perf_counter() - started, manifest)


def read_manifest(out_dir: Path | str) -> dict[str, Any] | None:
    """The manifest of a generated directory, or None when there is none (or it is broken)."""
    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def month_files(out_dir: Path | str) -> dict[str, dict[str, Path]]:
    """{month: {table: path}} of a generated directory, from its manifest."""
    manifest = read_manifest(out_dir) or {"files": {}}
    out: dict[str, dict[str, Path]] = {}
    for rel in sorted(manifest["files"]):
        month, name = rel.split("/")
        out.setdefault(month, {})[name.split(".")[0]] = Path(out_dir) / rel
    return out


def _matches(out_dir: Path, header: dict[str, Any]) -> bool:
    """True when out_dir holds exactly what this header would generate, checksums included."""
    manifest = read_manifest(out_dir)
    if manifest is None or any(manifest.get(k) != v for k, v in header.items()):
        return False
    for rel, info in manifest.get("files", {}).items():
        path = out_dir / rel
        if not path.is_file() or _sha256(path) != info.get("sha256"):
            return False
    return bool(manifest.get("files"))


def demo_settings() -> tuple[Path, float]:
    """Where the demo's extracts go and at which scale: ``DATA_DIR/synth`` and `DEMO_SCALE`,
    unless the settings say otherwise (``STYRKORT_SYNTH_DIR``; ``STYRKORT_DEMO_SCALE``, from the
    environment variable of that name, e.g. 0.25 on a slow machine). The tests use a temporary
    directory and a small scale (conftest.py)."""
    from django.conf import settings

    out = getattr(settings, "STYRKORT_SYNTH_DIR", None) or Path(settings.DATA_DIR) / DEMO_DIR_NAME
    return Path(out), float(getattr(settings, "STYRKORT_DEMO_SCALE", DEMO_SCALE))


def synth_step(ctx) -> str:
    """Demo step: the demo's extracts, all months (see `demo_settings` for where and how many).

    Skipped when the directory already holds them for this seed, scale and registry (manifest
    and checksums match); otherwise generated in a temporary directory beside it and swapped
    in, so an interrupted build never leaves half a month. Puts ``{"dir", "months", "files",
    "seed", "scale", "manifest"}`` in ``ctx.data["synth"]`` for the ingest step, where
    ``files`` is {month: {table: path}}.
    """
    out, scale = demo_settings()
    registry = ctx.registry
    months = list(MONTHS)
    header = _header(ctx.seed, scale, "parquet", months, registry)
    if _matches(out, header):
        done = "unchanged"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.parent))
        old = out.parent / f".{out.name}-old-{os.getpid()}"
        try:
            generate(work, seed=ctx.seed, scale=scale, months=months, registry=registry)
            if out.exists():
                os.replace(out, old)
            os.replace(work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        done = "generated"
    manifest = read_manifest(out) or {}
    ctx.data["synth"] = {
        "dir": out,
        "months": months,
        "files": month_files(out),
        "seed": ctx.seed,
        "scale": scale,
        "manifest": manifest,
    }
    rows = manifest.get("rows", {})
    counts = ", ".join(f"{name} {_thousands(rows.get(name, 0))}" for name in TABLE_NAMES)
    return f"extracts {done} in {out} (scale {scale:g}, {len(months)} months): {counts}"


def _check_codes() -> None:
    """Every chapter F code the generator writes exists in ICD-10-SE (fails at import)."""
    known = icd10se_chapter_f_codes()
    missing = [c for c in _ICD if c.startswith("F") and c not in known]
    if missing:
        raise RuntimeError(f"synthetic codes not in ICD-10-SE: {', '.join(missing)}")


_check_codes()
