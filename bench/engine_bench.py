"""Engine benchmark (issue 3 §9, the indicator side): full run, one-month recomputes, the
hand-written DuckDB baseline, a pandas implementation of three indicators and a check of the
stored results against a full computation, each in its own process so that its peak memory
is its own.

    .venv/bin/python bench/engine_bench.py [--scale 6.6] [--data DIR] [--json OUT]

Synthetic extracts come from ``styrkort.extracts.synth.generate`` (scale 6.6 is about 10
million contacts over two years). The Django database is a fresh SQLite file under
``var/bench/`` (``STYRKORT_DATA_DIR``) holding the demo registry; the extract files are
registered in place as ExtractVersion rows. Steps:

* ``full``: ``services.compute(region)``: every indicator, unit, period, sex and age band,
  with intervals, funnel classes, suppression and storage;
* ``baseline``: ``bench/baseline.sql`` on DuckDB (numerators and denominators only), with a
  check that every figure equals the engine's;
* ``pandas``: PO01, PO04 and PO09 in pandas, checked against the engine too;
* ``recompute_same``: every file of month 2025-06 replaced by a new version holding the same
  bytes, then ``services.compute(region, ["2025-06"])`` (an identical re-upload);
* ``recompute``: every file of 2025-06 replaced by a corrected version (``correct_month``:
  about 1 % of the rows of each table dropped or changed, as a region re-sending the month
  with corrections), checked by the extract validator, then the same ``services.compute``;
* ``verify``: every indicator computed in full from the files in force, without storing, and
  every figure compared with the stored results the recomputes left.

Each step reads the database the previous ones left, so they run in this order (baseline and
pandas compare with the full run's figures, before anything is replaced).

Prints a table and, with ``--json``, writes the figures for bench/run.py / docs/performance.md.
Timings are wall-clock seconds of the step alone (setup excluded); memory is the step
process's peak resident set size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECOMPUTE_MONTH = "2025-06"
EXTRACT_TABLES = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave")


def _django(data_dir: Path) -> None:
    os.environ["STYRKORT_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "styrkort.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# ------------------------------------------------------------------------------------------
# Steps (each runs in a child process: ``engine_bench.py --step NAME``)
# ------------------------------------------------------------------------------------------


def build_region():
    """Migrate a fresh database and fill it with the demo registry; returns (region, user)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from styrkort.organisation.demo import build_demo_registry
    from styrkort.organisation.models import CareUnit, Listing, Provider, Region, Staffing

    call_command("migrate", verbosity=0)
    reg = build_demo_registry()
    region = Region.objects.create(
        name=reg.region.name, lan_code=reg.region.lan_code, org_nr=reg.region.org_nr
    )
    providers = {
        p.org_nr: Provider.objects.create(region=region, name=p.name, org_nr=p.org_nr, kind=p.kind)
        for p in reg.providers
    }
    units = {
        u.hsa_id: CareUnit.objects.create(
            region=region,
            provider=providers[u.provider_org_nr],
            hsa_id=u.hsa_id,
            name=u.name,
            municipality=u.municipality,
            opened=u.opened,
            closed=u.closed,
        )  # fmt: skip
        for u in reg.units
    }
    Listing.objects.bulk_create(
        Listing(
            unit=units[r.hsa_id], month=r.month, sex=r.sex, age_band=r.age_band, listed=r.listed
        )  # fmt: skip
        for r in reg.listings
    )
    Staffing.objects.bulk_create(
        Staffing(unit=units[r.hsa_id], period=r.period, profession=r.profession, fte=r.fte)
        for r in reg.staffing
    )
    user = get_user_model().objects.create(username="bench")
    return region, user


def step_setup(data: Path, work: Path) -> dict:
    """Fresh database with the demo registry and the extract files registered."""
    from styrkort.extracts.models import ExtractVersion

    region, user = build_region()
    manifest = json.loads((data / "manifest.json").read_text())
    rows = 0
    for month in sorted(p.name for p in data.iterdir() if p.is_dir()):
        for table in EXTRACT_TABLES:
            path = data / month / f"{table}.parquet"
            info = manifest["files"].get(f"{month}/{table}.parquet", {})
            rows += int(info.get("rows", 0)) if table == "contacts" else 0
            ExtractVersion.objects.create(
                region=region, period=month, table=table, version=1, path=str(path),
                checksum=info.get("sha256", "0" * 64), rows=int(info.get("rows", 0)),
                uploaded_by=user,
            )  # fmt: skip
    return {"contacts": rows}


