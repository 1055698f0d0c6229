"""Indicator services: catalogue sync, computation runs, and reading results with disclosure
control applied for the viewer.

* :func:`compute` runs the engine for a region (everything, the periods that depend on changed
  data, or whatever the extracts changed since the last run) and stores the results in one
  transaction, replacing only the recomputed periods whose figures changed (the others keep
  their rows, which get the run's provenance).
* :func:`results_for` is the only way pages, the API and exports read results: analysts see
  every figure; everyone else gets small numbers suppressed (primary and secondary, see
  ``suppression.py``), except a unit manager's own units, around which the pattern is
  recomputed so that nothing hidden can be derived from what the manager sees.
* :func:`export_results` writes the same rows as CSV or XLSX.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import filelock
import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import FloatField
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from styrkort.accounts import access
from styrkort.breakdowns import ALL_AGES, REPORT_AGE_BANDS, SEXES_WITH_TOTAL
from styrkort.bulk import insert_rows, update_rows
from styrkort.extracts.models import ExtractVersion
from styrkort.history.services import record, snapshot
from styrkort.indicators import engine
from styrkort.indicators.catalogue import Catalogue, Definition, load_catalogue
from styrkort.indicators.models import (
    ComputationRun,
    IndicatorDefinition,
    IndicatorResult,
    InputSet,
)
from styrkort.indicators.suppression import Cell, describe_method, is_primary, suppress
from styrkort.organisation.models import CareUnit, Listing, Region, Staffing
from styrkort.periods import Period

log = logging.getLogger(__name__)

JOB_KIND = "indicators.compute"
Progress = Callable[[int, int, str], None]

#: Job kinds that load extracts from which results are then computed (an upload, the demo's
#: background loading), registered by their apps with :func:`feeds_results`.
_FEEDING_JOBS: set[str] = set()


def feeds_results(kind: str) -> None:
    """Declare that a job of ``kind`` loads data the region's indicators are computed from,
    so that pages without results say they are coming (:func:`pending_work`)."""
    _FEEDING_JOBS.add(kind)


@dataclass(frozen=True)
class PendingWork:
    """What will bring a region's results: a computation (``computing``) or a job loading
    extracts, with the time it started (or was queued)."""

    computing: bool
    since: datetime


def pending_work(region: Region) -> PendingWork | None:
    """The computation of ``region`` running now, else a queued or running job of one of its
    users that computes its indicators or loads extracts for them; None when nothing is on
    its way."""
    from styrkort.jobs.models import Job

    run = ComputationRun.objects.filter(region=region, status=ComputationRun.Status.RUNNING).first()
    if run is not None:
        return PendingWork(True, run.started_at)
    job = (
        Job.objects.filter(
            kind__in=[JOB_KIND, *sorted(_FEEDING_JOBS)],
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            created_by__membership__region=region,
        )
        .order_by("created")
        .first()
    )
    if job is None:
        return None
    return PendingWork(job.kind == JOB_KIND, job.started or job.created)


# ----------------------------------------------------------------------------------------------
# Definitions
# ----------------------------------------------------------------------------------------------


def _definition_fields(d: Definition) -> dict:
    return {
        "pack": d.pack,
        "family": d.family,
        "name_sv": d.name_sv,
        "name_en": d.name_en,
        "definition_sv": d.definition_sv,
        "definition_en": d.definition_en,
        "kind": d.kind,
        "polarity": d.polarity,
        "source": d.source,
        "citation": d.citation,
        "breakdowns": list(d.breakdowns),
        "period_types": list(d.period_types),
        "multiplier": d.multiplier,
        "target": None
        if d.target is None
        else {"value": d.target.value, "direction": d.target.direction},
        "spec": dict(d.spec),
    }


@transaction.atomic
def sync_definitions(catalogue: Catalogue | None = None) -> dict[str, IndicatorDefinition]:
    """Store every definition version of the catalogue; mark the catalogue's as current.

    A new version gets a new row (old results keep pointing at the version they were computed
    with). Returns the current rows by code. Recorded in history with no actor (the
    catalogue files in the repository are the author).
    """
    catalogue = catalogue or load_catalogue()
    existing = {
        (row.code, row.version): row for row in IndicatorDefinition.objects.select_for_update()
    }
    current: dict[str, IndicatorDefinition] = {}
    for d in catalogue:
        row = existing.get((d.code, d.version))
        if row is None:
            IndicatorDefinition.objects.filter(code=d.code, is_current=True).update(
                is_current=False
            )
            row = IndicatorDefinition.objects.create(
                code=d.code, version=d.version, is_current=True, **_definition_fields(d)
            )
            record(None, "create", row, after=snapshot(row, ["code", "version", "name_sv"]))
        elif not row.is_current:
            IndicatorDefinition.objects.filter(code=d.code, is_current=True).update(
                is_current=False
            )
            row.is_current = True
            row.save(update_fields=["is_current"])
        current[d.code] = row
    IndicatorDefinition.objects.filter(is_current=True).exclude(code__in=list(current)).update(
        is_current=False
    )
    return current


def current_definition(definition: IndicatorDefinition | str) -> IndicatorDefinition:
    """The current stored definition for a code (syncing the catalogue if it is missing)."""
    if isinstance(definition, IndicatorDefinition):
        return definition
    row = IndicatorDefinition.objects.filter(code=definition, is_current=True).first()
    if row is None:
        row = sync_definitions().get(definition)
    if row is None:
        raise KeyError(f"no indicator {definition!r}")
    return row


# ----------------------------------------------------------------------------------------------
# Inputs from the database
# ----------------------------------------------------------------------------------------------


def active_files(region: Region) -> list[engine.ExtractFile]:
    """The region's extract files in force (one per table and declared period)."""
    return [
        engine.ExtractFile(v.id, v.table, v.period, v.version, v.full_path, v.checksum)
        for v in ExtractVersion.objects.filter(
            region=region, status=ExtractVersion.Status.ACTIVE
        ).order_by("table", "period")
    ]


def _units(region: Region) -> dict[str, int]:
    return dict(CareUnit.objects.filter(region=region).values_list("hsa_id", "id"))


def _listing(region: Region, months: Iterable[str]) -> engine.Listed:
    rows = Listing.objects.filter(unit__region=region, month__in=list(months)).values_list(
        "unit__hsa_id", "month", "sex", "age_band", "listed"
    )
    return engine.Listed(engine.ListingRow(*r) for r in rows)


def _staffing(region: Region) -> list[engine.StaffingRow]:
    # FTE as a float from the database: Django's decimal converter on SQLite cost about 25 µs
    # a row in a recompute (0.08 s for the benchmark's 3,179 rows), for the same float.
    rows = Staffing.objects.filter(unit__region=region).values_list(
        "unit__hsa_id", "period", "profession", Cast("fte", FloatField())
    )
    return [engine.StaffingRow(u, p, prof, fte) for u, p, prof, fte in rows]


def stale_changes(region: Region, catalogue: Catalogue | None = None) -> list[engine.Change]:
    """Data that changed since the stored results were computed.

    Two kinds: extract versions in force that no finished run has read (new or replacing
    uploads), and versions that stored results were computed from but that are no longer in
    force (replaced or purged).
    """
    catalogue = catalogue or load_catalogue()
    read_tables = {t for d in catalogue for t in d.tables}
    active = {f.id: f for f in active_files(region) if f.table in read_tables}
    read = set(
        ComputationRun.extract_versions.through.objects.filter(
            computationrun__region=region,
            computationrun__status=ComputationRun.Status.DONE,
        ).values_list("extractversion_id", flat=True)
    )
    changes = {(f.table, f.period) for i, f in active.items() if i not in read}
    inputs = InputSet.objects.filter(results__region=region).distinct()
    for extracts in inputs.values_list("extracts", flat=True):
        for e in extracts:
            if e["id"] not in active:
                changes.add((e["table"], e["period"]))
    return [engine.Change.of(t, p) for t, p in sorted(changes)]


