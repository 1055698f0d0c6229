"""The indicator engine: definitions → SQL → DuckDB over the active Parquet files → figures.

Plain functions and one small class around a DuckDB connection; no Django here (the service
layer in ``services.py`` fetches files, listings and staffing from the database, calls this
module and stores what it returns). The steps for one definition:

1. The canonical tables are DuckDB views over ``read_parquet([...])`` of exactly the files the
   definition needs for the periods being computed (its time window, see
   :func:`data_window`), cast to the canonical types. ``sick_leave`` is deduplicated: a case
   present in several months' files is taken from the latest file. Nothing but the built-in
   Parquet reader is used; extension auto-loading is switched off.
2. The definition's *case query* (compiled from its declarative form, or its SQL) gives one
   row per case with unit, patient, sex, birth year and an anchor date (or a period, for cases
   counted in every period they are ongoing at), plus ``num`` for proportions and ``value``
   for means and medians. Rows of units outside the region are dropped.
3. Age band = the period's calendar year minus the birth year, in ``REPORT_AGE_BANDS``.
4. One aggregation with ``GROUPING SETS ((unit), ()) × CUBE(sex, age_band)`` per period gives
   every unit and the region, by sex K/M/T and every age band plus "alla", for months,
   quarters and years at once. Additive measures are first summed per month and then rolled
   up (months → quarters, years); distinct-patient counts and medians roll up from the cases.
5. Rates join the listed population (mean over the period's months) from the organisation
   registry, passed in as an Arrow table.
6. Intervals and funnel classes are computed on whole columns (:mod:`vectorised`), against
   the region's value for the same period, sex and age band.

Shares (between runs): a ``per_period`` view of the pack and the case rows of a window-free
definition are kept per extract period as Parquet under the cache directory, each named by a
key over its SQL and the checksums of the period's files (:meth:`Engine._cached`).
A run reads the shares it finds and makes the missing ones, so after one month is replaced
only that month's shares are computed again; the views are then assembled from the shares
(``combine`` merges overlapping ones) and the cross-month logic runs on those small tables.

Kept case rows (between runs, :class:`CaseState`): a ``per_patient`` definition's case rows
over every period are kept as Parquet too; when files change, only the patients with a changed
row (a set difference of the old and new files) get their rows computed again, from tables and
views restricted to them (:meth:`Engine.update_states`), and the rest are copied. Their new rows
are compared with their earlier ones, so the months whose case rows did not change are known
(``CaseState.touched``); :func:`compute_blocks` can leave out the periods made of such months
(``Block.untouched``), whose stored figures the service layer then keeps.

Patients (:data:`PATIENT_KEY`): inside DuckDB a patient is the 64-bit hash of its
pseudonym, not the pseudonym's text: eight bytes join, group and scan faster than text.
Whenever the case rows are computed for every patient the engine checks that no two
pseudonyms in force share a hash (:meth:`Engine.check_patient_keys`); if two ever do, the
region's derived directory is marked and its runs use the pseudonyms' text from then on.

Dependency rule (incremental recomputation, :func:`dependent_periods`): the figure of a
definition for result period P depends on the rows of its tables dated from
``P.start - lookback_days`` to ``P.end + lookahead_days`` (``"all"``: unbounded). When the
data of a table for a date range R changes (an extract version replaced), the periods to
recompute are exactly those whose window intersects R, for each definition that reads the
table. For a window-free definition (lookback = lookahead = 0) replacing month M recomputes M,
its quarter and its year; "new depression, then treatment within 90 days" (lookback 365,
lookahead 90) also recomputes the months whose 365-day look-back reaches M (the next twelve)
and those whose 90-day follow-up reaches into M (the three before), with their quarters and
years. Listing changes behave as a table "listings" read by rates with a zero window, staffing
changes as "staffing" read by PO11.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from styrkort.breakdowns import ALL_AGES, REPORT_AGE_BANDS, TOTAL, band_bounds, report_band
from styrkort.indicators import vectorised
from styrkort.indicators.catalogue import (
    PATIENT_KEY_TYPE,
    Catalogue,
    Definition,
    View,
    canonical_columns,
)
from styrkort.periods import KINDS, MONTH, QUARTER, YEAR, Period

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
FUNNEL_LEVEL = 0.998
REGION = ""  # the unit label of region rows in engine output
_UNKNOWN = "?"
_EXTRACT_TABLES = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave")
#: Extract tables with a patient_key column (a diagnosis or procedure names its contact).
_PATIENT_TABLES = ("contacts", "measurements", "sick_leave")
#: The patient inside DuckDB (of type ``catalogue.PATIENT_KEY_TYPE``), from the pseudonym's
#: text ``{}``: its 64-bit hash (DuckDB's ``hash``, so the DuckDB version is part of every
#: cache key). Pseudonyms of two patients with one hash would be counted as one patient;
#: :meth:`Engine.check_patient_keys` looks for them and the engine then falls back to the
#: text (:data:`EXACT_KEYS_MARKER`).
PATIENT_KEY = "hash({})"
#: A file in a region's derived directory: its runs identify patients by the pseudonym's text.
EXACT_KEYS_MARKER = "exact-patient-keys"


class PatientKeyCollision(Exception):
    """Two pseudonyms in force have one :data:`PATIENT_KEY` hash."""


#: Pseudo-tables for data from the registry, for the dependency rule.
LISTINGS, STAFFING = "listings", "staffing"
#: Key of the region's units in a block's ``collected`` fingerprints.
UNITS = "units"


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _bounds(period: str) -> tuple[date, date]:
    # Asked for tens of thousands of times per run when files are matched to windows.
    p = Period.parse(period)
    return p.start, p.end


@dataclass(frozen=True)
class ExtractFile:
    """One active extract file: which table and declared period it holds, where, its hash."""

    id: int
    table: str
    period: str
    version: int
    path: Path
    checksum: str

    @property
    def start(self) -> date:
        return _bounds(self.period)[0]

    @property
    def end(self) -> date:
        return _bounds(self.period)[1]

    def describe(self) -> dict:
        return {
            "id": self.id,
            "table": self.table,
            "period": self.period,
            "version": self.version,
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class ListingRow:
    unit_hsa_id: str
    month: str
    sex: str
    age_band: str  # fine band, as in the registry
    listed: int


class Listed(tuple[ListingRow, ...]):
    """A run's listing rows, which work out their monthly sums once for a set of units (the
    fingerprints of the rates' inputs ask for them several times a run)."""

    def monthly(self, units: Collection[str]) -> dict[str, dict[tuple[str, str, str], int]]:
        """Per month, listed by (unit, sex, report band), for the rows of ``units``."""
        key = frozenset(units)
        cache: dict = self.__dict__.setdefault("_monthly", {})
        if key not in cache:
            by_month: dict[str, dict[tuple[str, str, str], int]] = defaultdict(
                lambda: defaultdict(int)
            )
            for r in self:
                if r.unit_hsa_id in key:
                    cell = (r.unit_hsa_id, r.sex, report_band(r.age_band))
                    by_month[r.month][cell] += int(r.listed)
            cache[key] = by_month
        return cache[key]

    def months(self) -> set[str]:
        """The months with listing rows."""
        if "_months" not in self.__dict__:
            self.__dict__["_months"] = {r.month for r in self}
        return self.__dict__["_months"]


@dataclass(frozen=True)
class StaffingRow:
    unit_hsa_id: str
    period: str
    profession: str
    fte: float


@dataclass(frozen=True)
class Change:
    """Data of ``table`` dated from ``start`` to ``end`` changed (e.g. a replaced extract)."""

    table: str
    start: date
    end: date

    @classmethod
    def of(cls, table: str, period: str | Period) -> Change:
        p = Period.parse(period)
        return cls(table, p.start, p.end)