def _warm_up():
    """What a worker that has computed before already holds, so that the timings are of the
    computation alone: the catalogue, and scipy, which the statistics import on first use
    (about 1.5 s here; until 2026-12-03 it came with Django's start-up, outside the timings)."""
    import scipy.stats  # noqa: F401

    from styrkort.indicators import services

    return services.load_catalogue()


def step_full(data: Path, work: Path) -> dict:
    from styrkort.indicators import services
    from styrkort.organisation.models import Region

    region = Region.objects.get(lan_code="99")
    _warm_up()
    started = time.perf_counter()
    run = services.compute(region)
    return {
        "seconds": time.perf_counter() - started,
        "results": run.results_written,
        "periods": {code: len(p) for code, p in run.computed.items()},
    }


# -- The recomputed month -------------------------------------------------------------------
#
# A region re-sending a month with corrections: every file of the month replaced by a new
# version, written with DuckDB from the version in force. Each correction touches about 1 % of
# the rows, chosen by the MD5 of the row's key (its lower 64 bits: deterministic, no
# randomness), and keeps the month valid under the extract rules (docs/extracts.md): keys
# unique, no diagnosis or procedure without its contact, dates inside the month, sick leave
# overlapping it, scores in range. The step checks that with the extract validator.

MENTAL_SQL = "(icd10_code LIKE 'F%' OR icd10_code = 'Z73.0')"
DEPRESSION_SQL = "(icd10_code LIKE 'F32%' OR icd10_code LIKE 'F33%')"
PSYCHOSOCIAL = ("psykolog", "kurator", "psykoterapeut")
TREATMENT_CODES = ("DU008", "DU011", "DU022")  # psychological treatment (the pack's list)
OTHER_CODE = "Z76.0"  # a diagnosis outside the mental-health lists
SCORE_STEP = 3  # whole-number instruments; EQ-5D moves by 0.1
SICK_LEAVE_DAYS = 30


def _hash(key_sql: str, salt: str) -> str:
    return f"md5_number_lower({key_sql} || '|{salt}')"


def _picked(key_sql: str, salt: str) -> str:
    """About 1 % of the rows, by the key: ``md5(key|salt) % 100 = 0``."""
    return f"({_hash(key_sql, salt)} % 100 = 0)"