# ----------------------------------------------------------------------------------------------
# Computing
# ----------------------------------------------------------------------------------------------


def _stored(region: Region) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per indicator code, the definition versions and the periods of the region's stored
    results."""
    definitions = {
        pk: (code, version)
        for pk, code, version in IndicatorDefinition.objects.values_list("pk", "code", "version")
    }
    versions: dict[str, set[str]] = defaultdict(set)
    periods: dict[str, set[str]] = defaultdict(set)
    # A result's definition_version is always its definition's (both are written together),
    # so the versions follow from the definitions, and only the distinct (definition, period)
    # pairs are read: by a loose scan of the (definition, region, period) index, one lookup
    # per pair (SELECT DISTINCT reads every entry: 0.3 s on PostgreSQL, 0.05 s on SQLite for
    # the benchmark's 316,551 results; this takes 0.01 s on both).
    for definition_id, period in _stored_periods(region):
        code, version = definitions[definition_id]
        versions[code].add(version)
        periods[code].add(period)
    return versions, periods


def _stored_periods(region: Region) -> list[tuple[int, str]]:
    """The distinct (definition id, period) pairs of the region's stored results."""
    quote = connection.ops.quote_name
    results = quote(IndicatorResult._meta.db_table)
    definitions = quote(IndicatorDefinition._meta.db_table)
    # Each step finds the next period of a definition, after the one before, in the index.
    sql = f"""
        WITH RECURSIVE p(definition_id, period) AS (
            SELECT d.id, (SELECT min(r.period) FROM {results} r
                          WHERE r.definition_id = d.id AND r.region_id = %s)
            FROM {definitions} d
            UNION ALL
            SELECT p.definition_id, (SELECT min(r.period) FROM {results} r
                                     WHERE r.definition_id = p.definition_id AND r.region_id = %s
                                     AND r.period > p.period)
            FROM p WHERE p.period IS NOT NULL
        )
        SELECT definition_id, period FROM p WHERE period IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [region.pk, region.pk])
        return cursor.fetchall()


def _full_versions(region: Region, codes: Iterable[str]) -> dict[str, str]:
    """Per indicator, the version it was last computed in full with (latest run first)."""
    wanted = set(codes)
    out: dict[str, str] = {}
    runs = ComputationRun.objects.filter(region=region, status=ComputationRun.Status.DONE)
    for versions in runs.order_by("-pk").values_list("full_versions", flat=True).iterator():
        for code, version in (versions or {}).items():
            out.setdefault(code, version)
        if wanted <= set(out):
            break
    return out


def plan_compute(
    catalogue: Catalogue,
    files: Sequence[engine.ExtractFile],
    staffing: Sequence[engine.StaffingRow],
    *,
    changes: Sequence[engine.Change] | None,
    stored_versions: Mapping[str, set[str]],
    stored_periods: Mapping[str, set[str]],
    full_versions: Mapping[str, str],
) -> tuple[dict[str, list[Period]], dict[str, list[str]]]:
    """Which periods to compute and which stored periods to replace, per definition.

    ``changes`` None means everything. A definition that has never been computed in full with
    its current version (it is new or was edited), or has stored results of another version,
    is computed in full. Otherwise only the periods depending on a change
    (``engine.dependent_periods``) are; dependent periods that no longer have data are
    deleted without being recomputed. ``replace`` is ``["*"]`` for a full replacement.
    """
    base = engine.result_periods(engine.data_months(files))
    staffing_periods = {Period.parse(r.period) for r in staffing}
    compute: dict[str, list[Period]] = {}
    replace: dict[str, list[str]] = {}
    for d in catalogue:
        candidates = list(base)
        if d.form == "collected":
            candidates = sorted(
                set(base) | staffing_periods, key=lambda p: (p.start, -p.kind_order)
            )
        candidates = [p for p in candidates if p.kind in d.period_types]
        outdated = stored_versions.get(d.code, set()) - {d.version}
        full = changes is None or bool(outdated) or full_versions.get(d.code) != d.version
        if full:
            compute[d.code] = candidates
            replace[d.code] = ["*"]
            continue
        stored = [Period.parse(p) for p in stored_periods.get(d.code, ())]
        dependent = engine.dependent_periods(
            d, changes or (), sorted(set(candidates) | set(stored))
        )
        compute[d.code] = [p for p in dependent if p in set(candidates)]
        replace[d.code] = sorted(str(p) for p in dependent)
    return compute, replace


def compute(
    region: Region,
    periods: Sequence[str] | None = None,
    *,
    tables: Sequence[str] | None = None,
    stale: bool = False,
    codes: Sequence[str] | None = None,
    actor=None,
    progress: Progress | None = None,
    job=None,
) -> ComputationRun:
    """Compute the indicators of ``region`` and store the results; returns the run.

    * ``periods=None`` (and not ``stale``): every indicator for every period with data.
    * ``periods=["2025-03", …]``: the data of these periods changed (for ``tables``, default
      all): recompute, per indicator, exactly the result periods depending on them (the
      dependency rule in ``engine.py``), e.g. 2025-03, 2025Q1 and 2025 for a window-free
      indicator, plus the neighbouring months of episode indicators.
    * ``stale=True``: recompute what the extract versions changed since the stored results.
    * ``codes``: only these indicators (default: the whole catalogue).

    ``actor`` (None for the command line without ``--user``) needs the ``compute`` capability
    in ``region``. The run row is created first (status running) so pages can show it; the
    results are written in one transaction with the run's completion and its history entry,
    so a failure leaves the previous results in force and the run marked failed. Runs of one
    region take turns (:func:`_region_turn`): a run waits while another one holds the
    region's derived files, and fails with :class:`RegionBusy` when that lasts too long.
    """
    if actor is not None:
        access.require(actor, "compute")
        if access.get_region_for_user(actor).pk != region.pk:
            raise PermissionDenied("compute outside the user's region")
    started = time.monotonic()
    catalogue = load_catalogue()
    unknown = set(codes or ()) - set(catalogue.definitions)
    if unknown:
        raise KeyError(f"no indicator {', '.join(sorted(unknown))} in the catalogue")
    definitions = sync_definitions(catalogue)
    run = ComputationRun.objects.create(
        region=region,
        started_by=actor if getattr(actor, "pk", None) else None,
        job=job,
        full=periods is None and not stale,
        requested_periods=None if periods is None else [str(Period.parse(p)) for p in periods],
        requested_tables=list(tables) if tables else None,
    )
    try:
        with _region_turn(region, progress):
            _compute(region, run, catalogue, definitions, periods, tables, stale, codes, actor,
                     progress, started)  # fmt: skip
    except Exception as exc:
        ComputationRun.objects.filter(pk=run.pk).update(
            status=ComputationRun.Status.FAILED,
            finished_at=timezone.now(),
            duration_seconds=time.monotonic() - started,
            error=f"{type(exc).__name__}: {exc}"[:5000],
        )
        raise
    return run


class RegionBusy(Exception):
    """Another computation (or a purge) of the region held its derived files for longer
    than ``STYRKORT_COMPUTE_LOCK_TIMEOUT``."""


@contextmanager
def _region_turn(region: Region, progress: Progress | None) -> Iterator[None]:
    """Wait for the region's :func:`~styrkort.extracts.services.derived_lock`, saying so in
    the progress when another run holds it; hold it until the block ends."""
    from styrkort.extracts.services import REGION_BUSY, derived_lock

    lock = derived_lock(region)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if progress:
            progress(0, 1, _(REGION_BUSY))
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RegionBusy(
                f"another computation of {region} has held its data for more than "
                f"{lock.timeout:.0f} s; run this one again when it has ended"
            ) from None
    try:
        yield
    finally:
        lock.release()


def _compute(
    region: Region,
    run: ComputationRun,
    catalogue: Catalogue,
    definitions: Mapping[str, IndicatorDefinition],
    periods: Sequence[str] | None,
    tables: Sequence[str] | None,
    stale: bool,
    codes: Sequence[str] | None,
    actor,
    progress: Progress | None,
    started: float,
) -> None:
    """The body of :func:`compute`, with the region's turn taken: the extracts in force are
    read only now, so a run that waited computes from what the one before it left."""
    files = active_files(region)
    changes: list[engine.Change] | None
    if stale:
        changes = stale_changes(region, catalogue)
    elif periods is not None:
        chosen = (
            list(tables) if tables else [*{t for d in catalogue for t in engine.tables_read(d)}]
        )
        changes = [engine.Change.of(t, p) for p in periods for t in sorted(chosen)]
    else:
        changes = None
    staffing = _staffing(region)
    stored_versions, stored_periods = _stored(region)
    plan, replace = plan_compute(
        catalogue,
        files,
        staffing,
        changes=changes,
        stored_versions=stored_versions,
        stored_periods=stored_periods,
        full_versions=_full_versions(region, catalogue.definitions),
    )
    if codes is not None:
        plan = {c: ps for c, ps in plan.items() if c in codes}
        replace = {c: ps for c, ps in replace.items() if c in codes}
    months = sorted({str(m) for ps in plan.values() for p in ps for m in p.months()})
    units = _units(region)
    listing = _listing(region, months)
    finished = _finished_runs(region)
    same_inputs = _same_inputs(region, catalogue, plan, replace, files, units, listing)
    for code, same in same_inputs.items():
        plan[code] = [p for p in plan[code] if str(p) not in same]
        replace[code] = [p for p in replace[code] if p not in same]
    inputs = _Inputs(units, files, listing, staffing)
    blocks = engine.compute_blocks(
        catalogue,
        {code: ps for code, ps in plan.items() if ps},
        units=units,
        files=files,
        listing=listing,
        staffing=staffing,
        progress=progress,
        engine_options=_engine_options(region),
        skip_untouched={code for code, ps in replace.items() if list(ps) != ["*"]},
    )
    blocks = _keep_untouched(region, catalogue, blocks, plan, replace, same_inputs, inputs)
    for block in blocks:
        block.collected[THRESHOLD] = threshold()
    # Compared and suppressed before the lock is taken, so that it is held only for the
    # writes; a run that stored results in between means comparing again under the lock.
    changed, kept, writes = _prepare(region, blocks, replace, definitions, catalogue)
    with transaction.atomic():
        Region.objects.select_for_update().filter(pk=region.pk).first()
        if _finished_runs(region) != finished:
            changed, kept, writes = _prepare(region, blocks, replace, definitions, catalogue)
            # Periods left out for their inputs stay as that run stored them, unless it
            # stored them from other inputs: theirs are the figures then.
            planned = {c: [Period.parse(p) for p in ps] for c, ps in same_inputs.items()}
            again = _same_inputs(region, catalogue, planned, {}, files, units, listing)
            same_inputs = {
                code: [p for p in periods if p in again.get(code, ())]
                for code, periods in same_inputs.items()
            }
        restamp = [(b, kept.get(b.code, ())) for b in changed]
        restamp += [
            (_inputs_block(catalogue.get(code), files, units, listing, periods), periods)
            for code, periods in same_inputs.items()
        ]
        written, replaced, unchanged = _store(
            region, run, changed, replace, restamp, definitions, catalogue, writes
        )
        used = {f.id for b in blocks for f in b.files}
        for code, kept_periods in same_inputs.items():
            window = [Period.parse(p) for p in kept_periods]
            read = engine.files_for(catalogue.get(code), files, window)
            used |= {f.id for group in read.values() for f in group}
        run.extract_versions.set(used)
        run.status = ComputationRun.Status.DONE
        run.finished_at = timezone.now()
        run.duration_seconds = time.monotonic() - started
        run.computed = {code: [str(p) for p in ps] for code, ps in plan.items() if ps}
        run.full_versions = {
            code: definitions[code].version
            for code, periods in replace.items()
            if list(periods) == ["*"]
        }
        run.results_written = written
        run.results_replaced = replaced
        run.results_unchanged = unchanged
        run.save()
        record(
            actor,
            "create",
            run,
            after=snapshot(
                run, ["region", "full", "requested_periods", "results_written", "status"]
            ),
            note=summarise(run),
        )


class _Inputs(NamedTuple):
    """What a run computes from besides the catalogue."""

    units: Mapping[str, int]
    files: Sequence[engine.ExtractFile]
    listing: Sequence[engine.ListingRow]
    staffing: Sequence[engine.StaffingRow]


def _keep_untouched(
    region: Region,
    catalogue: Catalogue,
    blocks: list[engine.Block],
    plan: dict[str, list[Period]],
    replace: dict[str, list[str]],
    same_inputs: dict[str, list[str]],
    inputs: _Inputs,
) -> list[engine.Block]:
    """Settle the periods the engine left out because their case rows did not change
    (``Block.untouched``).

    Their stored figures stand, as those of ``same_inputs`` do (they are added to it and
    taken out of ``plan`` and ``replace``), when they were computed from the files the
    earlier case rows were made from. Otherwise (the rows were brought up to date by a run
    whose results were not stored, say) they are computed now and joined to their block.
    """
    again: dict[str, list[Period]] = {}
    for block in blocks:
        if not block.untouched:
            continue
        code, untouched = block.code, block.untouched
        block.untouched = {}
        periods = [Period.parse(p) for p in untouched]
        kept = set(
            _stored_from(
                region,
                catalogue.get(code),
                periods,
                inputs.files,
                inputs.units,
                inputs.listing,
                extracts=untouched,
            )
        )
        if kept:
            same_inputs[code] = [*same_inputs.get(code, ()), *sorted(kept)]
            plan[code] = [p for p in plan[code] if str(p) not in kept]
            replace[code] = [p for p in replace[code] if p not in kept]
        if rest := [p for p in periods if str(p) not in kept]:
            again[code] = rest
    if not again:
        return blocks
    extra = {
        b.code: b
        for b in engine.compute_blocks(
            catalogue,
            again,
            units=inputs.units,
            files=inputs.files,
            listing=inputs.listing,
            staffing=inputs.staffing,
            engine_options=_engine_options(region),
        )
    }
    return [_joined(b, extra[b.code]) if b.code in extra else b for b in blocks]


def _joined(a: engine.Block, b: engine.Block) -> engine.Block:
    """The cells of two blocks of one definition (different periods) in the engine's order
    (period, unit, sex, age band), with the inputs of both."""
    columns = {
        f.name: np.concatenate([value, getattr(b, f.name)])
        for f in dataclasses.fields(a)
        if isinstance(value := getattr(a, f.name), np.ndarray)
    }
    order = np.lexsort(
        [columns[name].astype(str) for name in ("age_band", "sex", "unit", "period")]
    )
    joined = dataclasses.replace(
        a,
        files=list({f.id: f for f in [*a.files, *b.files]}.values()),
        collected={**a.collected, **b.collected},
        listed={**a.listed, **b.listed},
    )
    for name, column in columns.items():
        setattr(joined, name, column[order])
    return joined


def summarise(run: ComputationRun) -> str:
    """One line about a run, for the command line and the history note."""
    indicators = len(run.computed)
    periods = len({p for ps in run.computed.values() for p in ps})
    seconds = run.duration_seconds or 0
    what = "all periods" if run.full else f"{periods} dependent period(s)"
    return (
        f"{run.region}: {indicators} indicator(s), {what}, {run.results_written} results "
        f"written ({run.results_replaced} replaced, {run.results_unchanged} unchanged) "
        f"in {seconds:.1f} s (run {run.pk})"
    )


def _derived_dir(region: Region) -> Path:
    # Imported here: extracts.services imports this module (to queue recomputation).
    from styrkort.extracts.services import derived_dir

    return derived_dir(region)


def _engine_options(region: Region | None = None) -> dict:
    temp = settings.DATA_DIR / "tmp" / "duckdb"
    temp.mkdir(parents=True, exist_ok=True)
    return {
        "memory_limit": getattr(settings, "STYRKORT_DUCKDB_MEMORY_LIMIT", "2GB"),
        "threads": getattr(settings, "STYRKORT_DUCKDB_THREADS", None),
        "temp_directory": temp,
        "cache_dir": _derived_dir(region) if region is not None else None,
    }


def _nan_none(a: np.ndarray) -> list:
    return [None if v != v else float(v) for v in a.tolist()]  # NaN != NaN


def _finished_runs(region: Region) -> set[int]:
    """The region's finished runs: stored results change only when one more finishes."""
    runs = ComputationRun.objects.filter(region=region, status=ComputationRun.Status.DONE)
    return set(runs.values_list("pk", flat=True))