@dataclass
class Block:
    """The figures of one definition: parallel columns, one entry per result cell.

    ``unit`` is the unit's HSA-id or ``""`` for the region; ``numerator``/``denominator``/
    ``value``/``lower``/``upper`` are floats with NaN for missing; ``comparison`` holds the
    judgement strings; ``files`` are the extract files read, ``collected`` fingerprints of
    the other inputs of every period (the region's units, staffing) and ``listed`` those of
    the listed population per period (rates).
    """

    code: str
    unit: np.ndarray
    period: np.ndarray
    period_kind: np.ndarray
    sex: np.ndarray
    age_band: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    comparison: np.ndarray
    complete: np.ndarray
    files: list[ExtractFile] = field(default_factory=list)
    collected: dict = field(default_factory=dict)
    listed: dict[str, str] = field(default_factory=dict)
    reason: np.ndarray | None = None  # public suppression pattern, set by the service layer
    #: Planned periods left out because their case rows are the earlier state's, each with
    #: the files (table, period, checksum) its stored figures must have been computed from.
    untouched: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.unit)

    def rows(self) -> list[dict]:
        """Plain dicts (NaN → None), for tests and small outputs."""

        def plain(v):
            if isinstance(v, float | np.floating):
                return None if np.isnan(v) else float(v)
            if isinstance(v, np.bool_):
                return bool(v)
            return v

        names = [
            "unit",
            "period",
            "period_kind",
            "sex",
            "age_band",
            "numerator",
            "denominator",
            "value",
            "lower",
            "upper",
            "comparison",
            "complete",
        ]
        cols = [getattr(self, n) for n in names]
        return [
            {n: plain(c[i]) for n, c in zip(names, cols, strict=True)} for i in range(len(self))
        ]

    def inputs_for(self, definition: Definition, period: str) -> tuple[str, list[dict], dict]:
        """(fingerprint, extract files, collected-data fingerprints) that the figure of
        ``period`` depends on: the files its data window touches (the dependency rule)."""
        chosen = files_for(definition, self.files, [Period.parse(period)])
        extracts = sorted(
            (f.describe() for group in chosen.values() for f in group),
            key=lambda e: (e["table"], e["period"]),
        )
        collected = dict(self.collected)
        if period in self.listed:
            collected[LISTINGS] = self.listed[period]
        payload = json.dumps({"extracts": extracts, "collected": collected}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest(), extracts, collected


def units_fingerprint(units: Mapping[str, int]) -> str:
    """Fingerprint of the region's units (HSA-id → id): rows of other units are dropped."""
    return _key(sorted(units.items()))


def listing_fingerprints(
    listing: Iterable[ListingRow], units: Collection[str], periods: Iterable[Period]
) -> dict[str, str]:
    """Per period, a fingerprint of the listed population a rate of that period divides by:
    the rows of the region's units for the period's months, summed into report bands.

    The SHA-256 of the repr of the sorted rows (unit, month, sex, band, listed); each row's
    text is made once per month rather than once per period that holds it.
    """
    by_month = (listing if isinstance(listing, Listed) else Listed(listing)).monthly(units)
    # Per month and unit, the rows' texts in (sex, band, listed) order.
    texts: dict[str, dict[str, list[str]]] = {}
    for month, sums in by_month.items():
        per_unit: dict[str, list[str]] = defaultdict(list)
        for (unit, sex, band), n in sorted(sums.items()):
            per_unit[unit].append(repr((unit, month, sex, band, n)))
        texts[month] = per_unit
    out = {}
    for p in periods:
        months = [texts[m] for m in map(str, p.months()) if m in texts]
        rows = [
            text
            for unit in sorted({u for per_unit in months for u in per_unit})
            for per_unit in months
            for text in per_unit.get(unit, ())
        ]
        out[str(p)] = hashlib.sha256(f"[{', '.join(rows)}]".encode()).hexdigest()
    return out


def provenance(
    definition: Definition,
    units: Mapping[str, int],
    listing: Sequence[ListingRow],
    periods: Sequence[Period],
) -> tuple[dict, dict[str, str]]:
    """The ``collected`` and ``listed`` fingerprints of an extract-based definition's block
    for ``periods``: what its figures depend on besides the extract files."""
    listed = listing_fingerprints(listing, units, periods) if definition.is_rate else {}
    return {UNITS: units_fingerprint(units)}, listed


def inputs_block(
    definition: Definition,
    files: Sequence[ExtractFile],
    units: Mapping[str, int],
    listing: Sequence[ListingRow],
    periods: Sequence[Period],
) -> Block:
    """A block without figures that names the inputs of ``periods`` as a computed block
    would (:meth:`Block.inputs_for`), for results kept without computing them again."""
    collected, listed = provenance(definition, units, listing, periods)
    return dataclasses.replace(
        empty_block(definition.code), files=list(files), collected=collected, listed=listed
    )


# ----------------------------------------------------------------------------------------------
# Periods, windows and dependencies
# ----------------------------------------------------------------------------------------------


def months_between(start: date, end: date) -> list[Period]:
    first, last = Period.month_of(start), Period.month_of(end)
    return [first + i for i in range(first.distance(last) + 1)] if first <= last else []


def period_order(p: Period) -> tuple[int, date]:
    """Sort key: years, then quarters, then months, each in time order."""
    return (p.kind_order, p.start)


def result_periods(months: Iterable[Period], kinds: Iterable[str] = KINDS) -> list[Period]:
    """The months given plus every quarter and year containing one, of the kinds wanted."""
    kinds = set(kinds)
    out: set[Period] = set()
    for m in months:
        if MONTH in kinds:
            out.add(m)
        if QUARTER in kinds:
            out.add(m.quarter())
        if YEAR in kinds:
            out.add(m.as_year())
    return sorted(out, key=period_order)


def data_months(files: Iterable[ExtractFile]) -> list[Period]:
    """Every month covered by extract files (all tables), from the first to the last."""
    files = [f for f in files if f.table in _EXTRACT_TABLES]
    if not files:
        return []
    return months_between(min(f.start for f in files), max(f.end for f in files))


def data_window(
    definition: Definition, periods: Sequence[Period]
) -> tuple[date | None, date | None]:
    """First and last date of data the figures for ``periods`` depend on (None: unbounded)."""
    start = min(p.start for p in periods)
    end = max(p.end for p in periods)
    lb, la = definition.lookback_days, definition.lookahead_days
    return (
        None if lb is None else start - timedelta(days=lb),
        None if la is None else end + timedelta(days=la),
    )


def _overlaps(a_start: date | None, a_end: date | None, b_start: date, b_end: date) -> bool:
    return (a_start is None or a_start <= b_end) and (a_end is None or a_end >= b_start)


def tables_read(definition: Definition) -> set[str]:
    """Tables a definition depends on, including the registry's pseudo-tables."""
    tables = set(definition.tables)
    if definition.is_rate:
        tables.add(LISTINGS)
    if definition.form == "collected":
        tables.add(STAFFING)
    return tables


def dependent_periods(
    definition: Definition, changes: Iterable[Change], periods: Iterable[Period]
) -> list[Period]:
    """The periods among ``periods`` whose figure depends on any of ``changes``."""
    tables = tables_read(definition)
    changes = [c for c in changes if c.table in tables]
    out = []
    for p in periods:
        start, end = data_window(definition, [p])
        if any(_overlaps(start, end, c.start, c.end) for c in changes):
            out.append(p)
    return out


def files_for(
    definition: Definition, files: Iterable[ExtractFile], periods: Sequence[Period]
) -> dict[str, list[ExtractFile]]:
    """The active files of each of the definition's tables that its window touches."""
    start, end = data_window(definition, periods)
    out: dict[str, list[ExtractFile]] = {t: [] for t in definition.tables}
    for f in files:
        if f.table in out and _overlaps(start, end, f.start, f.end):
            out[f.table].append(f)
    for group in out.values():
        group.sort(key=lambda f: (f.end, f.start, f.id))
    return out


def window_contents(
    definition: Definition, files: Iterable[ExtractFile], period: Period
) -> list[tuple[str, str, str]]:
    """The files of ``period``'s window by what they hold: sorted (table, period, checksum)."""
    chosen = files_for(definition, files, [period])
    return sorted((f.table, f.period, f.checksum) for g in chosen.values() for f in g)


def union_files(
    groups: Iterable[Mapping[str, Sequence[ExtractFile]]],
) -> dict[str, list[ExtractFile]]:
    """The files of several definitions' tables together, each once, in the order
    :func:`files_for` gives them."""
    chosen: dict[str, dict[int, ExtractFile]] = defaultdict(dict)
    for group in groups:
        for table, files in group.items():
            chosen[table].update((f.id, f) for f in files)
    return {t: sorted(g.values(), key=lambda f: (f.end, f.start, f.id)) for t, g in chosen.items()}


def coverage(files: Iterable[ExtractFile]) -> dict[str, tuple[date, date]]:
    """First and last day covered by the active files of each table."""
    out: dict[str, tuple[date, date]] = {}
    for f in files:
        lo, hi = out.get(f.table, (f.start, f.end))
        out[f.table] = (min(lo, f.start), max(hi, f.end))
    return out


def partitions(
    files: Mapping[str, Sequence[ExtractFile]], tables: Iterable[str]
) -> dict[Period, dict[str, ExtractFile]] | None:
    """The files of ``tables`` grouped by declared period, or None when they do not split
    into separate periods (declared periods that overlap, e.g. a quarter and one of its
    months, or two files of one table for one period)."""
    out: dict[Period, dict[str, ExtractFile]] = defaultdict(dict)
    for table in tables:
        for f in files.get(table, ()):
            group = out[Period.parse(f.period)]
            if table in group:
                return None
            group[table] = f
    ordered = sorted(out, key=lambda p: (p.start, p.end))
    if any(a.end >= b.start for a, b in zip(ordered, ordered[1:], strict=False)):
        return None
    return {p: out[p] for p in ordered}


def is_complete(
    definition: Definition,
    period: Period,
    covered: Mapping[str, tuple[date, date]],
    listed_months: set[str] | None = None,
) -> bool:
    """Whether the data a figure depends on lies inside what the extracts cover.

    False for a period not wholly covered, for a look-back that reaches before the first
    extract (a "new" diagnosis cannot be told from an old one) and for a follow-up that runs
    past the last extract (the latest months of "treatment within 90 days"). An unbounded
    window only requires the period itself to be covered. Rates also need a listing for
    every month of the period.
    """
    for table in definition.tables:
        if table not in covered:
            return False
        lo, hi = covered[table]
        need_lo = period.start
        need_hi = period.end
        if definition.lookback_days is not None:
            need_lo -= timedelta(days=definition.lookback_days)
        if definition.lookahead_days is not None:
            need_hi += timedelta(days=definition.lookahead_days)
        if lo > need_lo or hi < need_hi:
            return False
    return not (
        definition.is_rate
        and listed_months is not None
        and any(str(m) not in listed_months for m in period.months())
    )


# ----------------------------------------------------------------------------------------------
# Cached shares
# ----------------------------------------------------------------------------------------------

#: Part of every cache key: change it when what a cached share holds changes meaning.
CACHE_FORMAT = "shares-2"


def _key(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _files_key(group: Mapping[str, ExtractFile]) -> list:
    # By content, not by version id: a month re-sent unchanged keeps its shares.
    return sorted((t, f.checksum) for t, f in group.items())


#: Part of every case state's key (:class:`CaseState`); change it with what a state holds.
STATE_FORMAT = "cases-1"


@dataclass
class CaseState:
    """The case rows of a per-patient definition over all the data in force, kept between
    runs as ``CACHE/state/CODE/KEY.parquet`` beside ``KEY.json``, the manifest it was made
    from (definition version, units, periods, files by checksum and path).

    Rows of a patient come from that patient's data alone (``per_patient``), so when some
    files change, only the patients with a changed row need their case rows again: the rest
    are copied from the earlier state ``previous``, made from the files in force but for
    ``changed``. ``previous`` None: the rows are computed for everyone.

    Once brought up to date (:meth:`Engine.update_states`), ``touched`` holds the months (or,
    for cases counted per period, the periods) in which those patients' case rows differ
    from the earlier state's, and ``earlier`` the files the earlier state was made from.

    A state brought up to date is kept as changes to an earlier one, while they are small:
    ``KEY.parquet`` then holds the rows of the patients whose rows were computed again
    since, ``KEY.removed.parquet`` those patients, and the manifest's ``base`` names the
    earlier whole state's rows and the files they were made from (:func:`state_rows_sql`).
    Writing the whole state again for a changed month cost more than anything else in
    bringing it up to date.
    """

    definition: Definition
    periods: list[Period]
    files: dict[str, list[ExtractFile]]
    manifest: dict
    path: Path
    previous: Path | None = None
    changed: list[ChangedFile] = field(default_factory=list)
    earlier: list[ExtractFile] = field(default_factory=list)
    touched: set[str] | None = None
    previous_manifest: dict = field(default_factory=dict)

    def untouched(self, period: Period) -> bool:
        """Whether ``period``'s case rows are exactly the earlier state's (False when
        unknown): its figures are then those computed from the earlier files."""
        if self.touched is None:
            return False
        if self.definition.uses_periods:
            return str(period) not in self.touched
        return not any(str(m) in self.touched for m in period.months())

    @property
    def current(self) -> bool:
        """Whether the rows of the files in force are already kept: the manifest and every
        file it names (the manifest is written last)."""
        stored = _read_manifest(self.path.with_suffix(".json"))
        if stored is None or not all(p.exists() for p in state_files(self.path, stored)):
            return False
        if "base" in stored:
            self.manifest["base"] = stored["base"]
        return True

    def rows_sql(self) -> str:
        """SQL reading the kept rows (:meth:`current`)."""
        return state_rows_sql(self.path, self.manifest)

    def write_manifest(self) -> None:
        partial = self.path.with_name(f".{uuid.uuid4().hex}.tmp")
        partial.write_text(json.dumps(self.manifest, sort_keys=True))
        os.replace(partial, self.path.with_suffix(".json"))


def _state_manifest(
    definition: Definition,
    periods: Sequence[Period],
    files: Mapping[str, Sequence[ExtractFile]],
    units_key: str,
    columns: Mapping[str, Mapping[str, str]],
    key_mode: str,
) -> dict:
    chosen = sorted(
        (f for group in files.values() for f in group), key=lambda f: (f.table, f.period)
    )
    return {
        "format": STATE_FORMAT,
        "code": definition.code,
        "version": definition.version,
        "units": units_key,
        "columns": {t: dict(columns[t]) for t in definition.tables},
        "patient_keys": key_mode,
        # Case rows of a definition counted per period exist for these periods only.
        "periods": [str(p) for p in periods] if definition.uses_periods else None,
        "files": [[f.table, f.period, f.checksum] for f in chosen],
        "paths": [[f.table, f.period, str(f.path)] for f in chosen],
    }


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def state_files(path: Path, manifest: Mapping) -> list[Path]:
    """The files holding the case state ``path`` (its manifest's ``.parquet``): the file
    itself and, for a state kept as changes, the earlier rows and the removed patients."""
    base = manifest.get("base")
    if not base:
        return [path]
    return [path, path.with_name(base["rows"]), path.with_name(base["removed"])]


def state_rows_sql(path: Path, manifest: Mapping) -> str:
    """SQL reading the case rows of the state ``path`` with ``manifest``."""
    own = f"SELECT * FROM read_parquet({_q(str(path))})"
    base = manifest.get("base")
    if not base:
        return own
    rows, removed = path.with_name(base["rows"]), path.with_name(base["removed"])
    return (
        f"SELECT * FROM read_parquet({_q(str(rows))}) AS earlier "
        f"ANTI JOIN read_parquet({_q(str(removed))}) AS removed USING (patient_key) "
        f"UNION ALL {own}"
    )


#: A state kept as changes is written whole again once its changed rows are more than this
#: share of the earlier rows (reading it then costs more than writing it saved).
STATE_CHANGES_LIMIT = 0.25


@dataclass(frozen=True)
class ChangedFile:
    """One (table, declared period) whose file content differs between two sets of files:
    the paths of the earlier file and of the file now (None: none), and for a diagnosis or
    procedure file, the paths of its period's contacts files (whose patients they name)."""

    table: str
    period: str
    old: str | None
    new: str | None
    contacts: tuple[str, ...] = ()


def changed_files(
    old: Mapping, files: Mapping[str, Sequence[ExtractFile]]
) -> list[ChangedFile] | None:
    """The files whose content differs between the state manifest ``old`` and ``files``.
    None when the patients behind a change cannot be named: an earlier file gone from disk,
    or a changed diagnosis or procedure file without its period's contacts."""
    before = {(t, p): c for t, p, c in old["files"]}
    paths = {(t, p): path for t, p, path in old["paths"]}
    current = {(f.table, f.period): f for group in files.values() for f in group}
    now = {entry: str(f.path) for entry, f in current.items()}
    changed = []
    for entry in sorted(before.keys() | current.keys()):
        table, period = entry
        if entry in before and entry in current and before[entry] == current[entry].checksum:
            continue
        earlier = paths.get(entry) if entry in before else None
        if earlier is not None and not Path(earlier).exists():
            return None
        contacts: tuple[str, ...] = ()
        if table not in _PATIENT_TABLES:
            key = ("contacts", period)
            contacts = tuple(sorted({p for p in (paths.get(key), now.get(key)) if p}))
            if not contacts or not all(Path(p).exists() for p in contacts):
                return None
        changed.append(ChangedFile(table, period, earlier, now.get(entry), contacts))
    return changed


def _manifest_files(manifest: Mapping) -> list[ExtractFile]:
    """The files a state manifest names (no version ids: they are matched by content)."""
    paths = {(t, p): path for t, p, path in manifest["paths"]}
    return [ExtractFile(-1, t, p, 0, Path(paths[(t, p)]), c) for t, p, c in manifest["files"]]


def remove_states(cache_dir: Path, path: str | Path) -> int:
    """Delete the kept case rows made from the extract file ``path`` (a purged version:
    visit-level data derived from it goes with it); returns how many files."""
    removed = 0
    for manifest in sorted(cache_dir.glob("state/*/*.json")):
        rows = manifest.with_suffix(".parquet")
        try:
            content = json.loads(manifest.read_text())
            # A state kept as changes also holds earlier rows, made from the files of its base.
            named = [*content["paths"], *content.get("base", {}).get("paths", [])]
            paths = {p for _table, _period, p in named}
            files = state_files(rows, content)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            paths, files = {str(path)}, [rows]  # unreadable: not worth keeping
        if str(path) in paths:
            for file in [*files, manifest]:
                try:
                    file.unlink()
                except FileNotFoundError:
                    continue
                removed += 1
    return removed


# ----------------------------------------------------------------------------------------------
# SQL
# ----------------------------------------------------------------------------------------------


def _to_arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    # DuckDB 2 renamed arrow() to to_arrow_table(); the project allows 1.2 to 2.x.
    method = getattr(relation, "to_arrow_table", None) or relation.arrow
    return method()


def _q(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def age_band_sql(age_sql: str) -> str:
    """CASE expression mapping an age in years to its report band (NULL if unknown)."""
    parts = []
    for band in REPORT_AGE_BANDS:
        _low, high = band_bounds(band)
        if high is None:
            parts.append(f"ELSE {_q(band)}")
        else:
            parts.append(f"WHEN ({age_sql}) <= {high} THEN {_q(band)}")
    return f"(CASE WHEN ({age_sql}) IS NULL OR ({age_sql}) < 0 THEN NULL {' '.join(parts)} END)"


def _cube(definition: Definition) -> tuple[str, str, str]:
    """The CUBE over the breakdowns and the labelled sex and band select expressions."""
    cube = [c for c in ("sex", "age_band") if c in definition.breakdowns]
    sex = (
        f"CASE WHEN grouping(sex) = 1 THEN '{TOTAL}' ELSE coalesce(sex, '{_UNKNOWN}') END"
        if "sex" in cube
        else f"'{TOTAL}'"
    )
    band = (
        f"CASE WHEN grouping(age_band) = 1 THEN '{ALL_AGES}' "
        f"ELSE coalesce(age_band, '{_UNKNOWN}') END"
        if "age_band" in cube
        else f"'{ALL_AGES}'"
    )
    return (f", CUBE({', '.join(cube)})" if cube else ""), sex, band


def additive(definition: Definition) -> bool:
    """Whether monthly partial sums can be rolled up into quarters and years."""
    return (
        definition.count == "rows" and definition.kind != "median" and not definition.uses_periods
    )


def _sql_date(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _cases_sql(definition: Definition, first: date | None, last: date | None) -> str:
    """Case rows in the region's units with period key (month or period), sex, report age
    band, patient, and num/value as the kind needs (anchored from ``first`` to ``last``;
    None: all)."""
    extra = ""
    if definition.kind == "proportion":
        extra += ", c.num"
    if definition.kind in ("mean", "median"):
        extra += ", c.value"
    if definition.uses_periods:
        return f"""
            SELECT u.hsa_id AS unit, p.period, p.kind,
                   CASE WHEN c.sex IN ('K', 'M') THEN c.sex END AS sex,
                   {age_band_sql("p.p_year - c.birth_year")} AS age_band,
                   c.patient_key{extra}
            FROM ({definition.case_sql}) c
            JOIN units u ON u.hsa_id = c.unit_hsa_id
            JOIN periods p ON p.period = c.period"""
    # The date range lets DuckDB skip files and row groups outside the periods computed.
    dated = (
        f"WHERE c.anchor_date BETWEEN {_sql_date(first)} AND {_sql_date(last)}"
        if first is not None and last is not None
        else ""
    )
    return f"""
        SELECT u.hsa_id AS unit, strftime(c.anchor_date, '%Y-%m') AS month,
               CASE WHEN c.sex IN ('K', 'M') THEN c.sex END AS sex,
               {age_band_sql("year(c.anchor_date) - c.birth_year")} AS age_band,
               c.patient_key{extra}
        FROM ({definition.case_sql}) c
        JOIN units u ON u.hsa_id = c.unit_hsa_id
        {dated}"""


def partial_sql(definition: Definition, cases: str) -> str:
    """An additive definition's sums per (month, unit, sex, age band) of the case rows
    ``cases`` (a table name or a parenthesised query)."""
    num = "num" if definition.kind == "proportion" else "false"
    value = "value" if definition.kind in ("mean", "median") else "CAST(NULL AS DOUBLE)"
    return f"""
        SELECT month, unit, sex, age_band, count(*) AS n, count(*) FILTER (WHERE {num}) AS x,
               sum({value}) AS s, sum({value} * {value}) AS ss
        FROM {cases} GROUP BY month, unit, sex, age_band"""


def aggregate_sql(
    definition: Definition,
    first: date,
    last: date,
    cases: str | None = None,
    partials: str | None = None,
) -> str:
    """SQL giving one row per (period, unit or region, sex, age band) for the definition.

    ``first``/``last`` bound the dates of the periods computed; ``cases`` replaces the case
    query (:func:`_cases_sql`) with one giving the same rows, and ``partials`` (additive
    definitions) the monthly sums (:func:`partial_sql`), both read from shares. Output
    columns: period, kind, unit ('' = region), sex, age_band, n, x, s, ss, and for medians
    med, med_lo, med_hi; rates add ``listed``; every row carries the region's figures as
    reg_*. Needs the tables ``units``, ``periods``, ``period_months`` and (for rates)
    ``listed_agg``.

    Three strategies, all giving every unit and the region by sex K/M/T and every band:

    * additive counts and sums: summed per month first, then the small partial table is
      rolled up into months, quarters and years with GROUPING SETS;
    * distinct patients: deduplicated to one row per (period, unit, patient) for the units and
      one per (period, patient) for the region, then counted (cheaper than COUNT(DISTINCT)
      under grouping sets, and a patient with inconsistent sex is still counted once in T);
    * medians and cases counted per period (ongoing sick leave): grouped directly.
    """
    cube, sex_label, band_label = _cube(definition)
    cases = cases or _cases_sql(definition, first, last)
    labels = f"{sex_label} AS r_sex, {band_label} AS r_band"
    unit_label = "CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS r_unit"
    is_prop = definition.kind == "proportion"
    num = "num" if is_prop else "false"
    value = "value" if definition.kind in ("mean", "median") else "CAST(NULL AS DOUBLE)"
    keyed = (
        "SELECT * FROM cases"
        if definition.uses_periods
        else "SELECT pm.period, pm.kind, cases.* EXCLUDE (month) FROM cases "
        "JOIN period_months pm ON pm.month = cases.month"
    )
    if additive(definition):
        # Sum each month's cases once, then roll the small partial table up into every
        # period, unit/region and breakdown: the cases are scanned a single time.
        partial = partial_sql(definition, "cases") if partials is None else partials
        grouped = f"""
            partial AS ({partial}),
            grouped AS (
                SELECT pm.period, pm.kind, {unit_label}, {labels},
                       sum(n) AS n, sum(x) AS x, sum(s) AS s, sum(ss) AS ss
                FROM partial JOIN period_months pm ON pm.month = partial.month
                GROUP BY pm.period, pm.kind, GROUPING SETS ((unit), ()){cube}
            )"""
    elif definition.count == "patients":
        grouped = f"""
            keyed AS ({keyed}),
            per_unit AS (
                SELECT period, kind, unit, patient_key, min(sex) AS sex,
                       min(age_band) AS age_band, bool_or({num}) AS num
                FROM keyed GROUP BY period, kind, unit, patient_key
            ),
            per_region AS (
                SELECT period, kind, patient_key, min(sex) AS sex, min(age_band) AS age_band,
                       bool_or(num) AS num
                FROM per_unit GROUP BY period, kind, patient_key
            ),
            grouped AS (
                SELECT period, kind, unit AS r_unit, {labels}, count(*) AS n,
                       count(*) FILTER (WHERE num) AS x,
                       CAST(NULL AS DOUBLE) AS s, CAST(NULL AS DOUBLE) AS ss
                FROM per_unit GROUP BY period, kind, unit{cube}
                UNION ALL
                SELECT period, kind, '' AS r_unit, {labels}, count(*) AS n,
                       count(*) FILTER (WHERE num) AS x,
                       CAST(NULL AS DOUBLE) AS s, CAST(NULL AS DOUBLE) AS ss
                FROM per_region GROUP BY period, kind{cube}
            )"""
    else:
        median = ""
        if definition.kind == "median":
            median = ", median(value) AS med, list_sort(list(value)) AS vals"
        grouped = f"""
            keyed AS ({keyed}),
            grouped AS (
                SELECT period, kind, {unit_label}, {labels}, count(*) AS n,
                       count(*) FILTER (WHERE {num}) AS x,
                       sum({value}) AS s, sum({value} * {value}) AS ss{median}
                FROM keyed
                GROUP BY period, kind, GROUPING SETS ((unit), ()){cube}
            )"""
    median_cols = ""
    if definition.kind == "median":
        # Distribution-free interval for the median from order statistics (Campbell & Gardner
        # 1988): ranks n/2 -/+ z sqrt(n)/2 (+1 for the upper), rounded; none when out of range.
        z = f"{vectorised._z(CONFIDENCE)!r}"
        lo = f"CAST(round(len(vals) / 2.0 - {z} * sqrt(len(vals)) / 2.0) AS BIGINT)"
        hi = f"CAST(round(1 + len(vals) / 2.0 + {z} * sqrt(len(vals)) / 2.0) AS BIGINT)"
        median_cols = f""",
               med,
               CASE WHEN {lo} >= 1 AND {hi} <= len(vals) THEN vals[{lo}] END AS med_lo,
               CASE WHEN {lo} >= 1 AND {hi} <= len(vals) THEN vals[{hi}] END AS med_hi"""
    x_col = "x" if is_prop else "CAST(NULL AS BIGINT) AS x"
    sql = f"""
        WITH cases AS ({cases}),
        {grouped},
        res AS (
            SELECT period, kind, r_unit AS unit, r_sex AS sex, r_band AS age_band,
                   n, {x_col}, s, ss{median_cols}
            FROM grouped
            WHERE r_sex <> '{_UNKNOWN}' AND r_band <> '{_UNKNOWN}'
        )"""
    if definition.is_rate:
        sql += """,
        joined AS (
            SELECT coalesce(r.period, l.period) AS period, coalesce(r.kind, l.kind) AS kind,
                   coalesce(r.unit, l.unit) AS unit, coalesce(r.sex, l.sex) AS sex,
                   coalesce(r.age_band, l.age_band) AS age_band,
                   coalesce(r.n, 0) AS n, r.x, r.s, r.ss, l.listed
            FROM res r
            FULL OUTER JOIN (SELECT * FROM listed_agg
                             WHERE period IN (SELECT period FROM periods)) l
              ON l.period = r.period AND l.unit = r.unit AND l.sex = r.sex
             AND l.age_band = r.age_band
        )
        SELECT j.*, reg.n AS reg_n, reg.x AS reg_x, reg.s AS reg_s, reg.ss AS reg_ss,
               reg.listed AS reg_listed
        FROM joined j
        LEFT JOIN joined reg ON reg.unit = '' AND reg.period = j.period AND reg.sex = j.sex
         AND reg.age_band = j.age_band"""
    else:
        sql += """
        SELECT r.*, reg.n AS reg_n, reg.x AS reg_x, reg.s AS reg_s, reg.ss AS reg_ss
        FROM res r
        LEFT JOIN res reg ON reg.unit = '' AND reg.period = r.period AND reg.sex = r.sex
         AND reg.age_band = r.age_band"""
    # A fixed row order makes everything downstream (suppression's tie-breaks, stored ids)
    # the same from run to run, whatever DuckDB's parallel plan.
    return sql + "\n        ORDER BY period, unit, sex, age_band"


# ----------------------------------------------------------------------------------------------
# The connection
# ----------------------------------------------------------------------------------------------


class Engine:
    """A DuckDB connection set up for one region's run.

    ``units`` maps HSA-id → unit id (only these units' rows count); ``listing`` holds the
    registry's listed population for the months of the run.
    """

    def __init__(
        self,
        units: Mapping[str, int],
        listing: Iterable[ListingRow] = (),
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: Path | None = None,
        cache_dir: Path | None = None,
        exact_patient_keys: bool = False,
    ):
        config: dict[str, Any] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "preserve_insertion_order": False,
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        if temp_directory:
            config["temp_directory"] = str(temp_directory)
        self.con = duckdb.connect(config=config)
        self.con.execute("SET enable_progress_bar = false")
        self.columns = canonical_columns()
        self.cache_dir = cache_dir
        self.exact_keys = exact_patient_keys or bool(
            cache_dir and (cache_dir / EXACT_KEYS_MARKER).exists()
        )
        if not self.exact_keys:
            for columns in self.columns.values():
                if "patient_key" in columns:
                    columns["patient_key"] = PATIENT_KEY_TYPE
        # In every share's and state's key: rows keyed one way must not meet rows keyed another.
        self.key_mode = "text" if self.exact_keys else f"hash64 duckdb {duckdb.__version__}"
        self._present: dict[Path, set[str]] = {}  # share folder -> file names in it
        self._periods: tuple[Period, ...] | None = None  # what the periods tables hold
        self._used: dict[Path, set[str]] = defaultdict(set)  # share folder -> used this run
        # What each table's view reads now: its files, and whether restricted.
        self._table_views: dict[str, tuple[list[ExtractFile], bool]] = {}
        #: While true, the tables and per-period views hold only the rows of the patients in
        #: the temp table ``affected`` (see :meth:`update_states`).
        self.restricted = False
        # Cached case rows are only valid for the same set of units (rows of other units are
        # dropped when they are made).
        self._units = dict(units)
        self._units_key = units_fingerprint(units)
        self.con.register(
            "units_arrow",
            pa.table(
                {
                    "hsa_id": pa.array(list(units), pa.string()),
                    "unit_id": pa.array(list(units.values()), pa.int64()),
                }
            ),
        )
        self.con.execute("CREATE TEMP TABLE units AS SELECT * FROM units_arrow")
        listing = self._listing = listing if isinstance(listing, Listed) else Listed(listing)
        self.listed_months = {r.month for r in listing}
        self.con.register(
            "listing_arrow",
            pa.table(
                {
                    "unit": pa.array([r.unit_hsa_id for r in listing], pa.string()),
                    "month": pa.array([r.month for r in listing], pa.string()),
                    "sex": pa.array([r.sex for r in listing], pa.string()),
                    "age_band": pa.array([report_band(r.age_band) for r in listing], pa.string()),
                    "listed": pa.array([r.listed for r in listing], pa.int64()),
                }
            ),
        )
        self.con.execute(
            "CREATE TEMP TABLE listing AS SELECT l.* FROM listing_arrow l "
            "JOIN units u ON u.hsa_id = l.unit"
        )
        for table in self.columns:
            if table != "listings":
                self.set_files(table, [])

    def close(self) -> None:
        self.con.close()

    # -- tables ----------------------------------------------------------------------------

    def patient_key(self, column: str = '"patient_key"') -> str:
        """SQL of the patient inside DuckDB from an extract's ``patient_key`` column."""
        text = f"CAST({column} AS VARCHAR)"
        return text if self.exact_keys else PATIENT_KEY.format(text)

    def _select_cast(self, table: str, source: str, extra: str = "") -> str:
        cols = ", ".join(
            f'{self.patient_key()} AS "{c}"'
            if c == "patient_key"
            else f'CAST("{c}" AS {t}) AS "{c}"'
            for c, t in self.columns[table].items()
        )
        return f"SELECT {cols}{extra} FROM {source}"

    def check_patient_keys(self, files: Iterable[ExtractFile]) -> None:
        """Raise :class:`PatientKeyCollision` (and mark the derived directory, so that the
        region's runs use the pseudonyms' text from then on) when two pseudonyms of
        ``files`` have one hash."""
        if self.exact_keys:
            return
        files = list(files)
        reads = [
            f"SELECT CAST(patient_key AS VARCHAR) AS k FROM read_parquet([{paths}])"
            for table in _PATIENT_TABLES
            if (paths := ", ".join(_q(str(f.path)) for f in files if f.table == table))
        ]
        if not reads:
            return
        shared = self.con.execute(
            f"SELECT count(*) FROM (SELECT {PATIENT_KEY.format('k')} AS h "
            f"FROM ({' UNION '.join(reads)}) GROUP BY h HAVING count(*) > 1)"
        ).fetchall()[0][0]
        if shared:
            if self.cache_dir is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                (self.cache_dir / EXACT_KEYS_MARKER).write_text(
                    "Two patient pseudonyms had one 64-bit hash: this region's runs identify "
                    "patients by the pseudonym's text (slower). Delete this file only with "
                    "the derived data it protects.\n"
                )
            raise PatientKeyCollision(f"{shared} hash(es) shared by two patient pseudonyms")

    def set_files(self, table: str, files: Sequence[ExtractFile]) -> None:
        """Point the view ``table`` at ``files`` (typed empty when there are none), only at
        the rows of the ``affected`` patients while :attr:`restricted`."""
        previous = self._table_views.get(table)
        if previous is not None and ([f.id for f in previous[0]], previous[1]) == (
            [f.id for f in files],
            self.restricted,
        ):
            return
        self._table_views[table] = (list(files), self.restricted)
        # A diagnosis or procedure belongs to its contact's patient.
        if self.restricted and table in _PATIENT_TABLES:
            only = " WHERE patient_key IN (SELECT patient_key FROM affected)"
        elif self.restricted:
            only = " WHERE contact_id IN (SELECT contact_id FROM contacts)"
        else:
            only = ""
        if not files:
            cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in self.columns[table].items())
            body = f"SELECT {cols} WHERE false"
        elif table == "sick_leave":
            # One case can be in several months' files (it overlaps them all); the latest
            # file describes it best (an extended or shortened end date).
            parts = " UNION ALL ".join(
                "SELECT * FROM ("
                + self._select_cast(table, f"read_parquet({_q(str(f.path))})", f", {i} AS _file")
                + f"){only}"
                for i, f in enumerate(files)
            )
            names = ", ".join(f'"{c}"' for c in self.columns[table])
            body = (
                f"SELECT {names} FROM ({parts}) QUALIFY row_number() OVER "
                "(PARTITION BY patient_key, unit_hsa_id, start_date ORDER BY _file DESC) = 1"
            )
        else:
            paths = ", ".join(_q(str(f.path)) for f in files)
            body = self._select_cast(table, f"read_parquet([{paths}])")
            body = f"SELECT * FROM ({body}){only}" if only else body
        self.con.execute(f"CREATE OR REPLACE VIEW {table} AS {body}")

    def use_files(self, files: Mapping[str, Sequence[ExtractFile]]) -> None:
        """Point every canonical table at its files for this run."""
        for table in self.columns:
            if table != "listings":
                self.set_files(table, files.get(table, []))

    @contextmanager
    def _scoped(self, files: Mapping[str, Sequence[ExtractFile]]) -> Iterator[None]:
        """Point the given tables at all the rows of ``files`` for a while, then back (a
        share is always made whole, also in a run restricted to some patients)."""
        saved = {t: self._table_views.get(t, ([], False))[0] for t in files}
        restricted, self.restricted = self.restricted, False
        try:
            for table, group in files.items():
                self.set_files(table, group)
            yield
        finally:
            self.restricted = restricted
            for table, group in saved.items():
                self.set_files(table, group)

    def _cached(self, kind: str, name: str, key: str, period: Period, sql: Callable[[], str],
                files: Mapping[str, Sequence[ExtractFile]]) -> Path:  # fmt: skip
        """The Parquet file holding ``sql`` over ``files`` (one period's), made if missing.

        Written beside its final name and renamed, so a crash leaves no half file under it.
        Other keys of the same period (older file versions) are removed by :meth:`prune`.
        """
        assert self.cache_dir is not None
        folder = self.cache_dir / kind / name
        if folder not in self._present:
            folder.mkdir(parents=True, exist_ok=True)
            self._present[folder] = set(os.listdir(folder))
        filename = f"{period}.{key}.parquet"
        if filename not in self._present[folder]:
            with self._scoped(files):
                self._copy_to(sql(), folder / filename)
            self._present[folder].add(filename)
        self._used[folder].add(filename)
        return folder / filename

    def prune(self) -> int:
        """Delete the shares of the periods this run used that it did not use itself (made
        from files since replaced); returns how many. Called once the run has its figures."""
        removed = 0
        for folder, used in self._used.items():
            periods = {name.split(".", 1)[0] for name in used}
            for name in self._present.get(folder, set()) - used:
                if name.split(".", 1)[0] in periods and name.endswith(".parquet"):
                    (folder / name).unlink(missing_ok=True)
                    removed += 1
        return removed

    def _view_shares(
        self, view: View, files: Mapping[str, Sequence[ExtractFile]]
    ) -> list[Path] | None:
        """A per-period view's share of each extract period (None: computed whole)."""
        parts = partitions(files, view.tables) if self.cache_dir else None
        if not parts:
            return None
        paths = []
        for period, group in parts.items():
            scope = {t: [group[t]] if t in group else [] for t in view.tables}
            key = _key(
                [CACHE_FORMAT, view.name, view.sql, _files_key(group),
                 {t: self.columns[t] for t in view.tables}, self.key_mode]
            )  # fmt: skip
            paths.append(self._cached("views", view.name, key, period, lambda: view.sql, scope))
        return paths

    def create_views(
        self,
        catalogue: Catalogue,
        materialise: Iterable[str] = (),
        files: Mapping[str, Sequence[ExtractFile]] | None = None,
    ) -> None:
        """Create the pack views; those in ``materialise`` are computed once, as tables.

        Shared intermediate results (treatment days, new depression diagnoses …) are used by
        several definitions; computing them once per run instead of once per definition is
        most of the engine's speed. Views that read the per-definition ``periods`` tables
        stay views. A materialised ``per_period`` view is assembled from its shares of each
        extract period, kept as Parquet in the cache directory, so that replacing one month
        recomputes only that month's share (``files``: the files the tables point at, from
        :meth:`use_files`). Call after :meth:`use_files`.
        """
        materialise = set(materialise)
        lazy: set[str] = set()
        for pack in catalogue.packs:
            for view in pack.views:
                names = duckdb.get_table_names(view.sql)
                if names & {"periods", "period_months"} or names & lazy:
                    lazy.add(view.name)
                kind = "TABLE" if view.name in materialise and view.name not in lazy else "VIEW"
                other = "VIEW" if kind == "TABLE" else "TABLE"
                self.con.execute(f"DROP {other} IF EXISTS {view.name}")
                shares = None
                if kind == "TABLE" and view.per_period and files is not None:
                    shares = self._view_shares(view, files)
                if not shares:
                    self.con.execute(f"CREATE OR REPLACE {kind} {view.name} AS {view.sql}")
                    continue
                parts = f"SELECT * FROM read_parquet([{', '.join(_q(str(p)) for p in shares)}])"
                if self.restricted:
                    parts += " WHERE patient_key IN (SELECT patient_key FROM affected)"
                if view.combine:
                    self.con.execute(f"CREATE OR REPLACE TEMP VIEW parts AS {parts}")
                    self.con.execute(f"CREATE OR REPLACE TABLE {view.name} AS {view.combine}")
                    self.con.execute("DROP VIEW parts")
                else:
                    self.con.execute(f"CREATE OR REPLACE TABLE {view.name} AS {parts}")

    def set_periods(self, periods: Sequence[Period]) -> None:
        """Fill ``periods`` and ``period_months`` with the periods being computed (left as
        they are when they hold these periods already: the kept states of a run mostly
        share theirs)."""
        if self._periods == tuple(periods):
            return
        self._periods = tuple(periods)
        rows = [
            (str(p), p.kind, p.start, p.end, p.year, [str(m) for m in p.months()]) for p in periods
        ]
        table = pa.table(
            {
                "period": pa.array([r[0] for r in rows], pa.string()),
                "kind": pa.array([r[1] for r in rows], pa.string()),
                "p_start": pa.array([r[2] for r in rows], pa.date32()),
                "p_end": pa.array([r[3] for r in rows], pa.date32()),
                "p_year": pa.array([r[4] for r in rows], pa.int32()),
                "months": pa.array([r[5] for r in rows], pa.list_(pa.string())),
            }
        )
        self.con.register("periods_arrow", table)
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE periods AS "
            "SELECT period, kind, p_start, p_end, p_year FROM periods_arrow"
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE period_months AS "
            "SELECT unnest(months) AS month, period, kind, p_start, p_end, p_year "
            "FROM periods_arrow"
        )
        self.con.unregister("periods_arrow")

    def build_listed(self, periods: Sequence[Period]) -> None:
        """``listed_agg``: mean listed over each period's months, for units and the region,
        by sex and age band. A unit's mean is over the months it has listings in; the
        region's over the months any unit has."""
        self.set_periods(periods)
        self.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE listed_agg AS
            WITH l AS (
                SELECT pm.period, pm.kind, l.unit, l.month, l.sex, l.age_band, l.listed
                FROM listing l JOIN period_months pm ON pm.month = l.month
            ),
            months AS (
                SELECT period, CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS unit,
                       count(DISTINCT month) AS n_months
                FROM l GROUP BY period, GROUPING SETS ((unit), ())
            ),
            sums AS (
                SELECT period, kind, CASE WHEN grouping(unit) = 1 THEN '' ELSE unit END AS unit,
                       CASE WHEN grouping(sex) = 1 THEN 'T' ELSE sex END AS sex,
                       CASE WHEN grouping(age_band) = 1 THEN 'alla' ELSE age_band END AS age_band,
                       sum(listed) AS listed
                FROM l GROUP BY period, kind, GROUPING SETS ((unit), ()), CUBE(sex, age_band)
            )
            SELECT s.period, s.kind, s.unit, s.sex, s.age_band,
                   CAST(s.listed AS DOUBLE) / m.n_months AS listed
            FROM sums s JOIN months m ON m.period = s.period AND m.unit = s.unit
            """
        )

    # -- kept case rows of per-patient definitions -------------------------------------------

    def case_state(self, definition: Definition, files: Sequence[ExtractFile]) -> CaseState | None:
        """The kept case rows of a per-patient definition over every period with data: the
        current ones, an earlier state to bring up to date, or rows to compute (None: the
        definition is not per patient or there is no cache)."""
        if self.cache_dir is None or not definition.per_patient:
            return None
        periods = [
            p for p in result_periods(data_months(files)) if p.kind in definition.period_types
        ]
        if not periods:
            return None
        chosen = files_for(definition, files, periods)
        manifest = _state_manifest(
            definition, periods, chosen, self._units_key, self.columns, self.key_mode
        )
        key = _key({k: v for k, v in manifest.items() if k != "paths"})
        folder = self.cache_dir / "state" / definition.code
        folder.mkdir(parents=True, exist_ok=True)
        state = CaseState(definition, periods, chosen, manifest, folder / f"{key}.parquet")
        if state.current:
            return state
        same = {k: v for k, v in manifest.items() if k not in ("files", "paths")}
        for candidate in sorted(folder.glob("*.json")):
            old = _read_manifest(candidate)
            rows = candidate.with_suffix(".parquet")
            if old is None or {k: old.get(k) for k in same} != same:
                continue
            if not all(p.exists() for p in state_files(rows, old)):
                continue
            changed = changed_files(old, chosen)
            # Past half the files, computing everyone's rows is as quick.
            if changed is not None and len(changed) <= len(manifest["files"]) // 2:
                state.previous, state.changed = rows, changed
                state.earlier = _manifest_files(old)
                state.previous_manifest = old
                break
        return state

    def _affected_sql(self, changed: Iterable[ChangedFile]) -> str:
        """The patients with a row that differs between the earlier and the present files."""

        def read(table: str, path: str) -> str:
            return self._select_cast(table, f"read_parquet({_q(path)})")

        parts = []
        by_contact = []  # changed rows of diagnoses and procedures: their contact ids
        contacts: set[str] = set()  # the contacts files that name those contacts' patients
        for c in sorted(set(changed), key=lambda c: (c.table, c.period, c.old or "", c.new or "")):
            sides = [read(c.table, p) for p in (c.old, c.new) if p]
            if len(sides) == 2:
                # The rows in one file only: a validated file has no two rows with the same
                # key, so a row is in both files exactly when it is there twice. One pass over
                # each file, where two set differences read both twice.
                a, b = sides
                rows = f"SELECT * FROM (({a}) UNION ALL ({b})) GROUP BY ALL HAVING count(*) = 1"
            else:
                rows = sides[0]
            if c.table in _PATIENT_TABLES:
                parts.append(f"SELECT patient_key FROM ({rows})")
            else:
                by_contact.append(f"SELECT contact_id FROM ({rows})")
                contacts |= set(c.contacts)
        if by_contact:
            # One read of the contacts files for all the diagnosis and procedure changes.
            paths = ", ".join(_q(p) for p in sorted(contacts))
            parts.append(
                f"SELECT {self.patient_key('patient_key')} AS patient_key "
                f"FROM read_parquet([{paths}]) "
                f"WHERE CAST(contact_id AS VARCHAR) IN ({' UNION ALL '.join(by_contact)})"
            )
        return " UNION ".join(parts)

    def _copy_to(self, sql: str, target: Path) -> None:
        """Write the rows of ``sql`` as Parquet beside ``target`` and rename it, so that a
        crash leaves no half-written file under the name."""
        partial = target.with_name(f".{uuid.uuid4().hex}.tmp")
        try:
            self.con.execute(f"COPY ({sql}) TO {_q(str(partial))} (FORMAT parquet)")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def _write_state(self, state: CaseState, sql: str) -> None:
        self._copy_to(sql, state.path)
        state.write_manifest()

    def _write_changes(self, state: CaseState, earlier: str) -> None:
        """Keep ``state``: the earlier state's rows (SQL ``earlier``) with those of the
        ``affected`` patients replaced by the temp table ``fresh``, as changes to the
        earlier whole rows while they are small, else whole."""
        assert state.previous is not None
        old = state.previous_manifest
        base = old.get("base")
        if base:  # the earlier state is changes already: this one changes the same rows
            rows = state.previous.with_name(base["rows"])
            earlier_removed = _q(str(state.previous.with_name(base["removed"])))
            removed = (
                f"SELECT patient_key FROM read_parquet({earlier_removed}) "
                "UNION SELECT patient_key FROM affected"
            )
            changes = (
                f"SELECT * FROM read_parquet({_q(str(state.previous))}) AS changed "
                "ANTI JOIN affected USING (patient_key) UNION ALL SELECT * FROM fresh"
            )
            made_from = base["paths"]
        else:
            rows = state.previous
            removed = "SELECT DISTINCT patient_key FROM affected"
            changes = "SELECT * FROM fresh"
            made_from = old["paths"]
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE changes AS {changes}")
        (changed,) = self.con.execute("SELECT count(*) FROM changes").fetchone() or (0,)
        (earlier_rows,) = self.con.execute(
            f"SELECT count(*) FROM read_parquet({_q(str(rows))})"
        ).fetchone() or (0,)
        if changed > STATE_CHANGES_LIMIT * earlier_rows:
            self._write_state(
                state,
                f"SELECT * FROM ({earlier}) AS earlier ANTI JOIN affected USING (patient_key) "
                "UNION ALL FROM fresh",
            )
            return
        removed_path = state.path.with_name(f"{state.path.stem}.removed.parquet")
        self._copy_to(removed, removed_path)
        self._copy_to("SELECT * FROM changes", state.path)
        state.manifest["base"] = {
            "rows": rows.name,
            "removed": removed_path.name,
            "paths": made_from,
        }
        state.write_manifest()

    def update_states(self, catalogue: Catalogue, states: Sequence[CaseState]) -> None:
        """Bring earlier case states up to date: the rows of the patients with a changed
        row are computed again from every file, restricted to those patients (tables,
        per-period views and the views over them), and replace theirs in the kept rows."""
        if not states:
            return
        changed = [c for state in states for c in state.changed]
        patients = self._affected_sql(changed) or (
            f"SELECT NULL::{self.columns['contacts']['patient_key']} AS patient_key LIMIT 0"
        )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE affected AS {patients}")
        in_use = union_files(state.files for state in states)
        self.restricted = True
        try:
            self.use_files(in_use)
            views = {v for state in states for v in state.definition.views}
            self.create_views(catalogue, materialise=views, files=in_use)
            for state in states:
                self.set_periods(state.periods)
                assert state.previous is not None
                earlier = state_rows_sql(state.previous, state.previous_manifest)
                self.con.execute(
                    "CREATE OR REPLACE TEMP TABLE fresh AS "
                    + _cases_sql(state.definition, None, None)
                )
                self._write_changes(state, earlier)
                # The other patients' rows are copied, so a month (period) whose rows of
                # these patients are the same as before has exactly the earlier case rows.
                self.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE before AS SELECT * FROM ({earlier}) AS earlier "
                    "SEMI JOIN affected USING (patient_key)"
                )
                key = "period" if state.definition.uses_periods else "month"
                state.touched = {
                    k
                    for (k,) in self.con.execute(
                        f"SELECT DISTINCT {key} FROM ((FROM fresh EXCEPT ALL FROM before) "
                        "UNION ALL (FROM before EXCEPT ALL FROM fresh))"
                    ).fetchall()
                }
            for table in ("fresh", "before", "changes"):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            self.restricted = False

    def make_states(self, states: Sequence[CaseState]) -> None:
        """Compute the case rows of ``states`` for every patient (tables and views set up)."""
        for state in states:
            self.set_periods(state.periods)
            self._write_state(state, _cases_sql(state.definition, None, None))

    def prune_states(self, states: Iterable[CaseState]) -> None:
        """Delete the other kept states of these definitions (made from other files)."""
        for state in states:
            keep = {state.path.with_suffix(".json"), *state_files(state.path, state.manifest)}
            for path in state.path.parent.iterdir():
                if path not in keep and path.suffix in (".parquet", ".json"):
                    path.unlink(missing_ok=True)

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        definition: Definition,
        periods: Sequence[Period],
        files: Iterable[ExtractFile],
        covered: Mapping[str, tuple[date, date]],
        state: CaseState | None = None,
    ) -> Block:
        """Compute one extract-based definition for ``periods`` (of its period types).

        The tables must already point at (at least) the files the definition's window
        touches; extra files outside the window do not change its figures. With a current
        ``state``, the cases are read from its kept rows instead.
        """
        periods = [p for p in periods if p.kind in definition.period_types]
        if not periods:
            return empty_block(definition.code)
        self.set_periods(periods)
        first, last = min(p.start for p in periods), max(p.end for p in periods)
        chosen = files_for(definition, files, periods)
        if state is not None:
            rows = f"SELECT * FROM ({state.rows_sql()})"
            shares = {
                "cases": f"{rows} WHERE period IN (SELECT period FROM periods)"
                if definition.uses_periods
                else f"{rows} WHERE month BETWEEN {_q(first.strftime('%Y-%m'))} "
                f"AND {_q(last.strftime('%Y-%m'))}"
            }
        else:
            shares = self._case_shares(definition, chosen, first, last)
        sql = aggregate_sql(definition, first, last, **shares)
        arrow = _to_arrow(self.con.sql(sql))
        block = finish(definition, arrow)
        # Provenance: the files this definition's window touches (the run may read more).
        block.files = [f for group in chosen.values() for f in group]
        block.collected, block.listed = provenance(definition, self._units, self._listing, periods)
        complete = {
            p: is_complete(definition, Period.parse(p), covered, self.listed_months)
            for p in set(block.period.tolist())
        }
        block.complete = np.array([complete[p] for p in block.period.tolist()], dtype=bool)
        return block

    def _case_shares(
        self,
        definition: Definition,
        files: Mapping[str, Sequence[ExtractFile]],
        first: date,
        last: date,
    ) -> dict[str, str]:
        """SQL reading a window-free definition's cases from per-period Parquet shares, as
        keyword arguments for :func:`aggregate_sql` (empty: computed from the tables).

        A definition with a zero window (lookback = lookahead = 0) that reads no view has
        the cases of a period from that period's files alone, so they are kept per extract
        period: as monthly sums for an additive definition (a few hundred rows a month), as
        case rows otherwise (distinct patients need the patient). A quarter or a year then
        reads the months' shares instead of scanning and joining the tables again.
        """
        if (
            self.cache_dir is None
            or definition.lookback_days != 0
            or definition.lookahead_days != 0
            or definition.uses_periods
            or definition.views
        ):
            return {}
        parts = partitions(files, definition.tables)
        if not parts:
            return {}
        summed = additive(definition)
        paths = []
        for period, group in parts.items():
            scope = {t: [group[t]] if t in group else [] for t in definition.tables}
            key = _key(
                [CACHE_FORMAT, definition.version, definition.case_sql, self._units_key,
                 _files_key(group), summed, self.key_mode]
            )  # fmt: skip

            def sql(p: Period = period) -> str:
                cases = _cases_sql(definition, p.start, p.end)
                return partial_sql(definition, f"({cases})") if summed else cases

            paths.append(self._cached("cases", definition.code, key, period, sql, scope))
        source = (
            f"SELECT * FROM read_parquet([{', '.join(_q(str(p)) for p in paths)}]) "
            f"WHERE month BETWEEN {_q(first.strftime('%Y-%m'))} AND {_q(last.strftime('%Y-%m'))}"
        )
        return {"partials": source} if summed else {"cases": source}

    def listed_for(self, periods: Sequence[Period]) -> dict[tuple[str, str], float]:
        """Mean listed, all sexes and ages, per (period, unit or '' for region)."""
        self.set_periods(periods)
        rows = self.con.execute(
            "SELECT period, unit, listed FROM listed_agg WHERE sex = 'T' AND age_band = 'alla' "
            "AND period IN (SELECT period FROM periods)"
        ).fetchall()
        return {(p, u): v for p, u, v in rows}


# ----------------------------------------------------------------------------------------------
# Statistics on the aggregated table
# ----------------------------------------------------------------------------------------------


def empty_block(code: str) -> Block:
    e = np.array([], dtype=object)
    f = np.array([], dtype=float)
    return Block(code, e, e, e, e, e, f, f, f, f, f, e, np.array([], dtype=bool))


def _col(table: pa.Table, name: str, dtype=float) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = table.column(name)
    if dtype is float:
        # Cast in Arrow: nulls become NaN without a Python loop over the cells.
        return pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy()
    return column.to_numpy(zero_copy_only=False).astype(object)


def _sd(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (ss - s * s / n) / (n - 1)
    return np.sqrt(np.where(np.isfinite(var) & (var > 0), var, 0.0))


def finish(definition: Definition, table: pa.Table) -> Block:
    """Values, intervals and funnel classes for the aggregated rows of one definition."""
    unit = _col(table, "unit", object)
    region_row = unit == REGION
    n, x = _col(table, "n"), _col(table, "x")
    s, ss = _col(table, "s"), _col(table, "ss")
    reg_n, reg_x = _col(table, "reg_n"), _col(table, "reg_x")
    kind, polarity = definition.kind, definition.polarity
    nan = np.full(len(unit), np.nan)
    comparison = np.full(len(unit), "not_compared", dtype=object)
    if kind == "proportion":
        numerator, denominator = np.nan_to_num(x), n
        value, lower, upper = vectorised.wilson(numerator, n, CONFIDENCE, definition.multiplier)
        if definition.compare:
            with np.errstate(invalid="ignore", divide="ignore"):
                target = np.where(reg_n > 0, reg_x / reg_n, np.nan)
            comparison = vectorised.classify_proportion(
                numerator, n, target, polarity, FUNNEL_LEVEL
            )
    elif kind == "rate_per_1000":
        listed, reg_listed = _col(table, "listed"), _col(table, "reg_listed")
        numerator, denominator = n, listed
        value, lower, upper = vectorised.rate_interval(n, listed, definition.multiplier, CONFIDENCE)
        if definition.compare:
            with np.errstate(invalid="ignore", divide="ignore"):
                target = np.where(
                    reg_listed > 0, reg_n / reg_listed * definition.multiplier, np.nan
                )
            comparison = vectorised.classify_rate(
                n, listed, target, definition.multiplier, polarity, FUNNEL_LEVEL
            )
    elif kind == "mean":
        numerator, denominator = s, n
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / n, np.nan)
            reg_mean = np.where(reg_n > 0, _col(table, "reg_s") / reg_n, np.nan)
        sd = np.where(n > 1, _sd(n, s, ss), np.nan)
        value, lower, upper = vectorised.mean_interval(n, mean, sd, CONFIDENCE)
        if definition.compare:
            reg_sd = np.where(
                reg_n > 1, _sd(reg_n, _col(table, "reg_s"), _col(table, "reg_ss")), np.nan
            )
            comparison = vectorised.classify_mean(n, mean, reg_mean, reg_sd, polarity, FUNNEL_LEVEL)
    elif kind == "median":
        numerator, denominator = nan, n
        value, lower, upper = _col(table, "med"), _col(table, "med_lo"), _col(table, "med_hi")
    else:  # count
        numerator, denominator = n, nan
        value = n.copy()
        lower, upper = vectorised.count_limits(n, CONFIDENCE)
    comparison = np.where(region_row, "not_compared", comparison).astype(object)
    return Block(
        code=definition.code,
        unit=unit,
        period=_col(table, "period", object),
        period_kind=_col(table, "kind", object),
        sex=_col(table, "sex", object),
        age_band=_col(table, "age_band", object),
        numerator=np.asarray(numerator, dtype=float),
        denominator=np.asarray(denominator, dtype=float),
        value=np.asarray(value, dtype=float),
        lower=np.asarray(lower, dtype=float),
        upper=np.asarray(upper, dtype=float),
        comparison=comparison,
        complete=np.ones(len(unit), dtype=bool),
    )


# ----------------------------------------------------------------------------------------------
# Collected data (staffing)
# ----------------------------------------------------------------------------------------------


def staffing_fte(
    rows: Iterable[StaffingRow], professions: Iterable[str], period: Period
) -> dict[str, float]:
    """FTE per unit for ``period`` from staffing reported for any period.

    Rule: the unit's rows for exactly this period; else those of the shortest reported period
    containing it (a year's staffing applies to its quarters and months); else the mean over
    the reported periods inside it of the finest kind available (a year from its quarters).
    """
    professions = set(professions)
    totals: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.profession in professions:
            key = (r.unit_hsa_id, r.period)
            totals[key] = totals.get(key, 0.0) + float(r.fte)
    by_unit: dict[str, dict[Period, float]] = {}
    for (unit, p), fte in totals.items():
        by_unit.setdefault(unit, {})[Period.parse(p)] = fte
    out: dict[str, float] = {}
    for unit, reported in by_unit.items():
        if period in reported:
            out[unit] = reported[period]
            continue
        containing = [
            p for p in reported if p.kind_order < period.kind_order and p.contains(period)
        ]
        if containing:
            out[unit] = reported[max(containing, key=lambda p: p.kind_order)]
            continue
        inside = [p for p in reported if p.kind_order > period.kind_order and period.contains(p)]
        if inside:
            finest = min(p.kind_order for p in inside)
            values = [reported[p] for p in inside if p.kind_order == finest]
            out[unit] = sum(values) / len(values)
    return out


def collected_block(
    definition: Definition,
    periods: Sequence[Period],
    staffing: Sequence[StaffingRow],
    listed: Mapping[tuple[str, str], float],
) -> Block:
    """PO11-style figures: FTE per ``per`` listed for each unit and the region (units that
    reported staffing only, in numerator and denominator alike)."""
    professions = (definition.collected or {}).get("professions", ())
    cols: dict[str, list] = {k: [] for k in ("unit", "period", "kind", "num", "den")}
    for period in periods:
        if period.kind not in definition.period_types:
            continue
        fte = staffing_fte(staffing, professions, period)
        reg_num = reg_den = 0.0
        for unit, value in sorted(fte.items()):
            population = listed.get((str(period), unit))
            if not population:
                continue
            cols["unit"].append(unit)
            cols["period"].append(str(period))
            cols["kind"].append(period.kind)
            cols["num"].append(value)
            cols["den"].append(population)
            reg_num += value
            reg_den += population
        if reg_den:
            cols["unit"].append(REGION)
            cols["period"].append(str(period))
            cols["kind"].append(period.kind)
            cols["num"].append(reg_num)
            cols["den"].append(reg_den)
    num = np.array(cols["num"], dtype=float)
    den = np.array(cols["den"], dtype=float)
    size = len(num)
    nan = np.full(size, np.nan)
    rows = [
        (r.unit_hsa_id, r.period, r.profession, str(r.fte))
        for r in sorted(staffing, key=lambda r: (r.unit_hsa_id, r.period, r.profession))
        if r.profession in professions
    ]
    return Block(
        code=definition.code,
        unit=np.array(cols["unit"], dtype=object),
        period=np.array(cols["period"], dtype=object),
        period_kind=np.array(cols["kind"], dtype=object),
        sex=np.full(size, TOTAL, dtype=object),
        age_band=np.full(size, ALL_AGES, dtype=object),
        numerator=num,
        denominator=den,
        value=num / np.where(den > 0, den, np.nan) * definition.multiplier,
        lower=nan,
        upper=nan,
        comparison=np.full(size, "not_compared", dtype=object),
        complete=np.ones(size, dtype=bool),
        collected={STAFFING: hashlib.sha256(repr(rows).encode()).hexdigest()},
    )


# ----------------------------------------------------------------------------------------------
# A whole run
# ----------------------------------------------------------------------------------------------


def compute_blocks(
    catalogue: Catalogue,
    plan: Mapping[str, Sequence[Period]],
    *,
    units: Mapping[str, int],
    files: Sequence[ExtractFile],
    listing: Sequence[ListingRow],
    staffing: Sequence[StaffingRow],
    progress: Callable[[int, int, str], None] | None = None,
    engine_options: Mapping | None = None,
    skip_untouched: Container[str] = (),
) -> list[Block]:
    """Compute the planned periods of each planned definition; returns one Block each.

    A definition in ``skip_untouched`` whose kept case rows were brought up to date leaves
    out the periods in which they did not change (``Block.untouched``): the caller keeps
    their stored figures once it has checked that they were computed from the earlier files.
    """

    def attempt(options: Mapping) -> list[Block]:
        engine = Engine(units, listing, **options)
        return _compute_blocks(
            catalogue, plan, engine, files, staffing, progress, skip_untouched
        )  # fmt: skip

    try:
        return attempt(engine_options or {})
    except PatientKeyCollision as exc:
        # Rare beyond measure (about n^2 / 2^65 for n pseudonyms), but then exact: the same
        # run again with the pseudonyms' text, which the marker keeps for later runs too.
        log.warning("%s: computing with the pseudonyms' text", exc)
        return attempt({**(engine_options or {}), "exact_patient_keys": True})


def _compute_blocks(
    catalogue: Catalogue,
    plan: Mapping[str, Sequence[Period]],
    engine: Engine,
    files: Sequence[ExtractFile],
    staffing: Sequence[StaffingRow],
    progress: Callable[[int, int, str], None] | None,
    skip_untouched: Container[str],
) -> list[Block]:
    """:func:`compute_blocks` on ``engine``, which it closes."""
    try:
        # Per-patient definitions read their cases from rows kept between runs: brought up
        # to date for the patients whose data changed, or computed for all.
        states: dict[str, CaseState] = {}
        for code, periods in plan.items():
            definition = catalogue.get(code)
            if periods and definition.form != "collected":
                state = engine.case_state(definition, files)
                if state is not None:
                    states[code] = state
        engine.update_states(
            catalogue, [s for s in states.values() if not s.current and s.previous]
        )
        new_states = [s for s in states.values() if not s.current]
        if engine.cache_dir is None or any(s.previous is None for s in new_states):
            # Everyone's case rows are computed: the moment to see that every pseudonym in
            # force has a hash of its own (a run that brings rows up to date does not look).
            engine.check_patient_keys(files)
        # One set of files for the rest of the run: the union of the windows of the other
        # planned definitions and the files of the states computed for all.
        groups: list[Mapping[str, Sequence[ExtractFile]]] = []
        views: set[str] = set()
        for code, periods in plan.items():
            definition = catalogue.get(code)
            if not periods or definition.form == "collected" or code in states:
                continue
            views |= set(definition.views)
            groups.append(files_for(definition, files, periods))
        for state in new_states:
            views |= set(state.definition.views)
            groups.append(state.files)
        in_use = union_files(groups)
        engine.use_files(in_use)
        engine.create_views(catalogue, materialise=views, files=in_use)
        engine.make_states(new_states)
        all_periods = sorted({p for ps in plan.values() for p in ps})
        if all_periods:
            engine.build_listed(all_periods)
        covered = coverage(files)
        blocks = []
        total = len(plan)
        for i, (code, periods) in enumerate(plan.items()):
            if progress:
                progress(i, total, code)
            definition = catalogue.get(code)
            if not periods:
                continue
            if definition.form == "collected":
                listed = engine.listed_for(periods)
                blocks.append(collected_block(definition, periods, staffing, listed))
                continue
            state = states.get(code)
            untouched: dict[str, list[tuple[str, str, str]]] = {}
            if state is not None and code in skip_untouched:
                for p in periods:
                    if p.kind in definition.period_types and state.untouched(p):
                        untouched[str(p)] = window_contents(definition, state.earlier, p)
                periods = [p for p in periods if str(p) not in untouched]
            block = engine.run(definition, periods, files, covered, state)
            block.untouched = untouched
            blocks.append(block)
        engine.prune()
        engine.prune_states(states.values())
        if progress:
            progress(total, total, "")
        return blocks
    finally:
        engine.close()