def _sql_list(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def correct_month(sources: dict[str, Path], month: str, target: Path) -> dict[str, dict]:
    """Write ``target/<table>.parquet``: the month's files with the corrections applied.

    * contacts: about 1 % dropped, with their diagnoses and procedures; of the others about 1 %
      change ``profession`` (a psychosocial profession becomes ``lakare``, any other
      ``psykolog``);
    * diagnoses: about 1 % change code, half of them within the mental-health codes
      (depression F32/F33 → F41.1, any other F code or Z73.0 → F32.1, e.g. F41.1 → F32.1)
      and half across (a mental-health code → Z76.0; any other code → F41.1 or F32.0, one
      half each); a change that
      would repeat a code the contact already has is not made;
    * procedures: about 1 % of the psychological-treatment procedures (DU008, DU011, DU022)
      dropped;
    * measurements: about 1 % of the scores moved by 3 (EQ-5D by 0.1), up unless that leaves
      the instrument's range;
    * sick_leave: about 1 % of the cases that end in the month end 30 days later.

    Returns per table the rows before and after and how many rows changed or were dropped,
    with the count of each correction.
    """
    import duckdb

    from styrkort.extracts.schema import INSTRUMENTS
    from styrkort.periods import Period

    last = Period.parse(month).end
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")

    def source(table: str) -> str:
        return f"read_parquet('{sources[table]}', file_row_number = true)"

    con.execute(
        f"""CREATE TEMP TABLE c AS SELECT *, {_picked("contact_id", "drop")} AS _dropped,
        {_picked("contact_id", "profession")} AS _changed FROM {source("contacts")}"""
    )
    con.execute("UPDATE c SET _changed = false WHERE _dropped")
    con.execute("CREATE TEMP TABLE dropped AS SELECT contact_id FROM c WHERE _dropped")
    # Diagnoses: the new code, kept only when the contact does not already have it.
    within = f"""CASE WHEN {DEPRESSION_SQL} THEN 'F41.1'
        WHEN {MENTAL_SQL} THEN 'F32.1' ELSE 'F41.1' END"""
    across = f"CASE WHEN {MENTAL_SQL} THEN '{OTHER_CODE}' ELSE 'F32.0' END"
    dx_key = "contact_id || '|' || icd10_code"
    con.execute(
        f"""CREATE TEMP TABLE d0 AS SELECT *,
            CASE WHEN NOT {_picked(dx_key, "diagnosis")} THEN NULL
                 WHEN {_hash(dx_key, "diagnosis")} // 100 % 2 = 0 THEN {within}
                 ELSE {across} END AS _new
        FROM {source("diagnoses")}"""
    )
    con.execute(
        f"""CREATE TEMP TABLE d AS
        SELECT d0.*, contact_id IN (SELECT contact_id FROM dropped) AS _dropped,
               _new IS NOT NULL AND _new <> icd10_code
               AND NOT EXISTS (SELECT 1 FROM d0 o
                               WHERE o.contact_id = d0.contact_id AND o.icd10_code = d0._new)
               AND row_number() OVER (PARTITION BY contact_id, _new ORDER BY icd10_code) = 1
               AS _changed,
               CASE WHEN {MENTAL_SQL} THEN 'mental' ELSE 'other' END
               || '_to_' || CASE WHEN _new LIKE 'F%' THEN 'mental' ELSE 'other' END AS _kind
        FROM d0"""
    )
    con.execute("UPDATE d SET _changed = false WHERE _dropped")
    con.execute(
        f"""CREATE TEMP TABLE p AS SELECT *,
            contact_id IN (SELECT contact_id FROM dropped) AS _with_contact,
            kva_code IN ({_sql_list(TREATMENT_CODES)})
            AND {_picked("contact_id || '|' || kva_code", "treatment")} AS _treatment
        FROM {source("procedures")}"""
    )
    moved = " ".join(
        f"WHEN instrument = '{i.code}' THEN "
        + (
            f"CASE WHEN score + {step} <= {i.maximum} THEN score + {step} ELSE score - {step} END"
            if i.whole
            else f"round(CASE WHEN score + {step} <= {i.maximum} THEN score + {step} "
            f"ELSE score - {step} END, 3)"
        )
        for i in INSTRUMENTS.values()
        for step in [SCORE_STEP if i.whole else 0.1]
    )
    m_key = "patient_key || '|' || unit_hsa_id || '|' || CAST(date AS VARCHAR) || '|' || instrument"
    con.execute(
        f"""CREATE TEMP TABLE m AS SELECT *, {_picked(m_key, "score")} AS _changed,
            CASE {moved} ELSE score END AS _new FROM {source("measurements")}"""
    )
    s_key = "patient_key || '|' || unit_hsa_id || '|' || CAST(start_date AS VARCHAR)"
    con.execute(
        f"""CREATE TEMP TABLE s AS SELECT *,
            end_date <= DATE '{last}' AND {_picked(s_key, "sick_leave")} AS _changed
        FROM {source("sick_leave")}"""
    )
    outputs = {
        "contacts": f"""SELECT * EXCLUDE (file_row_number, _dropped, _changed) REPLACE (
            CASE WHEN NOT _changed THEN profession
                 WHEN profession IN ({_sql_list(PSYCHOSOCIAL)}) THEN 'lakare'
                 ELSE 'psykolog' END
            AS profession) FROM c WHERE NOT _dropped ORDER BY file_row_number""",
        "diagnoses": """SELECT * EXCLUDE (file_row_number, _new, _dropped, _changed, _kind)
            REPLACE (CASE WHEN _changed THEN _new ELSE icd10_code END AS icd10_code)
            FROM d WHERE NOT _dropped ORDER BY file_row_number""",
        "procedures": """SELECT * EXCLUDE (file_row_number, _with_contact, _treatment)
            FROM p WHERE NOT (_with_contact OR _treatment) ORDER BY file_row_number""",
        "measurements": """SELECT * EXCLUDE (file_row_number, _changed, _new)
            REPLACE (CASE WHEN _changed THEN _new ELSE score END AS score)
            FROM m ORDER BY file_row_number""",
        "sick_leave": f"""SELECT * EXCLUDE (file_row_number, _changed)
            REPLACE (CASE WHEN _changed THEN end_date + {SICK_LEAVE_DAYS} ELSE end_date END
                     AS end_date)
            FROM s ORDER BY file_row_number""",
    }
    target.mkdir(parents=True, exist_ok=True)
    for table, sql in outputs.items():
        # Cast back to the original columns' types, in their order.
        types = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{sources[table]}')").fetchall()
        cols = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind, *_ in types)
        path = target / f"{table}.parquet"
        con.execute(f"COPY (SELECT {cols} FROM ({sql})) TO '{path}' (FORMAT parquet)")
        new = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        if [t[:2] for t in new] != [t[:2] for t in types]:
            raise RuntimeError(f"{table}: columns {new} differ from {types}")

    def one(sql: str) -> int:
        return int(con.execute(sql).fetchone()[0])

    def counts(table: str, dropped: str, changed: str, **detail: str) -> dict:
        out = {
            "rows": one(f"SELECT count(*) FROM {table}"),
            "dropped": one(f"SELECT count(*) FILTER ({dropped}) FROM {table}"),
            "changed": one(f"SELECT count(*) FILTER ({changed}) FROM {table}"),
        }
        out["rows_after"] = out["rows"] - out["dropped"]
        for name, condition in detail.items():
            out[name] = one(f"SELECT count(*) FILTER ({condition}) FROM {table}")
        return out

    result = {
        "contacts": counts("c", "_dropped", "_changed", profession_changed="_changed"),
        "diagnoses": counts(
            "d",
            "_dropped",
            "_changed",
            dropped_with_contacts="_dropped",
            **{
                k: f"_changed AND _kind = '{k}'"
                for k in ("mental_to_mental", "mental_to_other", "other_to_mental")
            },
        ),  # fmt: skip
        "procedures": counts(
            "p",
            "_with_contact OR _treatment",
            "false",
            dropped_with_contacts="_with_contact",
            treatment_dropped="_treatment AND NOT _with_contact",
        ),  # fmt: skip
        "measurements": counts("m", "false", "_changed", score_changed="_changed"),
        "sick_leave": counts("s", "false", "_changed", end_date_moved="_changed"),
    }
    con.close()
    for table, info in result.items():
        written = _rows(target / f"{table}.parquet")
        if written != info["rows_after"]:
            raise RuntimeError(f"{table}: wrote {written} rows, expected {info['rows_after']}")
    return result