def _definition_ids() -> dict[str, list[int]]:
    """The ids of every stored version of each indicator, by code."""
    out: dict[str, list[int]] = defaultdict(list)
    for pk, code in IndicatorDefinition.objects.values_list("pk", "code"):
        out[code].append(pk)
    return out


#: Key of the disclosure-control threshold in an input set's ``collected``: the stored
#: suppression pattern follows from it.
THRESHOLD = "suppression_threshold"


def _inputs_block(
    definition: Definition,
    files: Sequence[engine.ExtractFile],
    units: Mapping[str, int],
    listing: Sequence[engine.ListingRow],
    periods: Iterable[str],
) -> engine.Block:
    """A block without figures naming the inputs ``periods`` would be computed from now,
    as a computed block names them (threshold included)."""
    block = engine.inputs_block(
        definition, files, units, listing, [Period.parse(p) for p in periods]
    )
    block.collected[THRESHOLD] = threshold()
    return block


def _same_inputs(
    region: Region,
    catalogue: Catalogue,
    plan: Mapping[str, Sequence[Period]],
    replace: Mapping[str, Sequence[str]],
    files: Sequence[engine.ExtractFile],
    units: Mapping[str, int],
    listing: Sequence[engine.ListingRow],
) -> dict[str, list[str]]:
    """Per indicator, the planned periods whose stored figures were computed from inputs with
    the same content as now: the same extract files by checksum (a month sent again
    unchanged), the same units, listed population (rates) and suppression threshold, and the
    same completeness. Their figures cannot change, so they are not computed again; the
    stored rows only take the new inputs (:func:`_store`).

    Periods replaced in full (``["*"]``: a new definition version) and collected-data
    definitions (cheap, no extract) are always computed.
    """
    out: dict[str, list[str]] = {}
    for code, periods in plan.items():
        definition = catalogue.get(code)
        if not periods or definition.form == "collected" or list(replace.get(code, ())) == ["*"]:
            continue
        same = _stored_from(region, definition, periods, files, units, listing)
        if same:
            out[code] = same
    return out


