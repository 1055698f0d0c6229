"""Engine benchmark (issue 3 §9, the indicator side): full run, one-month recompute, the
hand-written DuckDB baseline and a pandas implementation of three indicators, each in its own
process so that its peak memory is its own.

    .venv/bin/python bench/engine_bench.py [--scale 6.6] [--data DIR] [--json OUT]

Synthetic extracts come from ``styrkort.extracts.synth.generate`` (scale 6.6 is about 10
million contacts over two years). The Django database is a fresh SQLite file under
``var/bench/`` (``STYRKORT_DATA_DIR``) holding the demo registry; the extract files are
registered in place as ExtractVersion rows. Steps:

* ``full``: ``services.compute(region)``: every indicator, unit, period, sex and age band,
  with intervals, funnel classes, suppression and storage;
* ``recompute``: month 2025-06 replaced by a new version of each of its files, then
  ``services.compute(region, ["2025-06"])``;
* ``baseline``: ``bench/baseline.sql`` on DuckDB (numerators and denominators only), with a
  check that every figure equals the engine's;
* ``pandas``: PO01, PO04 and PO09 in pandas, checked against the engine too.

Prints a table and, with ``--json``, writes the figures for bench/run.py / docs/performance.md.
Timings are wall-clock seconds of the step alone (setup excluded); memory is the step
process's peak resident set size.
"""

from __future__ import annotations

import argparse
import json
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


def step_full(data: Path, work: Path) -> dict:
    from styrkort.indicators import services
    from styrkort.organisation.models import Region

    region = Region.objects.get(lan_code="99")
    services.load_catalogue()
    started = time.perf_counter()
    run = services.compute(region)
    return {"seconds": time.perf_counter() - started, "results": run.results_written}


def step_recompute(data: Path, work: Path) -> dict:
    """Replace every file of one month by a new version (same content, new file), recompute."""
    from django.contrib.auth import get_user_model

    from styrkort.extracts.models import ExtractVersion
    from styrkort.indicators import services
    from styrkort.organisation.models import Region

    region = Region.objects.get(lan_code="99")
    user = get_user_model().objects.get(username="bench")
    target = work / "replaced" / RECOMPUTE_MONTH
    target.mkdir(parents=True, exist_ok=True)
    for table in EXTRACT_TABLES:
        old = ExtractVersion.objects.get(
            region=region, period=RECOMPUTE_MONTH, table=table, status="active"
        )
        path = target / f"{table}-v{old.version + 1}.parquet"
        shutil.copyfile(old.full_path, path)
        old.status = ExtractVersion.Status.SUPERSEDED
        old.save()
        ExtractVersion.objects.create(
            region=region, period=RECOMPUTE_MONTH, table=table, version=old.version + 1,
            path=str(path), checksum=old.checksum, rows=old.rows, uploaded_by=user,
        )  # fmt: skip
    services.load_catalogue()
    started = time.perf_counter()
    run = services.compute(region, [RECOMPUTE_MONTH])
    return {
        "seconds": time.perf_counter() - started,
        "results": run.results_written,
        "periods": {code: len(p) for code, p in run.computed.items()},
    }


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


def step_baseline(data: Path, work: Path) -> dict:
    import duckdb

    sql = (ROOT / "bench" / "baseline.sql").read_text().replace("{data}", str(data))
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


STEPS = {
    "setup": step_setup,
    "full": step_full,
    "recompute": step_recompute,
    "baseline": step_baseline,
    "pandas": step_pandas,
}


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _run_step(name: str, data: Path, work: Path, script: str | Path = __file__) -> dict:
    """Run ``script --step name`` in a child process; its JSON result plus its peak RSS."""
    out = work / f"{name}.json"
    cmd = [sys.executable, str(script), "--step", name, "--data", str(data), "--work", str(work)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
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
    for name in ("setup", "full", "recompute", "baseline", "pandas"):
        figures[name] = _run_step(name, data, work)
        shown = {k: v for k, v in figures[name].items() if k not in ("periods", "examples")}
        print(f"{name:10s} {json.dumps(shown)}")
    full, base = figures["full"]["seconds"], figures["baseline"]["seconds"]
    print()
    print(f"{'step':32s} {'seconds':>9s} {'peak MB':>9s}  target")
    print(f"{'full run (engine, stored)':32s} {full:9.1f} {figures['full']['peak_mb']:9.0f}"
          f"  <= 2 x baseline ({full / base:.2f} x)")  # fmt: skip
    print(f"{'hand-written DuckDB baseline':32s} {base:9.1f} "
          f"{figures['baseline']['peak_mb']:9.0f}")  # fmt: skip
    print(f"{'pandas, 3 indicators':32s} {figures['pandas']['seconds']:9.1f} "
          f"{figures['pandas']['peak_mb']:9.0f}")  # fmt: skip
    print(f"{'recompute after one month':32s} {figures['recompute']['seconds']:9.1f} "
          f"{figures['recompute']['peak_mb']:9.0f}  < 2 s")  # fmt: skip
    print(
        f"baseline mismatches: {figures['baseline']['mismatches']}, "
        f"pandas mismatches: {figures['pandas']['mismatches']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