def _replace_month(write) -> tuple:
    """Register the files ``write(old versions by table)`` returns (paths by table) as new
    versions of every file of the recomputed month, the old ones superseded, as the step
    always did; returns (region, user, new paths)."""
    from django.contrib.auth import get_user_model

    from styrkort.extracts.models import ExtractVersion
    from styrkort.organisation.models import Region

    region = Region.objects.get(lan_code="99")
    user = get_user_model().objects.get(username="bench")
    olds = {
        table: ExtractVersion.objects.get(
            region=region, period=RECOMPUTE_MONTH, table=table, status="active"
        )
        for table in EXTRACT_TABLES
    }
    paths = write(olds)
    for table, old in olds.items():
        path = paths[table]
        old.status = ExtractVersion.Status.SUPERSEDED
        old.save()
        ExtractVersion.objects.create(
            region=region, period=RECOMPUTE_MONTH, table=table, version=old.version + 1,
            path=str(path), checksum=_sha256(path), rows=_rows(path), uploaded_by=user,
        )  # fmt: skip
    return region, user, paths


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rows(path: Path) -> int:
    import duckdb

    return int(duckdb.connect().execute(f"SELECT count(*) FROM '{path}'").fetchone()[0])


def _recompute(region, before: dict) -> dict:
    """``services.compute(region, [month])``, timed alone; then what it did to the figures."""
    from styrkort.indicators import services

    _warm_up()
    cpu = time.process_time()
    started = time.perf_counter()
    run = services.compute(region, [RECOMPUTE_MONTH])
    seconds = time.perf_counter() - started
    # CPU time of every thread (DuckDB's too): steadier than the wall time on a shared host.
    cpu_seconds = time.process_time() - cpu
    after = _stored_figures(region)
    diff = compare_figures(after, before, sides=("after", "before"))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "results": run.results_written,
        "results_replaced": run.results_replaced,
        "results_unchanged": getattr(run, "results_unchanged", None),
        "periods": {code: len(p) for code, p in run.computed.items()},
        # Stored figures before against after: what the new month's files changed.
        "figures_changed": diff["differ"],
        "figures_added": diff["missing_stored"],
        "figures_removed": diff["missing_computed"],
        "figures_examples": diff["examples"],
    }