def _stored_from(
    region: Region,
    definition: Definition,
    periods: Iterable[Period],
    files: Sequence[engine.ExtractFile],
    units: Mapping[str, int],
    listing: Sequence[engine.ListingRow],
    extracts: Mapping[str, list[tuple[str, str, str]]] | None = None,
) -> list[str]:
    """The ``periods`` whose stored rows were all computed from one input set holding the
    extract files ``extracts[period]`` by content ((table, period, checksum); default: the
    files of the period's window now) and today's units, listed population and threshold,
    and whose completeness is what it would be now.

    One stored row of each period is looked at first: after a correction its input set
    names other files, and the period is out without reading the rest of its rows or
    fingerprinting the other inputs (the listed population of a rate, say).
    """
    wanted = {str(p): p for p in periods}
    ids = _definition_ids()[definition.code]
    first = _one_stored_row(region, ids, wanted)
    sets = {
        pk: (extracts, collected)
        for pk, extracts, collected in InputSet.objects.filter(
            pk__in={i for i, _c in first.values()}
        ).values_list("pk", "extracts", "collected")
    }
    covered = engine.coverage(files)
    listed = listing if isinstance(listing, engine.Listed) else engine.Listed(listing)
    listed_months = listed.months()
    candidates = []
    for period, (inputs_id, complete) in sorted(first.items()):
        if inputs_id not in sets:
            continue
        if extracts is None:
            expected = engine.window_contents(definition, files, wanted[period])
        else:
            expected = extracts[period]
        if _contents(sets[inputs_id][0]) == expected and complete == engine.is_complete(
            definition, wanted[period], covered, listed_months
        ):
            candidates.append(period)
    if not candidates:
        return []
    # Every stored row of a candidate period must be of that one input set and completeness.
    stored: dict[str, set[tuple[int, bool]]] = defaultdict(set)
    rows = (
        IndicatorResult.objects.filter(region=region, definition_id__in=ids, period__in=candidates)
        .values_list("period", "inputs_id", "is_complete")
        .distinct()
    )
    for period, inputs_id, complete in rows:
        stored[period].add((inputs_id, bool(complete)))
    now = _inputs_block(definition, files, units, listing, candidates)
    out = []
    for period in candidates:
        if stored[period] != {first[period]}:
            continue
        _fingerprint, _current, collected = now.inputs_for(definition, period)
        if sets[first[period][0]][1] == collected:
            out.append(period)
    return out


def _one_stored_row(
    region: Region, definition_ids: Sequence[int], periods: Iterable[str]
) -> dict[str, tuple[int, bool]]:
    """(input set id, completeness) of one stored row of each of ``periods`` that has any,
    each found by the (definition, region, period) index."""
    periods = sorted(periods)
    if not definition_ids:
        return {}
    quote = connection.ops.quote_name
    table = quote(IndicatorResult._meta.db_table)
    one = (
        f"SELECT * FROM (SELECT period, inputs_id, is_complete FROM {table} "
        f"WHERE region_id = %s AND definition_id IN ({', '.join(['%s'] * len(definition_ids))}) "
        "AND period = %s LIMIT 1) AS q{i}"
    )
    out = {}
    with connection.cursor() as cursor:
        for start in range(0, len(periods), 200):  # SQLite takes 500 SELECTs in a compound
            chunk = periods[start : start + 200]
            params: list[int | str] = []
            for period in chunk:
                params += [region.pk, *definition_ids, period]
            cursor.execute(" UNION ALL ".join(one.format(i=i) for i in range(len(chunk))), params)
            out.update({p: (inputs_id, bool(complete)) for p, inputs_id, complete in cursor})
    return out


def _contents(extracts: Iterable[Mapping]) -> list[tuple[str, str, str]]:
    """An input set's extract files by what they hold (version ids left out)."""
    return sorted((e["table"], e["period"], e["checksum"]) for e in extracts)


def _take(block: engine.Block, mask: np.ndarray) -> engine.Block:
    """The cells of ``block`` where ``mask`` is true: every array column filtered, the same
    ``files`` and ``collected``."""
    columns = {
        f.name: value[mask]
        for f in dataclasses.fields(block)
        if isinstance(value := getattr(block, f.name), np.ndarray)
    }
    return dataclasses.replace(block, **columns)


@dataclass
class _CellWrites:
    """How the cells of a recomputed block reach the stored rows of their periods: a cell
    with a stored row (``row_id``, -1 when none) that holds the same figures (``same``) is
    only restamped, one with other figures is updated in place, one without a row inserted;
    ``orphans`` are the stored rows of those periods without a cell now. ``version`` says
    whether a cell's row is of the definition version computed (its definition too)."""

    row_id: np.ndarray
    same: np.ndarray
    orphans: list[int]
    version: np.ndarray


