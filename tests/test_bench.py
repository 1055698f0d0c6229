"""`make bench` must keep working: bench/run.py end to end at a tiny scale (--quick), into a
temporary directory, with its report written there instead of docs/performance.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_it_runs_the_benchmark_and_writes_the_report(tmp_path, settings):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("bench/run.py uses a SQLite database of its own: once, in the SQLite pass")
    report, figures = tmp_path / "performance.md", tmp_path / "figures.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--work", str(tmp_path),
         "--output", str(report), "--json", str(figures)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    data = json.loads(figures.read_text())
    steps = ("full", "baseline", "pandas", "recompute_same", "recompute", "verify", "ingest")
    for step in (*steps, "copy"):
        assert data[step]["seconds"] > 0
        assert data[step]["peak_mb"] > 0
    assert data["ingest"]["refused"] == []
    assert data["pandas"]["mismatches"] == 0
    # The identical re-upload changes no figure; the corrected month drops and changes rows
    # (sick leave ending in the month may have none to change at this scale), passes the
    # extract validator and changes figures.
    assert data["recompute_same"]["figures_changed"] == 0
    corrections = data["recompute"]["corrections"]
    assert corrections["contacts"]["dropped"] > 0
    assert corrections["contacts"]["profession_changed"] > 0
    assert corrections["diagnoses"]["changed"] > 0
    assert corrections["procedures"]["treatment_dropped"] > 0
    assert corrections["measurements"]["score_changed"] > 0
    assert data["recompute"]["validation"]["ok"]
    # Run twice at this scale, each from the same saved state; the median run is reported.
    runs = data["recompute"]["runs"]
    assert len(runs) == 2
    assert data["recompute"]["seconds"] in runs
    assert all(c > 0 for c in data["recompute"]["cpu_runs"])
    assert not (tmp_path / "engine-saved").exists()
    assert data["recompute"]["figures_changed"] > 0
    # The stored results after both recomputes are those of a computation from scratch.
    verify = data["verify"]
    assert verify["compared"] > 0
    assert (verify["differ"], verify["missing_stored"], verify["missing_computed"]) == (0, 0, 0)
    text = report.read_text()
    for label in (
        "full indicator run", "extract validation + ingest", "recompute after one corrected",
        "recompute after an identical re-upload", "figures compared",
    ):  # fmt: skip
        assert label in text
    assert "| Cores |" in text
    assert "The corrected month's recompute ran 2 times" in text
    assert not (ROOT / "docs" / "performance.md").samefile(report)


@pytest.mark.slow
@pytest.mark.postgres_only
@pytest.mark.django_db
def test_it_runs_the_stored_steps_on_postgresql_too(tmp_path, settings):
    """`make bench` with a PostgreSQL server: the engine's stored steps again, in a database
    of their own that is dropped at the end, with the same figures as on SQLite."""
    import psycopg

    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    server = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}"
    report, figures = tmp_path / "performance.md", tmp_path / "figures.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--work", str(tmp_path),
         "--output", str(report), "--json", str(figures),
         "--postgres", f"{server}/styrkort_bench_test"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    data = json.loads(figures.read_text())
    pg = data["postgres"]
    for step in ("full", "recompute_same", "recompute"):
        assert pg[step]["seconds"] > 0
        assert pg[step]["results"] == data[step]["results"]
    assert pg["recompute"]["figures_changed"] == data["recompute"]["figures_changed"] > 0
    assert "## On PostgreSQL" in report.read_text()
    with psycopg.connect(f"{server}/postgres") as connection:
        names = [n for (n,) in connection.execute("SELECT datname FROM pg_database")]
    assert "styrkort_bench_test" not in names