def step_recompute_same(data: Path, work: Path) -> dict:
    """Every file of the month replaced by a new version holding the same bytes, recompute."""
    target = work / "replaced" / RECOMPUTE_MONTH
    target.mkdir(parents=True, exist_ok=True)

    def write(olds: dict) -> dict[str, Path]:
        paths = {}
        for table, old in olds.items():
            paths[table] = target / f"{table}-v{old.version + 1}.parquet"
            shutil.copyfile(old.full_path, paths[table])
        return paths

    from styrkort.organisation.models import Region

    before = _stored_figures(Region.objects.get(lan_code="99"))
    region, _user, _paths = _replace_month(write)
    return _recompute(region, before)


def step_recompute(data: Path, work: Path) -> dict:
    """Every file of the month replaced by a corrected version (``correct_month``), checked
    by the extract validator, then recomputed."""
    from styrkort.extracts.validation import validate_extract
    from styrkort.organisation.models import CareUnit, Region

    target = work / "replaced" / RECOMPUTE_MONTH
    region = Region.objects.get(lan_code="99")
    units = set(CareUnit.objects.filter(region=region).values_list("hsa_id", flat=True))
    corrections: dict = {}
    validation: dict = {}

    def write(olds: dict) -> dict[str, Path]:
        version = max(old.version for old in olds.values()) + 1
        folder = target / f"corrected-v{version}"
        shutil.rmtree(folder, ignore_errors=True)
        sources = {table: old.full_path for table, old in olds.items()}
        corrections.update(correct_month(sources, RECOMPUTE_MONTH, folder))
        paths = {table: folder / f"{table}.parquet" for table in olds}
        # The corrected month must pass the rules an upload passes before it is registered.
        started = time.perf_counter()
        checked = target / "validated"
        shutil.rmtree(checked, ignore_errors=True)
        report = validate_extract(paths, RECOMPUTE_MONTH, units, checked)
        shutil.rmtree(checked, ignore_errors=True)
        if not report.ok:
            raise SystemExit(f"the corrected month is not a valid extract: {report.error_counts}")
        validation.update(ok=report.ok, seconds=time.perf_counter() - started)
        return paths

    before = _stored_figures(region)
    region, _user, _paths = _replace_month(write)
    return {**_recompute(region, before), "corrections": corrections, "validation": validation}


FIGURE_FIELDS = ("numerator", "denominator", "value", "lower", "upper", "comparison")


def _stored_figures(region) -> dict[tuple, tuple]:
    """(code, unit HSA-id or '', period, sex, age band) → FIGURE_FIELDS of the stored rows."""
    from styrkort.indicators.models import IndicatorResult

    rows = IndicatorResult.objects.filter(region=region).values_list(
        "definition__code", "unit__hsa_id", "period", "sex", "age_band", *FIGURE_FIELDS
    )
    return {(r[0], r[1] or "", *r[2:5]): tuple(r[5:]) for r in rows.iterator(chunk_size=20000)}


def _block_figures(blocks) -> dict[tuple, tuple]:
    out = {}
    for b in blocks:
        numbers = [
            [None if v != v else float(v) for v in a.tolist()]  # NaN != NaN
            for a in (b.numerator, b.denominator, b.value, b.lower, b.upper)
        ]
        keys = zip(b.unit.tolist(), b.period.tolist(), b.sex.tolist(), b.age_band.tolist(),
                   strict=True)  # fmt: skip
        for i, (unit, period, sex, band) in enumerate(keys):
            out[(b.code, unit or "", period, sex, band)] = (
                *(column[i] for column in numbers),
                b.comparison[i],
            )
    return out


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9)