def _prepare(
    region: Region,
    blocks: Sequence[engine.Block],
    replace: Mapping[str, Sequence[str]],
    definitions: Mapping[str, IndicatorDefinition],
    catalogue: Catalogue,
) -> tuple[list[engine.Block], dict[str, list[str]], dict[str, _CellWrites]]:
    """Set aside the replaced periods whose stored rows the new figures reproduce, attach
    the suppression pattern to the rest, and match their cells with the stored rows.

    Returns the blocks without the cells of those periods, the periods by indicator code,
    and, for blocks of dependent periods (not a full replacement), the cell writes. Most
    figures come out the same after one month's extract is replaced, and rewriting them
    (and protecting them again) would be most of a recompute's cost. Suppression strata never
    cross periods, so the stored pattern of a reproduced period stays right (see
    :func:`_reproduced_periods`).
    """
    units = _units(region)
    ids = _definition_ids()
    out: list[engine.Block] = []
    kept: dict[str, list[str]] = {}
    writes: dict[str, _CellWrites] = {}
    for block in blocks:
        definition = catalogue.get(block.code)
        version = definitions[block.code].version
        periods = set(block.period.tolist())
        replaced = list(replace.get(block.code, ()))
        if replaced != ["*"]:
            periods &= set(replaced)
        stored = _stored_rows(region, ids[block.code], periods) if periods else []
        # Matched once: the cells of the periods kept are then left out of the match too.
        match = _cell_match(block, stored, units)
        same = _reproduced_periods(block, match, version, definition)
        if same:
            kept[block.code] = sorted(same)
            rest = ~np.isin(block.period, kept[block.code])
            block = _take(block, rest)
            match = dataclasses.replace(match, found=match.found[rest], same=match.same[rest])
        block_suppression(block, definition)
        if replaced != ["*"]:
            writes[block.code] = _cell_writes(block, match, version, same)
        out.append(block)
    return out, kept, writes


#: The row id, the cell (period, unit id, sex, age band, period kind), then what must be equal.
_STORED_FIELDS = (
    "id", "period", "unit_id", "sex", "age_band", "period_kind",
    "numerator", "denominator", "value", "lower", "upper",
    "comparison", "is_complete", "definition_version", "suppression_reason",
)  # fmt: skip
_FIGURES = ("numerator", "denominator", "value", "lower", "upper")


