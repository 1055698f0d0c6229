"""Demo step "indicators": compute every indicator over the extracts the "ingest" step loaded.

A first build computes everything in one run; a later build recomputes only what changed
extract versions touch (``stale``), and nothing when no extract changed, so the step is
idempotent. The demo analyst is the acting user, as if they had pressed "compute".
"""

from __future__ import annotations

from styrkort.extracts.demo import demo_analyst
from styrkort.indicators import services
from styrkort.indicators.models import IndicatorResult


def compute_step(ctx) -> str:
    region = ctx.region
    analyst = demo_analyst(region)
    if not services.active_files(region):
        return "no extracts in force; nothing to compute"
    first = not IndicatorResult.objects.filter(region=region).exists()
    if not first and not services.stale_changes(region):
        return "unchanged: the results are up to date with the extracts in force"
    run = services.compute(region, stale=not first, actor=analyst)
    return (
        f"{'all indicators computed' if first else 'changed periods recomputed'}: "
        f"{run.results_written:,} results in {run.duration_seconds or 0:.1f} s"
    )