def compare_figures(
    computed: dict[tuple, tuple], stored: dict[tuple, tuple], sides=("computed", "stored")
) -> dict:
    """Counts of figures (FIGURE_FIELDS by key) that differ in any field, relative tolerance
    1e-9, or are missing on either side (``missing_stored``: computed, not stored); a few
    examples, a missing one named by the side it is missing from (``sides``)."""
    differ, examples = 0, []
    for key, got in computed.items():
        want = stored.get(key)
        if want is not None and not all(map(_close, got, want)):
            differ += 1
            if len(examples) < 5:
                fields = {
                    name: [g, w]
                    for name, g, w in zip(FIGURE_FIELDS, got, want, strict=True)
                    if not _close(g, w)
                }
                examples.append({"key": list(key), "differs": fields})
    missing_stored = [k for k in computed if k not in stored]
    missing_computed = [k for k in stored if k not in computed]
    examples += [{"key": list(k), "missing": sides[1]} for k in missing_stored[:3]]
    examples += [{"key": list(k), "missing": sides[0]} for k in missing_computed[:3]]
    by_code: dict[str, int] = {}
    for key in computed:
        want = stored.get(key)
        if want is None or not all(map(_close, computed[key], want)):
            by_code[key[0]] = by_code.get(key[0], 0) + 1
    for key in missing_computed:
        by_code[key[0]] = by_code.get(key[0], 0) + 1
    return {
        "compared": len(computed.keys() & stored.keys()),
        "differ": differ,
        "missing_stored": len(missing_stored),
        "missing_computed": len(missing_computed),
        "by_indicator": by_code,
        "examples": examples,
    }