def _stored_rows(region: Region, definition_ids: Sequence[int], periods: Iterable[str]) -> list:
    """The stored rows (``_STORED_FIELDS``) of one indicator's periods, by one plain query:
    a recompute reads some hundred thousand, where model instances or values_list would take
    a good part of its time."""
    table = IndicatorResult._meta.db_table
    quote = connection.ops.quote_name
    periods = sorted(periods)
    sql = (
        f"SELECT {', '.join(quote(f) for f in _STORED_FIELDS)} FROM {quote(table)} "
        f"WHERE region_id = %s AND definition_id IN ({', '.join(['%s'] * len(definition_ids))}) "
        f"AND period IN ({', '.join(['%s'] * len(periods))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [region.pk, *definition_ids, *periods])
        return [
            (*row[:12], bool(row[12]), *row[13:]) for row in cursor.fetchall()
        ]  # SQLite gives is_complete as 0/1


@dataclass
class _Match:
    """The cells of a block against the stored rows of its periods: per cell the index of its
    stored row (-1: none) and whether that row holds the same figures, comparison class and
    completeness; the stored rows by column name."""

    found: np.ndarray
    same: np.ndarray
    column: dict[str, tuple]

    def stored(self, name: str, dtype=object) -> np.ndarray:
        """The stored ``name`` of each cell's row (of row 0 for a cell without one)."""
        return np.array(self.column[name], dtype=dtype)[np.where(self.found >= 0, self.found, 0)]


def _cell_match(block: engine.Block, stored: Sequence[tuple], units: Mapping[str, int]) -> _Match:
    """Match the cells of ``block`` with ``stored`` rows (``_STORED_FIELDS``); figures are
    the same when NaN and None meet or floats are within a relative 1e-9, since DuckDB's
    parallel sums may differ in the last bits."""
    cells = zip(
        block.period.tolist(),
        [units[u] if u else None for u in block.unit.tolist()],
        block.sex.tolist(),
        block.age_band.tolist(),
        block.period_kind.tolist(),
        strict=True,
    )
    row_of = {row[1:6]: i for i, row in enumerate(stored)}
    found = np.array([row_of.get(cell, -1) for cell in cells], dtype=np.int64)
    column = dict(zip(_STORED_FIELDS, zip(*stored, strict=True), strict=True)) if stored else {}
    match = _Match(found, found >= 0, column)
    if not stored:
        return match
    for name in _FIGURES:
        old = match.stored(name, float)  # None becomes NaN
        new = getattr(block, name).astype(float)
        match.same &= np.isclose(new, old, rtol=1e-9, atol=0.0, equal_nan=True)
    match.same &= match.stored("comparison") == block.comparison
    match.same &= match.stored("is_complete", bool) == block.complete.astype(bool)
    return match


def _reproduced_periods(
    block: engine.Block, match: _Match, version: str, definition: Definition
) -> set[str]:
    """The periods of ``block`` whose stored rows it reproduces.

    Reproduced: the stored rows are of definition ``version`` and are exactly the block's
    cells with the same figures (:func:`_cell_match`). Also the same cells must be primary:
    the pattern depends on the threshold only through them, so this catches a changed
    threshold without running disclosure control again.
    """
    if not match.column:
        return set()
    was_primary = match.stored("suppression_reason") == "primary"
    same = match.same & (was_primary == _primary(block, definition, threshold()))

    changed = set(block.period[~same].tolist())
    column = match.column
    versions = zip(column["period"], column["definition_version"], strict=True)
    changed |= {period for period, v in versions if v != version}
    # With every cell found, as many rows as cells means that no stored row is left over.
    rows_per_period = Counter(column["period"])
    cells_per_period = Counter(block.period.tolist())
    changed |= {p for p, n in cells_per_period.items() if rows_per_period[p] != n}
    return set(cells_per_period) - changed


def _cell_writes(
    block: engine.Block, match: _Match, version: str, kept: Iterable[str]
) -> _CellWrites:
    """The writes of a protected block (``block.reason`` set) to the stored rows of its
    periods, but for those of the ``kept`` periods."""
    if not match.column:
        nothing = np.zeros(len(block), bool)
        return _CellWrites(np.full(len(block), -1, dtype=np.int64), nothing, [], nothing)
    assert block.reason is not None
    same_version = match.stored("definition_version") == version
    same = match.same & (match.stored("suppression_reason") == block.reason) & same_version
    ids = np.array(match.column["id"], dtype=np.int64)
    left = ~np.isin(np.array(match.column["period"], dtype=object), list(kept))
    left[match.found[match.found >= 0]] = False
    return _CellWrites(
        row_id=np.where(match.found >= 0, ids[np.where(match.found >= 0, match.found, 0)], -1),
        same=same,
        orphans=ids[left].tolist(),
        version=same_version,
    )


def _input_sets(
    entries: Sequence[tuple[engine.Block, Definition, Iterable[str]]],
) -> list[dict[str, int]]:
    """Per (block, definition, periods) entry, the id of the InputSet the figures of each of
    its periods were computed from (made if new): two queries for all the entries, rather
    than two per block (0.3 s of a recompute's writes on PostgreSQL). A block given twice
    (restamped and written) is fingerprinted once per period."""
    made: dict[tuple[int, str], tuple[str, list[dict], dict]] = {}

    def of(block: engine.Block, d: Definition, period: str) -> tuple[str, list[dict], dict]:
        key = (id(block), period)
        if key not in made:
            made[key] = block.inputs_for(d, period)
        return made[key]

    inputs = [{p: of(block, d, p) for p in periods} for block, d, periods in entries]
    fingerprints = {fingerprint for entry in inputs for fingerprint, _e, _c in entry.values()}
    ids = dict(
        InputSet.objects.filter(fingerprint__in=fingerprints).values_list("fingerprint", "pk")
    )
    missing = {f: (e, c) for entry in inputs for f, e, c in entry.values() if f not in ids}
    if missing:
        InputSet.objects.bulk_create(
            [InputSet(fingerprint=f, extracts=e, collected=c) for f, (e, c) in missing.items()],
            ignore_conflicts=True,  # another run may have made the same set meanwhile
        )
        ids.update(
            InputSet.objects.filter(fingerprint__in=list(missing)).values_list("fingerprint", "pk")
        )
    return [{p: ids[fingerprint] for p, (fingerprint, _e, _c) in entry.items()} for entry in inputs]


def _store(
    region: Region,
    run: ComputationRun,
    blocks: Sequence[engine.Block],
    replace: Mapping[str, Sequence[str]],
    restamp: Sequence[tuple[engine.Block, Sequence[str]]],
    definitions: Mapping[str, IndicatorDefinition],
    catalogue: Catalogue,
    writes: Mapping[str, _CellWrites] | None = None,
) -> tuple[int, int, int]:
    """Replace the stored results of the replaced periods, except the kept ones, by the
    cells of ``blocks``, and give the kept rows this run's provenance.

    ``restamp``: (block, periods) pairs, the stored periods kept, each with a block that names
    its inputs (the computed block, or one from :func:`engine.inputs_block` for periods not
    computed at all). A block with ``writes`` (:func:`_prepare`) goes to its periods' rows
    cell by cell: rows with other figures are updated in place, the rest only restamped,
    which touches a fraction of the rows (and of their indexes) a rewrite would. Returns the
    number of rows written (inserted or updated), replaced (deleted or updated) and kept.
    """
    writes = writes or {}
    ids = _definition_ids()
    restamp = [*restamp, *((b, sorted(set(b.period.tolist()))) for b in blocks if b.code in writes)]
    kept: dict[str, set[str]] = defaultdict(set)
    for block, periods in restamp:
        kept[block.code] |= set(periods)
    replaced = 0
    for cell_writes in writes.values():
        for i in range(0, len(cell_writes.orphans), 500):
            chunk = cell_writes.orphans[i : i + 500]
            replaced += IndicatorResult.objects.filter(pk__in=chunk).delete()[0]
    for code, periods in replace.items():
        # By definition id rather than code: a plain DELETE without a join.
        qs = IndicatorResult.objects.filter(region=region, definition_id__in=ids[code])
        keep = sorted(kept.get(code, ()))
        if list(periods) == ["*"]:
            qs = qs.exclude(period__in=keep) if keep else qs
        else:
            periods = [p for p in periods if p not in keep]
            if not periods:
                continue
            qs = qs.filter(period__in=periods)
        replaced += qs.delete()[0]
    units = _units(region)
    written = 0
    inputs = _input_sets(
        [(b, catalogue.get(b.code), periods) for b, periods in restamp]
        + [(b, catalogue.get(b.code), set(b.period.tolist())) for b in blocks]
    )
    restamp_inputs, block_inputs = inputs[: len(restamp)], inputs[len(restamp) :]
    # The changed cells first, with the run and inputs, then the other rows of the kept
    # periods restamped: each row is written once. (On PostgreSQL a second update of a row
    # in the transaction finds the free space of its page taken by the first, so it is no
    # HOT update and every index gets a new entry: 0.9 s of the benchmark's corrected month.)
    updates: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for block, inputs_of in zip(blocks, block_inputs, strict=True):
        if block.code not in writes:
            continue
        cells = _cell_updates(block, writes[block.code], definitions[block.code], run, inputs_of)
        for names, rows in cells.items():
            updates[names] += rows
    for names, rows in updates.items():
        update_rows(IndicatorResult, names, rows)
        written += len(rows)
        replaced += len(rows)
    unchanged = 0
    for (block, _periods), kept_inputs in zip(restamp, restamp_inputs, strict=True):
        # Their figures stand, but they now follow from the new inputs: stale_changes reads
        # the extract versions of the stored rows' input sets.
        periods_of: dict[int, list[str]] = defaultdict(list)
        for period, inputs_id in kept_inputs.items():
            periods_of[inputs_id].append(period)
        for inputs_id, same_inputs in periods_of.items():
            unchanged += (
                IndicatorResult.objects.filter(
                    region=region, definition_id__in=ids[block.code], period__in=same_inputs
                )
                .exclude(run_id=run.pk)  # updated above
                .update(run_id=run.pk, inputs_id=inputs_id)
            )
    for block, inputs_of in zip(blocks, block_inputs, strict=True):
        if block.code in writes:
            block = _take(block, writes[block.code].row_id < 0)
        written += _insert_block(region, run, block, definitions[block.code], units, inputs_of)
    return written, replaced, unchanged


def _cell_updates(
    block: engine.Block,
    cell_writes: _CellWrites,
    definition: IndicatorDefinition,
    run: ComputationRun,
    inputs_of: Mapping[str, int],
) -> dict[tuple[str, ...], list[tuple]]:
    """The updates of the cells whose stored row holds other figures, for
    :func:`~styrkort.bulk.update_rows`: rows (values, then the row id) by the columns set.

    The definition is set only in rows of another version: five indexes hold
    ``definition_id``, and SQLite updates an index whenever an UPDATE sets one of its
    columns, to the same value too (about 0.4 s for the benchmark's 23,000 cells).
    """
    changed = (cell_writes.row_id >= 0) & ~cell_writes.same
    out: dict[tuple[str, ...], list[tuple]] = {}
    if not changed.any():
        return out
    assert block.reason is not None
    figures: tuple[str, ...] = (
        "numerator", "denominator", "value", "lower", "upper", "suppressed",
        "suppression_reason", "comparison", "is_complete", "run_id", "inputs_id",
    )  # fmt: skip
    for same_version in (True, False):
        mask = changed & (cell_writes.version == same_version)
        if not mask.any():
            continue
        reasons = block.reason[mask].tolist()
        columns = [
            _nan_none(block.numerator[mask]),
            _nan_none(block.denominator[mask]),
            _nan_none(block.value[mask]),
            _nan_none(block.lower[mask]),
            _nan_none(block.upper[mask]),
            [bool(r) for r in reasons],
            reasons,
            block.comparison[mask].tolist(),
            [bool(c) for c in block.complete[mask].tolist()],
            [run.pk] * len(reasons),
            [inputs_of[p] for p in block.period[mask].tolist()],
        ]
        names = figures
        if not same_version:
            names += ("definition_id", "definition_version")
            columns += [[definition.pk] * len(reasons), [definition.version] * len(reasons)]
        out[names] = list(zip(*columns, cell_writes.row_id[mask].tolist(), strict=True))
    return out


def _insert_block(
    region: Region,
    run: ComputationRun,
    block: engine.Block,
    definition: IndicatorDefinition,
    units: Mapping[str, int],
    inputs_of: Mapping[str, int],
) -> int:
    """Insert the cells of one block (``inputs_of``: the input set of each period); returns
    how many."""
    if not len(block):
        return 0
    reasons = block.reason.tolist() if block.reason is not None else [""] * len(block)
    cols = (
        [units[u] if u else None for u in block.unit.tolist()],
        block.period.tolist(),
        block.period_kind.tolist(),
        block.sex.tolist(),
        block.age_band.tolist(),
        _nan_none(block.numerator),
        _nan_none(block.denominator),
        _nan_none(block.value),
        _nan_none(block.lower),
        _nan_none(block.upper),
        [bool(r) for r in reasons],
        reasons,
        block.comparison.tolist(),
        [bool(c) for c in block.complete.tolist()],
        [inputs_of[p] for p in block.period.tolist()],
    )
    fixed = (definition.pk, definition.version, region.pk, run.pk)
    rows = [fixed + row for row in zip(*cols, strict=True)]
    # Some 300,000 rows in a full run of a large region.
    insert_rows(IndicatorResult, _INSERT_COLUMNS, rows)
    return len(rows)


_INSERT_COLUMNS = (
    "definition_id", "definition_version", "region_id", "run_id", "unit_id", "period",
    "period_kind", "sex", "age_band", "numerator", "denominator", "value", "lower", "upper",
    "suppressed", "suppression_reason", "comparison", "is_complete", "inputs_id",
)  # fmt: skip


def enqueue_compute(
    actor, periods: Sequence[str] | None = None, *, tables=None, stale: bool = False
):
    """Queue a computation for the actor's region as a background job; returns the Job."""
    from styrkort.jobs.services import enqueue

    access.require(actor, "compute")
    region = access.get_region_for_user(actor)
    params = {
        "region": region.pk,
        "periods": [str(Period.parse(p)) for p in periods] if periods is not None else None,
        "tables": list(tables) if tables else None,
        "stale": bool(stale),
    }
    return enqueue(actor, JOB_KIND, params)


def compute_job(job, progress: Progress) -> dict:
    """Job handler for ``indicators.compute`` (params: region, periods, tables, stale)."""
    actor = job.created_by
    params = job.params or {}
    region = Region.objects.get(pk=params["region"]) if params.get("region") else None
    if region is None:
        region = access.get_region_for_user(actor)
    from styrkort.extracts.services import defer_while_region_busy

    defer_while_region_busy(region)
    run = compute(
        region,
        params.get("periods"),
        tables=params.get("tables"),
        stale=bool(params.get("stale")),
        actor=actor,
        progress=progress,
        job=job,
    )
    return {
        "run": run.pk,
        "results_written": run.results_written,
        "results_replaced": run.results_replaced,
        "results_unchanged": run.results_unchanged,
        "seconds": round(run.duration_seconds or 0, 2),
        "summary": summarise(run),
    }


# ----------------------------------------------------------------------------------------------
# Disclosure control
# ----------------------------------------------------------------------------------------------


def threshold() -> int:
    return int(getattr(settings, "STYRKORT_SUPPRESSION_THRESHOLD", 5))


def suppression_notice(language: str | None = None) -> str:
    """The sentence stating the method and threshold, for every page and export with figures."""
    language = (language or translation.get_language() or "sv")[:2]
    texts = describe_method(threshold())
    return texts["sv"] if language == "sv" else texts["en"]


def suppression_counts(kind: str, numerator, denominator) -> tuple[int | None, int | None]:
    """The counts disclosure control tests: counts of people or events, never sums of
    scores or FTE (a mean's numerator) and never a median (its denominator is tested)."""

    def whole(v):
        return None if v is None or v != v else int(round(v))

    if kind == "proportion":
        return whole(numerator), whole(denominator)
    if kind == "rate_per_1000":
        return whole(numerator), whole(denominator)
    if kind == "count":
        return whole(numerator), None
    return None, whole(denominator)  # mean, median


class SCell(NamedTuple):
    """A result cell as disclosure control sees it."""

    key: Hashable
    unit: str  # HSA-id or "" for the region
    period: str
    sex: str
    age_band: str
    numerator: int | None
    denominator: int | None


def suppression_pattern(
    cells: Sequence[SCell], limit: int | None = None, known_units: Iterable[str] = ()
) -> dict[Hashable, str]:
    """Primary and secondary suppression over a whole table of one indicator.

    ``suppression.suppress`` protects the sex (K + M = T) and unit (units = region) relations
    within a stratum. Age bands also add up to "alla", so the table is protected in two
    alternating passes until nothing changes: (a) per period and age band, sexes × units
    with the region total; (b) per period, unit and sex, the age bands with "alla" as their
    total. Cells hidden by one pass are fed to the other as already hidden. Cells of
    ``known_units`` (a unit manager's own units, which the viewer sees anyway) are left out:
    the viewer knows them, so an equation through them is an equation among the others.
    """
    limit = limit or threshold()
    known = set(known_units)
    cells = [c for c in cells if c.unit not in known]
    by_key = {c.key: c for c in cells}
    hidden: dict[Hashable, str] = {}
    flagged = {c.key for c in cells if is_primary(c.numerator, c.denominator, limit)}

    def counts(c: SCell) -> tuple[int | None, int | None]:
        # A cell hidden by the other pass is fed in as a primary one.
        return (1, 1) if c.key in hidden else (c.numerator, c.denominator)

    def sexes_by_units(c: SCell) -> Cell:
        num, den = counts(c)
        return Cell(c.key, c.unit or "region", c.sex, num, den, "R", c.age_band, not c.unit)

    def bands(c: SCell) -> Cell:
        # Age bands as the "units" of a total "alla", one equation per unit and sex.
        num, den = counts(c)
        return Cell(c.key, c.age_band, "-", num, den, f"{c.unit}|{c.sex}", None,
                    c.age_band == ALL_AGES)  # fmt: skip

    # Pass (a) protects each (period, age band): sexes × units with the region total; pass (b)
    # each (period, unit, sex): the age bands with "alla". Their equations stay inside these
    # strata, so a stratum without a small or hidden cell needs no call to suppress() (most of
    # them), and a stratum is looked at again only when the other pass hid a cell in it.
    def stratum_a(c: SCell) -> Hashable:
        return (c.period, c.age_band)

    def stratum_b(c: SCell) -> Hashable:
        return (c.period, c.unit, c.sex)

    def run(strata: Iterable[Hashable], groups, make) -> set[Hashable]:
        new: set[Hashable] = set()
        for stratum in sorted(strata, key=str):
            group = groups[stratum]
            if not any(c.key in flagged or c.key in hidden for c in group):
                continue
            for k, reason in suppress([make(c) for c in group], limit).items():
                if k not in hidden:
                    hidden[k] = reason
                    new.add(k)
        return new

    groups_a: dict[Hashable, list[SCell]] = defaultdict(list)
    groups_b: dict[Hashable, list[SCell]] = defaultdict(list)
    for c in cells:
        groups_a[stratum_a(c)].append(c)
        groups_b[stratum_b(c)].append(c)
    dirty_a = {stratum_a(by_key[k]) for k in flagged}
    dirty_b = {stratum_b(by_key[k]) for k in flagged}
    while dirty_a or dirty_b:
        new_a = run(dirty_a, groups_a, sexes_by_units)
        dirty_b |= {stratum_b(by_key[k]) for k in new_a}
        new_b = run(dirty_b, groups_b, bands)
        dirty_a = {stratum_a(by_key[k]) for k in new_b}
        dirty_b = set()
    return hidden


def _tested_counts(block: engine.Block, definition: Definition) -> tuple[np.ndarray, np.ndarray]:
    """The numerators and denominators disclosure control tests, rounded; NaN where there is
    nothing to test."""
    num, den = np.rint(block.numerator), np.rint(block.denominator)
    if definition.kind in ("mean", "median") or definition.form == "collected":
        num = np.full(len(block), np.nan)  # sums of scores or FTE are not counts of people
    if definition.kind == "count":
        den = np.full(len(block), np.nan)
    return num, den


def _primary(block: engine.Block, definition: Definition, limit: int) -> np.ndarray:
    """Per cell, whether ``suppression.is_primary`` holds (NaN is not tested, as None)."""
    num, den = _tested_counts(block, definition)
    return ((num > 0) & (num < limit)) | (den < limit)


def block_suppression(block: engine.Block, definition: Definition) -> None:
    """Attach the public suppression pattern to a computed block (``block.reason``)."""

    def whole(a: np.ndarray) -> list[int | None]:
        return [None if v != v else int(v) for v in a.tolist()]  # NaN != NaN

    size = len(block)
    num, den = (whole(a) for a in _tested_counts(block, definition))
    cells = [
        SCell(i, u, p, sx, b, n, d)
        for i, (u, p, sx, b, n, d) in enumerate(
            zip(block.unit, block.period, block.sex, block.age_band, num, den, strict=True)
        )
    ]
    reasons = np.full(size, "", dtype=object)
    for key, reason in suppression_pattern(cells).items():
        reasons[int(key)] = reason  # type: ignore[call-overload]
    block.reason = reasons


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

_SEX_ORDER = {s: i for i, s in enumerate(SEXES_WITH_TOTAL)}
_BAND_ORDER = {b: i for i, b in enumerate((*REPORT_AGE_BANDS, ALL_AGES))}
_BLANKED = ("numerator", "denominator", "value", "lower", "upper")


def _filtered(qs, user, filters: Mapping):
    unit = filters.get("unit", "any")
    if unit in (None, "region"):
        qs = qs.filter(unit__isnull=True)
    elif unit != "any":
        qs = qs.filter(unit=access.get_unit_for_user(user, unit))
    if filters.get("units"):
        ids = [access.get_unit_for_user(user, u).pk for u in filters["units"]]
        qs = qs.filter(unit__in=ids)
    for key in ("period", "period_kind", "sex", "age_band"):
        value = filters.get(key)
        if value is None:
            continue
        if isinstance(value, list | tuple | set):
            qs = qs.filter(**{f"{key}__in": list(value)})
        else:
            qs = qs.filter(**{key: value})
    if filters.get("period_from"):
        qs = qs.filter(period__gte=str(Period.parse(filters["period_from"])))
    if filters.get("period_to"):
        qs = qs.filter(period__lte=str(Period.parse(filters["period_to"])))
    return qs


_FIELDS = (
    "id",
    "unit_id",
    "unit__hsa_id",
    "unit__name",
    "period",
    "period_kind",
    "sex",
    "age_band",
    "numerator",
    "denominator",
    "value",
    "lower",
    "upper",
    "suppressed",
    "suppression_reason",
    "comparison",
    "is_complete",
    "run_id",
    "definition_version",
)


def results_for(
    user, definition: IndicatorDefinition | str, filters: Mapping | None = None
) -> list[dict]:
    """Results of one indicator in the user's region, with disclosure control for the viewer.

    ``filters`` (all optional): ``unit`` (id or HSA-id; ``"region"`` or None for the region's
    own rows; default every unit and the region), ``units`` (ids), ``period`` / ``period_kind``
    / ``sex`` / ``age_band`` (a value or a list), ``period_from`` / ``period_to``.

    Each dict: code, version, unit_id (None = region), unit_hsa_id, unit_name, period,
    period_kind, sex, age_band, numerator, denominator, value, lower, upper, comparison,
    is_complete, run_id, and ``suppressed`` (the figures are blanked for this viewer: value,
    interval, numerator and denominator None, comparison "not_compared") with
    ``suppression_reason`` ("primary" / "secondary" / ""). Analysts get every figure; their
    ``suppressed`` is False and ``publicly_suppressed`` says what other roles do not see.
    Units outside the region raise Http404; users without a role PermissionDenied.
    """
    access.require(user, "view")
    region = access.get_region_for_user(user)
    row = current_definition(definition)
    filters = dict(filters or {})
    base = IndicatorResult.objects.filter(definition__code=row.code, region=region)
    rows = list(_filtered(base, user, filters).values(*_FIELDS))
    own = access.own_unit_ids(user)
    analyst = access.sees_unsuppressed(user, None)
    pattern: dict[Hashable, str] = {}
    if not analyst and own and rows:
        # Recompute the pattern around the manager's own units, over whole strata.
        periods = sorted({r["period"] for r in rows})
        every = base.filter(period__in=periods).values(
            "id", "unit_id", "unit__hsa_id", "period", "sex", "age_band", "numerator",
            "denominator",
        )  # fmt: skip
        own_hsa = set(CareUnit.objects.filter(pk__in=own).values_list("hsa_id", flat=True))
        cells = []
        for r in every:
            num, den = suppression_counts(row.kind, r["numerator"], r["denominator"])
            if row.source == "collected":
                num = None
            cells.append(
                SCell(
                    r["id"], r["unit__hsa_id"] or "", r["period"], r["sex"], r["age_band"], num, den
                )  # fmt: skip
            )
        pattern = suppression_pattern(cells, known_units=own_hsa)
    out = []
    for r in rows:
        public = bool(r["suppressed"])
        if analyst or (r["unit_id"] is not None and r["unit_id"] in own):
            reason, hide = ("", False)
        elif own:
            reason = pattern.get(r["id"], "")
            hide = bool(reason)
        else:
            reason, hide = r["suppression_reason"], public
        item = {
            "code": row.code,
            "version": r["definition_version"],
            "unit_id": r["unit_id"],
            "unit_hsa_id": r["unit__hsa_id"],
            "unit_name": r["unit__name"],
            "period": r["period"],
            "period_kind": r["period_kind"],
            "sex": r["sex"],
            "age_band": r["age_band"],
            "numerator": r["numerator"],
            "denominator": r["denominator"],
            "value": r["value"],
            "lower": r["lower"],
            "upper": r["upper"],
            "comparison": r["comparison"],
            "is_complete": r["is_complete"],
            "run_id": r["run_id"],
            "suppressed": hide,
            "suppression_reason": reason if hide else "",
        }
        if analyst:
            item["publicly_suppressed"] = public
            item["suppression_reason"] = r["suppression_reason"]
        if hide:
            for key in _BLANKED:
                item[key] = None
            item["comparison"] = "not_compared"
        out.append(item)
    out.sort(
        key=lambda i: (
            i["period_kind"],
            i["period"],
            i["unit_id"] is not None,
            i["unit_name"] or "",
            _SEX_ORDER.get(i["sex"], 9),
            _BAND_ORDER.get(i["age_band"], 99),
        )
    )
    return out


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """A file to send: bytes, MIME type and a suggested file name."""

    content: bytes
    content_type: str
    filename: str


_EXPORT_COLUMNS = (
    ("code", "Indicator"),
    ("version", "Definition version"),
    ("unit_hsa_id", "HSA-id"),
    ("unit_name", "Unit"),
    ("period", "Period"),
    ("sex", "Sex"),
    ("age_band", "Age band"),
    ("numerator", "Numerator"),
    ("denominator", "Denominator"),
    ("value", "Value"),
    ("lower", "Lower limit (95 %)"),
    ("upper", "Upper limit (95 %)"),
    ("comparison", "Compared with the region"),
    ("suppressed", "Suppressed"),
    ("is_complete", "Complete"),
)


def export_results(
    user, definition: IndicatorDefinition | str, filters: Mapping | None = None, format="csv"
) -> Export:
    """The rows of :func:`results_for` as CSV (UTF-8 with BOM, comma-separated) or XLSX.

    Suppressed figures are empty cells with "Suppressed" set to yes, exactly as on the page;
    the XLSX adds a sheet with the definition, the suppression method and threshold.
    """
    if format not in ("csv", "xlsx"):
        raise ValueError("format must be csv or xlsx")
    row = current_definition(definition)
    rows = results_for(user, row, filters)
    headers = [_(label) for _key, label in _EXPORT_COLUMNS]
    region_name = _("Region")

    def cells(item: dict) -> list:
        out = []
        for key, _label in _EXPORT_COLUMNS:
            v = item.get(key)
            if key == "unit_name" and item["unit_id"] is None:
                v = region_name
            if isinstance(v, bool):
                v = _("yes") if v else _("no")
            out.append(v)
        return out

    stamp = timezone.localdate().isoformat()
    name = f"styrkort-{row.code}-{stamp}"
    language = (translation.get_language() or "sv")[:2]
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(headers)
        for item in rows:
            writer.writerow(["" if v is None else v for v in cells(item)])
        return Export(
            buffer.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8", f"{name}.csv"
        )
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Results"))
    sheet.append(headers)
    for item in rows:
        sheet.append(cells(item))
    about = book.create_sheet(_("About"))
    about.append([_("Indicator"), f"{row.code} {row.name(language)}"])
    about.append([_("Definition"), row.definition_sv if language == "sv" else row.definition_en])
    about.append([_("Definition version"), row.version])
    about.append([_("Source"), row.citation])
    about.append([_("Disclosure control"), suppression_notice(language)])
    binary = io.BytesIO()
    book.save(binary)
    return Export(
        binary.getvalue(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"{name}.xlsx",
    )
