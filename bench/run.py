"""The benchmark of issue 3 §9 (``make bench``): synthetic extracts of about ten million
contacts, every step in its own child process, a table of seconds, ratios, targets and peak
memory, written with the machine's details to ``docs/performance.md``.

    .venv/bin/python bench/run.py [--scale 6.6] [--quick] [--work DIR] [--output FILE]
                                  [--postgres URL]

Steps (the engine steps are those of ``bench/engine_bench.py``, run through its functions):

* ``full``: every indicator, unit, period and breakdown, stored (``services.compute``), against
  ``baseline``, the hand-written DuckDB SQL of ``bench/baseline.sql`` (target: at most 2×);
* ``pandas``: three of the indicators in pandas (no target, a reference point);
* ``ingest``: styrkort's validation and storage of the CSV extracts, month by month, through
  ``styrkort.extracts.services.ingest`` (what an upload and ``styrkort ingest`` run), against
  ``copy``, DuckDB's bare ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)`` of the
  same files (target: at most 3×);
* ``recompute_same``: one month's files replaced by new versions holding the same bytes, then
  ``services.compute(region, [month])``, which computes nothing again (shown, no target);
* ``recompute``: the same month's files then replaced by corrected versions (about 1 % of the
  rows of each table dropped or changed, ``engine_bench.correct_month``), then
  ``services.compute(region, [month])`` (target: under 2 s), three times from the same saved
  state (``RECOMPUTE_RUNS``), the median run reported with every run's wall and CPU time;
* ``verify``: every indicator computed in full from the files in force, not stored, each
  figure compared with the stored results the recomputes left;
* every step: peak resident memory of its process (target: under 3 GB);
* with ``--postgres URL``: ``setup``, ``full``, ``recompute_same`` and ``recompute`` once more
  with the results stored in PostgreSQL (the production database; the database of ``URL`` is
  dropped and created anew, and dropped at the end). ``make bench`` passes it when a server
  answers at 127.0.0.1:5432. The targets are judged on the SQLite steps, the embedded default.

The extracts are generated once into ``WORK/extracts/{parquet,csv}`` and reused while the
manifest says the same seed, scale and months. ``--quick`` runs a few months at a tiny scale
(a smoke run for the test suite) and writes no report unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import engine_bench  # noqa: E402  (a script beside this one, not a package)

QUICK_SCALE = 0.05
# Enough months around the recomputed one for every window kind, few enough to be quick.
QUICK_MONTHS = ("2025-04", "2025-05", "2025-06", "2025-07")


# ------------------------------------------------------------------------------------------
# Child steps of this script: ingest and the bare copy (the engine steps are engine_bench's)
# ------------------------------------------------------------------------------------------


def _month_files(data: Path) -> dict[str, dict[str, Path]]:
    from styrkort.extracts.schema import TABLE_NAMES
    from styrkort.extracts.synth import month_files

    return {
        month: {t: p for t, p in files.items() if t in TABLE_NAMES}
        for month, files in month_files(data).items()
    }


def step_ingest(data: Path, work: Path) -> dict:
    """Every month's CSV files validated and stored as new versions by the service function
    uploads and the command line use; no recomputation queued."""
    from styrkort.accounts.models import Membership, Role
    from styrkort.extracts import services

    region, user = engine_bench.build_region()
    Membership.objects.create(user=user, region=region, role=Role.ANALYST)
    months = _month_files(data)
    refused = []
    rows = 0
    started = time.perf_counter()
    for month, files in months.items():
        result = services.ingest(user, region, month, files, recompute=False)
        if not result.ok:
            refused.append(f"{month}: {result.summary()}")
        rows += sum(v.rows for v in result.versions or ())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "months": len(months), "rows": rows, "refused": refused}


def step_copy(data: Path, work: Path) -> dict:
    """DuckDB's bare CSV → Parquet copy of the same files (type sniffing, nothing checked)."""
    import duckdb

    target = work / "copy"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    for month, files in _month_files(data).items():
        for table, path in files.items():
            out = target / f"{month}-{table}.parquet"
            con.execute(f"COPY (SELECT * FROM read_csv('{path}')) TO '{out}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds}


STEPS = {"ingest": step_ingest, "copy": step_copy}
#: The corrected month's recompute runs this many times, each from the same saved state, and
#: its figure is the median run: single runs on a shared two-core host differ by up to half.
RECOMPUTE_RUNS = 3


def repeated_step(name: str, data: Path, work: Path, runs: int) -> dict:
    """``engine_bench._run_step(name, ...)`` ``runs`` times, ``work`` restored to what it
    held before the first before each later run (the SQLite database and the derived files
    live there); the median run's result with every run's seconds and CPU seconds. The last
    run's state is left in ``work``."""
    saved = work.with_name(f"{work.name}-saved")
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(work, saved, symlinks=True)
    results = []
    try:
        for i in range(runs):
            if i:
                shutil.rmtree(work)
                shutil.copytree(saved, work, symlinks=True)
            results.append(engine_bench._run_step(name, data, work))
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    median = sorted(results, key=lambda r: r["seconds"])[len(results) // 2]
    return {
        **median,
        "runs": [r["seconds"] for r in results],
        "cpu_runs": [r.get("cpu_seconds") for r in results],
        "peak_mb": max(r["peak_mb"] for r in results),
    }


#: The engine steps run again on PostgreSQL with ``--postgres``.
POSTGRES_STEPS = ("setup", "full", "recompute_same", "recompute")


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """The database of ``url`` dropped and created anew for the benchmark, dropped again at
    the end; ``url``'s other databases are not touched."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = conninfo_to_dict(url).get("dbname")
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"--postgres needs a database of the benchmark's own, not {name!r}")
    admin = make_conninfo(url, dbname="postgres")

    def run(statement: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(name)))

    run("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    run("CREATE DATABASE {}")
    try:
        yield url
    finally:
        run("DROP DATABASE IF EXISTS {} WITH (FORCE)")


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def ensure_extracts(out: Path, fmt: str, scale: float, seed: int, months: list[str]) -> dict:
    """Generate the synthetic extracts into ``out`` unless its manifest already says the same
    seed, scale, format and months; returns the manifest."""
    from styrkort.extracts.synth import GENERATOR_VERSION, generate, read_manifest

    manifest = read_manifest(out)
    wanted = {"seed": seed, "scale": scale, "format": fmt, "months": months}
    if (
        manifest
        and all(manifest.get(k) == v for k, v in wanted.items())
        and manifest.get("generator_version", GENERATOR_VERSION) == GENERATOR_VERSION
        and all((out / rel).is_file() for rel in manifest.get("files", {}))
    ):
        print(f"extracts: reusing {out}")
        return manifest
    shutil.rmtree(out, ignore_errors=True)
    result = generate(out, seed=seed, scale=scale, months=months, fmt=fmt)
    print(f"extracts: {result.summary()}")
    return read_manifest(out) or {}


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def machine() -> dict:
    info = engine_bench.machine()
    info["load"] = info["start_load"] = os.getloadavg()
    info["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return info


def table_rows(f: dict) -> list[dict]:
    """One dict per step: step, seconds, reference, ratio, target, met, peak MB."""
    limit_mb = 3 * 1024  # 3 GB

    def row(name, step, ref=None, target="", met=None, ours=True):
        s = f[step]
        ratio = s["seconds"] / f[ref]["seconds"] if ref else None
        # The memory target is styrkort's; the references' figures are shown, not judged.
        mem_ok = s["peak_mb"] < limit_mb if ours else None
        return {
            "step": name,
            "seconds": s["seconds"],
            "reference": ref or "",
            "ratio": ratio,
            "target": target,
            "met": (met(s, ratio) if met else None),
            "peak_mb": s["peak_mb"],
            "memory_met": mem_ok,
        }

    return [
        row("full indicator run", "full", "baseline", "≤ 2× baseline", lambda s, r: r <= 2),
        row("hand-written DuckDB SQL (baseline)", "baseline", ours=False),
        row("pandas, 3 indicators", "pandas", "baseline", ours=False),
        row("extract validation + ingest", "ingest", "copy", "≤ 3× copy", lambda s, r: r <= 3),
        row("DuckDB bare CSV → Parquet copy", "copy", ours=False),
        row("recompute after one corrected month", "recompute", None, "< 2 s",
            lambda s, r: s["seconds"] < 2),
        row("recompute after an identical re-upload", "recompute_same"),
    ]  # fmt: skip


def _yes(v) -> str:
    return "" if v is None else ("yes" if v else "**no**")


def format_table(rows: list[dict], markdown: bool) -> str:
    head = ["step", "seconds", "ratio", "target", "met?", "peak memory (MB)", "< 3 GB?"]
    body = []
    for r in rows:
        ratio = f"{r['ratio']:.2f}× {r['reference']}" if r["ratio"] is not None else ""
        body.append(
            [r["step"], f"{r['seconds']:.1f}", ratio, r["target"], _yes(r["met"]),
             f"{r['peak_mb']:.0f}", _yes(r["memory_met"])]
        )  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def _thousands(n) -> str:
    return f"{n:,}".replace(",", " ")


def verify_summary(v: dict) -> str:
    missing = v["missing_stored"] + v["missing_computed"]
    text = f"{_thousands(v['compared'])} figures compared, {_thousands(v['differ'])} differ"
    if missing:
        text += (
            f", {_thousands(v['missing_stored'])} computed but not stored and "
            f"{_thousands(v['missing_computed'])} stored but not computed"
        )
    return text


def recompute_notes(f: dict) -> str:
    """What the two one-month recomputes did, as measured by this run."""
    possible = f["full"]["periods"]
    head = [
        "recompute", "seconds", "share of the full run", "indicator periods recomputed",
        "results written", "results replaced", "results unchanged", "stored figures changed",
        "added", "removed",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    steps = (("corrected month", "recompute"), ("identical re-upload", "recompute_same"))
    for label, step in steps:
        s = f[step]
        unchanged = s.get("results_unchanged")
        cells = [
            label,
            f"{s['seconds']:.1f}",
            f"{s['seconds'] / f['full']['seconds']:.0%}",
            f"{sum(s['periods'].values())} of {sum(possible.values())}",
            _thousands(s["results"]),
            _thousands(s["results_replaced"]),
            "not recorded" if unchanged is None else _thousands(unchanged),
            _thousands(s["figures_changed"]),
            _thousands(s["figures_added"]),
            _thousands(s["figures_removed"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    periods = f["recompute"]["periods"]
    whole = sorted(c for c, n in periods.items() if n >= possible.get(c, n + 1))
    table = "\n".join(lines)
    runs = f["recompute"].get("runs", [f["recompute"]["seconds"]])
    cpu = [c for c in f["recompute"].get("cpu_runs", ()) if c is not None]
    repeated = (
        f"The corrected month's recompute ran {len(runs)} times, each from the same saved "
        f"state: {', '.join(f'{r:.2f}' for r in runs)} s (the median is shown)"
        + (f", using {', '.join(f'{c:.2f}' for c in cpu)} s of CPU time." if cpu else ".")
    )
    return f"""### The one-month recomputes

{table}

{repeated}

Both run `services.compute(region, ["{f["recompute_month"]}"])`. "Results written",
"replaced" and "unchanged" are the run's own counts (`ComputationRun`); the last three columns
compare every stored figure (numerator, denominator, value, interval limits and comparison
with the region) before and after the step. Indicators recomputed for every period the full
run computed: {", ".join(whole) or "none"}. After both recomputes, a computation of every
indicator from scratch (the **verify** step) against the stored results:
{verify_summary(f["verify"])}."""


def corrections_text(c: dict) -> str:
    """The corrected month's changes, with the row counts of the recompute step."""
    t = _thousands
    con, dx, pr = c["contacts"], c["diagnoses"], c["procedures"]
    ms, sl = c["measurements"], c["sick_leave"]
    return (
        f"{t(con['dropped'])} of {t(con['rows'])} contacts dropped, with their "
        f"{t(dx['dropped_with_contacts'])} diagnoses and {t(pr['dropped_with_contacts'])} "
        f"procedures; the profession of {t(con['profession_changed'])} contacts changed "
        "(psykolog, kurator or psykoterapeut to lakare, any other to psykolog); "
        f"{t(dx['changed'])} of {t(dx['rows'])} diagnosis codes changed "
        f"({t(dx['mental_to_mental'])} between mental-health codes, depression F32/F33 to "
        f"F41.1 and other F codes or Z73.0 to F32.1; {t(dx['mental_to_other'])} from a "
        f"mental-health code to Z76.0; {t(dx['other_to_mental'])} from another code to F41.1 "
        f"or F32.0); {t(pr['treatment_dropped'])} psychological-treatment procedures (DU008, "
        f"DU011, DU022) of {t(pr['rows'])} procedures dropped; {t(ms['score_changed'])} of "
        f"{t(ms['rows'])} rating scores moved by 3 points (EQ-5D by 0.1) within the "
        f"instrument's range; the end date of {t(sl['end_date_moved'])} of {t(sl['rows'])} "
        "sick-leave cases that end in the month moved 30 days later"
    )


def postgres_section(f: dict) -> str:
    """The steps run again with the results in PostgreSQL (``--postgres``), or nothing."""
    pg = f.get("postgres")
    if not pg:
        return ""
    labels = {
        "full": "full indicator run",
        "recompute_same": "recompute after an identical re-upload",
        "recompute": "recompute after one corrected month",
    }
    lines = ["| step | seconds | SQLite (s) | results written | peak memory (MB) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for step, label in labels.items():
        lines.append(
            f"| {label} | {pg[step]['seconds']:.1f} | {f[step]['seconds']:.1f} | "
            f"{_thousands(pg[step]['results'])} | {pg[step]['peak_mb']:.0f} |"
        )
    return f"""
## On PostgreSQL

The same engine steps with the results stored in PostgreSQL (the production database: a
database of the benchmark's own, created for the run and dropped after it), on the same
extracts, after the SQLite steps; the targets above are judged on SQLite, the embedded default.

{chr(10).join(lines)}
"""


def report(f: dict) -> str:
    m = f["machine"]
    rows = f["manifest_rows"]
    load = ", ".join(f"{x:.1f}" for x in m["load"])
    start_load = ", ".join(f"{x:.1f}" for x in m["start_load"])
    shared = ""
    if max(m["start_load"][0], m["load"][0]) > 0.5 * (m["cores"] or 1):
        shared = (
            f"**Load**: the load average was {start_load} at the start and {load} at the end "
            f"(on {m['cores']} cores; the first counts what ran before the benchmark, the second "
            "its own steps). The seconds vary from run to run on such a machine; the ratios "
            "compare steps run under similar load, and the corrected month's recompute is the "
            "median of several runs."
        )
    t = _thousands
    checks = (
        f"baseline: {t(f['baseline']['rows'])} figures compared, "
        f"{t(f['baseline']['mismatches'])} differ; pandas: {t(f['pandas']['rows'])} figures "
        f"compared, {t(f['pandas']['mismatches'])} differ; verify (after the recomputes): "
        f"{verify_summary(f['verify'])}"
    )
    per_run = ", ".join(f"{c} {n}" for c, n in sorted(f["recompute"].get("periods", {}).items()))
    per_same = ", ".join(
        f"{c} {n}" for c, n in sorted(f["recompute_same"].get("periods", {}).items())
    )
    month = f["recompute_month"]
    return (
        f"""# Performance

Benchmark of issue 3 §9, produced by `make bench` (`bench/run.py`); do not edit by hand.

## Machine

| | |
|---|---|
| Date | {m["date"]} |
| CPU | {m["cpu"]} |
| Cores | {m["cores"]} |
| Memory | {m["memory_mb"] / 1024:.1f} GB |
| System | {m["system"]} |
| Python | {m["python"]} |
| DuckDB | {m["duckdb"]} |
| Load average at the start and end (1, 5, 15 min) | {start_load}; {load} |

{shared}

{f.get("note") or ""}

## Data

Synthetic extracts from `styrkort.extracts.synth` (seed {f["seed"]}, scale {f["scale"]:g},
{len(f["months"])} months {f["months"][0]} to {f["months"][-1]}), generated once as Parquet
(read by the engine, the baseline and pandas) and as CSV (read by ingest and the copy).

| table | rows |
|---|---:|
"""
        + "\n".join(f"| {t} | {n:,} |".replace(",", " ") for t, n in rows.items())
        + f"""

## Results

{format_table(table_rows(f), markdown=True)}

Seconds are wall-clock seconds of the step alone (database setup and data generation
excluded); peak memory is the maximum resident set size of the step's own process (Python,
DuckDB and SQLite together). The 3 GB target is styrkort's (its DuckDB connections are
limited to `STYRKORT_DUCKDB_MEMORY_LIMIT`, 2 GB by default); the reference steps run with
DuckDB's and pandas' defaults and their memory is shown for comparison only. Figures checked:
{checks}. The full run stored {t(f["full"]["results"])} results; the recompute of the
corrected month wrote {t(f["recompute"]["results"])}, that of the identical re-upload
{t(f["recompute_same"]["results"])}.

{recompute_notes(f)}
{postgres_section(f)}
## What each step measures

* **full indicator run**: `services.compute(region)`, every indicator of the catalogue for
  every unit and the region, every month, quarter and year, sex K/M/T and age band with
  "alla", with confidence intervals, funnel classes, primary and secondary suppression and
  storage in the Django database (SQLite here).
* **baseline**: `bench/baseline.sql`, the same figures written by hand as one DuckDB script
  over the same Parquet files: numerators and denominators only (no intervals, funnel
  classes, suppression or storage).
* **pandas**: PO01, PO04 and PO09 in pandas over the same files, for comparison.
* **extract validation + ingest**: `styrkort.extracts.services.ingest`, the function behind
  uploads and `styrkort ingest`, for each month's CSV files in turn: every schema, code,
  reference and consistency check, then the typed Parquet versions stored and registered.
* **bare copy**: DuckDB's `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)` of the
  same CSV files, nothing checked.
* **recompute after an identical re-upload** (run first): every file of {month} replaced by
  a new version holding the same bytes, then `services.compute(region, ["{month}"])`, which
  finds per indicator the periods whose data window reaches into that month (the
  dependency rule in `styrkort/indicators/engine.py`) and leaves out those whose stored
  figures were computed from inputs of the same content (files by checksum, units, listed
  population, threshold): their rows only take the new inputs. No figure can change. Periods
  computed per indicator: {per_same}.
* **recompute after one corrected month** (run next, on the state the first left): every
  file of {month} replaced by a new version written with DuckDB from the version in force,
  as a region re-sending the month with corrections would. Each correction touches about 1 %
  of the rows, chosen by a hash of the row's key (`md5(key) % 100 = 0`, deterministic):
  {corrections_text(f["recompute"]["corrections"])}. The corrected files keep the
  schema and pass the extract validator (`validate_extract`, outside the timing). Then
  `services.compute(region, ["{month}"])`, timed alone. Periods recomputed per indicator:
  {per_run}.
* **verify**: after both recomputes, `engine.compute_blocks` with the inputs
  `services.compute` gives it (the files in force, the registry's units, listings and
  staffing), every indicator planned for every period, nothing stored; each figure
  (numerator, denominator, value, interval limits, comparison with the region) compared
  with the stored result of the same indicator, unit, period, sex and age band (relative
  tolerance 1e-9, a missing value equal only to a missing one).

## Reproducing

    make bench                             # or: .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --quick --output /tmp/perf.md   # a smoke run, about a minute

The extracts (about 2 GB at scale 6.6) go to `var/bench/extracts` and are reused while the
seed and scale are the same; `--scale` changes the volume, `--json FILE` keeps the raw figures.
"""
    )


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _child(step: str, data: Path, work: Path) -> None:
    engine_bench._django(work / "data")
    result = STEPS[step](data, work)
    (work / f"{step}.json").write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, help="synthetic volume (default 6.6)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--output", type=Path, help="write the report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--note", default="", help="a sentence for the report's machine section")
    parser.add_argument(
        "--postgres", metavar="URL", help="also store results in this PostgreSQL database"
    )
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work: Path = args.work.resolve()
    if args.step:
        _child(args.step, args.data, work)
        return {}
    output = args.output
    if output is None and not args.quick:
        output = ROOT / "docs" / "performance.md"
    scale = args.scale if args.scale is not None else (QUICK_SCALE if args.quick else 6.6)

    # The parent needs Django only for the generator's registry; its own database is apart.
    engine_bench._django(work / "parent")
    from styrkort.extracts.synth import DEFAULT_SEED, MONTHS

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    months = list(QUICK_MONTHS if args.quick else MONTHS)
    # Apart from the full-scale extracts, so that a smoke run does not cost a regeneration.
    extracts = work / ("extracts-quick" if args.quick else "extracts")
    parquet, csv = extracts / "parquet", extracts / "csv"
    manifest = ensure_extracts(parquet, "parquet", scale, seed, months)
    ensure_extracts(csv, "csv", scale, seed, months)

    figures: dict = {
        "machine": machine(),
        "scale": scale,
        "seed": seed,
        "months": months,
        "manifest_rows": manifest.get("rows", {}),
        "recompute_month": engine_bench.RECOMPUTE_MONTH,
        "note": args.note,
    }
    engine_work = work / "engine"
    ingest_work = work / "ingest"
    for folder in (engine_work, ingest_work):
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "data").mkdir(parents=True)
    # The engine steps in engine_bench's order: baseline and pandas compare their figures with
    # the stored ones of the full run, so they come before a recompute replaces anything; the
    # identical re-upload changes no figure, so the corrected month's recompute that follows
    # starts from the full run's figures; verify checks what both left.
    plan = [(name, engine_bench.__file__, parquet, engine_work) for name in engine_bench.STEPS]
    plan += [("ingest", __file__, csv, ingest_work), ("copy", __file__, csv, ingest_work)]
    for name, script, data, step_work in plan:
        started = time.perf_counter()
        if name == "recompute":
            figures[name] = repeated_step(
                name, data, step_work, 2 if args.quick else RECOMPUTE_RUNS
            )
        else:
            figures[name] = engine_bench._run_step(name, data, step_work, script=script)
        hidden = (*engine_bench.DETAIL_KEYS, "refused")
        shown = {k: v for k, v in figures[name].items() if k not in hidden}
        print(f"{name:14s} {time.perf_counter() - started:7.1f} s  {json.dumps(shown)}", flush=True)
    if figures["ingest"]["refused"]:
        raise SystemExit(f"ingest refused: {figures['ingest']['refused']}")
    if args.postgres:
        pg_work = work / "engine-postgres"
        shutil.rmtree(pg_work, ignore_errors=True)
        (pg_work / "data").mkdir(parents=True)
        figures["postgres"] = {}
        with fresh_database(args.postgres) as url:
            for name in POSTGRES_STEPS:
                started = time.perf_counter()
                result = engine_bench._run_step(name, parquet, pg_work, database=url)
                figures["postgres"][name] = result
                shown = {k: v for k, v in result.items() if k not in engine_bench.DETAIL_KEYS}
                print(f"{'pg ' + name:14s} {time.perf_counter() - started:7.1f} s  "
                      f"{json.dumps(shown)}", flush=True)  # fmt: skip
    figures["machine"]["load"] = os.getloadavg()
    print()
    print(format_table(table_rows(figures), markdown=False))
    if "postgres" in figures:
        pg = figures["postgres"]
        steps = ("full", "recompute_same", "recompute")
        print("on PostgreSQL: " + ", ".join(f"{s} {pg[s]['seconds']:.1f} s" for s in steps))
    print(
        f"\nbaseline mismatches: {figures['baseline']['mismatches']}, "
        f"pandas mismatches: {figures['pandas']['mismatches']}, "
        f"verify: {verify_summary(figures['verify'])}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report(figures))
        print(f"report: {output}")
    return figures


if __name__ == "__main__":
    main()