def step_verify(data: Path, work: Path) -> dict:
    """Every indicator computed in full from the files in force, not stored, compared with
    the stored results (left by the recomputes): the same inputs ``services.compute`` gives
    ``engine.compute_blocks``, with every definition planned for every period."""
    from styrkort.indicators import engine, services
    from styrkort.organisation.models import Region

    region = Region.objects.get(lan_code="99")
    catalogue = services.load_catalogue()
    files = services.active_files(region)
    staffing = services._staffing(region)
    plan, _replace = services.plan_compute(
        catalogue, files, staffing, changes=None, stored_versions={}, stored_periods={},
        full_versions={},
    )  # fmt: skip
    plan = {code: periods for code, periods in plan.items() if periods}
    months = sorted({str(m) for ps in plan.values() for p in ps for m in p.months()})
    started = time.perf_counter()
    # Engine options without the region: no per-period shares kept by earlier runs are read,
    # everything is computed from the extract files.
    blocks = engine.compute_blocks(
        catalogue, plan, units=services._units(region), files=files,
        listing=services._listing(region, months), staffing=staffing,
        engine_options=services._engine_options(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    result = compare_figures(_block_figures(blocks), _stored_figures(region))
    return {"seconds": seconds, **result}


def _engine_figures() -> dict[tuple, tuple]:
    from styrkort.indicators.models import IndicatorResult

    rows = IndicatorResult.objects.values_list(
        "definition__code", "period", "unit__hsa_id", "sex", "age_band", "numerator",
        "denominator", "value",
    )  # fmt: skip
    return {(c, p, u or "", s, b): (n, d, v) for c, p, u, s, b, n, d, v in rows.iterator()}


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def _registry_listings(path: Path) -> Path:
    """The registry's listings (the engine's denominators) as Parquet, in the columns of the
    extract's listings table, for the baseline."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from styrkort.organisation.models import Listing

    rows = list(
        Listing.objects.order_by("unit__hsa_id", "month", "sex", "age_band").values_list(
            "unit__hsa_id", "month", "sex", "age_band", "listed"
        )
    )
    names = ["unit_hsa_id", "month", "sex", "age_band", "listed"]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    pq.write_table(pa.table(dict(zip(names, columns, strict=True))), path)
    return path


def step_baseline(data: Path, work: Path) -> dict:
    import duckdb

    listings = _registry_listings(work / "registry_listings.parquet")
    sql = (
        (ROOT / "bench" / "baseline.sql")
        .read_text()
        .replace("{data}", str(data))
        .replace("{listings}", str(listings))
    )
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(sql)
    rows = con.execute("SELECT * FROM baseline").fetchall()
    seconds = time.perf_counter() - started
    engine = _engine_figures()
    mismatches = []
    for code, period, unit, sex, band, num, den, med in rows:
        got = engine.get((code, period, unit, sex, band))
        if got is None:
            mismatches.append((code, period, unit, sex, band, "missing in engine"))
            continue
        want_num = med if code == "PO08A" else num
        have_num = got[2] if code == "PO08A" else got[0]
        if not (_same(have_num, want_num) and _same(got[1], den)):
            mismatches.append((code, period, unit, sex, band, (num, den, med), got))
    by_code: dict[str, int] = {}
    for m in mismatches:
        by_code[m[0]] = by_code.get(m[0], 0) + 1
    return {
        "seconds": seconds,
        "rows": len(rows),
        "mismatches": len(mismatches),
        "mismatches_by_indicator": by_code,
        "examples": [list(map(str, m)) for m in mismatches[:5]],
    }


def step_pandas(data: Path, work: Path) -> dict:
    """PO01, PO09 (row counts) and PO04 (episodes) in pandas, all breakdowns and periods."""
    import pandas as pd

    started = time.perf_counter()
    read = lambda t, cols: pd.concat(  # noqa: E731
        pd.read_parquet(p, columns=cols) for p in sorted(data.glob(f"*/{t}.parquet"))
    )
    c = read("contacts", None)
    dx = read("diagnoses", ["contact_id", "icd10_code"])
    pr = read("procedures", ["contact_id", "kva_code"])
    code = dx["icd10_code"]
    flags = (
        pd.DataFrame(
            {
                "contact_id": dx["contact_id"],
                "mh": code.str.startswith("F") | (code == "Z73.0"),
                "dep": code.str.startswith(("F32", "F33")),
                "mild": code.isin(["F32.0", "F32.1", "F33.0", "F33.1"]),
            }
        )
        .groupby("contact_id")
        .any()
    )
    c = c.merge(flags, left_on="contact_id", right_index=True, how="left")
    c[["mh", "dep", "mild"]] = c[["mh", "dep", "mild"]].fillna(False).astype(bool)
    treated_ids = set(pr.loc[pr["kva_code"].isin(["DU008", "DU011", "DU022"]), "contact_id"])
    c["treated"] = c["contact_id"].isin(treated_ids)
    c["d"] = pd.to_datetime(c["contact_date"])
    bins = [-1, 17, 24, 44, 64, 79, 200]
    labels = ["0-17", "18-24", "25-44", "45-64", "65-79", "80+"]

    def periods(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.assign(band=pd.cut(frame["d"].dt.year - frame["birth_year"], bins,
                                          labels=labels).astype(str))  # fmt: skip
        m = frame.assign(period=frame["d"].dt.strftime("%Y-%m"))
        q = frame.assign(period=frame["d"].dt.year.astype(str) + "Q"
                         + frame["d"].dt.quarter.astype(str))  # fmt: skip
        y = frame.assign(period=frame["d"].dt.year.astype(str))
        return pd.concat([m, q, y])

    def cube(frame: pd.DataFrame) -> pd.DataFrame:
        out = []
        for unit in (True, False):
            for sex in (True, False):
                for band in (True, False):
                    keys = ["period"] + (["unit"] if unit else []) + (["sex"] if sex else [])
                    keys += ["band"] if band else []
                    g = frame.groupby(keys).agg(n=("num", "size"), x=("num", "sum")).reset_index()
                    g["unit"] = g["unit"] if unit else ""
                    g["sex"] = g["sex"] if sex else "T"
                    g["band"] = g["band"] if band else "alla"
                    out.append(g)
        return pd.concat(out)

    c = c.rename(columns={"unit_hsa_id": "unit"})
    results = {}
    new = c[c["is_new_visit"]]
    results["PO01"] = cube(periods(new.assign(num=new["mh"])))
    mh = c[c["mh"]]
    results["PO09"] = cube(periods(mh.assign(
        num=mh["profession"].isin(["psykolog", "kurator", "psykoterapeut"]))))  # fmt: skip
    dep = c[c["dep"]].sort_values(["patient_key", "d", "contact_id"])
    days = dep.groupby(["patient_key", "d"], as_index=False).agg(
        unit=("unit", "first"), sex=("sex", "first"), birth_year=("birth_year", "first"),
        mild=("mild", "any"),
    )  # fmt: skip
    days["prev"] = days.groupby("patient_key")["d"].shift()
    new_dep = days[days["prev"].isna() | ((days["d"] - days["prev"]).dt.days > 365)]
    new_dep = new_dep[new_dep["mild"] & (new_dep["d"].dt.year - new_dep["birth_year"] >= 18)]
    tdays = c.loc[c["treated"], ["patient_key", "d"]].drop_duplicates()
    pairs = new_dep[["patient_key", "d"]].merge(tdays, on="patient_key", suffixes=("", "_t"))
    gap = (pairs["d_t"] - pairs["d"]).dt.days
    hit = pairs[(gap >= 0) & (gap <= 90)][["patient_key", "d"]].drop_duplicates()
    hit["num"] = True
    po04 = new_dep.merge(hit, on=["patient_key", "d"], how="left")
    po04["num"] = po04["num"].fillna(False).astype(bool)
    results["PO04"] = cube(periods(po04))
    seconds = time.perf_counter() - started
    engine = _engine_figures()
    mismatches = 0
    rows = 0
    for code, frame in results.items():
        for r in frame.itertuples(index=False):
            rows += 1
            got = engine.get((code, r.period, r.unit, r.sex, r.band))
            if got is None or not (_same(got[0], r.x) and _same(got[1], r.n)):
                mismatches += 1
    return {"seconds": seconds, "rows": rows, "mismatches": mismatches}


# In the order they run (each reads the database the previous ones left).
STEPS = {
    "setup": step_setup,
    "full": step_full,
    "baseline": step_baseline,
    "pandas": step_pandas,
    "recompute_same": step_recompute_same,
    "recompute": step_recompute,
    "verify": step_verify,
}
# Keys of a step's JSON too long for its one-line summary.
DETAIL_KEYS = ("periods", "examples", "figures_examples", "corrections", "by_indicator")


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _run_step(
    name: str, data: Path, work: Path, script: str | Path = __file__, database: str | None = None
) -> dict:
    """Run ``script --step name`` in a child process; its JSON result plus its peak RSS.
    ``database``: a database URL for the child (default: a SQLite file under ``work``, also
    when the caller's environment names another database)."""
    out = work / f"{name}.json"
    cmd = [sys.executable, str(script), "--step", name, "--data", str(data), "--work", str(work)]
    env = {k: v for k, v in os.environ.items() if k != "STYRKORT_DATABASE_URL"}
    if database:
        env["STYRKORT_DATABASE_URL"] = database
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"step {name} failed")
    result = json.loads(out.read_text())
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def machine() -> dict:
    import duckdb

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except OSError:
        memory = 0
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "system": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=6.6)
    parser.add_argument("--data", type=Path, help="existing synth output (default: generate)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work: Path = args.work.resolve()
    if args.step:
        _django(work / "data")
        result = STEPS[args.step](args.data, work)
        (work / f"{args.step}.json").write_text(json.dumps(result))
        return
    if work.exists():
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    data = args.data.resolve() if args.data else work / "synth"
    if not args.data:
        _django(work / "data")
        from styrkort.extracts.synth import generate

        started = time.perf_counter()
        result = generate(data, scale=args.scale)
        print(f"synth: {result.summary()} ({time.perf_counter() - started:.1f} s)")
    figures = {"machine": machine(), "scale": args.scale}
    for name in STEPS:
        figures[name] = _run_step(name, data, work)
        shown = {k: v for k, v in figures[name].items() if k not in DETAIL_KEYS}
        print(f"{name:14s} {json.dumps(shown)}")
    full, base = figures["full"]["seconds"], figures["baseline"]["seconds"]
    print()
    print(f"{'step':32s} {'seconds':>9s} {'peak MB':>9s}  target")
    print(f"{'full run (engine, stored)':32s} {full:9.1f} {figures['full']['peak_mb']:9.0f}"
          f"  <= 2 x baseline ({full / base:.2f} x)")  # fmt: skip
    print(f"{'hand-written DuckDB baseline':32s} {base:9.1f} "
          f"{figures['baseline']['peak_mb']:9.0f}")  # fmt: skip
    print(f"{'pandas, 3 indicators':32s} {figures['pandas']['seconds']:9.1f} "
          f"{figures['pandas']['peak_mb']:9.0f}")  # fmt: skip
    print(f"{'recompute, corrected month':32s} {figures['recompute']['seconds']:9.1f} "
          f"{figures['recompute']['peak_mb']:9.0f}  < 2 s")  # fmt: skip
    print(f"{'recompute, identical re-upload':32s} {figures['recompute_same']['seconds']:9.1f} "
          f"{figures['recompute_same']['peak_mb']:9.0f}")  # fmt: skip
    print(
        f"baseline mismatches: {figures['baseline']['mismatches']}, "
        f"pandas mismatches: {figures['pandas']['mismatches']}, "
        f"verify: {figures['verify']['compared']} figures compared, "
        f"{figures['verify']['differ']} differ, "
        f"{figures['verify']['missing_stored'] + figures['verify']['missing_computed']} missing"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
