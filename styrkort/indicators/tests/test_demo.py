"""The demo's "indicators" step: every indicator computed over the ingested extracts, once."""

from __future__ import annotations

from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.demo import compute_step
from styrkort.indicators.models import ComputationRun, IndicatorResult
from styrkort.web import demo

SEED = 7
NAMES = {"region", "registry", "users", "synth", "ingest", "indicators"}


def test_it_computes_every_indicator_once_and_nothing_again_without_new_extracts(
    db, settings, tmp_path
):
    # One test: a demo build with extracts takes most of a minute even at the test scale.
    settings.DATA_DIR = tmp_path
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.EXTRACT_DIR = tmp_path / "extracts"
    steps = [s for s in demo.STEPS if s.name in NAMES]
    assert [s.name for s in steps][-1] == "indicators"
    lines: list[str] = []
    ctx = demo.build_demo(SEED, write=lines.append, steps=steps)

    codes = set(
        IndicatorResult.objects.filter(region=ctx.region).values_list("definition__code", flat=True)
    )
    assert codes == {d.code for d in load_catalogue()}
    run = ComputationRun.objects.get()
    assert run.status == ComputationRun.Status.DONE
    assert run.started_by.username == "analys"
    assert any("all indicators computed" in line for line in lines)

    results = IndicatorResult.objects.count()
    assert compute_step(ctx).startswith("unchanged")
    assert ComputationRun.objects.count() == 1
    assert IndicatorResult.objects.count() == results
